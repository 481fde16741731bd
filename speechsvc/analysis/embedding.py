"""Sentence embeddings shared by the QA ``similar`` operator and agent assist: one encoder call per
utterance, the same text normalisation for utterances, examples and knowledge entries.

The encoder is injected (``Embed``): in the service it is the USE encoder the text models already load,
``speechsvc.analysis.intent.embedder().encode``; anything mapping texts to an (n, dim) array works.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Texts -> (n, dim) sentence embeddings.
Embed = Callable[[list[str]], np.ndarray]


def embedding_text(text: str) -> str:
    """What the encoder sees of a text: the text models' normalisation (Simplified, no punctuation, digit
    strings as #), so examples and utterances differ only in what was said."""
    from speechsvc.analysis.text import normalize

    return normalize(text) or text


def encode(embed: Embed, texts: list[str]) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` (so a dot product is the cosine)."""
    if not texts:
        return np.zeros((0, 0), np.float32)
    vectors = np.asarray(embed([embedding_text(t) for t in texts]), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: np.ndarray = vectors / np.maximum(norms, 1e-9)
    return out
