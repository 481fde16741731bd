"""Output writers for file transcripts, by format name (json, srt, vtt, txt).

The speaker of each cue, where a recording has several legs: ``[customer]`` before the text in SRT and TXT
(SubRip has no speaker syntax), a WebVTT voice span ``<v customer>`` in VTT (what players and caption tools
read as the speaker). A mono recording's one ``mixed`` leg names no speaker."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

from speechsvc.batch.transcribe import FileSegment, FileTranscript


def _clock(ms: int, sep: str) -> str:
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _speaker(t: FileTranscript, s: FileSegment) -> str:
    # A diarized mono recording whose roles are unknown names its speakers instead.
    return f"[{s.leg}] " if len(t.legs) > 1 else f"[{s.speaker}] " if s.speaker else ""


def to_json(t: FileTranscript) -> str:
    return json.dumps(asdict(t), ensure_ascii=False, indent=2)


def to_txt(t: FileTranscript) -> str:
    return "".join(f"{_speaker(t, s)}{s.text}\n" for s in t.segments)


def to_srt(t: FileTranscript) -> str:
    blocks = [
        f"{i}\n{_clock(s.start_ms, ',')} --> {_clock(s.end_ms, ',')}\n{_speaker(t, s)}{s.text}\n"
        for i, s in enumerate(t.segments, 1)
    ]
    return "\n".join(blocks)


def _voice(t: FileTranscript, s: FileSegment) -> str:
    """A WebVTT voice span: the leg of a two-leg recording, else a diarized speaker, else none."""
    name = s.leg if len(t.legs) > 1 else s.speaker
    return f"<v {name}>" if name else ""


def _vtt_text(text: str) -> str:
    """Cue text escaped as WebVTT requires (``&``, ``<``, ``>``), with no line that would end the cue."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(line for line in escaped.splitlines() if line.strip()) or " "


def to_vtt(t: FileTranscript) -> str:
    blocks = [
        f"{_clock(s.start_ms, '.')} --> {_clock(s.end_ms, '.')}\n{_voice(t, s)}{_vtt_text(s.text)}\n"
        for s in t.segments
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


WRITERS: dict[str, Callable[[FileTranscript], str]] = {"json": to_json, "txt": to_txt, "srt": to_srt, "vtt": to_vtt}
