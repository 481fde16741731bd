"""Audio in: wire codecs (PCM16, G.711 μ-law/A-law, float32), validation, channel split, streaming
resampling to the pipeline's 16 kHz, and file decoding for batch work.

Every function here is pure or owns only per-stream state; none is shared between calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

if TYPE_CHECKING:
    import av

from speechsvc.errors import InvalidAudio, MessageTooLarge, UnsupportedFormat
from speechsvc.types import ENCODINGS, PIPELINE_RATE, SAMPLE_RATE_RANGE, AudioFormat, Float32Array, Int16Array


def _mulaw_table() -> Int16Array:
    """ITU-T G.711 μ-law decode table (the same values as audioop.ulaw2lin)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> Int16Array:
    """ITU-T G.711 A-law decode table (the same values as audioop.alaw2lin)."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(sign, magnitude, -magnitude).astype(np.int16)


MULAW_TO_PCM = _mulaw_table()
ALAW_TO_PCM = _alaw_table()


def mulaw_encode(pcm: Int16Array) -> bytes:
    """G.711 μ-law encoder, bit-exact with audioop.lin2ulaw (for tests, benchmarks, telephone simulation)."""
    v = pcm.astype(np.int32) >> 2  # G.711 works on 14-bit samples
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 0x21
    segment = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag)
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((mag >> (segment + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def check_format(fmt: AudioFormat) -> AudioFormat:
    """The audio formats the pipeline takes.

    Raises:
        UnsupportedFormat: naming what is supported.
    """
    if fmt.encoding not in ENCODINGS:
        raise UnsupportedFormat(f"encoding {fmt.encoding!r} is not supported; use one of {ENCODINGS}")
    low, high = SAMPLE_RATE_RANGE
    if not isinstance(fmt.sample_rate, int) or not low <= fmt.sample_rate <= high:
        raise UnsupportedFormat(f"sample_rate {fmt.sample_rate} is not supported; use an integer rate from {low} to "
                                f"{high} Hz (8000, 16000, 44100, 48000, ...)")
    if fmt.channels not in (1, 2):
        raise UnsupportedFormat(f"channels {fmt.channels} is not supported; use 1 (mono) or 2 (one leg each)")
    return fmt


def decode_frame(data: bytes, fmt: AudioFormat) -> Int16Array:
    """Wire bytes -> int16 samples of shape (n, channels).

    Raises:
        InvalidAudio: empty frame, a length that is not whole sample frames, or NaN/inf floats.
    """
    if not data:
        raise InvalidAudio("empty audio frame")
    if len(data) % fmt.frame_bytes:
        raise InvalidAudio(
            f"{len(data)} bytes is not a whole number of {fmt.encoding} sample frames "
            f"({fmt.frame_bytes} bytes each for {fmt.channels} channel(s))"
        )
    if fmt.encoding == "pcm16":
        pcm = np.frombuffer(data, dtype="<i2").astype(np.int16)
    elif fmt.encoding == "mulaw":
        pcm = MULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]
    elif fmt.encoding == "alaw":
        pcm = ALAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]
    else:
        floats = np.frombuffer(data, dtype="<f4")
        if not np.all(np.isfinite(floats)):
            raise InvalidAudio("float32 audio contains NaN or infinity")
        pcm = (np.clip(floats, -1.0, 1.0) * 32767).astype(np.int16)
    return pcm.reshape(-1, fmt.channels)


class StreamResampler:
    """Stateful int16 mono resampler to 16 kHz (libswresample via PyAV): no clicks at frame edges."""

    def __init__(self, source_rate: int) -> None:
        self.source_rate = source_rate
        self._resampler = None
        if source_rate != PIPELINE_RATE:
            import av

            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=PIPELINE_RATE)

    def process(self, pcm: Int16Array) -> Float32Array:
        """Resample a chunk; returns float32 in [-1, 1] at 16 kHz (possibly empty)."""
        if self._resampler is None:
            return pcm.astype(np.float32) / 32768.0
        return self._run(self._frame(pcm))

    def flush(self) -> Float32Array:
        if self._resampler is None:
            return np.zeros(0, np.float32)
        return self._run(None)

    def _frame(self, pcm: Int16Array) -> av.AudioFrame:
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm.reshape(1, -1)), format="s16", layout="mono")
        frame.sample_rate = self.source_rate
        frame.pts = None
        return frame

    def _run(self, frame: av.AudioFrame | None) -> Float32Array:
        assert self._resampler is not None
        outs = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        if not outs:
            return np.zeros(0, np.float32)
        return np.concatenate(outs).astype(np.float32) / 32768.0


def to_float(pcm: Int16Array) -> Float32Array:
    return pcm.astype(np.float32) / 32768.0


def _declared_seconds(container: Any, stream: Any) -> float | None:
    """The duration the container or stream header declares (None when it declares none). A file may lie: the
    decode loop bounds what is really decoded; this refuses an honest long file before decoding any of it."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    return None


def decode_file(path: Path | str | BinaryIO, max_seconds: float | None = None) -> tuple[Float32Array, int]:
    """Decode any container/codec FFmpeg reads into 16 kHz float32 of shape (channels, n); returns it and its rate
    (16 kHz).

    ``max_seconds`` bounds the decoded duration (a small compressed file can hold hours of audio): decoding
    stops as soon as it is passed.

    Raises:
        InvalidAudio: the file cannot be opened or has no audio stream.
        MessageTooLarge: the audio is longer than ``max_seconds``.
    """
    return decode_with_source_rate(path, max_seconds)[0], PIPELINE_RATE


