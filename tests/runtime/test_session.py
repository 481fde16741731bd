"""The call session core with fake models (fast tier): event order and the one seq counter, per-leg finals,
the analysis seam, what subscribers see, the end of a call, and failures that stay inside one utterance."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import numpy as np
import pytest

from speechsvc.errors import Overloaded, ProtocolError, UnsupportedFormat
from speechsvc.metrics import Metrics
from speechsvc.protocol import event_dict
from speechsvc.security.principal import ANONYMOUS
from speechsvc.speech.asr import AsrRequest
from speechsvc.transports.lifecycle import open_call
from speechsvc.types import AudioFormat, CallConfig, Leg
from tests.support.calls import Echo, EchoStage, collect, run_call, speech
from tests.support.fakes import EnergyVad, fake_engine, fast_settings, pcm16, silence, tone


def hz(text: str) -> str:
    """The fake recognizer's tone frequency (its text also carries the utterance length, which padding moves)."""
    return text.split("hz")[0]


def config(call_id: str = "c-1", channels: int = 1, **kw: object) -> CallConfig:
    legs: tuple[Leg, ...] = ("customer",) if channels == 1 else ("customer", "agent")
    return CallConfig(call_id, AudioFormat("pcm16", 16000, channels), legs=legs, **kw)  # type: ignore[arg-type]


async def started(engine):  # type: ignore[no-untyped-def]
    await engine.start()
    return engine


async def test_ready_first_finals_in_order_one_seq_and_subscribers_see_the_same() -> None:
    engine = await started(fake_engine())
    with engine.bus.subscribe() as sub:
        events = await run_call(engine, config(metadata={"callSid": "CA1"}), speech(300, 500, 700))
        published = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert [e.seq for e in events] == list(range(len(events)))
    assert events[0].event.type == "ready" and events[-1].event.type == "ended"
    finals = [e.event for e in events if e.event.type == "transcript.final"]
    assert [hz(f.text) for f in finals] == ["300", "500", "700"]  # type: ignore[attr-defined]
    assert [f.utterance for f in finals] == [0, 1, 2]  # type: ignore[attr-defined]
    assert [event_dict(e) for e in published] == [event_dict(e) for e in events]
    ready = event_dict(events[0])
    assert ready["transport"] == "test" and ready["metadata"] == {"callSid": "CA1"} and ready["language"] == "zh"
    await engine.stop()


async def test_stereo_legs_are_decoded_apart() -> None:
    engine = await started(fake_engine())
    left, right = speech(300, 500), np.concatenate([silence(0.5), speech(600, 800)])[: 4 * 16000]
    stereo = np.stack([left[: right.size], right], axis=1).reshape(-1)
    events = await run_call(engine, config(channels=2), stereo)
    finals = [(e.event.leg, e.event.text) for e in events if e.event.type == "transcript.final"]  # type: ignore[attr-defined]
    assert [hz(t) for leg, t in finals if leg == "customer"] == ["300", "500"]
    assert [hz(t) for leg, t in finals if leg == "agent"] == ["600", "800"]
    ended = events[-1].event
    assert [s.leg for s in ended.legs] == ["customer", "agent"] and all(s.utterances == 2 for s in ended.legs)  # type: ignore[attr-defined]
    await engine.stop()


async def test_a_stage_sees_every_final_in_order_after_it_and_decides_at_the_end() -> None:
    engine = await started(fake_engine(stages=[EchoStage()]))
    events = await run_call(engine, config(), speech(300, 500, 700))
    kinds = [e.event.type for e in events]
    echoes = [e.event for e in events if isinstance(e.event, Echo)]
    assert [(hz(x.text.lower()), x.seen_before) for x in echoes] == [("300", 0), ("500", 1), ("700", 2)]
    for echo in echoes:  # each analysis event comes after its final
        final_at = next(i for i, e in enumerate(events)
                        if e.event.type == "transcript.final" and e.event.utterance == echo.utterance)  # type: ignore[attr-defined]
        assert kinds.index("echo", final_at) > final_at
    assert kinds[-2:] == ["tally", "ended"] and events[-2].event.utterances == 3  # type: ignore[attr-defined]
    await engine.stop()


