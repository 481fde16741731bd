"""Whole-file transcription on the same stages as streaming: decode → per-channel VAD → batched ASR.

Used by ``speechsvc transcribe`` (synchronously, on the caller's thread, calling the recognizer directly: it is
not shared with live calls there) and by the service's gRPC ``Transcribe`` (through the engine's ASR worker at
batch priority, so live calls keep priority).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.batch.chunks import CHUNK_S, decode_utterances, decode_utterances_async
from speechsvc.batch.speakers import SpeakerSplit, Split, label_roles, split_by_speaker, split_segments
from speechsvc.config import VadOptions
from speechsvc.speech.asr import AsrRequest, AsrResult, shift_words
from speechsvc.speech.audio import decode_with_source_rate
from speechsvc.speech.vad import SileroModel, SpeechEnded, VadStream, band_options
from speechsvc.types import PIPELINE_RATE, Float32Array, Leg, Redacted, SpeechSegment, Transcript, Word
from speechsvc.workers import InferenceWorker, Priority

log = logging.getLogger(__name__)

# Feed the VAD in 0.5 s blocks (the VAD's own windows are 32 ms).
VAD_BLOCK = PIPELINE_RATE // 2

# The longest recording decoded from a local file unless the caller says otherwise (Settings.max_recording_s).
MAX_RECORDING_S = 4 * 3600.0
# Recorded audio has no live latency to bound: a turn is cut by force only when it would not fit Whisper's 30 s
# window with its 2 s margin, so a long turn is decoded whole instead of in pieces cut mid-thought (a 12-28 s
# spontaneous turn cut at 15 s lost most to faster-whisper decoding it whole: shared/ASR_NOTES.md, issue 27).
RECORDED_MAX_SEGMENT_S = 28.0
# ...and its utterances keep 400 ms of audio either side, as faster-whisper's VAD keeps (200 ms live).
RECORDED_SPEECH_PAD_MS = 400


@dataclass(frozen=True)
class FileSegment:
    leg: Leg
    index: int
    start_ms: int
    end_ms: int
    text: str
    language: str
    confidence: float
    # Spans of ``text`` replaced by PII redaction (type, offsets, audio time when known).
    redactions: tuple[Redacted, ...] = ()
    # Word (Chinese: character) timings on the recording's clock, when asked for; they spell ``text``.
    words: tuple[Word, ...] = ()
    # The decoder's no-speech probability for the window this segment was decoded in (None: not known).
    no_speech_prob: float | None = None
    # Who said it in a diarized mono recording (speaker_0, speaker_1, ...); None otherwise.
    speaker: str | None = None


@dataclass(frozen=True)
class FileTranscript:
    path: str
    duration_s: float
    legs: tuple[Leg, ...]
    segments: tuple[FileSegment, ...]


def legs_for(channels: int) -> tuple[Leg, ...]:
    """Mono recordings are one mixed leg; stereo call recordings carry customer, agent."""
    return ("mixed",) if channels == 1 else ("customer", "agent")


def recorded_vad(options: VadOptions) -> VadOptions:
    """The endpointing options for recorded audio: the live ones, with utterances cut by force only past
    ``RECORDED_MAX_SEGMENT_S``, padded by at least ``RECORDED_SPEECH_PAD_MS``, and Silero on every window.

    A WebRTC gate (``VAD_WEBRTC_MODE``: Silero runs only where WebRTC hears a voice while a leg is quiet; on live
    wide-band legs only, ``vad.live_options``) saves CPU per call,
    but on telephone audio WebRTC misses speech: on clipped G.726 and noisy AMR-NB copies it dropped whole
    utterances (``你好世界`` entirely, 5 s of a 10 s sentence) that Silero alone finds (issue 27, measured with
    ``benchmarks/accuracy.py --variants ours,gate``). A recording is decoded once, so it gets Silero throughout."""
    return replace(options, max_segment_s=max(options.max_segment_s, RECORDED_MAX_SEGMENT_S),
                   speech_pad_ms=max(options.speech_pad_ms, RECORDED_SPEECH_PAD_MS), webrtc_mode=None)


def segment_audio(audio: Float32Array, leg: Leg, model: SileroModel, options: VadOptions,
                  source_rate: int = PIPELINE_RATE) -> list[SpeechSegment]:
    """Utterances of one leg of a recording (``options`` as for live calls; see :func:`recorded_vad`), recorded
    at ``source_rate`` (the thresholds of its band: :func:`speechsvc.speech.vad.band_options`)."""
    stream = VadStream(model, recorded_vad(band_options(options, source_rate)), leg)
    segments: list[SpeechSegment] = []
    for i in range(0, audio.size, VAD_BLOCK):
        segments.extend(e.segment for e in stream.feed(audio[i : i + VAD_BLOCK]) if isinstance(e, SpeechEnded))
    segments.extend(e.segment for e in stream.flush() if isinstance(e, SpeechEnded))
    return segments


def transcribe_segments(
    segments: Sequence[SpeechSegment],
    recognize: Callable[[list[AsrRequest]], Sequence[AsrResult]],
    language: str | None,
    batch_size: int = 8,
    progress: Callable[[float], None] | None = None,
    words: bool = False,
    hotwords: tuple[str, ...] = (),
    punctuation: bool = True,
    chunk_s: float = CHUNK_S,
    recording: Mapping[str, Float32Array] | None = None,
) -> list[FileSegment]:
    """Decode segments in merged chunks (:mod:`speechsvc.batch.chunks`; ``recording``: each leg's audio, so
    short pauses stay as recorded), ``batch_size`` chunks at a time; results per segment, in time order."""
    results = decode_utterances(segments, recognize, language, punctuation=punctuation, words=words,
                                hotwords=hotwords, batch_size=batch_size, progress=progress, chunk_s=chunk_s,
                                recording=recording)
    return file_segments(segments, results)


def rewrite_segments(segments: Sequence[FileSegment], analyzer: CallAnalyzer) -> list[FileSegment]:
    """Segments as the analysis stages' ``rewrite`` leaves them (PII redaction), fed in time order like a live
    call's finals, so a number read over several segments of a leg is redacted in each."""
    out = []
    for s in segments:
        t = analyzer.rewrite(Transcript(s.leg, s.index, s.start_ms, s.end_ms, s.text, s.language, True,
                                        s.confidence, s.text, words=s.words))
        out.append(replace(s, text=t.text, redactions=t.redactions, words=t.words))
    return out


