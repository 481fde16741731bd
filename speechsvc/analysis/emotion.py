"""The emotion stage: voice emotion per final utterance (angry / happy / neutral / sad, P(angry), arousal).
Emits ``emotion`` events.

Features (``segment_features``): the Whisper encoder output of the segment, pooled (mean and std over its
real frames) — computed by the ASR pass anyway and handed over in ``AsrResult.encoder_stats``, so the
emotion stage does not run the encoder again — plus, when the head was trained with them, the 88 eGeMAPS
v02 functionals (``afx-audio``, numpy).

Head (``models/emotion``): standardisation + multinomial logistic regression, run in numpy. Features are
normalised per call (:class:`EmotionTracker`): with the training set's global statistics at first, moving
to the call's own statistics as its speech accumulates (``prior_segments`` sets how fast), which is how it
was trained (per-speaker normalisation). P(angry) is smoothed over the call with an exponential average.

Emotion is best effort live: a segment shorter than :data:`MIN_SAMPLES` is not judged, and under load (more
than ``emotion_skip_depth`` segments waiting) a live segment is skipped so transcripts and text analysis are
never held up; recorded calls skip nothing.

Thread-safety: :class:`EmotionHead` is immutable; one :class:`EmotionTracker` per call leg (not shared).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from speechsvc.analysis.base import CallInfo, Mode, ModelStage, StageCall
from speechsvc.analysis.record import Utterance
from speechsvc.config import Settings, WorkerOptions
from speechsvc.errors import Overloaded, ShuttingDown
from speechsvc.models import load_head
from speechsvc.types import PIPELINE_RATE, Event, Float32Array, Leg, ModelInfo

EMOTIONS = ("angry", "happy", "neutral", "sad")
HIGH_AROUSAL = ("angry", "happy")
MIN_SAMPLES = PIPELINE_RATE // 4  # shorter segments carry too little voice to judge


def egemaps(audio: Float32Array) -> Float32Array:
    from afx_audio.extractors.egemaps import extract_egemaps

    values = extract_egemaps(audio.astype(np.float32), PIPELINE_RATE)["egemaps"][:, 0]
    return np.nan_to_num(np.asarray(values, np.float32))


def segment_features(audio: Float32Array, encoder_stats: Float32Array, use_egemaps: bool) -> Float32Array:
    """Raw (unnormalised) feature vector of one segment."""
    parts = [encoder_stats.astype(np.float32)]
    if use_egemaps:
        parts.insert(0, egemaps(audio))
    return np.concatenate(parts)


def overall_label(emotions: list[Emotion]) -> str | None:
    """A recording's label: highest duration-weighted mean probability over its segments."""
    if not emotions:
        return None
    totals: dict[str, float] = {}
    for e in emotions:
        for label, p in e.probabilities:
            totals[label] = totals.get(label, 0.0) + p * (e.end_ms - e.start_ms)
    return max(totals, key=totals.__getitem__)


@dataclass(frozen=True)
class EmotionResult:
    label: str
    probabilities: tuple[tuple[str, float], ...]
    p_angry: float
    arousal: float
    p_angry_smoothed: float


class EmotionHead:
    def __init__(self, directory: Path) -> None:
        meta, w = load_head(directory, "emotion")
        self.directory = directory
        self.meta = meta
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.use_egemaps = bool(meta["egemaps"])
        self.prior_segments = float(meta["prior_segments"])
        self.smoothing = float(meta["smoothing"])
        self.global_mean = w["global_mean"]
        self.global_std = w["global_std"]
        self.weights = w["weights"]
        self.bias = w["bias"]

    @property
    def dim(self) -> int:
        return int(self.global_mean.size)

    def probabilities(self, z: Float32Array) -> Float32Array:
        logits = z @ self.weights + self.bias
        e = np.exp(logits - logits.max())
        out: Float32Array = (e / e.sum()).astype(np.float32)
        return out


