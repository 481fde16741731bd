"""Telephone chains for evaluation: 16 kHz speech → what a call recorder stores at 8 kHz.

Each chain is a fixed recipe of real channel effects, applied in the order a call meets them:

1. **level**: a talker's distance to the handset and an AGC that hunts: a gain that wanders over the utterance
   (piecewise-linear in dB), and, on a hot chain, clipping;
2. **background noise** from ``eval/noise`` at a given SNR;
3. **band limit** 300–3400 Hz (4th-order Butterworth band-pass, the handset and line);
4. **8 kHz** (libswresample, as a gateway resamples);
5. **codec round trip** through FFmpeg's own encoders (PyAV): G.711 μ-law or A-law, AMR-NB 12.2 kbit/s (mobile
   legs), G.726 ADPCM 32 kbit/s (DECT, some VoIP);
6. **packet loss** on 20 ms packets (two-state Gilbert–Elliott bursts) with concealment: a lost packet repeats
   the last pitch period of the audio before it, fading by half each further lost packet (ITU-T G.711
   Appendix I in its simplest form), silence after 60 ms.

Everything is seeded per (utterance, chain), so a set is rebuilt bit for bit from the shared audio; the result
is written as 8 kHz 16-bit WAV into a cache directory (never into the repository), and the pipeline decodes
those files exactly as it decodes a customer's recording.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from speechsvc.speech.audio import decode_file, encode_file, resample
from speechsvc.types import Float32Array

PHONE_RATE = 8000
PACKET = PHONE_RATE // 50  # 20 ms


@dataclass(frozen=True)
class Chain:
    """One telephone channel recipe."""

    name: str
    codec: str  # pcm_mulaw | pcm_alaw | libopencore_amrnb | adpcm_g726
    level_db: float = 0.0  # mean gain applied to the speech (a quiet or loud talker)
    agc_swing_db: float = 0.0  # how far the gain wanders around level_db (0: a steady level)
    noise_snr_db: float | None = None  # background noise; None: none
    noise_file: str | None = None  # which recording of eval/noise/audio
    loss: float = 0.0  # packet-loss rate (fraction of 20 ms packets)
    burst: float = 0.0  # P(next packet lost | this one lost) - the loss is bursty above ``loss``
    clip: bool = False  # hot level: the line clips at full scale


CHAINS: tuple[Chain, ...] = (
    Chain("g711u", "pcm_mulaw", level_db=-6.0),
    Chain("g711a_loss_agc", "pcm_alaw", level_db=-10.0, agc_swing_db=8.0, loss=0.03, burst=0.3),
    Chain("amrnb_noise", "libopencore_amrnb", level_db=-4.0, agc_swing_db=4.0, noise_snr_db=15.0,
          noise_file="speechbrain_noise1.wav", loss=0.01,
          burst=0.2),
    Chain("g726_hot_noise", "adpcm_g726", level_db=6.0, noise_snr_db=25.0,
          noise_file="speechcommands_doing_the_dishes.wav", clip=True),
)


def seed_for(*parts: str) -> int:
    return int.from_bytes(hashlib.sha1("/".join(parts).encode()).digest()[:8], "little")


def _level(x: Float32Array, chain: Chain, rng: np.random.Generator) -> Float32Array:
    """Normalise speech to -20 dBFS RMS, then the chain's level and a wandering AGC gain."""
    rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    y = x * (10 ** (-20 / 20) / max(rms, 1e-6))
    gain_db = np.full(x.size, chain.level_db, np.float32)
    if chain.agc_swing_db and x.size:
        knots = max(2, int(x.size / 16000 / 1.5) + 2)  # a new target every ~1.5 s
        at = np.linspace(0, x.size - 1, knots)
        gain_db += np.interp(np.arange(x.size), at, rng.uniform(-1, 1, knots) * chain.agc_swing_db).astype(np.float32)
    y = y * (10 ** (gain_db / 20)).astype(np.float32)
    return np.clip(y, -1.0, 1.0).astype(np.float32) if chain.clip else y.astype(np.float32)


def _add_noise(x: Float32Array, noise: Float32Array, snr_db: float, rng: np.random.Generator) -> Float32Array:
    start = int(rng.integers(0, max(1, noise.size - x.size)))
    n = np.resize(noise[start : start + x.size], x.size).astype(np.float32)
    gain = float(np.sqrt(np.mean(x**2) / (np.mean(n**2) + 1e-12) / 10 ** (snr_db / 10)))
    out: Float32Array = (x + gain * n).astype(np.float32)
    return out