async def test_a_failing_utterance_is_reported_and_the_call_goes_on() -> None:
    engine = await started(fake_engine(stages=[EchoStage(fail_on="500")]))
    events = await run_call(engine, config(), speech(300, 900, 500, 700))
    errors = [e.event for e in events if e.event.type == "error"]
    assert [x.code for x in errors] == ["internal_error", "internal_error"]  # type: ignore[attr-defined]
    assert not any(x.fatal for x in errors)  # type: ignore[attr-defined]
    finals = [hz(e.event.text) for e in events if e.event.type == "transcript.final"]  # type: ignore[attr-defined]
    assert finals == ["300", "500", "700"]  # 900 Hz failed in the model; the rest decoded
    echoes = [hz(e.event.text.lower()) for e in events if isinstance(e.event, Echo)]
    assert echoes == ["300", "700"]  # the stage's bug lost one utterance's analysis, not the call
    await engine.stop()


async def test_close_finishes_the_open_utterance() -> None:
    engine = await started(fake_engine())
    events = await run_call(engine, config(), tone(440, 1.2))  # no pause at the end
    assert [e.event.text for e in events if e.event.type == "transcript.final"] == ["440hz12"]  # type: ignore[attr-defined]
    await engine.stop()


async def test_client_that_does_not_read_is_cut_off() -> None:
    engine = await started(fake_engine(fast_settings(max_pending_events=10)))
    async with open_call(engine, config(), "test") as session:
        for _ in range(15):  # never reads session.events()
            for part in (tone(300, 0.6), silence(0.8)):
                if session.failed is None:
                    session.feed_bytes(pcm16(part))
                await asyncio.sleep(0.01)
        assert isinstance(session.failed, Overloaded) and "not reading" in str(session.failed)
    await engine.stop()


@pytest.mark.parametrize(
    ("cfg", "error", "match"),
    [
        (config(language="xx"), UnsupportedFormat, "language 'xx'"),
        (CallConfig("c", AudioFormat("pcm16", 4000, 1)), UnsupportedFormat, "sample_rate"),
        (CallConfig("c", AudioFormat("pcm16", 16000, 2), legs=("customer",)), UnsupportedFormat, "one leg per"),
        (CallConfig("c", AudioFormat("pcm16", 16000, 2), legs=("customer", "customer")), UnsupportedFormat, "distinct"),
        (CallConfig("c", AudioFormat("pcm16", 16000, 1), legs=("caller",)), UnsupportedFormat, "distinct"),  # type: ignore[arg-type]
        (CallConfig("", AudioFormat()), ProtocolError, "empty"),
    ],
)
async def test_bad_configs_are_refused_at_admission_whatever_the_transport(
    cfg: CallConfig, error: type[Exception], match: str
) -> None:
    engine = fake_engine()
    with pytest.raises(error, match=match):
        async with open_call(engine, cfg, "test"):
            pass
    assert engine.active_calls == 0


async def test_capacity_and_duplicate_ids() -> None:
    engine = await started(fake_engine(fast_settings(max_calls=1)))
    async with open_call(engine, config("a"), "test"):
        with pytest.raises(Overloaded, match="already streaming"):
            async with open_call(engine, config("a"), "test"):
                pass
        assert engine.active_calls == 1
    assert engine.active_calls == 0
    async with open_call(engine, config("b"), "test"):
        with pytest.raises(Overloaded, match="capacity"):
            async with open_call(engine, config("c"), "test"):
                pass
    await engine.stop()


def test_metrics_registry_is_per_engine() -> None:
    assert Metrics().registry is not Metrics().registry


def test_asr_fallbacks_are_counted_per_kind() -> None:
    """Every item the recognizer decoded again shows in ``speechsvc_asr_fallbacks_total{kind}``."""
    engine = fake_engine()
    engine.recognizer.fallback_hz = {440}  # type: ignore[attr-defined]
    requests = [AsrRequest(tone(440, 1.0), "zh"), AsrRequest(tone(440, 0.5), "zh", partial=True),
                AsrRequest(tone(330, 1.0), "zh"), AsrRequest(tone(440, 2.0), "zh", complete=True)]
    assert [r.fallback for r in engine._run_asr(requests)] == [True, True, False, True]
    value = engine.metrics.registry.get_sample_value
    assert value("speechsvc_asr_fallbacks_total", {"kind": "final"}) == 1
    assert value("speechsvc_asr_fallbacks_total", {"kind": "partial"}) == 1
    assert value("speechsvc_asr_fallbacks_total", {"kind": "recorded"}) == 1