class EmotionTracker:
    """Per-call-leg state: running feature statistics and the smoothed P(angry)."""

    def __init__(self, head: EmotionHead) -> None:
        self.head = head
        self._n = 0
        self._sum = np.zeros(head.dim, np.float64)
        self._sumsq = np.zeros(head.dim, np.float64)
        self.p_angry_smoothed: float | None = None

    def normalize(self, x: Float32Array) -> Float32Array:
        """Blend of global and per-call statistics; the call's weight grows with its number of segments."""
        h = self.head
        self._n += 1
        self._sum += x
        self._sumsq += x.astype(np.float64) ** 2
        weight = self._n / (self._n + h.prior_segments)
        mean = self._sum / self._n
        std = np.sqrt(np.maximum(self._sumsq / self._n - mean**2, 0.0))
        # With few segments the call's std is unreliable: fall back to the global spread.
        std = np.where(std > 1e-6, std, h.global_std)
        mu = weight * mean + (1 - weight) * h.global_mean
        sd = weight * std + (1 - weight) * h.global_std
        z: Float32Array = ((x - mu) / np.maximum(sd, 1e-6)).astype(np.float32)
        return z

    def update(self, features: Float32Array) -> EmotionResult:
        probs = self.head.probabilities(self.normalize(features))
        by_label = dict(zip(self.head.labels, (float(p) for p in probs), strict=True))
        p_angry = by_label.get("angry", 0.0)
        a = self.head.smoothing
        previous = p_angry if self.p_angry_smoothed is None else self.p_angry_smoothed
        self.p_angry_smoothed = a * p_angry + (1 - a) * previous
        label = max(by_label, key=by_label.__getitem__)
        return EmotionResult(
            label=label,
            probabilities=tuple((k, round(v, 4)) for k, v in by_label.items()),
            p_angry=round(p_angry, 4),
            arousal=round(sum(by_label.get(k, 0.0) for k in HIGH_AROUSAL), 4),
            p_angry_smoothed=round(self.p_angry_smoothed, 4),
        )


@dataclass(frozen=True)
class Emotion(Event):
    TYPE: ClassVar[str] = "emotion"
    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    label: str
    probabilities: tuple[tuple[str, float], ...]
    p_angry: float
    arousal: float
    # P(angry) smoothed over the call so far for this leg.
    p_angry_smoothed: float


EmotionInput = tuple[Float32Array, Float32Array]


class EmotionStage(ModelStage[EmotionInput, Float32Array]):
    """Features on one ``emotion`` inference worker shared by all calls; per-leg normalisation per call."""

    name = "emotion"
    phase = 1
    worker_name = "emotion"
    needs_encoder_stats = True

    def __init__(self, head: EmotionHead, options: WorkerOptions, skip_depth: int) -> None:
        super().__init__(options)
        self.head = head
        self.skip_depth = skip_depth

    @classmethod
    def load(cls, settings: Settings) -> EmotionStage | None:
        if not settings.emotion:
            return None
        return cls(EmotionHead(settings.heads_dir / "emotion"), settings.analysis_worker(), settings.emotion_skip_depth)

    def run(self, batch: list[EmotionInput]) -> list[Float32Array]:
        return [segment_features(audio, stats, self.head.use_egemaps) for audio, stats in batch]

    def models(self) -> list[ModelInfo]:
        return [ModelInfo("emotion", str(self.head.directory), "cpu", "float32")]

    def open(self, call: CallInfo) -> StageCall[Float32Array]:
        return _EmotionCall(self, call.mode)

    def card(self, card: dict[str, Any], event: Event) -> float | None:
        """Per leg the latest emotion and smoothed P(angry); risk: the highest of those (it breaks ties between
        calls with the same escalations and failed rules)."""
        if not isinstance(event, Emotion):
            return None
        legs = card.setdefault("emotion", {})
        legs[event.leg] = {"label": event.label, "p_angry_smoothed": event.p_angry_smoothed}
        return max((e["p_angry_smoothed"] or 0.0 for e in legs.values()), default=0.0)

    def report(self, utterances: Sequence[Utterance], events: Sequence[Event]) -> dict[str, Any]:
        """The dominant emotion of each leg (each utterance's own is in the report's segments)."""
        dominant = {}
        for leg in dict.fromkeys(u.leg for u in utterances):
            labels = Counter(u.emotion for u in utterances if u.leg == leg and u.emotion)
            if labels:
                dominant[leg] = labels.most_common(1)[0][0]
        return {"dominant": dominant}


class _EmotionCall(StageCall[Float32Array]):
    def __init__(self, stage: EmotionStage, mode: Mode) -> None:
        self.stage = stage
        self.mode = mode
        self.trackers: dict[str, EmotionTracker] = {}

    async def infer(self, u: Utterance) -> Float32Array | None:
        stage = self.stage
        if u.audio is None or u.encoder_stats is None or u.audio.size < MIN_SAMPLES:
            return None
        if self.mode is Mode.LIVE and stage.worker is not None and stage.worker.depth >= stage.skip_depth:
            if stage.metrics is not None:
                stage.metrics.rejections.labels("emotion_skipped").inc()
            return None
        try:
            return await stage.infer_on((u.audio, u.encoder_stats), self.mode)
        except (Overloaded, ShuttingDown):
            return None  # best effort: transcripts and text analysis go on

    def apply(self, u: Utterance, found: Float32Array | None) -> list[Event]:
        if found is None:
            return []
        tracker = self.trackers.setdefault(u.leg, EmotionTracker(self.stage.head))
        r = tracker.update(found)
        u.emotion, u.p_angry, u.arousal, u.p_angry_smoothed = r.label, r.p_angry, r.arousal, r.p_angry_smoothed
        return [Emotion(*u.where, r.label, r.probabilities, r.p_angry, r.arousal, r.p_angry_smoothed)]
