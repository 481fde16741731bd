"""The VAD worker thread: every leg's audio in order, updates back on the loop, flushes after the audio before
them, a bounded queue (fast tier: the energy VAD of the fakes)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from speechsvc.errors import Overloaded
from speechsvc.runtime.vad_worker import VadUpdate, VadWorker
from speechsvc.speech.vad import SpeechEnded, SpeechStarted, VadState, VadStream
from tests.support.fakes import EnergyVad, fast_settings, silence, tone


def stream(leg: str = "customer") -> VadStream:
    return VadStream(EnergyVad(), fast_settings().vad(), leg)  # type: ignore[arg-type]


async def test_each_legs_audio_is_processed_in_order_and_updates_come_back_on_the_loop() -> None:
    worker = VadWorker()
    loop = asyncio.get_running_loop()
    legs = {"customer": stream("customer"), "agent": stream("agent")}
    updates: dict[str, list[VadUpdate]] = {leg: [] for leg in legs}
    done = asyncio.Event()

    def on(leg: str, update: VadUpdate) -> None:
        assert asyncio.get_running_loop() is loop  # called on the submitting loop, not the worker thread
        updates[leg].append(update)
        if sum(u.samples for u in updates["customer"]) + sum(u.samples for u in updates["agent"]) == total:
            done.set()

    # Two utterances on one leg, one on the other, in 100 ms frames, interleaved.
    audio = {"customer": np.concatenate([tone(300, 1.0), silence(1.0), tone(500, 1.0), silence(1.0)]),
             "agent": np.concatenate([silence(0.5), tone(700, 1.5), silence(2.0)])}
    total = sum(a.size for a in audio.values())
    for i in range(0, 64000, 1600):
        for leg, s in legs.items():
            worker.submit(s, audio[leg][i : i + 1600], lambda u, leg=leg: on(leg, u))  # type: ignore[misc]
    await asyncio.wait_for(done.wait(), 10)
    worker.stop()
    for leg in legs:
        events = [e for u in updates[leg] for e in u.events]
        starts = [e.index for e in events if isinstance(e, SpeechStarted)]
        ends = [e.segment for e in events if isinstance(e, SpeechEnded)]
        assert starts == [e.index for e in ends] == list(range(len(ends)))
        assert len(ends) == (2 if leg == "customer" else 1)
        assert [u.view.samples for u in updates[leg]] == sorted(u.view.samples for u in updates[leg])
        assert updates[leg][-1].view.state is VadState.QUIET and updates[leg][-1].view.speech_samples > 0
    # The utterances are those of the audio: the customer's two tones, in order, about 1 s each.
    customer = [e.segment for u in updates["customer"] for e in u.events if isinstance(e, SpeechEnded)]
    assert [s.start_ms < 1000 < s.end_ms <= 1600 for s in customer[:1]] == [True]
    assert 2000 - 250 <= customer[1].start_ms < customer[1].end_ms <= 3600


async def test_a_flush_ends_the_open_utterance_after_the_audio_queued_before_it() -> None:
    worker = VadWorker()
    s = stream()
    got: list[VadUpdate] = []
    flushed = asyncio.Event()
    for i in range(0, 16000, 1600):  # 1 s of tone: speaking, no pause yet
        worker.submit(s, tone(300, 1.0)[i : i + 1600], got.append)
    worker.submit(s, np.zeros(0, np.float32), lambda u: (got.append(u), flushed.set()), flush=True)
    await asyncio.wait_for(flushed.wait(), 10)
    worker.stop()
    ends = [e.segment for u in got for e in u.events if isinstance(e, SpeechEnded)]
    assert len(ends) == 1 and ends[0].end_ms >= 900  # the whole tone, ended by the flush, not before
    assert [e for u in got[:-1] for e in u.events if isinstance(e, SpeechEnded)] == []
    # While speaking, the view carries the utterance so far (for partials); after the flush, nothing.
    assert any(u.view.current() is not None for u in got[:-1]) and got[-1].view.current() is None


async def test_the_queue_is_bounded() -> None:
    worker = VadWorker(max_queue=4)
    s = stream()
    gate = asyncio.Event()
    with pytest.raises(Overloaded):
        for _ in range(10_000):  # faster than any thread drains it
            worker.submit(s, tone(300, 2.0), lambda u: gate.set())
    worker.stop()