async def test_flush_finishes_the_open_utterance_and_the_call_goes_on() -> None:
    from speechsvc.analysis.pii.stage import RedactionStage

    settings = fast_settings(pii_names_addresses=False)
    engine = await started(fake_engine(settings, [RedactionStage.load(settings)]))  # it masks keypad digits
    async with open_call(engine, config(), "test") as session:
        reader = asyncio.ensure_future(collect(session.events()))
        session.feed_bytes(pcm16(tone(300, 1.0)))  # still speaking: no pause yet
        session.flush()
        session.dtmf("customer", "5")
        session.feed_bytes(pcm16(tone(500, 1.0)))
        session.feed_bytes(pcm16(silence(1.0)))
        await session.close("stop")
        events = await reader
    finals = [hz(e.event.text) for e in events if e.event.type == "transcript.final"]  # type: ignore[attr-defined]
    assert finals == ["300", "500"]
    (dtmf,) = [e.event for e in events if e.event.type == "dtmf"]
    assert dtmf.digit == "*" and dtmf.masked and dtmf.at_ms == 1000  # type: ignore[attr-defined]
    await engine.stop()


async def test_the_call_index_keeps_recent_calls_for_views_that_open_mid_call() -> None:
    engine = await started(fake_engine(stages=[EchoStage()]))
    async with open_call(engine, config("idx-1", metadata={"callSid": "CA9"}), "test") as session:
        reader = asyncio.ensure_future(collect(session.events()))
        session.feed_bytes(pcm16(tone(300, 1.0)))
        session.feed_bytes(pcm16(silence(1.0)))
        for _ in range(100):
            view = engine.calls.get(ANONYMOUS, "idx-1")
            if view is not None and any(e.event.type == "echo" for e in engine.calls.history(view)):
                break
            await asyncio.sleep(0.01)
        (live,) = engine.calls.calls(ANONYMOUS)
        assert live["active"] and live["metadata"] == {"callSid": "CA9"} and live["transport"] == "test"
        assert hz(live["last_text"]["customer"]) == "300"
        await session.close("stop")
        events = await reader
    view = engine.calls.get(ANONYMOUS, "idx-1")
    assert view is not None and [e.seq for e in engine.calls.history(view)] == [e.seq for e in events]
    (ended,) = engine.calls.calls(ANONYMOUS)
    assert not ended["active"] and ended["end_reason"] == "stop"
    assert engine.calls.calls(ANONYMOUS, include_ended=False) == []
    await engine.stop()


async def test_each_final_is_decoded_with_the_legs_previous_finals_as_context() -> None:
    engine = await started(fake_engine(fast_settings(final_context=2), texts={300: "您好。", 500: "我要查账单。",
                                                                             700: "上个月的。"}))
    seen: list[tuple[str, bool]] = []
    transcribe = engine.recognizer.transcribe

    def recording(requests):  # type: ignore[no-untyped-def]
        seen.extend((r.context, r.partial) for r in requests)
        return transcribe(requests)

    engine.recognizer.transcribe = recording
    await run_call(engine, config(), speech(300, 500, 700, 600))
    assert [c for c, partial in seen if not partial] == ["", "您好。", "您好。我要查账单。", "我要查账单。上个月的。"]
    await engine.stop()


async def test_a_close_stuck_on_asr_still_ends_the_call_within_its_deadline(caplog: pytest.LogCaptureFixture) -> None:
    """The drain gives each call's close a deadline: an utterance whose ASR outlives it is cancelled, the stuck step
    is logged by name, and ``ended`` (reason shutdown, with the audio heard) still reaches the client."""
    import threading
    import time

    engine = await started(fake_engine())
    release = threading.Event()
    transcribe = engine.recognizer.transcribe

    def stuck(requests):  # type: ignore[no-untyped-def]
        release.wait(10)  # a model that hangs (a driver stall); freed at the end of the test
        return transcribe(requests)

    engine.recognizer.transcribe = stuck
    try:
        async with open_call(engine, config("stuck-1"), "test") as session:
            reader = asyncio.ensure_future(collect(session.events()))
            session.feed_bytes(pcm16(tone(300, 1.0)))  # still speaking when the server drains
            begun = time.monotonic()
            await session.close("shutdown", timeout_s=0.5)
            took = time.monotonic() - begun
            events = await asyncio.wait_for(reader, 5)
        ended = events[-1].event
        assert ended.type == "ended" and ended.reason == "shutdown"  # type: ignore[attr-defined]
        assert ended.legs[0].audio_ms >= 1000  # type: ignore[attr-defined]
        assert took < 2.0
        assert "did not finish within the close deadline" in caplog.text
    finally:
        release.set()
        await engine.stop()


