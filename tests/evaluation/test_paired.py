"""The paired bootstrap that says whether a per-family gap between two transcribers is settled by its items."""

from __future__ import annotations

import pytest

from speechsvc.evaluation.paired import paired_gap


def test_a_side_better_on_most_items_is_settled() -> None:
    lengths = [8] * 30
    a = [0] * 25 + [2] * 5
    b = [2] * 25 + [0] * 5
    gap = paired_gap(a, b, lengths)
    assert gap.difference == pytest.approx((10 - 50) / 240, abs=1e-4)
    assert gap.low <= gap.difference <= gap.high < 0 and gap.settled
    assert (gap.items, gap.a_better, gap.b_better) == (30, 25, 5)


def test_wins_on_both_sides_leave_it_open() -> None:
    lengths = [6] * 40
    a = [3, 0] * 20
    b = [0, 3] * 20
    gap = paired_gap(a, b, lengths)
    assert gap.difference == 0 and gap.low < 0 < gap.high and not gap.settled
    assert (gap.a_better, gap.b_better) == (20, 20)


def test_identical_texts_have_no_gap_and_the_same_seed_the_same_interval() -> None:
    edits, lengths = [1, 0, 4, 2], [5, 7, 9, 4]
    gap = paired_gap(edits, edits, lengths)
    assert (gap.difference, gap.low, gap.high, gap.settled) == (0, 0, 0, False)
    a, b = [1, 0, 4, 2, 0], [0, 1, 2, 2, 3]
    assert paired_gap(a, b, [5, 7, 9, 4, 6]) == paired_gap(a, b, [5, 7, 9, 4, 6])


def test_items_that_do_not_pair_are_refused() -> None:
    with pytest.raises(ValueError, match="same non-empty items"):
        paired_gap([1, 2], [1], [3, 3])
    with pytest.raises(ValueError, match="same non-empty items"):
        paired_gap([], [], [])
    with pytest.raises(ValueError, match="some length"):
        paired_gap([0], [0], [0])
