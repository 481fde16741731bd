"""Recorded audio decoded in merged chunks, reported per utterance.

A live call must decode each utterance as it ends; a recording need not. Whisper decodes a lone 2-second
utterance without the context around it, so recorded audio joins adjacent utterances of a leg (a short pause
between them) into chunks of up to ``CHUNK_S`` seconds and decodes each chunk once, as faster-whisper's batched
pipeline does with its merged VAD chunks. The chunk's text is then split back into its utterances by the word
(character) timings of the same decode, so reports, subtitles and the analysis stages keep utterance-level
segments. Measured on ``eval/long`` (``benchmarks/chunks.py``, the gold Mandarin read set): CER 0.206 per
utterance, 0.180 with 10 s chunks, **0.125 with 20 s**, 0.134 with 28 s; on its 8 kHz copy 0.249 → 0.19
(20 s; 28 s is level within noise); English oration WER 0.099 → 0.081; and less decoding time.

With the recording at hand, pauses under ``MAX_PAUSE_S`` stay in the chunk as recorded (instead of ``GAP_S`` of
silence), and a leg whose speech fits ``WHOLE_S`` is one chunk, as faster-whisper decodes a short file: held out
(issue 27, ``benchmarks/accuracy.py``), 18-28 s spontaneous turns CER 0.223 against faster-whisper's 0.236.

Chunks are decoded with timestamps, as faster-whisper decodes, and a chunk whose text ends more than
``ASR_CONTINUE_AFTER_S`` before its audio does has the rest decoded and appended (``AsrRequest.complete``): Whisper
may emit end-of-text after the first sentence of a spontaneous turn.

A chunk whose text the timings cannot place (no timings, or they do not spell it) is decoded again utterance
by utterance, and so is an utterance that got no text from its chunk (Whisper may stop a chunk early, notably
after a repeated phrase), so nothing is lost.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from speechsvc.speech.asr import MAX_SAMPLES, AsrRequest, AsrResult
from speechsvc.speech.text import end_sentence
from speechsvc.types import PIPELINE_RATE, Float32Array, SpeechSegment, Word

CHUNK_S = 20.0  # longest merged chunk (measured best of 10, 20 and 28 s on every set)
WHOLE_S = 28.0  # a leg with no more speech than this is one chunk: decoded whole, as faster-whisper does
GAP_S = 0.3  # silence put between joined utterances (or instead of a pause longer than MAX_PAUSE_S)
MAX_PAUSE_S = 2.0  # with the recording at hand, shorter pauses stay in a chunk as recorded
_END_SLACK_MS = 20  # one alignment frame
_LEADING = "，。？！、；：,.?!;:"  # punctuation that belongs to the utterance before, not the one it was aligned to


@dataclass(frozen=True)
class Chunk:
    """Adjacent utterances of one leg, joined: ``audio`` holds each of ``segments`` from ``offsets`` (samples),
    with the recorded pause or ``GAP_S`` of silence between them and ``GAP_S`` after the last."""

    segments: tuple[SpeechSegment, ...]
    audio: Float32Array
    offsets: tuple[int, ...]

    def request(self, language: str | None, hotwords: tuple[str, ...] = (), words: bool = False,
                task: str = "transcribe") -> AsrRequest:
        # Several utterances need the timings to be split apart again.
        return AsrRequest(self.audio, language, words=words or len(self.segments) > 1, hotwords=hotwords, task=task,
                          complete=True)


def plan_chunks(segments: Sequence[SpeechSegment], chunk_s: float = CHUNK_S,
                recording: Mapping[str, Float32Array] | None = None) -> list[Chunk]:
    """Utterances (any order, any legs) joined per leg in time order into chunks of at most ``chunk_s``; a leg
    whose utterances fit ``WHOLE_S`` is one chunk. With the ``recording`` (each leg's 16 kHz audio, the
    segments' clock), pauses of up to ``MAX_PAUSE_S`` between utterances stay as recorded, as faster-whisper's
    VAD keeps them: Whisper hears the turn as it was said, and a turn cut by force is joined back seamlessly."""
    gap = np.zeros(int(GAP_S * PIPELINE_RATE), np.float32)
    limit = min(int(chunk_s * PIPELINE_RATE), MAX_SAMPLES)  # 0: every utterance alone
    chunks: list[Chunk] = []
    for leg in dict.fromkeys(s.leg for s in segments):
        audio = recording.get(leg) if recording is not None else None
        ordered = sorted((s for s in segments if s.leg == leg), key=lambda s: s.start_ms)
        pauses = [_pause(a, b, audio, gap) for a, b in itertools.pairwise(ordered)]
        whole = sum(s.audio.size for s in ordered) + sum(p.size for p in pauses) + gap.size
        if limit and whole <= int(WHOLE_S * PIPELINE_RATE):
            chunks.append(_join(ordered, pauses, gap))
            continue
        current: list[SpeechSegment] = []
        between: list[Float32Array] = []
        size = 0
        for k, seg in enumerate(ordered):
            pause = pauses[k - 1] if k else gap
            if current and size + pause.size + seg.audio.size + gap.size > limit:
                chunks.append(_join(current, between, gap))
                current, between, size = [], [], 0
            if current:
                between.append(pause)
                size += pause.size
            current.append(seg)
            size += seg.audio.size
        if current:
            chunks.append(_join(current, between, gap))
    return chunks


def _pause(before: SpeechSegment, after: SpeechSegment, audio: Float32Array | None, gap: Float32Array) -> Float32Array:
    """What goes between two utterances of a chunk: the recorded pause when it is short, else ``gap``."""
    if audio is None:
        return gap
    start = before.start_ms * PIPELINE_RATE // 1000 + before.audio.size
    end = after.start_ms * PIPELINE_RATE // 1000
    if 0 <= end - start <= MAX_PAUSE_S * PIPELINE_RATE and end <= audio.size:
        return audio[start:end]
    return gap


def _join(segments: list[SpeechSegment], pauses: Sequence[Float32Array], gap: Float32Array) -> Chunk:
    offsets, parts, at = [], [], 0
    for k, seg in enumerate(segments):
        if k:
            parts.append(pauses[k - 1])
            at += pauses[k - 1].size
        offsets.append(at)
        parts.append(seg.audio)
        at += seg.audio.size
    parts.append(gap)
    return Chunk(tuple(segments), np.concatenate(parts)[:MAX_SAMPLES], tuple(offsets))


def split_chunk(chunk: Chunk, result: AsrResult, punctuation: bool = True) -> list[AsrResult] | None:
    """The chunk's result as one result per utterance (in ``chunk.segments`` order; empty text where nothing
    was said), with word timings relative to each utterance's start. None when the timings cannot place the
    text (decode those utterances one by one instead)."""
    if len(chunk.segments) == 1:
        return [result]
    empty = [replace(result, text="", words=(), encoder_stats=None) for _ in chunk.segments]
    if not result.text:
        return empty
    if not result.words:
        return None
    per: list[list[Word]] = [[] for _ in chunk.segments]
    for w in result.words:
        # By where the word ends: cross-attention alignment lets a word after a pause start early (the pause is
        # absorbed into it), while its end stays close to the audio.
        at = max(w.start_ms, w.end_ms - _END_SLACK_MS) * PIPELINE_RATE // 1000
        k = max(0, bisect.bisect_right(chunk.offsets, at) - 1)
        start = chunk.offsets[k] * 1000 // PIPELINE_RATE
        length = chunk.segments[k].audio.size * 1000 // PIPELINE_RATE
        per[k].append(Word(w.text, min(length, max(0, w.start_ms - start)), min(length, max(0, w.end_ms - start)),
                           w.probability))
    for k in range(1, len(per)):  # punctuation aligned to an utterance's start ends the one before
        while per[k] and not per[k][0].text.strip(" " + _LEADING) and per[k - 1]:
            per[k - 1][-1] = replace(per[k - 1][-1], text=per[k - 1][-1].text + per[k][0].text.strip())
            per[k] = per[k][1:]
    out = []
    for k, words in enumerate(per):
        words = _tidy(words)
        text = "".join(w.text for w in words)
        ended = end_sentence(text, result.language, punctuation)
        if words and ended != text:
            words[-1] = replace(words[-1], text=words[-1].text + ended[len(text):])
        out.append(replace(empty[k], text=ended, words=tuple(words),
                           confidence=float(np.mean([w.probability for w in words])) if words else 0.0))
    return out


def _tidy(words: list[Word]) -> list[Word]:
    """An utterance's words without leading spaces and without punctuation aligned to its very start."""
    while words and not words[0].text.strip(" " + _LEADING):
        words = words[1:]
    if words:
        first = words[0].text.lstrip(" " + _LEADING)
        words = [replace(words[0], text=first), *words[1:]]
    return words


