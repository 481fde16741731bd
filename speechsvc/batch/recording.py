"""Recorded calls: the same stages as streaming (VAD → ASR → the analysis stages), run through the engine's
inference workers at batch priority, plus a quality-inspection summary per call.

:func:`analyze_recording` is shared by ``speechsvc batch``, the REST job API and the Ray actors. Several
recordings analysed concurrently share the workers, so their segments are batched together (cross-file
batching) while live calls keep priority on the same workers. Batch work waits for room in the queues
(backpressure) instead of failing on a long recording.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallInfo, Mode
from speechsvc.analysis.record import CallEnd, Utterance, cut_off_legs
from speechsvc.batch.chunks import decode_utterances_async
from speechsvc.batch.report import CallReport, summarize
from speechsvc.batch.speakers import SpeakerSplit, for_engine, label_roles, split_by_speaker
from speechsvc.batch.transcribe import legs_for, segment_audio
from speechsvc.runtime.engine import Engine
from speechsvc.speech.asr import AsrRequest, AsrResult, shift_words
from speechsvc.types import PIPELINE_RATE, Float32Array, RedactionRequest, SpeechSegment, Transcript
from speechsvc.workers import Priority

log = logging.getLogger(__name__)


async def analyze_recording(
    engine: Engine, audio: Float32Array, path: str, language: str | None,
    redaction: RedactionRequest = RedactionRequest(),  # noqa: B008 - frozen, shared safely
    words: bool = False,
    agent_id: str | None = None,
    speaker_split: SpeakerSplit | None = None,
    source_rate: int = PIPELINE_RATE,
) -> CallReport:
    """One recording (16 kHz float32, shape (channels, n)); stereo = customer (left), agent (right).
    ``words`` adds word (character) timings to each segment; ``agent_id`` (from a manifest) goes in the report
    for per-agent QA aggregates. Every stage's section (``Stage.report``) goes in the report under its name.
    A mono recording is split by speaker and its speakers labelled agent / customer (``speaker_split``, by
    default the engine's: :mod:`speechsvc.batch.speakers`); stereo recordings keep their channels. ``source_rate``:
    the rate the file was recorded at (the VAD's thresholds depend on it)."""
    legs = legs_for(audio.shape[0])
    segments: list[SpeechSegment] = []
    for channel, leg in enumerate(legs):
        segments.extend(await asyncio.to_thread(segment_audio, audio[channel], leg, engine.vad_model,
                                                engine.vad_options, source_rate))
    # -- diarization (#29): a mono recording is split by speaker here and put on agent/customer legs after ASR.
    speaker_split = speaker_split or for_engine(engine)
    split = await split_by_speaker(segments, speaker_split) if speaker_split and legs == ("mixed",) else None
    if split is not None:
        segments = split.segments
    # --

    def submit(request: AsrRequest) -> Awaitable[AsrResult]:
        return engine.asr.submit_wait(request, Priority.BATCH)

    texts = decode_utterances_async(segments, submit, language, punctuation=engine.settings.punctuation, words=words,
                                    recording=dict(zip(legs, audio, strict=True)))
    if any(stage.needs_encoder_stats for stage in engine.stages):
        # A voice stage reads the encoder's statistics of each utterance on its own (as live), not of a chunk.
        stats = asyncio.gather(*(submit(AsrRequest(s.audio, language, decode=False)) for s in segments))
        decoded, encoded = await asyncio.gather(texts, stats)
        asr = [replace(r, encoder_stats=e.encoder_stats) for r, e in zip(decoded, encoded, strict=True)]
    else:
        asr = await texts
    # -- diarization (#29): roles from each speaker's text; segments move onto those legs.
    # Where both spoke at once, a segment's times are those it was heard in (overlapping the other speaker's, as
    # stereo legs do); its words keep the times of the audio ASR decoded.
    speaker_of: dict[tuple[str, int], str] = {}
    speakers: dict[str, Any] | None = None
    heard = segments
    if split is not None and speaker_split is not None:
        labelled = label_roles(split, [r.text for r in asr], speaker_split.qa_pack)
        segments, legs, speakers, heard = labelled.segments, labelled.legs, labelled.summary(), labelled.timed()
        speaker_of = {(s.leg, s.index): label for s, label in zip(segments, labelled.speakers, strict=True)}
    # --
    kept = sorted(((s, r, h) for s, r, h in zip(segments, asr, heard, strict=True) if r.text),
                  key=lambda srh: (srh[2].start_ms, srh[2].leg))
    analyzer = CallAnalyzer(engine.stages, CallInfo(path, legs, Mode.BATCH, redaction=redaction), engine.metrics)
    # Each final through the stages' rewrite first (PII redaction), in time order as live: nothing after this
    # line sees the clear text.
    utterances = [
        Utterance.of(analyzer.rewrite(Transcript(s.leg, s.index, h.start_ms, h.end_ms, r.text, r.language, True,
                                                 r.confidence, r.text, words=shift_words(r.words, s.start_ms))),
                     s.audio, r.encoder_stats, speaker_of.get((s.leg, s.index)))
        for s, r, h in kept
    ]
    await analyzer.analyze(utterances)
    duration = audio.shape[1] / PIPELINE_RATE
    duration_ms = int(duration * 1000)
    cut_off = cut_off_legs(((s.leg, s.end_ms) for s in heard), duration_ms)
    analyzer.end(CallEnd("recording", dict.fromkeys(legs, duration_ms), cut_off))
    summary = summarize(duration, legs, heard, utterances)
    saved = tuple(replace(u, audio=None, encoder_stats=None, embedding=None) for u in utterances)  # not kept
    return CallReport(path, round(duration, 3), legs, saved, summary, analyzer.sections(), agent_id, speakers)
