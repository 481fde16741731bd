"""A call driven through the session core in-process (no transport): audio fed in frames, every event back; the
audio of a few utterances for the fake engine; and a test stage that echoes every final it sees and tallies them at
the end of the call (a stage as a new module would add one)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from speechsvc.analysis.base import CallInfo, Stage, StageCall
from speechsvc.analysis.record import CallEnd, Utterance
from speechsvc.config import Settings
from speechsvc.transports.lifecycle import open_call
from speechsvc.types import CallConfig, CallEvent, Event, Leg
from tests.support.fakes import pcm16, silence, tone


async def run_call(engine, cfg: CallConfig, audio: np.ndarray, frame_s: float = 0.1,  # type: ignore[no-untyped-def]
                   realtime: bool = False) -> list[CallEvent]:
    """Stream ``audio`` as one call and return its events: as fast as the session takes it, or at real time
    (``realtime``: partials are due by media time and decoded in wall time)."""
    step = int(16000 * frame_s) * cfg.audio.channels
    async with open_call(engine, cfg, "test") as session:
        reader = asyncio.ensure_future(collect(session.events()))
        data = pcm16(audio)
        for i in range(0, len(data), step * 2):
            session.feed_bytes(data[i : i + step * 2])
            await asyncio.sleep(frame_s if realtime else 0)
        await session.close("stop")
        return await reader


async def collect(events) -> list[CallEvent]:  # type: ignore[no-untyped-def]
    return [e async for e in events]


def speech(*hz: int) -> np.ndarray:
    """Tones of 1 s separated (and followed) by 1 s of silence: one utterance each."""
    return np.concatenate([part for h in hz for part in (tone(h, 1.0), silence(1.0))])


@dataclass(frozen=True)
class Echo(Event):
    """The event of :class:`EchoStage`."""

    TYPE: ClassVar[str] = "echo"
    leg: Leg
    utterance: int
    text: str
    seen_before: int


@dataclass(frozen=True)
class Tally(Event):
    TYPE: ClassVar[str] = "tally"
    utterances: int
    reason: str


class EchoStage(Stage):
    """A stage as a new module would add one: per-call state, in-order apply, and an end-of-call decision."""

    name = ""  # not registered: tests add it to an engine
    phase = 3

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on

    @classmethod
    def load(cls, settings: Settings) -> EchoStage:
        return cls()

    def open(self, call: CallInfo) -> StageCall[str]:
        return _EchoCall(self.fail_on)


class _EchoCall(StageCall[str]):
    def __init__(self, fail_on: str | None) -> None:
        self.fail_on = fail_on
        self.count = 0

    async def infer(self, u: Utterance) -> str:
        await asyncio.sleep(0)
        return u.text.upper()

    def apply(self, u: Utterance, found: str | None) -> list[Event]:
        if self.fail_on and self.fail_on in u.text:
            raise RuntimeError("a bug in this stage")
        self.count += 1
        return [Echo(u.leg, u.index, found or "", self.count - 1)]

    def end(self, ended: CallEnd) -> list[Event]:
        return [Tally(self.count, ended.reason)]
