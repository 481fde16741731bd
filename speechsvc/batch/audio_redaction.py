"""Redacted copies of recorded calls (``speechsvc batch --redact-audio``): every span of audio in which a
redacted value was said is beeped or silenced, on the leg (channel) that said it.

A span comes from the word timings of the utterance (the redaction stage places each value in the audio, with a
margin: PII_AUDIO_PAD_MS on both sides, and PII_AUDIO_DIGIT_TAIL_MS more at the end of a value that ends on a
digit, whose last digit often outlasts its timestamp); a value whose words could not be placed silences its whole
utterance instead, so a value is never left audible.
"""

from __future__ import annotations

import io
import wave
from typing import Literal

import numpy as np

from speechsvc.analysis.pii.audio import redact_audio
from speechsvc.batch.report import CallReport
from speechsvc.types import PIPELINE_RATE, Float32Array, Leg

Mode = Literal["beep", "silence"]


def redaction_spans(report: CallReport) -> dict[Leg, list[tuple[int, int]]]:
    """Per leg, the ``(start_ms, end_ms)`` of the audio to cover."""
    spans: dict[Leg, list[tuple[int, int]]] = {}
    for s in report.segments:
        for r in s.redactions:
            timed = r.start_ms is not None and r.end_ms is not None
            spans.setdefault(s.leg, []).append((r.start_ms, r.end_ms) if timed else (s.start_ms, s.end_ms))  # type: ignore[arg-type]
    return spans


def redact_recording(audio: Float32Array, report: CallReport, mode: Mode) -> Float32Array:
    """A copy of ``audio`` (16 kHz, shape (channels, n), channels in the report's leg order) with every
    redacted span beeped or silenced."""
    out = np.array(audio, dtype=np.float32, copy=True)
    spans = redaction_spans(report)
    for channel, leg in enumerate(report.legs):
        if spans.get(leg):
            out[channel] = redact_audio(audio[channel], spans[leg], mode, PIPELINE_RATE)
    return out


def wav_bytes(audio: Float32Array, sample_rate: int = PIPELINE_RATE) -> bytes:
    """16-bit PCM WAV of float32 audio of shape (channels, n)."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(audio.shape[0])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.ascontiguousarray(pcm.T).tobytes())
    return buffer.getvalue()
