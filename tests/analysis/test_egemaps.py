"""The faster eGeMAPS features equal afx-audio's (what the emotion head was trained with) on real speech."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechsvc.analysis.egemaps import egemaps
from speechsvc.speech.audio import decode_file
from tests.support.datasets import EVAL

LONG = EVAL / "long"
FILE = "aishellsample_S0150_S0252_concat_read"


@pytest.mark.skipif(not (LONG / "audio" / f"{FILE}.wav").exists(), reason="../shared/eval/long is not here")
def test_same_88_values_as_afx_audio_on_real_speech() -> None:
    from afx_audio.extractors.egemaps import extract_egemaps

    audio, rate = decode_file(LONG / "audio" / f"{FILE}.wav")
    mono = audio[0].astype(np.float32)
    segments = json.loads((LONG / "segments" / f"{FILE}.json").read_text())
    for s in segments[:3]:  # 3 utterances (voiced and unvoiced stretches, several pitch chains)
        x = mono[int(s["start"] * rate): int(s["end"] * rate)]
        expected = np.nan_to_num(extract_egemaps(x, rate)["egemaps"][:, 0].astype(np.float32))
        got = egemaps(x, rate)
        assert got.shape == (88,) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_silence_and_a_tone() -> None:
    """No voicing (all voiced statistics 0, finite) and a steady tone (pitch found) stay well defined."""
    silent = egemaps(np.zeros(16000, np.float32))
    assert np.isfinite(silent).all()
    t = np.arange(16000) / 16000
    tone = egemaps((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32))
    assert np.isfinite(tone).all() and tone[0] > 0  # F0 mean in semitones above 27.5 Hz


def test_residuals_computed_once_per_predictor_equal_the_per_window_ones() -> None:
    """The period marking's cached residuals (one per predictor over a neighbourhood, grown when a window falls
    outside it) equal afx-audio's residual of each window, at the signal's edges too."""
    from afx_audio.extractors import egemaps as ref

    from speechsvc.analysis.egemaps import _Residuals

    x = np.random.default_rng(0).standard_normal(4000)
    preds = ref._predictors(x, 16000, 160, 0, 25, 18)
    kernels = (ref._hann(ref._PERIOD_SMOOTH, 16000), ref._hann(ref._AMPLITUDE_SMOOTH, 16000))
    residuals = _Residuals(x, preds, 160, 0, 100, kernels)
    for q, lo, hi in [(0, -20, 100), (3, 400, 700), (3, 100, 1300), (24, 3800, 4100)]:
        got = residuals.window(q, lo, hi)
        expected = ref._smoothed_residual(x, preds[q], lo, hi, *kernels)
        for g, e in zip(got, expected, strict=True):
            assert g.shape == (hi - lo,)
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
