"""Merged chunks for recorded audio: planning and splitting the text back into utterances (no model)."""

from __future__ import annotations

import numpy as np

from speechsvc.batch.chunks import GAP_S, plan_chunks, split_chunk
from speechsvc.speech.asr import AsrResult
from speechsvc.types import SpeechSegment, Word

RATE = 16000


def seg(leg: str, index: int, start_s: float, seconds: float) -> SpeechSegment:
    n = int(seconds * RATE)
    return SpeechSegment(leg, index, int(start_s * 1000), int(start_s * 1000) + n * 1000 // RATE,
                         np.full(n, 0.1 * (index + 1), np.float32))


def test_utterances_join_per_leg_in_time_order_up_to_the_chunk_length() -> None:
    segments = [seg("agent", 0, 1, 4), seg("customer", 1, 9, 6), seg("customer", 0, 0, 8), seg("customer", 2, 20, 15)]
    chunks = plan_chunks(segments, 20)
    assert [[(s.leg, s.index) for s in c.segments] for c in chunks] == [
        [("agent", 0)], [("customer", 0), ("customer", 1)], [("customer", 2)]]
    joined = chunks[1]
    gap = int(GAP_S * RATE)
    assert joined.offsets == (0, 8 * RATE + gap) and joined.audio.size == 14 * RATE + 2 * gap
    assert np.all(joined.audio[8 * RATE : 8 * RATE + gap] == 0) and joined.audio[8 * RATE + gap] == np.float32(0.2)
    assert all(len(c.segments) == 1 for c in plan_chunks(segments, 0))  # 0: every utterance alone
    assert chunks[1].request("zh").words and not chunks[0].request("zh").words  # timings only to split


def test_a_leg_that_fits_the_window_is_one_chunk_with_its_pauses_as_recorded() -> None:
    """Decoded whole, as faster-whisper decodes it: short pauses stay as recorded, long ones shrink to GAP_S, and a
    turn cut by force is joined back without a gap."""
    recording = np.random.default_rng(0).uniform(-0.1, 0.1, 40 * RATE).astype(np.float32)

    def cut(index: int, start_s: float, seconds: float, forced: bool = False) -> SpeechSegment:
        a, b = int(start_s * RATE), int((start_s + seconds) * RATE)
        return SpeechSegment("customer", index, a * 1000 // RATE, b * 1000 // RATE, recording[a:b], forced)

    segments = [cut(0, 0, 6, forced=True), cut(1, 6, 5), cut(2, 12, 4), cut(3, 19, 3)]
    [chunk] = plan_chunks(segments, 20, {"customer": recording})
    gap = int(GAP_S * RATE)
    assert chunk.offsets == (0, 6 * RATE, 12 * RATE, 16 * RATE + gap)  # 1 s pause kept, 3 s pause -> GAP_S
    assert np.array_equal(chunk.audio[: 16 * RATE], recording[: 16 * RATE])
    assert chunk.audio.size == 19 * RATE + 2 * gap
    # Without the recording the utterances are joined with GAP_S, and longer legs still pack by chunk_s.
    assert plan_chunks(segments, 20)[0].offsets == (0, 6 * RATE + gap, 11 * RATE + 2 * gap, 15 * RATE + 3 * gap)
    longer = [*segments, cut(4, 23, 10)]
    assert [len(c.segments) for c in plan_chunks(longer, 20, {"customer": recording})] == [4, 1]


def test_text_is_split_back_by_word_times_with_utterance_relative_timings() -> None:
    chunk = plan_chunks([seg("customer", 0, 0, 2), seg("customer", 1, 5, 2)], 20)[0]
    second = (2 + GAP_S) * 1000  # where the second utterance starts in the chunk (ms)
    words = (Word("设", 100, 300, 0.9), Word("定", 300, 600, 0.8), Word("。", 600, 700, 0.9),
             Word("调", second + 100, second + 400, 0.7), Word("高", second + 400, second + 800, 0.6))
    result = AsrResult("设定。调高。", "zh", 0.8, 0.01, None, words)
    first, other = split_chunk(chunk, result) or []
    assert first.text == "设定。" and other.text == "调高。"  # each final ends a sentence
    assert [(w.text, w.start_ms) for w in other.words] == [("调", 100), ("高。", 400)]
    assert "".join(w.text for w in first.words) == first.text and abs(other.confidence - 0.65) < 1e-6
    bare = split_chunk(chunk, AsrResult("设定调高", "zh", 0.8, 0.01, None, words[:2] + words[3:]), punctuation=False)
    assert [r.text for r in bare or []] == ["设定", "调高"]


def test_a_chunk_whose_text_cannot_be_placed_is_decoded_again_alone() -> None:
    chunk = plan_chunks([seg("customer", 0, 0, 2), seg("customer", 1, 5, 2)], 20)[0]
    assert split_chunk(chunk, AsrResult("设定调高", "zh", 0.8, 0.01, None, ())) is None
    silent = split_chunk(chunk, AsrResult("", "zh", 0.0, 0.9, None, ()))
    assert silent is not None and [r.text for r in silent] == ["", ""]
    nothing_in_second = split_chunk(chunk, AsrResult("好的。", "zh", 0.8, 0.0, None, (Word("好的。", 0, 500, 0.9),)))
    assert [r.text for r in nothing_in_second or []] == ["好的。", ""]


def test_english_words_lose_the_leading_space_and_stray_punctuation_at_an_utterance_start() -> None:
    chunk = plan_chunks([seg("agent", 0, 0, 2), seg("agent", 1, 5, 2)], 20)[0]
    second = (2 + GAP_S) * 1000
    words = (Word("Hello", 0, 500, 0.9), Word(".", second + 10, second + 20, 0.9),
             Word(" please", second + 50, second + 500, 0.9), Word(" hold.", second + 500, second + 900, 0.9))
    first, other = split_chunk(chunk, AsrResult("Hello. please hold.", "en", 0.9, 0.0, None, words)) or []
    assert first.text == "Hello." and other.text == "please hold."


def test_an_utterance_its_chunk_left_empty_is_decoded_alone() -> None:
    """Whisper may end a chunk early (a repeated phrase) and drop what follows: that utterance is decoded alone."""
    from speechsvc.batch.chunks import decode_utterances
    from speechsvc.speech.asr import AsrRequest

    segments = [seg("customer", 0, 0, 2), seg("customer", 1, 5, 2)]
    asked: list[int] = []

    def recognize(requests: list[AsrRequest]) -> list[AsrResult]:
        asked.extend(r.audio.size for r in requests)
        return [AsrResult("就是下雨也去。", "zh", 0.8, 0.0, None, (Word("就是下雨也去。", 0, 1500, 0.8),))
                if r.audio.size > 3 * RATE else AsrResult("我马上拿来。", "zh", 0.8, 0.0, None, ()) for r in requests]

    results = decode_utterances(segments, recognize, "zh")
    assert [r.text for r in results] == ["就是下雨也去。", "我马上拿来。"]
    assert asked == [int((4 + 2 * GAP_S) * RATE), 2 * RATE]  # the chunk, then the second utterance alone
