"""Codecs against reference implementations, validation errors, resampling, file decoding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from speechsvc.errors import InvalidAudio, UnsupportedFormat
from speechsvc.speech.audio import (
    ALAW_TO_PCM,
    MULAW_TO_PCM,
    StreamResampler,
    check_format,
    decode_file,
    decode_frame,
    decode_with_source_rate,
    mulaw_encode,
)
from speechsvc.types import AudioFormat
from tests.support.datasets import fixture_clip

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # Python 3.13 removed it
        audioop = None


@pytest.mark.skipif(audioop is None, reason="audioop (reference G.711 codec) is not in this Python")
def test_g711_tables_match_audioop() -> None:
    codes = bytes(range(256))
    assert np.array_equal(np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2"), MULAW_TO_PCM)
    assert np.array_equal(np.frombuffer(audioop.alaw2lin(codes, 2), "<i2"), ALAW_TO_PCM)
    pcm = (np.random.default_rng(0).normal(0, 8000, 20000)).clip(-32768, 32767).astype(np.int16)
    pcm = np.concatenate([pcm, np.array([-32768, 32767, 0, -1, 1], np.int16)])
    assert mulaw_encode(pcm) == audioop.lin2ulaw(pcm.tobytes(), 2)


def test_decode_pcm16_stereo_splits_channels() -> None:
    frames = np.array([[1, -1], [2, -2], [3, -3]], np.int16)
    out = decode_frame(frames.astype("<i2").tobytes(), AudioFormat("pcm16", 8000, 2))
    assert out.shape == (3, 2)
    assert out[:, 0].tolist() == [1, 2, 3] and out[:, 1].tolist() == [-1, -2, -3]


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", AudioFormat(), "empty"),
        (b"\x00\x01\x02", AudioFormat("pcm16"), "not a whole number"),
        (b"\x00\x01", AudioFormat("pcm16", 8000, 2), "not a whole number"),
        (np.array([0.1, np.nan], "<f4").tobytes(), AudioFormat("f32"), "NaN"),
        (np.array([np.inf], "<f4").tobytes(), AudioFormat("f32"), "NaN or infinity"),
        (b"\x00\x00\x00", AudioFormat("f32"), "not a whole number"),
    ],
)
def test_decode_frame_errors(data: bytes, fmt: AudioFormat, message: str) -> None:
    with pytest.raises(InvalidAudio, match=message):
        decode_frame(data, fmt)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        (AudioFormat("pcm16", 4000), "sample_rate 4000"),
        (AudioFormat("opus", 16000), "encoding 'opus'"),  # type: ignore[arg-type]
        (AudioFormat("pcm16", 16000, 3), "channels 3"),
    ],
)
def test_unsupported_formats(fmt: AudioFormat, message: str) -> None:
    with pytest.raises(UnsupportedFormat, match=message):
        check_format(fmt)


@pytest.mark.parametrize("rate", [8000, 48000])
def test_stream_resampler_keeps_duration_and_pitch(rate: int) -> None:
    t = np.arange(rate * 2) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    r = StreamResampler(rate)
    out = np.concatenate([r.process(tone[i : i + rate // 50]) for i in range(0, tone.size, rate // 50)] + [r.flush()])
    assert abs(out.size - 32000) <= 64
    spectrum = np.abs(np.fft.rfft(out[1000:17000]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 2  # 1 Hz bins over 16000 samples


def test_decode_file_real_8k_recording() -> None:
    path = fixture_clip("asterisk_agent-user").path  # committed (tests/data); also in the eval set
    audio, rate = decode_file(path)
    assert rate == 16000 and audio.shape[0] == 1
    assert audio.shape[1] > 16000 and np.abs(audio).max() > 0.05


def test_the_rate_a_file_was_recorded_at_comes_with_its_16k_audio() -> None:
    path = fixture_clip("asterisk_agent-user").path  # an 8 kHz phone prompt
    audio, rate = decode_with_source_rate(path)
    assert rate == 8000  # the VAD's thresholds depend on it (vad.band_options)
    assert np.array_equal(audio, decode_file(path)[0])  # the audio itself is 16 kHz, as decode_file gives it


def test_decode_file_garbage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "garbage.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(InvalidAudio, match="cannot decode"):
        decode_file(bad)
