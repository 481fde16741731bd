"""What the call-platform adapters (Twilio, AudioSocket, mod_audio_fork, AudioHook) share: checking a peer's byte
rate against the format it declared, and feeding stretches of silence.

Platforms stream in real time and do not describe their audio in-band (AudioSocket's 0x10 means "8 kHz" but older
Asterisk sends 16 kHz under it; mod_audio_fork sends stereo whenever the dialplan says so, whatever URL it was
given). A wrong rate or channel count gives fluent garbage, never an error, so the adapters measure the bytes a
connection sends per second of wall clock over its first second (:class:`RateProbe`) and compare them with what
the declared format implies. Only a paced sender can be judged: one that sends faster than real time (a test
client, a replay) or too little to measure is taken at its word.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from speechsvc.errors import SpeechsvcError
from speechsvc.types import Int16Array

# A measured byte rate this close (relative) to a multiple of the declared one counts as that multiple.
RATE_TOLERANCE = 0.25
# Silence is fed in pieces of at most this many ms, so a long gap never becomes one huge array.
SILENCE_CHUNK_MS = 1000


class FormatMismatch(SpeechsvcError):
    """The bytes a platform sends per second do not fit the format it declared (reported, not fatal)."""

    code = "format_mismatch"


class RateProbe:
    """Bytes per wall-clock second of one connection's audio, from its first frame on."""

    def __init__(self) -> None:
        self._clock = time.perf_counter
        self.first_at: float | None = None
        self.last_at = 0.0
        self.bytes_after_first = 0
        self.frames = 0

    def add(self, nbytes: int) -> None:
        now = self._clock()
        if self.first_at is None:
            self.first_at = now
        else:
            self.bytes_after_first += nbytes
        self.last_at = now
        self.frames += 1

    def elapsed(self) -> float:
        return 0.0 if self.first_at is None else self._clock() - self.first_at

    def bytes_per_second(self, min_span_s: float = 0.5, min_frames: int = 10) -> float | None:
        """The measured rate, or None when too little arrived, over too short a span, to judge."""
        if self.first_at is None or self.frames < min_frames:
            return None
        span = self.last_at - self.first_at
        if span < min_span_s:
            return None
        return self.bytes_after_first / span


def rate_ratio(measured: float | None, declared: float) -> float:
    """The measured byte rate over the declared one, snapped to 2.0 or 0.5 when it is one of those within
    :data:`RATE_TOLERANCE`, else 1.0 (matches, or cannot be judged: unmeasured or faster than real time)."""
    if measured is None or declared <= 0:
        return 1.0
    ratio = measured / declared
    for multiple in (2.0, 0.5):
        if abs(ratio / multiple - 1) <= RATE_TOLERANCE:
            return multiple
    return 1.0


def looks_interleaved(pcm: Int16Array) -> bool:
    """Whether int16 samples look like two interleaved channels rather than one channel at twice the rate.

    Speech is low-pass: in one channel, neighbouring samples are closer than samples two apart. Interleaved, the
    neighbours belong to different channels (different signals, or signal and silence) while samples two apart
    are neighbours within one channel, so the inequality turns round.
    """
    x = pcm.astype(np.float64)
    if x.size < 64 or not np.any(x):
        return False
    neighbours = float(np.mean(np.abs(np.diff(x))))
    two_apart = float(np.mean(np.abs(x[2:] - x[:-2])))
    return neighbours > two_apart


def silence(samples: int, rate: int) -> Iterator[Int16Array]:
    """``samples`` zero samples in pieces of at most :data:`SILENCE_CHUNK_MS`."""
    step = max(1, rate * SILENCE_CHUNK_MS // 1000)
    while samples > 0:
        n = min(step, samples)
        yield np.zeros(n, np.int16)
        samples -= n


def pieces(data: bytes, max_bytes: int, frame_bytes: int) -> Iterator[bytes]:
    """A wire frame in pieces of at most ``max_bytes`` (whole sample frames): platforms send whatever accumulated
    since their last write, which may be longer than the session takes in one frame."""
    if len(data) <= max_bytes:
        yield data
        return
    step = max(frame_bytes, max_bytes // frame_bytes * frame_bytes)
    for i in range(0, len(data), step):
        yield data[i : i + step]
