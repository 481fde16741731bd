"""CallSession: the per-call core every transport drives. No transport code here.

A transport builds a :class:`~speechsvc.types.CallConfig`, opens the call with
:func:`speechsvc.transports.lifecycle.open_call` (admission, then this session), calls :meth:`feed_bytes`
(wire audio in the declared format) or :meth:`feed` (canonical int16 per leg) for each frame, reads
:meth:`events`, and finally calls :meth:`close` (normal end: open utterances are finished and their finals
delivered) or :meth:`abort` (client gone: work is dropped).

Per leg: a streaming resampler, a :class:`~speechsvc.speech.vad.VadStream` (run on the engine's VAD worker
thread, :mod:`speechsvc.runtime.vad_worker`: the loop hands it the leg's audio and gets back the events and a view
of the stream), a bounded queue of finished utterances and one task that decodes them in order (so finals of a leg
never overtake each other). Partials
are decoded at most one at a time per leg, only while the speaker is speaking (not in the pause that ends the
utterance: its final is due), and only when they can arrive in time: a partial that the ASR worker could not
start within ``partial_stale_ms`` is skipped or dropped, and the leg's cadence stretches (1 s, 2 s, 4 s) until
partials come back promptly; across calls the longest-waiting leg goes first. Every final then goes,
in order, through the call's :class:`~speechsvc.analysis.analyzer.CallAnalyzer` (intent, emotion,
escalation, ...), after the final itself went out.

Events: ``ready`` (seq 0) when the session starts, then transcripts, analysis events and errors, then
``ended``; each is a :class:`~speechsvc.types.CallEvent` with the call's one ``seq`` counter, sent to the
transport (:meth:`events`) and published on the event bus, so subscribers see exactly what the client sees.

Thread-safety: a session belongs to the event loop of its transport; call it from that loop only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallInfo, Mode
from speechsvc.analysis.record import CallEnd, Utterance
from speechsvc.errors import InternalError, InvalidAudio, Overloaded, ShuttingDown, SpeechsvcError
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.partials import PartialCadence, PartialStabilizer
from speechsvc.runtime.vad_worker import VadUpdate
from speechsvc.speech.asr import AsrRequest, AsrResult, shift_words
from speechsvc.speech.audio import StreamResampler, decode_frame
from speechsvc.speech.text import word_separator
from speechsvc.speech.vad import SpeechEnded, VadState, VadStream, VadView, live_options
from speechsvc.types import (
    PIPELINE_RATE,
    CallConfig,
    CallEnded,
    CallEvent,
    Dtmf,
    ErrorEvent,
    Event,
    Float32Array,
    Int16Array,
    Leg,
    LegSummary,
    Ready,
    SpeechSegment,
    Transcript,
    fixed_language,
)
from speechsvc.workers import Priority

log = logging.getLogger(__name__)

# How often (media ms) the analysis learns how far each leg has been heard, for deadline decisions (QA).
WATERMARK_EVERY_MS = 1000
# Audio of a leg (16 kHz samples) waiting for the VAD worker past which the transport is held back (room()).
VAD_BACKLOG = 2 * PIPELINE_RATE


class _Leg:
    def __init__(self, session: CallSession, leg: Leg, sample_rate: int) -> None:
        engine = session.engine
        self.name = leg
        self.resampler = StreamResampler(sample_rate)
        # Fed on the VAD worker thread only.
        self.vad = VadStream(engine.vad_model, live_options(engine.vad_options, sample_rate), leg)
        self.view: VadView = self.vad.view()  # the stream as of its latest update: what the loop reads
        self.vad_backlog = 0  # samples handed to the VAD worker whose update has not come back
        self.utterances: asyncio.Queue[SpeechSegment | None] = asyncio.Queue(
            maxsize=engine.stream_options.max_pending_utterances
        )
        self.stabilizer = PartialStabilizer()
        self.partial_task: asyncio.Task[None] | None = None
        options = session.options
        self.cadence = PartialCadence(options.partial_interval_ms * PIPELINE_RATE // 1000,
                                      options.first_partial_ms * PIPELINE_RATE // 1000, options.partial_max_stretch)
        self.partial_check_at = 0  # received samples before which no partial can be due (saves copying audio)
        self.partial_index = -1  # the utterance the cadence is counting
        self.finalized = -1  # index of the last utterance whose final was emitted
        self.received_samples = 0
        # Start times of utterances cut by the VAD whose final has not been emitted yet (oldest first).
        self.undecoded: collections.deque[int] = collections.deque()
        # The leg's last finals as heard (before redaction: they go to the decoder only, never out or to logs).
        self.context: collections.deque[AsrResult] = collections.deque(maxlen=max(1, session.options.final_context))
        self.worker = asyncio.get_running_loop().create_task(session._decode_finals(self), name=f"finals-{leg}")


class CallSession:
    def __init__(self, engine: Engine, config: CallConfig, transport: str) -> None:
        self.engine = engine
        self.config = config
        self.transport = transport
        self.call_id = config.call_id
        self.options = engine.stream_options
        self._events: asyncio.Queue[CallEvent | None] = asyncio.Queue(maxsize=self.options.max_pending_events)
        self._legs = {leg: _Leg(self, leg, config.audio.sample_rate) for leg in dict.fromkeys(config.legs)}
        self._closed = False
        self._ended = False
        self._seq = -1
        self.failed: SpeechsvcError | None = None
        self.max_frame_bytes = config.audio.bytes_for_ms(self.options.max_frame_ms)
        self._language = fixed_language(config.language)
        call = CallInfo(self.call_id, config.legs, Mode.LIVE, config.metadata, config.redaction)
        self.analyzer = CallAnalyzer(engine.stages, call, engine.metrics)
        # Finals wait here for analysis, in order; the stages see the call's utterances in sequence. A mapping
        # is a watermark: how far in media time each leg has no final still to come (for deadline decisions).
        self._analysis: asyncio.Queue[Utterance | dict[Leg, int] | None] = asyncio.Queue(
            maxsize=self.options.max_pending_events
        )
        self._watermark_at = 0  # media ms of the last watermark
        self._analysis_ended = False  # the analysis queue has its end marker: nothing more goes in
        self._analyzer_task = asyncio.get_running_loop().create_task(self._analyze(), name="analysis")
        audio = config.audio
        self._emit(Ready(config.legs, audio.encoding, audio.sample_rate, config.language, transport))

    @property
    def legs(self) -> tuple[Leg, ...]:
        return tuple(self._legs)

    # ---- audio in -------------------------------------------------------------------------------

    async def room(self) -> None:
        """Wait while a leg's utterances pile up faster than ASR decodes them (a client sending faster than real
        time): the transport stops reading meanwhile, so the sender is held back by TCP backpressure instead of
        losing utterances. A platform streaming in real time does not wait here unless the machine is
        overloaded."""
        while not self._closed and any(
            leg.utterances.qsize() * 2 >= leg.utterances.maxsize or leg.vad_backlog > VAD_BACKLOG
            for leg in self._legs.values()
        ):
            await asyncio.sleep(0.02)

    def feed_bytes(self, data: bytes) -> None:
        """One wire frame in the call's declared format; channels are split into legs.

        Raises:
            InvalidAudio: the frame cannot be decoded (the call goes on; the frame is dropped).
            ShuttingDown: the call is closing.
        """
        if len(data) > self.max_frame_bytes:
            raise InvalidAudio(
                f"frame of {len(data)} bytes exceeds {self.options.max_frame_ms} ms of audio "
                f"({self.max_frame_bytes} bytes) for this call's format"
            )
        pcm = decode_frame(data, self.config.audio)
        for channel, leg in enumerate(self.config.legs):
            self._feed_leg(self._legs[leg], pcm[:, channel])

    def feed(self, leg: Leg, pcm: Int16Array) -> None:
        """Canonical audio from a platform adapter: int16 mono of one leg at the call's sample rate.

        Raises:
            InvalidAudio: not one of this call's legs.
            ShuttingDown: the call is closing.
        """
        state = self._legs.get(leg)
        if state is None:
            raise InvalidAudio(f"leg {leg!r} is not one of this call's legs {self.legs}")
        self._feed_leg(state, pcm)

    def dtmf(self, leg: Leg, digit: str) -> None:
        """A keypad digit the platform reported on ``leg`` (an event, at the leg's current media time)."""
        state = self._legs.get(leg)
        if state is None:
            raise InvalidAudio(f"dtmf on leg {leg!r}, which is not one of this call's legs {self.legs}")
        if len(digit) != 1 or digit not in "0123456789*#ABCDabcd":
            raise InvalidAudio(f"dtmf digit {digit[:8]!r} is not one of 0-9 * # A-D")
        at_ms = state.received_samples * 1000 // self.config.audio.sample_rate
        self._emit(self.analyzer.rewrite(Dtmf(leg, digit.upper(), at_ms)))  # e.g. masked by PII redaction

    def flush(self) -> None:
        """Finish every open utterance now (its final follows) without ending the call: the speaker's turn is
        over by the platform's word, not the VAD's (a WebSocket ``flush``, mod_audio_fork's graceful shutdown)."""
        if self._closed:
            return
        for leg in self._legs.values():  # after the audio before it; the resampler keeps its few ms: the call goes on
            self._to_vad(leg, np.zeros(0, np.float32), flush=True)

    def _feed_leg(self, leg: _Leg, pcm: Int16Array) -> None:
        if self._closed:
            raise ShuttingDown("call is closing; no more audio is accepted")
        leg.received_samples += pcm.size
        self.engine.metrics.audio_seconds.labels(leg.name).inc(pcm.size / self.config.audio.sample_rate)
        audio = leg.resampler.process(pcm)
        if audio.size:
            self._to_vad(leg, audio)
        heard_ms = leg.received_samples * 1000 // self.config.audio.sample_rate
        if heard_ms - self._watermark_at >= WATERMARK_EVERY_MS:
            self._watermark_at = heard_ms
            self._post_watermark()

    def _to_vad(self, leg: _Leg, audio: Float32Array, *, flush: bool = False,
                done: Callable[[VadUpdate], object] | None = None) -> bool:
        """Hand audio to the VAD worker; its events come back in :meth:`_on_vad` (or ``done``). A full VAD queue (the
        machine far behind real time) drops the frame, reported; returns whether the audio was taken."""
        try:
            self.engine.vad.submit(leg.vad, audio, done or functools.partial(self._on_vad, leg), flush=flush)
        except Overloaded as e:
            self.engine.metrics.rejections.labels("vad_backlog").inc()
            self.report(e)
            return False
        except ShuttingDown:
            if not flush:
                raise  # audio while the engine stops: the transport ends the call
            return False  # the engine stopped before this call closed: its open utterance is lost
        leg.vad_backlog += audio.size
        return True

    def _on_vad(self, leg: _Leg, update: VadUpdate) -> list[SpeechSegment]:
        """On the loop: a VAD update of ``leg`` (events in order). Returns the utterances it ended."""
        leg.vad_backlog -= update.samples
        leg.view = update.view
        if self._ended:
            return []
        if update.error is not None:
            self.report(InternalError(f"{leg.name} leg: VAD failed on {update.samples} samples ({update.error})"))
        ended = [event.segment for event in update.events if isinstance(event, SpeechEnded)]
        for segment in ended:
            self._queue_final(leg, segment)
        if not self._closed:
            self._maybe_partial(leg)
        return ended

    def _post_watermark(self) -> None:
        """Tell the analysis how far each leg has no final still to come (best effort: skipped when busy). Also
        while the call closes: the finals still being decoded then move the watermarks too, and rules they decide
        are decided live, not only at the end."""
        marks = {leg.name: min(leg.undecoded[0] if leg.undecoded else leg.view.earliest_start_ms,
                               leg.view.earliest_start_ms)
                 for leg in self._legs.values()}
        if not self._analysis_ended:
            with contextlib.suppress(asyncio.QueueFull):
                self._analysis.put_nowait(marks)

    def _queue_final(self, leg: _Leg, segment: SpeechSegment) -> None:
        leg.cadence.reset(time.perf_counter())
        leg.partial_check_at = 0
        if leg.partial_task and not leg.partial_task.done():
            leg.partial_task.cancel()  # a partial of an utterance whose final is queued would arrive too late
        try:
            leg.utterances.put_nowait(segment)
            leg.undecoded.append(segment.start_ms)
        except asyncio.QueueFull:
            self.engine.metrics.rejections.labels("utterance_backlog").inc()
            self.report(Overloaded(f"{leg.name}: {leg.utterances.maxsize} utterances wait for ASR; one dropped"))

    # ---- decoding ---------------------------------------------------------------------------------

    async def _decode_finals(self, leg: _Leg) -> None:
        while (segment := await leg.utterances.get()) is not None:
            endpoint_wall = time.perf_counter()
            try:
                request = self._request(segment.audio, partial=False, context=self._context(leg))
                result = await self.engine.asr.submit(request, Priority.FINAL)
            except SpeechsvcError as e:
                leg.undecoded.popleft()
                self.report(e)  # this utterance is lost; the leg goes on with the next one
                continue
            leg.finalized = segment.index
            leg.undecoded.popleft()
            leg.stabilizer.reset()
            self.engine.metrics.endpoint_to_final.observe(time.perf_counter() - endpoint_wall)
            if result.text:
                leg.context.append(result)
                final = self._transcript(leg.name, segment.index, segment.start_ms, segment.end_ms, result, True)
                final = self.analyzer.rewrite(final)  # e.g. PII redaction: nothing after this sees the clear text
                self._emit(final)
                try:
                    self._analysis.put_nowait(Utterance.of(final, segment.audio, result.encoder_stats))
                except asyncio.QueueFull:
                    self.engine.metrics.rejections.labels("analysis_backlog").inc()
            self._post_watermark()

    async def _analyze(self) -> None:
        """Every final through the call's analyzer, one at a time, after the final itself went out."""
        while (item := await self._analysis.get()) is not None:
            try:
                if isinstance(item, dict):
                    events = self.analyzer.advance(item)
                else:
                    events = await self.analyzer.analyze([item])
            except Exception as e:  # a bug in one stage loses one utterance's analysis, not the call (logged)
                what = "time" if isinstance(item, dict) else f"utterance {item.index}"
                log.exception("analysis of %s failed", what)
                self.report(InternalError(f"analysis of {what} failed: {type(e).__name__}"))
                continue
            for event in events:
                self._emit(event)

    def _request(self, audio: Float32Array, partial: bool, context: str = "") -> AsrRequest:
        words = self.config.words and not partial  # timings on finals only
        return AsrRequest(audio=audio, language=self._language, partial=partial, words=words,
                          hotwords=self.config.hotwords, context=context)

    def _context(self, leg: _Leg) -> str:
        """The leg's previous finals, as previous text for the next final's decoder (``FINAL_CONTEXT``; measured
        on eval/long: CER 0.206 → 0.170 at 16 kHz, 0.258 → 0.219 at 8 kHz with two, but it can end an utterance
        early, so it is off by default)."""
        if not self.options.final_context:
            return ""
        heard = list(leg.context)
        return word_separator(*(r.language for r in heard)).join(r.text for r in heard)

    def _maybe_partial(self, leg: _Leg) -> None:
        if not self.config.partials or leg.cadence.interval <= 0 or (leg.partial_task and not leg.partial_task.done()):
            return
        if leg.view.state is not VadState.SPEAKING or leg.view.samples < leg.partial_check_at:
            return  # not speaking, or in the pause that ends the utterance (its final is due), or not due yet
        current = leg.view.current()
        if current is None:
            return
        index, start_ms, audio = current
        if index != leg.partial_index:  # a new utterance (the previous one may have been dropped as a blip)
            if leg.partial_index >= 0 and leg.cadence.at:
                leg.cadence.reset(time.perf_counter())
            leg.partial_index = index
        due = leg.cadence.due()
        if audio.size < due:
            # Not due before the VAD has consumed this much more audio: skip the copy until then.
            leg.partial_check_at = leg.view.samples + (due - audio.size)
            return
        leg.cadence.taken(audio.size)
        asr = self.engine.asr
        stale_s = self.options.partial_stale_ms / 1000
        if asr.expected_wait(Priority.PARTIAL) > stale_s:
            # The finals and partials ahead of it would make this one late: it could not arrive in time.
            leg.cadence.missed()
            self.engine.metrics.rejections.labels("partial_skipped").inc()
            return
        leg.partial_task = asyncio.get_running_loop().create_task(self._decode_partial(leg, index, start_ms, audio))

    async def _decode_partial(self, leg: _Leg, index: int, start_ms: int, audio: Float32Array) -> None:
        asked = time.perf_counter()
        stale_s = self.options.partial_stale_ms / 1000
        try:
            result = await self.engine.asr.submit(self._request(audio, partial=True), Priority.PARTIAL,
                                                  key=leg.cadence.waiting_since, stale_after=stale_s)
        except Overloaded:
            leg.cadence.missed()  # dropped before its turn (stale) or the queue is full: fewer partials for now
            self.engine.metrics.rejections.labels("partial_stale").inc()
            return
        except SpeechsvcError:
            return  # partials are best effort; the final of this utterance reports what went wrong
        now = time.perf_counter()
        leg.cadence.delivered(now, prompt=now - asked <= stale_s / 2)
        if index <= leg.finalized or not result.text or self._ended:
            return
        text, stable = leg.stabilizer.update(result.text)
        end_ms = start_ms + audio.size * 1000 // PIPELINE_RATE
        partial = self._transcript(leg.name, index, start_ms, end_ms, result, False, text=text, stable=stable)
        self._emit(self.analyzer.rewrite(partial))

    @staticmethod
    def _transcript(
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
            words=shift_words(result.words, start_ms) if final else (),
        )

    # ---- events out -------------------------------------------------------------------------------

    def report(self, error: SpeechsvcError, fatal: bool = False) -> None:
        """Tell the client about a problem (a dropped frame, an overload) without ending the call."""
        self.engine.metrics.errors.labels(error.code).inc()
        log.warning("%s: %s", error.code, error)
        self._emit(ErrorEvent(error.code, str(error), fatal))

    def _emit(self, event: Event) -> None:
        if self._ended:
            return
        self._seq += 1
        call_event = CallEvent(self.call_id, self._seq, event, self.config.metadata, self.config.tenant)
        self.engine.bus.publish(call_event)
        try:
            self._events.put_nowait(call_event)
        except asyncio.QueueFull:
            # The client is not reading; holding more would grow without bound.
            self.failed = Overloaded(f"client is not reading events ({self._events.maxsize} pending)")
            self.abort()

    async def events(self) -> AsyncIterator[CallEvent]:
        """Events in the order they were produced, ``ready`` first, until the call has ended."""
        while (event := await self._events.get()) is not None:
            yield event

    # ---- end of call ------------------------------------------------------------------------------

    async def close(self, reason: str = "stop", timeout_s: float | None = None) -> None:
        """Normal end: finish every open utterance, deliver its final and analysis, then ``ended``.

        ``timeout_s`` bounds the whole close (the drain gives each call a deadline inside its grace period): work
        still running then (an utterance's ASR, its analysis) is cancelled and logged by name, and ``ended`` is
        published all the same with what was heard."""
        if self._closed:
            return
        self._closed = True
        deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s
        cut_off: list[Leg] = []
        for leg in self._legs.values():
            # The leg's audio still with the VAD worker, then the resampler's tail, then the open utterance ends.
            last: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            cut: list[SpeechSegment] = []

            def done(update: VadUpdate, leg: _Leg = leg, last: asyncio.Future[None] = last,
                     cut: list[SpeechSegment] = cut) -> None:
                cut.extend(self._on_vad(leg, update))
                if not last.done():
                    last.set_result(None)

            if self._to_vad(leg, leg.resampler.flush(), flush=True, done=done):
                await self._within(last, deadline, f"{leg.name} leg's VAD")
            if cut:
                cut_off.append(leg.name)  # still speaking when the call ended
            if not await self._within(leg.utterances.put(None), deadline, f"{leg.name} leg's utterance queue"):
                leg.worker.cancel()
        for leg in self._legs.values():
            await self._within(leg.worker, deadline, f"ASR of the {leg.name} leg's last utterances")
        self._analysis_ended = True
        if not await self._within(self._analysis.put(None), deadline, "the analysis queue"):
            self._analyzer_task.cancel()
        await self._within(self._analyzer_task, deadline, "the analysis of the last utterances")
        for leg in self._legs.values():
            if leg.partial_task:
                leg.partial_task.cancel()
        summary = self._summary()
        ended = CallEnd(reason, {s.leg: s.audio_ms for s in summary}, tuple(dict.fromkeys(cut_off)))
        for decided in self.analyzer.end(ended):
            self._emit(decided)
        self._emit(CallEnded(reason, summary))
        self._finish()

    async def _within(self, work: Awaitable[None], deadline: float | None, what: str) -> bool:
        """Await ``work`` until ``deadline`` (loop time; None = no bound). Past it, the work is cancelled, the stuck
        step is logged, and False returned. A failure of the work itself is raised."""
        task = asyncio.ensure_future(work)
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if done:
            task.result()
            return True
        log.warning("call closing: %s did not finish within the close deadline; ending the call without it", what)
        self.engine.metrics.rejections.labels("close_deadline").inc()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

    def abort(self) -> None:
        """Client gone or broken: drop queued work now; no more events."""
        self._closed = True
        self._analysis_ended = True
        self._analyzer_task.cancel()
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
                speech_ms=leg.view.speech_samples * 1000 // PIPELINE_RATE,
                utterances=leg.finalized + 1,
            )
            for leg in self._legs.values()
        )
