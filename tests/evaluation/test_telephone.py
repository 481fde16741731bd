"""Telephone chains for the 8 kHz dev set (FFmpeg's real G.711/AMR-NB/G.726 codecs via PyAV) and the tune/holdout
split of the ASR sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechsvc.evaluation.asr_sets import HOLDOUT, TUNE, Item, split_of, with_splits, zh_items
from speechsvc.evaluation.telephone import CHAINS, PACKET, PHONE_RATE, apply_chain, codec_round_trip, lose_packets
from tests.support.datasets import eval_path


def _speechlike(seconds: float = 2.0, rate: int = 16000) -> np.ndarray:
    """A 150 Hz buzz with harmonics up to 7 kHz, amplitude-modulated like syllables."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 47))
    return (0.1 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def _band_energy(x: np.ndarray, rate: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum() / spectrum.sum())


@pytest.mark.parametrize("chain", CHAINS, ids=[c.name for c in CHAINS])
def test_chain_is_8k_band_limited_and_reproducible(chain: object) -> None:
    x = _speechlike()
    y = apply_chain(x, 16000, chain, seed=7)  # type: ignore[arg-type]
    assert y.dtype == np.float32 and abs(y.size - x.size // 2) <= 1
    assert _band_energy(y, PHONE_RATE, 250, 3600) > 0.85  # the handset and line: 300-3400 Hz
    assert _band_energy(y, PHONE_RATE, 0, 100) < 0.02
    assert np.sqrt(np.mean(y**2)) > 0.005  # speech still there
    assert np.array_equal(y, apply_chain(x, 16000, chain, seed=7))  # type: ignore[arg-type]
    assert not np.array_equal(y, apply_chain(x, 16000, chain, seed=8)) or chain.loss == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("codec", ["pcm_mulaw", "pcm_alaw", "libopencore_amrnb", "adpcm_g726"])
def test_codec_round_trip_keeps_the_signal(codec: str) -> None:
    t = np.arange(PHONE_RATE) / PHONE_RATE
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = codec_round_trip(x, codec)
    assert y.size == x.size
    # Codecs delay a little: compare the best-aligned stretch.
    lag = int(np.argmax([np.dot(x[1000:7000], y[1000 + d : 7000 + d]) for d in range(400)]))
    err = y[1000 + lag : 7000 + lag] - x[1000:7000]
    snr = 10 * np.log10(np.mean(x[1000:7000] ** 2) / np.mean(err**2))
    assert snr > (5 if codec == "libopencore_amrnb" else 15)
    if codec.startswith("pcm_"):
        assert lag == 0 and snr > 30


def test_packet_loss_is_concealed_not_muted() -> None:
    x = _speechlike(rate=PHONE_RATE)
    rng = np.random.default_rng(1)
    y = lose_packets(x, 0.1, 0.0, rng)
    changed = [k for k in range(x.size // PACKET) if not np.array_equal(x[k * PACKET:(k + 1) * PACKET],
                                                                       y[k * PACKET:(k + 1) * PACKET])]
    assert 0.04 < len(changed) / (x.size // PACKET) < 0.2
    # Isolated lost packets are filled with the repeated pitch period, not silence.
    assert all(np.abs(y[k * PACKET:(k + 1) * PACKET]).max() > 0.01 for k in changed)


def test_split_rule_is_by_source_and_deterministic() -> None:
    sources = ["kimiaudio", "funasr", "speechrecognition", "cosyvoice", "fireredasr2s"]
    assert [split_of("prompt", s, sources) for s in sources] == [split_of("prompt", s, sources[::-1])
                                                                 for s in sources]
    item = Item("x", "zh", "long_turn", "magicdata", "bronze", "", Path("x.wav"))
    assert with_splits([item])[HOLDOUT] == [item]


def test_zh_sets_split_every_family_without_sharing_a_source() -> None:
    eval_dir = eval_path("asr_zh").parent
    splits = with_splits(zh_items(eval_dir))
    tune = {(i.family, i.source) for i in splits[TUNE]}
    holdout = {(i.family, i.source) for i in splits[HOLDOUT]}
    assert not tune & holdout
    for family in ("read", "prompt", "spontaneous"):
        assert any(f == family for f, _ in tune) and any(f == family for f, _ in holdout)
    assert ("read", "aishell-S0252") in holdout and ("read", "aishell-S0150") in tune