def decode_with_source_rate(path: Path | str | BinaryIO,
                            max_seconds: float | None = None) -> tuple[Float32Array, int]:
    """As :func:`decode_file` (16 kHz float32 of shape (channels, n)), with the rate the file was recorded at
    (8000 for a phone recording: the VAD's thresholds depend on it, ``vad.band_options``).

    Raises:
        InvalidAudio: the file cannot be opened or has no audio stream.
        MessageTooLarge: the audio is longer than ``max_seconds``.
    """
    import av

    try:
        with av.open(path if not isinstance(path, Path | str) else str(path), "r") as container:
            if not container.streams.audio:
                raise InvalidAudio(f"{_name(path)}: no audio stream")
            stream = container.streams.audio[0]
            declared = _declared_seconds(container, stream)
            if max_seconds is not None and declared is not None and declared > max_seconds:
                raise MessageTooLarge(f"{_name(path)}: longer than the {max_seconds:.0f} s limit "
                                      f"({declared:.0f} s declared)")
            channels = min(2, stream.codec_context.channels or 1)
            rate = int(stream.codec_context.sample_rate or PIPELINE_RATE)
            layout = "stereo" if channels == 2 else "mono"
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=PIPELINE_RATE)
            parts: list[np.ndarray] = []
            limit = None if max_seconds is None else int(max_seconds * PIPELINE_RATE)
            decoded = 0
            for frame in container.decode(stream):
                frame.pts = None
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray())
                    decoded += parts[-1].shape[-1]
                if limit is not None and decoded > limit:
                    raise MessageTooLarge(f"{_name(path)}: longer than the {max_seconds:.0f} s limit")
            parts.extend(f.to_ndarray() for f in resampler.resample(None))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise InvalidAudio(f"{_name(path)}: cannot decode audio: {e}") from e
    if not parts:
        return np.zeros((channels, 0), np.float32), rate
    audio = np.concatenate(parts, axis=1).astype(np.float32)
    if not np.all(np.isfinite(audio)):
        raise InvalidAudio(f"{_name(path)}: decoded audio contains NaN or infinity")
    return audio, rate


def _name(path: Path | str | BinaryIO) -> str:
    return str(path) if isinstance(path, Path | str) else "audio"


def resample(audio: Float32Array, source_rate: int, target_rate: int) -> Float32Array:
    """Resample float32 audio of shape (n,) or (n, channels) (libswresample); offline, whole arrays."""
    import av

    if source_rate == target_rate:
        return audio
    frames = audio.reshape(audio.shape[0], -1)
    channels = frames.shape[1]
    layout = "stereo" if channels == 2 else "mono"
    resampler = av.AudioResampler(format="flt", layout=layout, rate=target_rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(frames.reshape(1, -1), np.float32), format="flt",
                                       layout=layout)
    frame.sample_rate = source_rate
    outs = [f.to_ndarray().reshape(-1, channels) for f in (*resampler.resample(frame), *resampler.resample(None))]
    out = np.concatenate(outs).astype(np.float32)
    return out if audio.ndim == 2 else out.reshape(-1)


def encode_file(path: Path | str, audio: Float32Array, sample_rate: int, codec: str | None = None) -> None:
    """Write float32 audio of shape (channels, n) to any container FFmpeg writes (by extension).

    Used to keep audio when a setting asks for it and to make compressed fixtures in tests.
    """
    import av

    channels = audio.shape[0]
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec or _codec_for(Path(path).suffix), rate=sample_rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=sample_rate)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio.T.reshape(1, -1), np.float32), format="flt",
                                           layout=layout)
        frame.sample_rate = sample_rate
        for resampled in (*resampler.resample(frame), *resampler.resample(None)):
            container.mux(stream.encode(resampled))
        container.mux(stream.encode(None))


def _codec_for(suffix: str) -> str:
    return {".mp3": "libmp3lame", ".ogg": "libopus", ".opus": "libopus", ".m4a": "aac", ".flac": "flac"}.get(
        suffix.lower(), "pcm_s16le"
    )


def telephone_channel(
    audio: Float32Array, rng: np.random.Generator, noise: Float32Array | None = None, snr_db: float = 20.0
) -> Float32Array:
    """Simulate a G.711 phone line on 16 kHz audio: band-pass 300–3400 Hz, 8 kHz, μ-law, optional noise,
    back to 16 kHz (as the pipeline would resample it). Used for training augmentation and tests."""
    x = audio.astype(np.float32)
    if noise is not None and noise.size:
        start = int(rng.integers(0, max(1, noise.size - x.size)))
        n = np.resize(noise[start : start + x.size], x.size)
        gain = np.sqrt(np.mean(x**2) / (np.mean(n**2) + 1e-12) / 10 ** (snr_db / 10))
        x = x + gain * n
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1 / PIPELINE_RATE)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    x = np.fft.irfft(spectrum, n=x.size).astype(np.float32)
    narrow = resample(x, PIPELINE_RATE, 8000)
    pcm = (np.clip(narrow, -1, 1) * 32767).astype(np.int16)
    decoded = MULAW_TO_PCM[np.frombuffer(mulaw_encode(pcm), np.uint8)].astype(np.float32) / 32768.0
    return resample(decoded, 8000, PIPELINE_RATE)
