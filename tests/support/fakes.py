"""Fakes for the fast tier: an ASR model and a VAD model that load nothing, so the session core, the workers,
the analyzer and the transports' lifecycle can be tested in milliseconds. They implement the same small
interfaces as the real ones (``Recognizer``, ``SileroModel.new_state/prob/probs``)."""

from __future__ import annotations

import re

import numpy as np

from speechsvc.config import Settings
from speechsvc.runtime.engine import Engine
from speechsvc.speech.asr import AsrRequest, AsrResult
from speechsvc.types import ModelInfo, Word

RATE = 16000


class EnergyVad:
    """P(speech) = 0.95 for a 32 ms window with RMS above 0.01, else 0.02 (a tone is speech, zeros are not)."""

    def new_state(self) -> None:
        return None

    def prob(self, window: np.ndarray, state: object) -> float:
        return 0.95 if float(np.sqrt(np.mean(window.astype(np.float64) ** 2))) > 0.01 else 0.02

    def probs(self, windows: np.ndarray, state: object) -> np.ndarray:
        return np.array([self.prob(w, state) for w in windows], np.float32)


class FakeRecognizer:
    """Text = the tone's frequency in Hz (rounded to 10) and the length in tenths of a second, e.g. ``440hz12``,
    so a test knows which utterance a transcript belongs to. A 900 Hz tone makes the model fail (a stand-in for
    any item a real model chokes on)."""

    def __init__(self, texts: dict[int, str] | None = None) -> None:
        self.batches: list[int] = []
        # Text to return for a tone frequency instead of the default (a scripted "caller").
        self.texts = texts or {}
        # Word timings when asked for (even, over the whole request: right only for one utterance a request).
        self.words = False
        self.languages: list[str | None] = []  # each request's language (None: detect), in the order decoded
        self.fallback_hz: set[int] = set()  # tones whose results say they took the decoder's fallback

    def info(self) -> ModelInfo:
        return ModelInfo("asr", "fake", "cpu", "none")

    def warm_up(self) -> None:
        pass

    def transcribe(self, requests: list[AsrRequest]) -> list[AsrResult]:
        self.batches.append(len(requests))
        out = []
        for r in requests:
            self.languages.append(r.language)
            spectrum = np.abs(np.fft.rfft(r.audio))
            hz = int(round(np.argmax(spectrum) * RATE / max(1, r.audio.size), -1)) if r.audio.size else 0
            if hz == 900:
                raise ValueError("the fake model chokes on 900 Hz")
            text = self.texts.get(hz, f"{hz}hz{round(r.audio.size / RATE * 10)}")
            words = _fake_words(text, r.audio) if r.words and self.words else ()
            out.append(AsrResult(text, r.language or "zh", 0.9, 0.0, None, words=words,
                                 fallback=hz in self.fallback_hz))
        return out


def _fake_words(text: str, audio: np.ndarray) -> tuple[Word, ...]:
    """Even timings for the text's words as Whisper's alignment shapes them: space-led words with their
    punctuation (``Hello,`` `` world.``), or one per Chinese character with the punctuation after it attached
    (``度。``). Joined, they spell the text."""
    pieces = re.findall(r"\s*[\u4e00-\u9fff][^\w\s]*|\s*[^\s\u4e00-\u9fff]+", text)
    loud = np.flatnonzero(np.abs(audio) > 0.01)  # spread over the sound, as an alignment would
    start, end = (int(loud[0]) * 1000 // RATE, int(loud[-1]) * 1000 // RATE) if loud.size else (0, 0)
    step = (end - start) // max(1, len(pieces))
    return tuple(Word(p, start + i * step, start + (i + 1) * step, 0.8) for i, p in enumerate(pieces))


def fast_settings(**overrides: object) -> Settings:
    """Settings for fake-model tests: no webrtc gate (the fake VAD decides), analysis stages off unless asked."""
    values: dict[str, object] = {"vad_webrtc_mode": None, "text_analysis": False, "emotion": False,
                                 "partial_interval_ms": 0, "grpc_port": -1, "audiosocket_port": -1,
                                 "audit_log": "-"}  # no audit file in the user's home from unit tests
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def fake_engine(
    settings: Settings | None = None, stages: list[object] | None = None, texts: dict[int, str] | None = None
) -> Engine:
    recognizer = FakeRecognizer(texts)
    return Engine(settings or fast_settings(), recognizer, EnergyVad(), stages or [])  # type: ignore[arg-type]


def tone(hz: float, seconds: float, amplitude: float = 0.3, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(rate * seconds), np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    return bytes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


class TwoToneVoices:
    """Stands in for the speaker encoder: a window's embedding mixes two fixed unit "voices" by the energy it has
    at 200 Hz and at 500 Hz, so a tone of one frequency is one voice and a window where both sound lies between
    them. ``voices``: the two vectors (rows; normalised here)."""

    def __init__(self, voices: np.ndarray) -> None:
        self.voices = voices / np.linalg.norm(voices, axis=1, keepdims=True)

    def embed(self, windows: list[np.ndarray]) -> np.ndarray:
        out = []
        for w in windows:
            spectrum = np.abs(np.fft.rfft(w))
            freqs = np.fft.rfftfreq(w.size, 1 / RATE)
            low = spectrum[(freqs > 150) & (freqs < 250)].sum()
            high = spectrum[(freqs > 450) & (freqs < 550)].sum()
            v = low * self.voices[0] + high * self.voices[1] + 1e-6
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, np.float32)
