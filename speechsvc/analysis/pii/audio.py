"""Redacted audio: where each redacted value was said (from word timings) and a copy of the audio with those
spans beeped or silenced."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from speechsvc.analysis.pii.policy import Redaction

SAMPLE_RATE = 16_000
BEEP_HZ = 1000.0
BEEP_LEVEL = 0.2  # peak amplitude of the beep (about −14 dBFS): clearly audible, not painful
_RAMP_MS = 3  # raised-cosine fade in/out of a beep, so cutting in does not click


def entity_spans_ms(
    redaction: Redaction, words: Sequence[tuple[str, int, int]], pad_ms: int = 0, digit_tail_ms: int = 0
) -> list[tuple[int, int]]:
    """Time span of each entity of ``redaction``, from word (or character) timestamps.

    Args:
        redaction: the redaction of an utterance.
        words: ``(text, start_ms, end_ms)`` whose texts concatenated equal the *original* utterance text.
        pad_ms: widened by this much on both sides (word timestamps are approximate).
        digit_tail_ms: and the end by this much more when the value ends on a digit: the recognizer's
            timestamp of a number's last digit often ends before the digit does (one of 99 digits stayed
            audible without it).
    Returns:
        ``(start_ms, end_ms)`` per entity, in entity order.
    Raises:
        ValueError: when an entity lies outside the text the words spell.
    """
    bounds: list[tuple[int, int, int, int]] = []
    pos = 0
    for text, start_ms, end_ms in words:
        bounds.append((pos, pos + len(text), start_ms, end_ms))
        pos += len(text)
    out: list[tuple[int, int]] = []
    for ent in redaction.entities:
        hit = [(s, e) for a, b, s, e in bounds if a < ent.source_end and ent.source_start < b]
        if not hit:
            raise ValueError(f"entity {ent.type} at {ent.source_start}:{ent.source_end} is outside the {pos} "
                             "characters the words spell")
        tail = pad_ms + (digit_tail_ms if ent.ends_on_digit else 0)
        out.append((max(0, min(s for s, _ in hit) - pad_ms), max(e for _, e in hit) + tail))
    return out


def redact_audio(
    audio: npt.NDArray[np.float32],
    spans_ms: Sequence[tuple[int, int]],
    mode: Literal["beep", "silence"] = "beep",
    sample_rate: int = SAMPLE_RATE,
) -> npt.NDArray[np.float32]:
    """A copy of ``audio`` with each span replaced by a 1 kHz beep or by silence.

    Args:
        audio: mono float32 samples.
        spans_ms: ``(start_ms, end_ms)`` spans (as from `entity_spans_ms`); clipped to the audio.
        mode: "beep" (a 1 kHz tone at ``BEEP_LEVEL``) or "silence" (zeros).
        sample_rate: of ``audio`` (16 kHz in this service).
    Returns:
        The redacted copy, same length and dtype.
    Raises:
        ValueError: for an unknown mode or audio that is not one-dimensional.
    """
    if mode not in ("beep", "silence"):
        raise ValueError(f"mode must be 'beep' or 'silence', not {mode!r}")
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (one dimension), got shape {audio.shape}")
    out = np.array(audio, dtype=np.float32, copy=True)
    for start_ms, end_ms in spans_ms:
        a = max(0, int(start_ms * sample_rate // 1000))
        b = min(len(out), int(end_ms * sample_rate // 1000))
        if b <= a:
            continue
        if mode == "silence":
            out[a:b] = 0.0
            continue
        n = b - a
        tone = BEEP_LEVEL * np.sin(2 * np.pi * BEEP_HZ * np.arange(n) / sample_rate)
        ramp = min(n // 2, sample_rate * _RAMP_MS // 1000)
        if ramp > 0:
            fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
            tone[:ramp] *= fade
            tone[n - ramp :] *= fade[::-1]
        out[a:b] = tone.astype(np.float32)
    return out
