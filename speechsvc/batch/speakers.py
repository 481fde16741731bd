"""Mono recordings as two legs: the VAD's segments split by speaker before ASR, then each speaker labelled agent
or customer from its text after ASR, and the segments moved onto those legs (renumbered per leg in time order),
so the analysis, QA rules and reports see the call as they see a stereo one. With weak role evidence the segments
stay on the ``mixed`` leg and keep their speaker numbers.

Used by the recorded-call path (:mod:`speechsvc.batch.recording`) and file transcription
(:mod:`speechsvc.batch.transcribe`); the embedding work runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from speechsvc.analysis.roles import QA_PACK, Roles, SpeakerText, assign_roles, cues_for, two_sides
from speechsvc.runtime.engine import Engine
from speechsvc.speech.diarize import DiarizeOptions, diarize
from speechsvc.speech.speaker import SpeakerEncoder
from speechsvc.types import Leg, SpeechSegment


@dataclass(frozen=True)
class SpeakerSplit:
    """What splitting a mono recording needs: the encoder (loaded once by the engine), the options, and the QA
    pack whose agent phrases help tell the roles apart."""

    encoder: SpeakerEncoder
    options: DiarizeOptions = DiarizeOptions()  # noqa: RUF009 - frozen
    qa_pack: Path | None = QA_PACK


@dataclass(frozen=True)
class Split:
    """Segments cut at speaker changes (still on the mixed leg) and each one's speaker; where voices that sound
    alike were merged, each segment's speaker before the merge (``unmerged``, ``unmerged_count``); each segment's
    (start_ms, end_ms) with the overlapped speech around it (``spans``; None: as cut)."""

    segments: list[SpeechSegment]
    speakers: list[int]
    count: int
    unmerged: list[int] | None = None
    unmerged_count: int = 0
    spans: list[tuple[int, int]] | None = None


@dataclass(frozen=True)
class Labelled:
    """Segments on their role's leg, renumbered per leg, each with its speaker label (``speaker_N``) and the time
    it was heard in (``spans``: (start_ms, end_ms), wider than the segment where the other speaker talked over
    it; the segment's own audio and times are what ASR decoded)."""

    segments: list[SpeechSegment]
    speakers: list[str]
    legs: tuple[Leg, ...]
    roles: Roles
    spans: list[tuple[int, int]] = field(default_factory=list)

    def timed(self) -> list[SpeechSegment]:
        """The segments with the times they were heard in (overlapped speech included), as the talk-time
        summary and the end-of-call checks read a stereo call's legs; their audio is still what was decoded."""
        return [replace(s, start_ms=a, end_ms=b) for s, (a, b) in zip(self.segments, self.spans, strict=True)]

    def summary(self) -> dict[str, Any]:
        """The report's ``speakers`` section."""
        return {"count": len(self.roles.roles),
                "roles": {f"speaker_{k}": self.roles.label(k) for k in range(len(self.roles.roles))},
                "role_confidence": self.roles.confidence}


def split_segments(segments: Sequence[SpeechSegment], split: SpeakerSplit) -> Split:
    """The segments cut at speaker changes, each with its speaker (on the caller's thread)."""
    found = diarize(segments, split.encoder, split.options)
    return Split([p.segment for p in found.segments], [p.speaker for p in found.segments], found.speakers,
                 list(found.unmerged) if found.unmerged is not None else None, found.unmerged_count,
                 list(found.spans) or None)


async def split_by_speaker(segments: Sequence[SpeechSegment], split: SpeakerSplit) -> Split:
    """:func:`split_segments` in a thread, off the event loop."""
    return await asyncio.to_thread(split_segments, segments, split)


def label_roles(split: Split, texts: Sequence[str], qa_pack: Path | None = QA_PACK) -> Labelled:
    """Roles from each speaker's text (``texts``: per segment of ``split``, empty where nothing was heard).
    Voices merged for sounding alike are kept apart when, split, their text shows an agent side and a customer
    side (:func:`speechsvc.analysis.roles.two_sides`)."""
    cues = cues_for(qa_pack)

    def roles_of(speakers: Sequence[int], count: int) -> Roles:
        return assign_roles([SpeakerText(spk, seg.start_ms, text)
                             for seg, spk, text in zip(split.segments, speakers, texts, strict=True) if text],
                            count, cues)

    speakers, roles = split.speakers, roles_of(split.speakers, split.count)
    if split.unmerged is not None and split.unmerged_count > split.count:
        apart = roles_of(split.unmerged, split.unmerged_count)
        if two_sides(apart):
            speakers, roles = split.unmerged, apart
    counters: dict[str, int] = {}
    out = []
    for seg, spk in zip(split.segments, speakers, strict=True):
        leg = roles.leg(spk)
        out.append(replace(seg, leg=leg, index=counters.get(leg, 0)))
        counters[leg] = counters.get(leg, 0) + 1
    legs: tuple[Leg, ...] = ("customer", "agent") if roles.known else ("mixed",)
    return Labelled(out, [f"speaker_{spk}" for spk in speakers], legs, roles, _heard(split, speakers))


def _heard(split: Split, speakers: Sequence[int]) -> list[tuple[int, int]]:
    """Each segment's span, widened over overlapped speech only towards a neighbour (the part before or after it
    at a change) that stays another speaker: voices the roles did not keep apart do not talk over themselves."""
    spans = split.spans or [(s.start_ms, s.end_ms) for s in split.segments]
    last = len(spans) - 1
    return [(a if k > 0 and speakers[k - 1] != speakers[k] else seg.start_ms,
             b if k < last and speakers[k + 1] != speakers[k] else seg.end_ms)
            for k, (seg, (a, b)) in enumerate(zip(split.segments, spans, strict=True))]


def for_engine(engine: Engine, speakers: int | None = None) -> SpeakerSplit | None:
    """The engine's split of mono recordings as its settings ask (``diarize``, ``diarize_speakers``; ``speakers``
    overrides the count), or None when diarization is off."""
    if engine.speaker_encoder is None or not engine.settings.diarize:
        return None
    return SpeakerSplit(engine.speaker_encoder, DiarizeOptions(speakers=speakers or engine.settings.diarize_speakers),
                        engine.settings.qa_rules or QA_PACK)