def file_segments(segments: Sequence[SpeechSegment], results: Sequence[AsrResult],
                  speakers: Sequence[str | None] | None = None,
                  spans: Sequence[tuple[int, int]] | None = None) -> list[FileSegment]:
    """Segments that got text, in time order (legs interleaved); ``speakers``: each segment's speaker label;
    ``spans``: each one's times when they differ from the decoded audio's (a diarized segment heard over the
    other speaker: :attr:`speechsvc.batch.speakers.Labelled.spans`; words keep the decoded audio's times)."""
    labels = speakers if speakers is not None else [None] * len(segments)
    times = spans if spans is not None else [(s.start_ms, s.end_ms) for s in segments]
    out = [
        FileSegment(s.leg, s.index, a, b, r.text, r.language, round(r.confidence, 4),
                    words=shift_words(r.words, s.start_ms), no_speech_prob=round(r.no_speech_prob, 4),
                    speaker=label)
        for s, r, label, (a, b) in zip(segments, results, labels, times, strict=True)
        if r.text
    ]
    return sorted(out, key=lambda s: (s.start_ms, s.leg))


def decoded_segments(
    legs: tuple[Leg, ...],
    segments: Sequence[SpeechSegment],
    results: Sequence[AsrResult],
    split: Split | None,
    speaker_split: SpeakerSplit | None,
) -> tuple[tuple[Leg, ...], list[FileSegment]]:
    """A recording's decoded segments and its legs: as cut, or, for a mono recording ``split`` by speaker, each
    with its speaker label, on agent / customer legs when the roles are clear (the same for the service's path and
    the command line's)."""
    if split is None or speaker_split is None:
        return legs, file_segments(segments, results)
    labelled = label_roles(split, [r.text for r in results], speaker_split.qa_pack)
    return labelled.legs, file_segments(labelled.segments, results, labelled.speakers, labelled.spans)