# ---- decoding a recording's utterances through chunks -------------------------------------------------------

Key = tuple[str, int]  # (leg, utterance index)


def _key(s: SpeechSegment) -> Key:
    return (s.leg, s.index)


def _assemble(chunks: Sequence[Chunk], results: Sequence[AsrResult], punctuation: bool,
              words: bool) -> tuple[dict[Key, AsrResult], list[SpeechSegment]]:
    """Per-utterance results of the chunks, and the utterances to decode alone: those of chunks that could not be
    split, and those that got no text from their chunk (Whisper may end a long chunk early, notably when a phrase
    repeats, and drop what follows: an utterance alone never loses its speech that way)."""
    done: dict[Key, AsrResult] = {}
    redo: list[SpeechSegment] = []
    for chunk, result in zip(chunks, results, strict=True):
        parts = split_chunk(chunk, result, punctuation)
        if parts is None:
            redo.extend(chunk.segments)
            continue
        for seg, part in zip(chunk.segments, parts, strict=True):
            if not part.text and len(chunk.segments) > 1:
                redo.append(seg)
            else:
                done[_key(seg)] = part if words else replace(part, words=())
    return done, redo


def decode_utterances(
    segments: Sequence[SpeechSegment],
    recognize: Callable[[list[AsrRequest]], Sequence[AsrResult]],
    language: str | None,
    *,
    punctuation: bool = True,
    words: bool = False,
    hotwords: tuple[str, ...] = (),
    batch_size: int = 8,
    progress: Callable[[float], None] | None = None,
    chunk_s: float = CHUNK_S,
    recording: Mapping[str, Float32Array] | None = None,
) -> list[AsrResult]:
    """One result per utterance (in ``segments`` order), decoded in merged chunks by ``recognize`` (blocking),
    ``batch_size`` chunks at a time, longest first. ``chunk_s=0`` decodes each utterance on its own (as a live
    call does)."""
    chunks = sorted(plan_chunks(segments, chunk_s, recording), key=lambda c: -c.audio.size)
    results: list[AsrResult] = []
    for b in range(0, len(chunks), batch_size):
        batch = chunks[b : b + batch_size]
        results += recognize([c.request(language, hotwords, words) for c in batch])
        if progress:
            progress(sum(s.audio.size for c in batch for s in c.segments) / PIPELINE_RATE)
    done, redo = _assemble(chunks, results, punctuation, words)
    for b in range(0, len(redo), batch_size):
        part = redo[b : b + batch_size]
        for seg, result in zip(part, recognize([AsrRequest(s.audio, language, words=words, hotwords=hotwords,
                                                            complete=True) for s in part]), strict=True):
            done[_key(seg)] = result
    return [done[_key(s)] for s in segments]


async def decode_utterances_async(
    segments: Sequence[SpeechSegment],
    submit: Callable[[AsrRequest], Awaitable[AsrResult]],
    language: str | None,
    *,
    punctuation: bool = True,
    words: bool = False,
    hotwords: tuple[str, ...] = (),
    recording: Mapping[str, Float32Array] | None = None,
    task: str = "transcribe",
) -> list[AsrResult]:
    """The same through an inference worker (``submit``: one request, batched there with other work). A
    translation decodes each utterance alone (a chunk is split back by word timings, which translation has
    not)."""
    chunks = plan_chunks(segments, 0 if task == "translate" else CHUNK_S, recording=recording)
    results = await asyncio.gather(*(submit(c.request(language, hotwords, words, task)) for c in chunks))
    done, redo = _assemble(chunks, results, punctuation, words)
    again = await asyncio.gather(*(submit(AsrRequest(s.audio, language, words=words, hotwords=hotwords, task=task,
                                                      complete=True))
                                   for s in redo))
    done.update((_key(s), r) for s, r in zip(redo, again, strict=True))
    return [done[_key(s)] for s in segments]
