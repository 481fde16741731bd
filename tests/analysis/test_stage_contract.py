"""A stage written to the documented contract (``docs/architecture.md``: one class with a ``name``, the event it
emits, optional hooks) reaches every surface with no other file touched: live WebSocket events, the call index the
console reads, gRPC ``extension`` messages, admission (its ``check``), and the recorded-call path (its section of
the batch report, its column in the job summary, its job-level summary) — here a toy ``silence`` stage, defined in
this test and found by the real discovery and loading (``stage_classes``, ``load_stages``)."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import grpc
import httpx
import numpy as np
import pytest

from speechsvc.analysis import load_stages, stage_classes
from speechsvc.analysis.base import CallInfo, Stage, StageCall
from speechsvc.analysis.record import Utterance
from speechsvc.batch.outputs import OutputDir, output_name
from speechsvc.batch.runners import run_local
from speechsvc.config import Settings
from speechsvc.types import CallConfig, Event, Leg
from speechsvc.v1 import pb, pb_grpc
from tests.support.clients import frames, ws_call
from tests.support.fakes import pcm16, silence, tone
from tests.support.fakeserver import FakeServer


@dataclass(frozen=True)
class Silence(Event):
    """The silence before an utterance (since the previous one of any leg ended), when it is long."""

    TYPE: ClassVar[str] = "silence"
    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    gap_ms: int


class _Gaps(StageCall[None]):
    def __init__(self, min_gap_ms: int) -> None:
        self.min_gap_ms = min_gap_ms
        self.last_end = 0

    def apply(self, u: Utterance, found: None) -> list[Event]:
        gap, self.last_end = u.start_ms - self.last_end, max(self.last_end, u.end_ms)
        if gap < self.min_gap_ms:
            return []
        u.found["silence"] = gap
        return [Silence(*u.where, gap)]


@pytest.fixture
def silence_stage() -> Iterator[type[Stage]]:
    """The toy stage, registered for this test only (so other tests' engines never load it)."""

    class SilenceStage(Stage):
        name = "silence"
        phase = 2

        def __init__(self, min_gap_ms: int) -> None:
            self.min_gap_ms = min_gap_ms

        @classmethod
        def load(cls, settings: Settings) -> SilenceStage:
            return cls(400)

        @classmethod
        def check(cls, config: CallConfig, settings: Settings) -> None:
            if not config.metadata.get("silence_min_ms", "0").isdigit():
                raise ValueError("silence_min_ms must be a whole number of milliseconds")

        def open(self, call: CallInfo) -> StageCall[None]:
            return _Gaps(int(call.metadata.get("silence_min_ms", self.min_gap_ms)))

    try:
        yield SilenceStage
    finally:
        Stage.registry.remove(SilenceStage)


# Two utterances for the fake engine (a tone each), each after a second of silence.
AUDIO = np.concatenate([silence(1.0), tone(440, 1.0), silence(1.2), tone(660, 1.0), silence(1.0)])


def _wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm16(AUDIO))
    return path


def _gaps(events: list[dict]) -> list[int]:  # type: ignore[type-arg]
    return [e["gap_ms"] for e in events if e.get("type") == "silence"]


async def _grpc_events(target: str) -> list[pb.ServerMessage]:
    async def requests():  # type: ignore[no-untyped-def]
        yield pb.ClientMessage(config=pb.CallConfig(call_id="quiet-grpc"))
        for frame in frames(pcm16(AUDIO)):
            yield pb.ClientMessage(audio=frame)

    async with grpc.aio.insecure_channel(target) as channel:
        return [m async for m in pb_grpc.SpeechStub(channel).StreamCall(requests())]


async def test_a_one_module_stage_reaches_every_surface(silence_stage: type[Stage], tmp_path: Path) -> None:
    assert silence_stage in stage_classes()
    server = FakeServer(grpc=True)
    server.engine.stages.extend(load_stages(server.settings, only=("silence",)))  # as Engine.load does
    with server as s:
        # Live: the WebSocket call's events, and the call index the console's views read.
        events, code = await ws_call(s.ws("/v1/stream"), pcm16(AUDIO), call_id="quiet-ws")
        assert code == 1000 and _gaps(events) and all(g >= 400 for g in _gaps(events))
        (first,) = [e for e in events if e.get("type") == "silence"][:1]
        assert {"leg", "utterance", "start_ms", "end_ms", "gap_ms", "seq"} <= set(first)
        async with httpx.AsyncClient() as http:
            view = (await http.get(f"{s.http_url}/v1/calls/quiet-ws")).json()
        assert _gaps(view["events"]) == _gaps(events)

        # Admission: the stage's check refuses what a call may not ask of it, on every transport.
        refused, code = await ws_call(s.ws("/v1/stream"), pcm16(AUDIO), call_id="quiet-bad",
                                      metadata={"silence_min_ms": "soon"})
        assert code != 1000 and any("silence_min_ms" in e.get("message", "") for e in refused)

        # gRPC: a stage without a message of its own travels in `extension`.
        messages = await _grpc_events(s.grpc_target)
        extensions = [m.extension for m in messages if m.WhichOneof("event") == "extension"]
        gaps = [int(x.fields["gap_ms"]) for x in extensions if x.type == "silence"]
        assert gaps and gaps == _gaps(events)

        # Recorded calls (speechsvc batch, the REST jobs and the Ray actors share this path): the stage's
        # events are its report section, its column is in the job summary, and it has a job-level summary.
        out = OutputDir(tmp_path / "out")
        item = str(_wav(tmp_path / "quiet.wav"))
        progress = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            run_local(s.engine, [item], out, ["json"], "zh"), s.loop))
        assert progress.done == 1, progress.errors
    report = json.loads((tmp_path / "out" / f"{output_name(item)}.json").read_text())
    assert _gaps(report["silence"]) and all(e["type"] == "silence" for e in report["silence"])
    found = [sg["found"]["silence"] for sg in report["segments"] if "silence" in sg["found"]]
    assert found == _gaps(report["silence"])
    (row,) = [json.loads(line) for line in (tmp_path / "out" / "summary.jsonl").read_text().splitlines()]
    assert row["silence_events"] == len(found)
    job = json.loads((tmp_path / "out" / "silence_summary.json").read_text())
    assert job == {"recordings": 1, "events": {"silence": len(found)}}


def test_the_console_shows_an_event_of_a_stage_it_does_not_know(silence_stage: type[Stage]) -> None:
    """The call view has no code for this stage; it still shows its events (type and fields) where they happened."""
    from tests.support.browser import chromium, js_errors, wait_css

    server = FakeServer()
    server.engine.stages.extend(load_stages(server.settings, only=("silence",)))
    with server as s, chromium() as browser:
        events, _ = asyncio.run(ws_call(s.ws("/v1/stream"), pcm16(AUDIO), call_id="quiet-ui"))
        gaps = _gaps(events)
        browser.get(f"{s.http_url}/console#/calls/quiet-ui")
        shown = wait_css(browser, '.inline.other[data-type="silence"]', "the silence events inline")
        assert len(shown) == len(gaps) and f"gap_ms: {gaps[0]}" in shown[0].text
        assert not js_errors(browser)