def band_limit(x: Float32Array, rate: int, low: float = 300.0, high: float = 3400.0) -> Float32Array:
    from scipy.signal import butter, sosfilt

    sos = butter(4, [low, high], btype="bandpass", fs=rate, output="sos")
    return np.asarray(sosfilt(sos, x), np.float32)


def codec_round_trip(x: Float32Array, codec: str) -> Float32Array:
    """8 kHz mono audio encoded and decoded by FFmpeg's ``codec`` (in memory)."""
    try:
        av.codec.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError as exc:
        raise RuntimeError(
            f"this PyAV ({av.__version__}) has no {codec} encoder; the telephone chains need the wheels of the "
            "'bench' extra (pip install -e '.[bench]': av<18.1.1 still carries libopencore_amrnb)"
        ) from exc
    suffix = {"libopencore_amrnb": ".amr"}.get(codec, ".wav")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        encode_file(path, np.clip(x, -1, 1)[None, :], PHONE_RATE, codec)
        audio, rate = decode_file(path)
    out = resample(audio[0], rate, PHONE_RATE)
    # Codecs add a little delay; keep the original length.
    return np.pad(out, (0, max(0, x.size - out.size)))[: x.size].astype(np.float32)


def lose_packets(x: Float32Array, loss: float, burst: float, rng: np.random.Generator) -> Float32Array:
    """Drop 20 ms packets (Gilbert–Elliott) and conceal them by repeating the last pitch period, fading."""
    if loss <= 0:
        return x
    y = x.copy()
    # Stationary loss rate ``loss`` with P(lost | lost) = burst: P(lost | received) = loss (1 - burst) / (1 - loss).
    p_start = loss * (1 - burst) / max(1e-9, 1 - loss)
    lost = False
    run = 0
    for k in range(x.size // PACKET):
        lost = rng.random() < (burst if lost else p_start)
        if not lost:
            run = 0
            continue
        run += 1
        a, b = k * PACKET, (k + 1) * PACKET
        history = y[max(0, a - 320) : a]
        if run > 3 or history.size < 40:
            y[a:b] = 0.0
            continue
        period = _pitch_period(history)
        cycle = history[-period:]
        fade = 0.5 ** (run - 1) * np.linspace(1.0, 0.5, PACKET, dtype=np.float32)
        y[a:b] = np.resize(cycle, PACKET) * fade
    return y


def _pitch_period(history: Float32Array) -> int:
    """Pitch period in samples (2.5–15 ms at 8 kHz) by autocorrelation of the last 40 ms."""
    lo, hi = 20, min(120, history.size // 2)
    if hi <= lo:
        return max(1, history.size)
    x = history - history.mean()
    scores = [float(np.dot(x[-lag:], x[-2 * lag : -lag])) for lag in range(lo, hi)]
    return lo + int(np.argmax(scores))


def apply_chain(audio: Float32Array, rate: int, chain: Chain, seed: int,
                noise: Float32Array | None = None) -> Float32Array:
    """``audio`` (mono float32 at ``rate``) through ``chain``: 8 kHz float32."""
    rng = np.random.default_rng(seed)
    x = resample(audio.astype(np.float32), rate, 16000) if rate != 16000 else audio.astype(np.float32)
    x = _level(x, chain, rng)
    if chain.noise_snr_db is not None and noise is not None and noise.size:
        x = _add_noise(x, noise, chain.noise_snr_db, rng)
    x = band_limit(x, 16000)
    narrow = resample(x, 16000, PHONE_RATE)
    narrow = codec_round_trip(narrow, chain.codec)
    narrow = lose_packets(narrow, chain.loss, chain.burst, rng)
    return np.clip(narrow, -1, 1).astype(np.float32)


def build(audio: Float32Array, rate: int, chain: Chain, key: str, cache: Path,
          noise: Float32Array | None = None) -> Path:
    """The cached 8 kHz WAV of ``audio`` through ``chain`` (``key`` names the utterance); built once."""
    path = cache / chain.name / f"{key}.wav"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        out = apply_chain(audio, rate, chain, seed_for(key, chain.name), noise)
        tmp = path.with_suffix(".tmp.wav")
        encode_file(tmp, out[None, :], PHONE_RATE, "pcm_s16le")
        tmp.replace(path)
    return path
