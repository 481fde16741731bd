"""Overlapped speech at speaker changes, without a model: the pure functions on synthetic step scores, and
diarization's widened spans with an encoder stand-in whose mixtures lie between the two voices."""

from __future__ import annotations

import numpy as np
import pytest

from speechsvc.batch.speakers import Split, label_roles
from speechsvc.batch.transcribe import file_segments
from speechsvc.speech.asr import AsrResult
from speechsvc.speech.diarize import DiarizeOptions, diarize
from speechsvc.speech.overlap import Overlap, find_overlaps, levels, step_means, widen
from speechsvc.types import Float32Array, SpeechSegment
from tests.support.fakes import TwoToneVoices

SR = 16000


def _scores(a_until: int, b_from: int, steps: int = 60, smear: int = 3) -> np.ndarray:
    """Step scores (steps, 2): voice A heard until ``a_until``, B from ``b_from``; a window's smear ramps each
    voice's score over ``smear`` steps at its edges. One voice alone: 0.85 to it, 0.55 to the other; both: 0.72
    to each (a mixture lies between the centroids)."""
    a = np.clip((a_until + smear - np.arange(steps)) / (2 * smear), 0, 1)
    b = np.clip((np.arange(steps) - b_from + smear) / (2 * smear), 0, 1)
    both = a * b
    alone_a, alone_b = a * (1 - b), b * (1 - a)
    s_a = 0.85 * alone_a + 0.55 * alone_b + 0.72 * both
    s_b = 0.55 * alone_a + 0.85 * alone_b + 0.72 * both
    return np.stack([s_a, s_b], axis=1)


LEVEL = np.array([[0.85, 0.55], [0.55, 0.85]])


def _labels(scores: np.ndarray) -> list[int]:
    return [int(v) for v in np.argmax(scores + np.array([0.0, 1e-6]), axis=1)]


def test_a_clean_change_is_not_overlap() -> None:
    scores = _scores(30, 30)
    labels = _labels(scores)
    assert find_overlaps(scores, labels, LEVEL, presence=0.5, trim=2, min_steps=5) == []
    # Without the trim and the shortest span, the window's smear alone would read as a short overlap.
    smear = find_overlaps(scores, labels, LEVEL, presence=0.5, trim=0, min_steps=1)
    assert all(o.end - o.start <= 6 for o in smear)


def test_two_voices_at_once_are_found_around_the_change() -> None:
    # B comes in at step 20 while A goes on to step 35 (1.5 s at 100 ms steps).
    scores = _scores(35, 20)
    labels = _labels(scores)
    found = find_overlaps(scores, labels, LEVEL, presence=0.5, trim=2, min_steps=5)
    assert len(found) == 1
    o = found[0]
    assert (o.first, o.second) == (0, 1) and o.start <= o.change <= o.end
    assert 17 <= o.start <= 23 and abs(o.end - 35) <= 4
    assert find_overlaps(scores, labels, LEVEL, presence=0.0, trim=2, min_steps=5) == []  # off


def test_an_overlap_never_reaches_past_the_neighbouring_runs() -> None:
    scores = np.full((12, 2), 0.75)  # both voices everywhere: only the runs around the change bound it
    labels = [0] * 4 + [1] * 4 + [0] * 4
    found = find_overlaps(scores, labels, LEVEL, presence=0.5, trim=0, min_steps=1)
    assert [(o.start, o.end, o.first, o.second) for o in found] == [(0, 8, 0, 1), (4, 12, 1, 0)]


def test_widen_runs_the_part_before_on_and_starts_the_part_after_earlier() -> None:
    bounds = [(0, 25), (25, 60)]
    assert widen(bounds, [Overlap(20, 35, 25, 0, 1)]) == [(0, 35), (20, 60)]
    assert widen(bounds, []) == bounds


def test_levels_are_each_voice_where_it_and_the_other_speak() -> None:
    scores = np.hstack([_scores(30, 30), np.zeros((60, 1))])
    labels = _labels(scores[:, :2])
    level = levels([scores, scores[:10]], [labels, labels[:10]], 3)
    assert np.allclose(level[:2, :2], LEVEL, atol=0.02)
    assert np.isnan(level[:, 2]).all()  # nobody was cut as the third speaker
    # A change between speakers without levels is left alone.
    assert find_overlaps(np.zeros((4, 3)), [0, 0, 2, 2], level, 0.5, 0, 1) == []


def test_step_means_of_uncovered_steps() -> None:
    total = np.array([[2.0, 1.0], [0.0, 0.0]])
    count = np.array([2.0, 0.0])
    assert np.allclose(step_means(total, count), [[1.0, 0.5], [1.0, 0.5]])


