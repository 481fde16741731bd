"""Redacted audio on real speech (model tier, committed fixture audio): a mobile number dictated digit by digit
from the Asterisk digit prompts (real 8 kHz telephone speech, CC-BY-SA-3.0), transcribed and redacted by the
batch path with ``--redact-audio silence``. Where each digit was spoken is known from how the recording was
assembled, independently of the recognizer's timestamps; every voiced sample of every digit — the first and the
last, at the edges of the redacted span, included — must be silent in the copy. Without a margin a span can
end before its number's last digit does (one digit of 99 stayed audible, issue 27)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speechsvc.speech.audio import decode_file, encode_file
from tests.support.datasets import fixture_clip

pytestmark = pytest.mark.model

RATE = 16000
NUMBER = "13123121321"  # a mobile number's shape, from the three digits the fixtures have
FRAME = 160  # 10 ms


def voiced(x: np.ndarray) -> tuple[int, int]:
    """First and last sample of the frames above a tenth of the clip's loudest frame (RMS)."""
    n = len(x) // FRAME
    energy = np.sqrt(np.mean(np.square(x[: n * FRAME].reshape(n, FRAME)), axis=1))
    on = np.nonzero(energy > 0.1 * energy.max())[0]
    return int(on[0]) * FRAME, (int(on[-1]) + 1) * FRAME


def dictated(number: str, gap_ms: int = 150) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The number read digit by digit (each prompt trimmed to its speech plus 50 ms), 0.5 s of silence before,
    1.5 s after; and the voiced samples of each digit in the recording."""
    clips = {d: decode_file(fixture_clip(f"asterisk_digits-{d}").path)[0][0] for d in set(number)}
    parts, placed, pos = [np.zeros(RATE // 2, np.float32)], [], RATE // 2
    for d in number:
        a, b = voiced(clips[d])
        clip = clips[d][max(0, a - 800) : b + 800]
        va, vb = voiced(clip)
        placed.append((pos + va, pos + vb))
        parts += [clip, np.zeros(gap_ms * RATE // 1000, np.float32)]
        pos += len(clip) + gap_ms * RATE // 1000
    parts.append(np.zeros(3 * RATE // 2, np.float32))
    return np.concatenate(parts), placed


def test_every_digit_of_a_dictated_number_is_silenced(tmp_path: Path) -> None:
    audio, placed = dictated(NUMBER)
    wav = tmp_path / "number.wav"
    encode_file(wav, audio[None, :], RATE)
    out = tmp_path / "out"
    env = {**os.environ, "SPEECHSVC_PII_MIN_DIGITS": "1", "SPEECHSVC_PII_NAMES_ADDRESSES": "false",
           "SPEECHSVC_QA": "false", "SPEECHSVC_ASSIST": "false", "SPEECHSVC_EMOTION": "false",
           "SPEECHSVC_TEXT_ANALYSIS": "false"}
    done = subprocess.run([sys.executable, "-m", "speechsvc.cli", "batch", str(wav), "--out", str(out), "--language",
                           "en", "-q", "--no-diarize", "--redact-audio", "silence"],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(next(out.glob("*number.wav-*.json")).read_text())
    redactions = [r for s in report["segments"] for r in s["redactions"]]
    texts = [s["text"] for s in report["segments"]]
    assert redactions and all(r["type"] == "PHONE" for r in redactions), texts
    assert all(r["start_ms"] is not None for r in redactions), texts  # placed from word timings, not whole turns
    assert not any(c.isdigit() for t in texts for c in t), texts

    covered = decode_file(next(out.glob("*number.wav-*.redacted.wav")))[0][0]
    assert covered.shape == audio.shape
    audible = [i for i, (a, b) in enumerate(placed) if np.abs(covered[a:b]).max() >= 1e-4]
    # Where the spans would end without the margin (PII_AUDIO_PAD_MS, PII_AUDIO_DIGIT_TAIL_MS at their defaults).
    bare = [(r["start_ms"] + 80, r["end_ms"] - 280) for r in redactions]
    unpadded = [i for i, (a, b) in enumerate(placed)
                if not any(s * RATE // 1000 <= a and b <= e * RATE // 1000 for s, e in bare)]
    spans = [(r["start_ms"], r["end_ms"]) for r in redactions]
    assert audible == [], f"digits {audible} audible; spans {spans}; without the margin {unpadded} would be"
    untouched = np.ones(audio.size, bool)
    for r in redactions:
        untouched[r["start_ms"] * RATE // 1000 : r["end_ms"] * RATE // 1000] = False
    assert np.abs(covered[untouched] - audio[untouched]).max() < 1e-3  # the rest of the recording unchanged
