"""Speaker embeddings: the GE2E voice encoder (Resemblyzer's weights, :mod:`speechsvc.models.speaker`) in numpy.

The front end is the one the encoder was trained on: a 40-band mel *power* spectrogram (not log) of 16 kHz audio,
25 ms Hann windows every 10 ms (librosa's Slaney mel scale and normalisation, centred frames), of audio scaled to
-30 dBFS. Three LSTM layers of 256 run over the frames; the last layer's final state goes through a linear layer
and a ReLU and is L2-normalised: a 256-d embedding whose cosine to another says how alike the voices are.

Thread safety: :class:`SpeakerEncoder` holds read-only arrays and keeps no state between calls, so several
threads may embed at once (each call allocates its own buffers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechsvc.errors import ModelUnavailable
from speechsvc.models.speaker import ENCODER_KEYS
from speechsvc.types import Float32Array

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms: one frame
N_MELS = 40
TARGET_DBFS = -30.0
LAYERS = 3
HIDDEN = 256


def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> Float32Array:
    """librosa.filters.mel(sr, n_fft, n_mels) (Slaney scale, Slaney area normalisation), shape (n_mels, bins)."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, np.float64)
        mels = f / (200.0 / 3)
        log_region = f >= 1000.0
        return np.where(log_region, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mels)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        freqs = m * (200.0 / 3)
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), freqs)

    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sr / 2)), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


_MEL = mel_filters()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def mel_frames(audio: Float32Array) -> Float32Array:
    """The encoder's input for 16 kHz audio: mel power frames, shape (1 + n // HOP, N_MELS); the audio is first
    scaled to -30 dBFS (silence stays silence)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    scaled = audio * np.float32(10 ** (TARGET_DBFS / 20) / rms) if rms > 1e-6 else audio
    padded = np.pad(scaled, N_FFT // 2, mode="reflect" if scaled.size > N_FFT // 2 else "constant")
    n = 1 + (padded.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(padded, shape=(n, N_FFT),
                                             strides=(padded.strides[0] * HOP, padded.strides[0]))
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
    return np.asarray(power.astype(np.float32) @ _MEL.T, np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), np.float32)


@dataclass(frozen=True)
class _Layer:
    w_ih: Float32Array  # (in, 4H), transposed for x @ w
    w_hh: Float32Array  # (H, 4H)
    bias: Float32Array  # (4H,)


class SpeakerEncoder:
    """GE2E speaker embeddings of audio windows (see the module docstring)."""

    dim = 256

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.layers = tuple(
            _Layer(np.ascontiguousarray(arrays[f"lstm.weight_ih_l{k}"].T, np.float32),
                   np.ascontiguousarray(arrays[f"lstm.weight_hh_l{k}"].T, np.float32),
                   (arrays[f"lstm.bias_ih_l{k}"] + arrays[f"lstm.bias_hh_l{k}"]).astype(np.float32))
            for k in range(LAYERS))
        self.proj_w = np.ascontiguousarray(arrays["linear.weight"].T, np.float32)
        self.proj_b = arrays["linear.bias"].astype(np.float32)

    @classmethod
    def load(cls, path: Path) -> SpeakerEncoder:
        """Load ``encoder.npz`` (:func:`speechsvc.models.speaker.speaker_encoder_path`).

        Raises:
            ModelUnavailable: the file is missing or lacks arrays.
        """
        try:
            with np.load(path) as npz:
                arrays = {k: npz[k] for k in ENCODER_KEYS}
        except (OSError, ValueError, KeyError) as e:
            raise ModelUnavailable(f"speaker encoder {path} is missing or unreadable: {e}") from e
        return cls(arrays)

    def embed_frames(self, frames: Float32Array) -> Float32Array:
        """Embeddings of a batch of equally long mel sequences, shape (batch, steps, N_MELS) → (batch, 256)."""
        x = np.asarray(frames, np.float32)
        batch, steps, _ = x.shape
        for layer in self.layers:
            gates_x = (x.reshape(batch * steps, -1) @ layer.w_ih + layer.bias).reshape(batch, steps, 4 * HIDDEN)
            h = np.zeros((batch, HIDDEN), np.float32)
            c = np.zeros((batch, HIDDEN), np.float32)
            out = np.empty((batch, steps, HIDDEN), np.float32)
            for t in range(steps):
                g = gates_x[:, t] + h @ layer.w_hh
                i, f, cand, o = (g[:, :HIDDEN], g[:, HIDDEN : 2 * HIDDEN], g[:, 2 * HIDDEN : 3 * HIDDEN],
                                 g[:, 3 * HIDDEN :])
                c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cand)
                h = _sigmoid(o) * np.tanh(c)
                out[:, t] = h
            x = out
        raw = np.maximum(h @ self.proj_w + self.proj_b, 0.0)
        norm = np.linalg.norm(raw, axis=1, keepdims=True)
        return np.asarray(raw / np.maximum(norm, 1e-9), np.float32)

    def embed(self, windows: list[Float32Array]) -> Float32Array:
        """Embeddings of 16 kHz audio windows (any lengths; equal lengths are run as one batch), (n, 256)."""
        out = np.zeros((len(windows), self.dim), np.float32)
        mels = [mel_frames(w) for w in windows]
        by_len: dict[int, list[int]] = {}
        for k, m in enumerate(mels):
            by_len.setdefault(m.shape[0], []).append(k)
        for idx in by_len.values():
            out[idx] = self.embed_frames(np.stack([mels[k] for k in idx]))
        return out