def mix_encoder() -> TwoToneVoices:
    """Two voices (a 200 Hz and a 500 Hz tone) at a cosine of about 0.08."""
    return TwoToneVoices(np.asarray([[1.0, 0.0, 0.3, 0.0], [0.0, 1.0, 0.3, 0.0]]))


def _tone(freq: float, seconds: float, gain: float = 0.3) -> Float32Array:
    t = np.arange(int(seconds * SR)) / SR
    return np.asarray(gain * np.sin(2 * np.pi * freq * t), np.float32)


def _segment(index: int, start_s: float, audio: Float32Array) -> SpeechSegment:
    start = int(start_s * 1000)
    return SpeechSegment("mixed", index, start, start + audio.size * 1000 // SR, audio)


def _call(overlap_s: float) -> list[SpeechSegment]:
    """A alone, then one segment: A for 3 s, B coming in ``overlap_s`` before A stops, B alone 3 s; B alone."""
    a, b = _tone(200, 3.0, gain=0.2), _tone(500, 3.0 + overlap_s)  # the one coming in is louder
    mixed = np.zeros(int((6.0) * SR), np.float32)
    mixed[: a.size] += a
    mixed[int((3.0 - overlap_s) * SR) : int((3.0 - overlap_s) * SR) + b.size] += b
    return [_segment(0, 0.0, _tone(200, 3.0)), _segment(1, 4.0, mixed), _segment(2, 11.0, _tone(500, 3.0))]


def test_diarized_parts_overlap_in_time_where_both_speak() -> None:
    options = DiarizeOptions(min_turn_s=1.0, overlap_presence=0.3)
    result = diarize(_call(1.5), mix_encoder(), options)  # type: ignore[arg-type]
    parts = [(p.segment.start_ms, p.segment.end_ms, p.speaker) for p in result.segments]
    assert [p[2] for p in parts] == [0, 0, 1, 1]
    # The audio stays cut at one change (ASR decodes each stretch once) ...
    assert parts[1][1] == parts[2][0]
    # ... while the two parts' times overlap over the 1.5 s both spoke (5.5 s to 7 s), within the step.
    (_, a_end), (b_start, _) = result.spans[1], result.spans[2]
    assert abs(a_end - 7000) <= 400 and abs(b_start - 5500) <= 400
    assert result.spans[0] == parts[0][:2] and result.spans[3] == parts[3][:2]
    clean = diarize(_call(0.0), mix_encoder(), options)  # type: ignore[arg-type]
    assert clean.spans == tuple((p.segment.start_ms, p.segment.end_ms) for p in clean.segments)
    off = diarize(_call(1.5), mix_encoder(), DiarizeOptions())  # type: ignore[arg-type]
    assert off.spans == ()  # off by default


def _result(text: str) -> AsrResult:
    return AsrResult(text, "zh", 0.9, 0.0)


def test_labelled_spans_follow_the_roles_and_file_segments_carry_them() -> None:
    segs = [_segment(0, 0.0, _tone(200, 3.0)), _segment(1, 3.0, _tone(500, 3.0)), _segment(2, 6.0, _tone(200, 1.0))]
    spans = [(0, 4000), (2500, 6500), (5500, 7000)]
    texts = ["我想查一下我的账单，你们怎么回事", "您好，工号八零六三，请问有什么可以帮您", "好的"]
    labelled = label_roles(Split(segs, [0, 1, 0], 2, spans=spans), texts)
    assert labelled.legs == ("customer", "agent") and labelled.spans == spans
    assert [(s.leg, s.start_ms, s.end_ms) for s in labelled.timed()] == [
        ("customer", 0, 4000), ("agent", 2500, 6500), ("customer", 5500, 7000)]
    assert labelled.timed()[1].audio is segs[1].audio  # the decoded audio is unchanged
    out = file_segments(labelled.segments, [_result(t) for t in texts], labelled.speakers, labelled.spans)
    assert [(s.start_ms, s.end_ms) for s in out] == spans
    # Voices the roles leave as one speaker do not talk over themselves: their spans stay as cut.
    same = label_roles(Split(segs, [0, 0, 0], 1, spans=spans), ["好的", "嗯", "好的"])
    assert same.spans == [(0, 3000), (3000, 6000), (6000, 7000)]


@pytest.mark.parametrize("bad", [{"overlap_trim_s": -0.1}, {"overlap_min_s": -1.0}, {"overlap_presence": 1.5}])
def test_overlap_options_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DiarizeOptions(**bad)  # type: ignore[arg-type]