async def test_partials_while_speaking_only_and_their_committed_text_never_changes() -> None:
    engine = await started(fake_engine(fast_settings(partial_interval_ms=500, first_partial_ms=400)))
    audio = np.concatenate([tone(400, 3.0), silence(1.0)])
    events = await run_call(engine, config(partials=True), audio, realtime=True)
    kinds = [e.event.type for e in events if e.event.type.startswith("transcript")]
    assert kinds.count("transcript.final") == 1 and kinds.index("transcript.final") == len(kinds) - 1
    partials = [e.event for e in events if e.event.type == "transcript.partial"]
    assert 3 <= len(partials) <= 6  # every ~0.5 s of the 3 s of speech, none in the pause before the final
    for before, after in itertools.pairwise(partials):
        assert after.stable_text.startswith(before.stable_text)


async def test_partials_that_cannot_arrive_in_time_are_not_decoded_and_finals_still_come() -> None:
    engine = await started(fake_engine(fast_settings(partial_interval_ms=300, first_partial_ms=300,
                                                     partial_stale_ms=50)))
    slow = engine.recognizer.transcribe

    def slow_transcribe(requests):  # type: ignore[no-untyped-def]
        time.sleep(0.4)  # a model far behind: each partial takes longer than the cadence
        return slow(requests)

    engine.recognizer.transcribe = slow_transcribe
    cfg = config(channels=2, partials=True)
    audio = np.stack([np.concatenate([tone(h, 3.0), silence(1.0)]) for h in (400, 600)], 1)
    events = await run_call(engine, cfg, audio, realtime=True)
    finals = [e.event for e in events if e.event.type == "transcript.final"]
    partials = [e.event for e in events if e.event.type == "transcript.partial"]
    assert {f.leg for f in finals} == {"customer", "agent"}
    assert len(partials) < 2 * 3.0 / 0.3  # the cadence stretched: far fewer than asked for
    # Whether the worker's delay shows as stretched cadence or as skipped/stale partials depends on timing; either
    # way a leg never gets two partials for the same audio (nothing piles up behind the slow model).
    for leg in ("customer", "agent"):
        ends = [p.end_ms for p in partials if p.leg == leg]
        assert ends == sorted(set(ends)), ends


class ThreadRecordingVad(EnergyVad):
    """The energy VAD, noting which thread runs it and able to hold it (a VAD far behind real time)."""

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.go = threading.Event()
        self.go.set()

    def probs(self, windows: np.ndarray, state: object) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        self.go.wait(10)
        return super().probs(windows, state)


async def test_the_vad_runs_on_its_worker_thread_not_on_the_event_loop() -> None:
    engine = await started(fake_engine())
    vad = ThreadRecordingVad()
    engine.vad_model = vad  # type: ignore[assignment]
    events = await run_call(engine, config(channels=2), np.stack([speech(300, 500), speech(700, 400)], 1))
    finals = [(e.event.leg, hz(e.event.text)) for e in events if e.event.type == "transcript.final"]  # type: ignore[attr-defined]
    assert sorted(finals) == [("agent", "400"), ("agent", "700"), ("customer", "300"), ("customer", "500")]
    assert vad.threads == {"vad"}
    await engine.stop()


async def test_a_transport_is_held_back_while_a_leg_waits_for_the_vad() -> None:
    engine = await started(fake_engine())
    vad = ThreadRecordingVad()
    engine.vad_model = vad  # type: ignore[assignment]
    async with open_call(engine, config(), "test") as session:
        reader = asyncio.ensure_future(collect(session.events()))
        vad.go.clear()  # the VAD thread stalls
        for i in range(30):  # 3 s of audio, faster than real time
            session.feed_bytes(pcm16(tone(300, 0.1) if i < 10 else silence(0.1)))
        room = asyncio.ensure_future(session.room())
        await asyncio.sleep(0.2)
        assert not room.done()  # more than 2 s of this leg's audio waits for the VAD: the sender waits too
        vad.go.set()
        await asyncio.wait_for(room, 5)
        await session.close("stop")
        events = await reader
    assert [hz(e.event.text) for e in events if e.event.type == "transcript.final"] == ["300"]  # type: ignore[attr-defined]
    await engine.stop()