async def transcribe_audio_async(
    audio: Float32Array,
    worker: InferenceWorker[AsrRequest, AsrResult],
    vad_model: SileroModel,
    vad_options: VadOptions,
    language: str | None,
    words: bool = False,
    hotwords: tuple[str, ...] = (),
    punctuation: bool = True,
    task: str = "transcribe",
    speaker_split: SpeakerSplit | None = None,
    source_rate: int = PIPELINE_RATE,
) -> tuple[tuple[Leg, ...], list[FileSegment]]:
    """The service's path: 16 kHz audio of shape (channels, n) → segments, through the ASR worker at batch
    priority (waiting for room), so recorded audio shares the model with live calls. The VAD runs in a thread,
    off the event loop. ``speaker_split`` splits a mono recording by speaker (each segment's ``speaker``) and puts
    the segments on agent / customer legs when the roles are clear. ``source_rate``: the rate the audio was
    recorded at (the VAD's thresholds depend on it)."""
    legs = legs_for(audio.shape[0])
    segments = [seg for ch, leg in enumerate(legs)
                for seg in await asyncio.to_thread(segment_audio, audio[ch], leg, vad_model, vad_options, source_rate)]
    split = await split_by_speaker(segments, speaker_split) if speaker_split and legs == ("mixed",) else None
    if split is not None:
        segments = split.segments
    results = await decode_utterances_async(segments, lambda r: worker.submit_wait(r, Priority.BATCH), language,
                                            punctuation=punctuation, words=words, hotwords=hotwords, task=task,
                                            recording=dict(zip(legs, audio, strict=True)))
    return decoded_segments(legs, segments, results, split, speaker_split)


def transcribe_file(
    path: Path | str,
    recognize: Callable[[list[AsrRequest]], Sequence[AsrResult]],
    vad_model: SileroModel,
    vad_options: VadOptions,
    language: str | None,
    batch_size: int = 8,
    progress: Callable[[float], None] | None = None,
    on_duration: Callable[[float], None] | None = None,
    punctuation: bool = True,
    chunk_s: float = CHUNK_S,
    max_seconds: float = MAX_RECORDING_S,
    speaker_split: SpeakerSplit | None = None,
) -> FileTranscript:
    """Transcribe one file (at most ``max_seconds`` of it). ``language`` None detects per segment.
    ``speaker_split`` splits a mono file by speaker (each segment's ``speaker``; agent / customer legs when the
    roles are clear); stereo files keep their channels.

    Raises:
        InvalidAudio: the file cannot be decoded.
        MessageTooLarge: it is longer than ``max_seconds``.
    """
    audio, rate = decode_with_source_rate(path, max_seconds)
    duration = audio.shape[1] / PIPELINE_RATE
    if on_duration:
        on_duration(duration)
    legs = legs_for(audio.shape[0])
    segments = [seg for ch, leg in enumerate(legs)
                for seg in segment_audio(audio[ch], leg, vad_model, vad_options, rate)]
    split = split_segments(segments, speaker_split) if speaker_split and legs == ("mixed",) else None
    if split is not None:
        segments = split.segments
    results = decode_utterances(segments, recognize, language, punctuation=punctuation, batch_size=batch_size,
                                progress=progress, chunk_s=chunk_s, recording=dict(zip(legs, audio, strict=True)))
    legs, out = decoded_segments(legs, segments, results, split, speaker_split)
    return FileTranscript(str(path), round(duration, 3), legs, tuple(out))
