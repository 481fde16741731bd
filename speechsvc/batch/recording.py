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
from dataclasses import asdict, replace
from typing import Any

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallEnd, CallInfo, Mode
from speechsvc.analysis.call import CUT_OFF_MS
from speechsvc.analysis.escalation import Escalation
from speechsvc.analysis.inspection import Qa, QaSummary
from speechsvc.batch.chunks import decode_utterances_async
from speechsvc.batch.report import CallReport, SegmentReport, summarize
from speechsvc.batch.speakers import SpeakerSplit, for_engine, label_roles, split_by_speaker
from speechsvc.batch.transcribe import legs_for, segment_audio
from speechsvc.runtime.engine import Engine
from speechsvc.speech.asr import SAMPLE_RATE, AsrRequest, AsrResult, shift_words
from speechsvc.types import Event, Float32Array, RedactionRequest, SpeechSegment, Transcript
from speechsvc.workers import Priority

log = logging.getLogger(__name__)


async def analyze_recording(
    engine: Engine, audio: Float32Array, path: str, language: str | None,
    redaction: RedactionRequest = RedactionRequest(),  # noqa: B008 - frozen, shared safely
    words: bool = False,
    agent_id: str | None = None,
    speaker_split: SpeakerSplit | None = None,
) -> CallReport:
    """One recording (16 kHz float32, shape (channels, n)); stereo = customer (left), agent (right).
    ``words`` adds word (character) timings to each segment; ``agent_id`` (from a manifest) goes in the report
    for per-agent QA aggregates. ``speaker_split`` splits a mono recording by speaker and labels the speakers
    agent / customer (:mod:`speechsvc.batch.speakers`); stereo recordings keep their channels."""
    legs = legs_for(audio.shape[0])
    segments: list[SpeechSegment] = []
    for channel, leg in enumerate(legs):
        segments.extend(await asyncio.to_thread(segment_audio, audio[channel], leg, engine.vad_model,
                                                engine.vad_options))
    # -- diarization (#29): a mono recording is split by speaker here and put on agent/customer legs after ASR.
    speaker_split = speaker_split or for_engine(engine)
    split = await split_by_speaker(segments, speaker_split) if speaker_split and legs == ("mixed",) else None
    if split is not None:
        segments = split.segments
    # --
    def submit(request: AsrRequest) -> Awaitable[AsrResult]:
        return engine.asr.submit_wait(request, Priority.BATCH)

    texts = decode_utterances_async(segments, submit, language, punctuation=engine.settings.punctuation, words=words)
    if any(stage.name == "emotion" for stage in engine.stages):
        # The emotion head reads the encoder's statistics of each utterance on its own (as live), not of a chunk.
        stats = asyncio.gather(*(submit(AsrRequest(s.audio, language, decode=False)) for s in segments))
        decoded, encoded = await asyncio.gather(texts, stats)
        asr = [replace(r, encoder_stats=e.encoder_stats) for r, e in zip(decoded, encoded, strict=True)]
    else:
        asr = await texts
    # -- diarization (#29): roles from each speaker's text; segments move onto those legs.
    speaker_of: dict[tuple[str, int], str] = {}
    speakers: dict[str, Any] | None = None
    if split is not None:
        labelled = label_roles(split, [r.text for r in asr], speaker_split.qa_pack if speaker_split else None)
        segments, legs, speakers = labelled.segments, labelled.legs, labelled.summary()
        speaker_of = {(s.leg, s.index): label for s, label in zip(segments, labelled.speakers, strict=True)}
    # --
    kept = sorted(((s, r) for s, r in zip(segments, asr, strict=True) if r.text),
                  key=lambda sr: (sr[0].start_ms, sr[0].leg))
    analyzer = CallAnalyzer(engine.stages, CallInfo(path, legs, Mode.BATCH, redaction=redaction), engine.metrics)
    # Each final through the stages' rewrite first (PII redaction), in time order as live: nothing after this
    # line sees the clear text.
    finals = [analyzer.rewrite(Transcript(s.leg, s.index, s.start_ms, s.end_ms, r.text, r.language, True,
                                          r.confidence, r.text, words=shift_words(r.words, s.start_ms)))
              for s, r in kept]
    utterances = [CallAnalyzer.utterance(final, s.audio, r.encoder_stats)
                  for final, (s, r) in zip(finals, kept, strict=True)]
    events = await analyzer.analyze(utterances)
    duration = audio.shape[1] / SAMPLE_RATE
    duration_ms = int(duration * 1000)
    cut_off = tuple(dict.fromkeys(s.leg for s in segments if s.end_ms >= duration_ms - CUT_OFF_MS))
    events += analyzer.end(CallEnd("recording", dict.fromkeys(legs, duration_ms), cut_off))
    reports = [
        SegmentReport(u.leg, u.utterance, u.start_ms, u.end_ms, u.text, u.language, round(u.confidence, 4),
                      final.redactions, final.words, intent=u.intent,
                      intent_probability=u.intent_probability if u.intent is not None else None,
                      negativity=u.negativity, emotion=u.emotion, p_angry=u.p_angry, arousal=u.arousal,
                      speaker=speaker_of.get((u.leg, u.utterance)))
        for u, final in zip(utterances, finals, strict=True)
    ]
    escalations = [asdict(e) for e in events if isinstance(e, Escalation)]
    summary = summarize(duration, legs, segments, reports, escalations)
    return CallReport(path, round(duration, 3), legs, tuple(reports), summary, qa_section(events), agent_id,
                      speakers)


def qa_section(events: list[Event]) -> dict[str, Any] | None:
    """The report's ``qa``: the score and every rule's outcome with its evidence (None when QA is off)."""
    summary = next((e for e in events if isinstance(e, QaSummary)), None)
    if summary is None:
        return None
    outcomes = [{k: v for k, v in asdict(e).items() if k != "emitted_at"} for e in events if isinstance(e, Qa)]
    for o in outcomes:
        o["status"] = "not_applicable" if o["passed"] is None else "pass" if o["passed"] else "fail"
    return {"rules": summary.rules, "score": summary.score, "base_score": summary.base_score,
            "failed": list(summary.failed), "outcomes": outcomes}
