"""CallSession: the per-call core every transport drives. No transport code here.

A transport validates the call's start message into a :class:`CallConfig`, asks the engine for a slot,
then calls :meth:`CallSession.feed_bytes` (wire audio in the declared format) or :meth:`feed` (canonical
int16 per leg) for each frame, reads :meth:`events`, and finally calls :meth:`close` (normal end: open
utterances are finished and their finals delivered) or :meth:`abort` (client gone: work is dropped).

Per leg: a streaming resampler, a :class:`~speechsvc.vad.VadStream`, a bounded queue of finished
utterances and one task that decodes them in order (so finals of a leg never overtake each other).
Partials are decoded at most one at a time per leg, and are skipped when the ASR queue is deep.

Thread-safety: a session belongs to the event loop of its transport; call it from that loop only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from speechsvc.asr import AsrRequest, AsrResult
from speechsvc.audio import AudioFormat, StreamResampler, decode_frame
from speechsvc.emotion import MIN_SAMPLES, EmotionResult, EmotionTracker
from speechsvc.engine import Engine
from speechsvc.errors import InvalidAudio, Overloaded, ShuttingDown, SpeechsvcError
from speechsvc.escalation import EscalationPolicy, UtteranceAnalysis
from speechsvc.nlp.classifier import TextAnalysis
from speechsvc.scheduler import Priority
from speechsvc.types import (
    AudioChunk,
    CallEnded,
    Emotion,
    ErrorEvent,
    Float32Array,
    Int16Array,
    Intent,
    Leg,
    LegSummary,
    PipelineEvent,
    Sentiment,
    SpeechSegment,
    Transcript,
)
from speechsvc.vad import SAMPLE_RATE, SpeechEnded, VadStream
from speechsvc.wire import PROTOCOL_VERSION, event_to_dict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallConfig:
    """What a call declared when it started (validated by the transport's schema)."""

    call_id: str
    audio: AudioFormat = field(default_factory=AudioFormat)
    # Leg carried by each channel, in channel order.
    legs: tuple[Leg, ...] = ("customer",)
    # "zh", "en" or "auto" (detect per utterance among the configured languages).
    language: str = "zh"
    partials: bool = True
    # The platform's own ids (callSid, UUID, ...), echoed on every event.
    metadata: dict[str, str] = field(default_factory=dict)


def common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


@dataclass(frozen=True)
class _Finished:
    """A final transcript on its way to analysis, with what the voice models need."""

    final: Transcript
    audio: Float32Array
    encoder_stats: Float32Array | None


class PartialStabilizer:
    """LocalAgreement-2 (ufal/whisper_streaming): the prefix two consecutive hypotheses agree on is
    committed and never changes; every partial starts with the committed text."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.stable = ""
        self._previous = ""

    def update(self, hypothesis: str) -> tuple[str, str]:
        """Return (text to show, stable prefix) for a new hypothesis."""
        agreed = common_prefix(self._previous, hypothesis)
        if len(agreed) > len(self.stable) and agreed.startswith(self.stable):
            self.stable = agreed
        self._previous = hypothesis
        if hypothesis.startswith(self.stable):
            return hypothesis, self.stable
        return self.stable, self.stable


class _Leg:
    def __init__(self, session: CallSession, leg: Leg, sample_rate: int) -> None:
        engine = session.engine
        self.name = leg
        self.resampler = StreamResampler(sample_rate)
        self.vad = VadStream(engine.vad_model, engine.vad_options, leg)
        self.utterances: asyncio.Queue[SpeechSegment | None] = asyncio.Queue(
            maxsize=engine.stream_options.max_pending_utterances
        )
        self.stabilizer = PartialStabilizer()
        self.partial_task: asyncio.Task[None] | None = None
        self.partial_at = 0  # samples of the current utterance at the last partial
        self.finalized = -1  # index of the last utterance whose final was emitted
        self.received_samples = 0
        head = session.engine.emotion_head
        self.emotion = EmotionTracker(head) if head is not None else None
        self.worker = asyncio.get_running_loop().create_task(session._decode_finals(self), name=f"finals-{leg}")


class CallSession:
    def __init__(self, engine: Engine, config: CallConfig, transport: str) -> None:
        self.engine = engine
        self.config = config
        self.transport = transport
        self.call_id = config.call_id
        self.options = engine.stream_options
        self._events: asyncio.Queue[PipelineEvent | None] = asyncio.Queue(maxsize=self.options.max_pending_events)
        self._legs = {leg: _Leg(self, leg, config.audio.sample_rate) for leg in dict.fromkeys(config.legs)}
        self._closed = False
        self._ended = False
        self._seq = 0
        self.failed: SpeechsvcError | None = None
        self.max_frame_bytes = config.audio.bytes_for_ms(self.options.max_frame_ms)
        self._language = None if config.language == "auto" else config.language
        # Finals wait here for text analysis, in order; the policy sees the call's utterances in sequence.
        self._analysis: asyncio.Queue[_Finished | None] = asyncio.Queue(maxsize=self.options.max_pending_events)
        self.policy = EscalationPolicy(engine.rules)
        self._analyzer = asyncio.get_running_loop().create_task(self._analyze(), name="analysis")
        engine.bus.publish({"type": "ready", "version": PROTOCOL_VERSION, "call_id": self.call_id, "seq": 0,
                            "legs": list(config.legs), "transport": transport, "metadata": config.metadata})

    @property
    def legs(self) -> tuple[Leg, ...]:
        return tuple(self._legs)

    # ---- audio in -------------------------------------------------------------------------------

    def feed_bytes(self, data: bytes) -> None:
        """One wire frame in the call's declared format; channels are split into legs.

        Raises:
            InvalidAudio: the frame cannot be decoded (the call goes on; the frame is dropped).
        """
        if len(data) > self.max_frame_bytes:
            raise InvalidAudio(
                f"frame of {len(data)} bytes exceeds {self.options.max_frame_ms} ms of audio "
                f"({self.max_frame_bytes} bytes) for this call's format"
            )
        pcm = decode_frame(data, self.config.audio)
        for channel, leg in enumerate(self.config.legs):
            self._feed_leg(self._legs[leg], pcm[:, channel])

    def feed(self, chunk: AudioChunk) -> None:
        """Canonical audio from a platform adapter (already decoded, one leg)."""
        if chunk.sample_rate != self.config.audio.sample_rate:
            raise InvalidAudio(f"chunk at {chunk.sample_rate} Hz on a {self.config.audio.sample_rate} Hz call")
        leg = self._legs.get(chunk.leg)
        if leg is None:
            raise InvalidAudio(f"leg {chunk.leg!r} is not one of this call's legs {self.legs}")
        self._feed_leg(leg, chunk.pcm)

    def _feed_leg(self, leg: _Leg, pcm: Int16Array) -> None:
        if self._closed:
            raise ShuttingDown("call is closing; no more audio is accepted")
        leg.received_samples += pcm.size
        self.engine.metrics.audio_seconds.labels(leg.name).inc(pcm.size / self.config.audio.sample_rate)
        audio = leg.resampler.process(pcm)
        for event in leg.vad.feed(audio):
            if isinstance(event, SpeechEnded):
                self._queue_final(leg, event.segment)
        self._maybe_partial(leg)

    def _queue_final(self, leg: _Leg, segment: SpeechSegment) -> None:
        leg.partial_at = 0
        try:
            leg.utterances.put_nowait(segment)
        except asyncio.QueueFull:
            self.engine.metrics.rejections.labels("utterance_backlog").inc()
            self.report(Overloaded(f"{leg.name}: {leg.utterances.maxsize} utterances wait for ASR; one dropped"))

    # ---- decoding ---------------------------------------------------------------------------------

    async def _decode_finals(self, leg: _Leg) -> None:
        while (segment := await leg.utterances.get()) is not None:
            endpoint_wall = time.perf_counter()
            try:
                result = await self.engine.asr.submit(self._request(segment.audio, partial=False), Priority.FINAL)
            except (Overloaded, ShuttingDown) as e:
                self.report(e)
                continue
            leg.finalized = segment.index
            leg.stabilizer.reset()
            self.engine.metrics.endpoint_to_final.observe(time.perf_counter() - endpoint_wall)
            if result.text:
                final = self._transcript(leg.name, segment.index, segment.start_ms, segment.end_ms, result, True)
                self._emit(final)
                try:
                    self._analysis.put_nowait(_Finished(final, segment.audio, result.encoder_stats))
                except asyncio.QueueFull:
                    self.engine.metrics.rejections.labels("analysis_backlog").inc()

    async def _analyze(self) -> None:
        """Intent, negativity, voice emotion and escalation for each final, after the final itself went out,
        one utterance at a time (the escalation policy needs the call's history in order)."""
        while (item := await self._analysis.get()) is not None:
            final = item.final
            text, emotion = await asyncio.gather(self._text(final.text), self._emotion(item))
            where = (final.leg, final.utterance, final.start_ms, final.end_ms)
            if text is not None:
                self._emit(Intent(*where, text.intent, text.probability, text.alternatives))
                self._emit(Sentiment(*where, text.negativity))
            if emotion is not None:
                self._emit(Emotion(*where, emotion.label, emotion.probabilities, emotion.p_angry, emotion.arousal,
                                   emotion.p_angry_smoothed))
            analysis = UtteranceAnalysis(
                *where,
                text=final.text,
                intent=text.intent if text else "other",
                intent_probability=text.probability if text else 0.0,
                negativity=text.negativity if text else 0.0,
                p_angry=emotion.p_angry_smoothed if emotion else None,
                cues=self.engine.rules.detect(final.text),
            )
            for escalation in self.policy.update(analysis):
                log.info("call %s: escalation %s (%.2f)", self.call_id, escalation.kind, escalation.score)
                self._emit(escalation)

    async def _text(self, text: str) -> TextAnalysis | None:
        if self.engine.text is None:
            return None
        try:
            return await self.engine.text.submit(text)
        except (Overloaded, ShuttingDown) as e:
            self.report(e)
            return None

    async def _emotion(self, item: _Finished) -> EmotionResult | None:
        worker, tracker = self.engine.emotion, self._legs[item.final.leg].emotion
        if worker is None or tracker is None or item.encoder_stats is None or item.audio.size < MIN_SAMPLES:
            return None
        if worker.depth >= self.engine.settings.emotion_skip_depth:
            self.engine.metrics.rejections.labels("emotion_skipped").inc()
            return None
        try:
            features = await worker.submit((item.audio, item.encoder_stats))
        except (Overloaded, ShuttingDown):
            return None  # emotion is best effort; transcripts and text analysis go on
        return tracker.update(features)

    def _request(self, audio: Float32Array, partial: bool) -> AsrRequest:
        return AsrRequest(audio=audio, language=self._language, partial=partial)

    def _maybe_partial(self, leg: _Leg) -> None:
        interval = self.options.partial_interval_ms * SAMPLE_RATE // 1000
        if not self.config.partials or interval <= 0 or (leg.partial_task and not leg.partial_task.done()):
            return
        current = leg.vad.current()
        if current is None:
            return
        index, start_ms, audio = current
        due = leg.partial_at + interval if leg.partial_at else self.options.first_partial_ms * SAMPLE_RATE // 1000
        if audio.size < due:
            return
        if self.engine.asr.depth >= self.options.partial_skip_depth:
            return  # the final path has priority; this partial would only add queueing delay
        leg.partial_at = audio.size
        leg.partial_task = asyncio.get_running_loop().create_task(self._decode_partial(leg, index, start_ms, audio))

    async def _decode_partial(self, leg: _Leg, index: int, start_ms: int, audio: Float32Array) -> None:
        try:
            result = await self.engine.asr.submit(self._request(audio, partial=True), Priority.PARTIAL)
        except (Overloaded, ShuttingDown):
            return  # partials are best effort; finals report overload
        if index <= leg.finalized or not result.text or self._ended:
            return
        text, stable = leg.stabilizer.update(result.text)
        end_ms = start_ms + audio.size * 1000 // SAMPLE_RATE
        self._emit(self._transcript(leg.name, index, start_ms, end_ms, result, False, text=text, stable=stable))

    def _transcript(
        self,
        leg: Leg,
        index: int,
        start_ms: int,
        end_ms: int,
        result: AsrResult,
        final: bool,
        text: str | None = None,
        stable: str | None = None,
    ) -> Transcript:
        text = result.text if text is None else text
        return Transcript(
            leg=leg,
            utterance=index,
            start_ms=start_ms,
            end_ms=end_ms,
            text=text,
            language=result.language,
            is_final=final,
            confidence=round(result.confidence, 4),
            stable_text=text if final else (stable or ""),
        )

    # ---- events out -------------------------------------------------------------------------------

    def report(self, error: SpeechsvcError, fatal: bool = False) -> None:
        """Tell the client about a problem (a dropped frame, an overload) without ending the call."""
        self.engine.metrics.errors.labels(error.code).inc()
        log.warning("call %s: %s: %s", self.call_id, error.code, error)
        self._emit(ErrorEvent(error.code, str(error), fatal))

    def _emit(self, event: PipelineEvent) -> None:
        if self._ended:
            return
        self._seq += 1
        if self.engine.bus.subscribers:
            self.engine.bus.publish(event_to_dict(event, self.call_id, self._seq, self.config.metadata))
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            # The client is not reading; holding more would grow without bound.
            self.failed = Overloaded(f"client is not reading events ({self._events.maxsize} pending)")
            self.abort()

    async def events(self) -> AsyncIterator[PipelineEvent]:
        """Events in the order they were produced, until the call has ended."""
        while (event := await self._events.get()) is not None:
            yield event

    # ---- end of call ------------------------------------------------------------------------------

    async def close(self, reason: str = "stop") -> None:
        """Normal end: finish every open utterance, deliver its final, then ``ended``."""
        if self._closed:
            return
        self._closed = True
        for leg in self._legs.values():
            tail = leg.resampler.flush()
            events = leg.vad.feed(tail) + leg.vad.flush()
            for event in events:
                if isinstance(event, SpeechEnded):
                    self._queue_final(leg, event.segment)
            await leg.utterances.put(None)
        await asyncio.gather(*(leg.worker for leg in self._legs.values()), return_exceptions=False)
        await self._analysis.put(None)
        await self._analyzer
        for leg in self._legs.values():
            if leg.partial_task:
                leg.partial_task.cancel()
        self._emit(CallEnded(reason, self._summary()))
        self._finish()

    def abort(self) -> None:
        """Client gone or broken: drop queued work now; no more events."""
        self._closed = True
        self._analyzer.cancel()
        for leg in self._legs.values():
            leg.worker.cancel()
            if leg.partial_task:
                leg.partial_task.cancel()
        self._finish()

    def _finish(self) -> None:
        if self._ended:
            return
        self._ended = True
        while True:
            try:
                self._events.put_nowait(None)
                break
            except asyncio.QueueFull:
                self._events.get_nowait()  # the reader is gone or failed; make room for the end marker

    def _summary(self) -> tuple[LegSummary, ...]:
        rate = self.config.audio.sample_rate
        return tuple(
            LegSummary(
                leg=leg.name,
                audio_ms=leg.received_samples * 1000 // rate,
                speech_ms=leg.vad.speech_samples * 1000 // SAMPLE_RATE,
                utterances=leg.finalized + 1,
            )
            for leg in self._legs.values()
        )

