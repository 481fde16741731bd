"""Overlapped speech at speaker changes in a mono recording, from the speaker scores diarization already has.

Where one speaker takes over from another inside a segment (no pause between them), the two may have spoken at
once for a while: the interrupted one goes on under the interrupter, or the interrupter starts under the one
still talking. A window of that mixture scores close to both speakers' centroids (its embedding lies between
them), while a window of one voice scores clearly closer to its own. Each speaker's score is read against two
levels of the same recording (:func:`levels`): how it scores where it speaks, and how it scores where the other
speaks alone. From the change, the outgoing speaker is taken to go on for as long as its score stays at least
``presence`` of the way from the second level to the first, and the incoming one to have started as far back as
its score does the same; the levels make that independent of how alike the two voices sound.
A short window straddling a clean change also scores between the two, for up to about half its length on
either side; ``trim`` steps come off each end for that, and a span shorter than ``min_steps`` is not overlap.

Pure functions over arrays (no model, no state).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Overlap:
    """Steps ``[start, end)`` of one segment in which ``first`` (talking before the change) and ``second``
    (talking after it) are both heard; the change is at step ``change``."""

    start: int
    end: int
    change: int
    first: int
    second: int


def _runs(labels: Sequence[int]) -> list[tuple[int, int, int]]:
    """(label, start, end) of each run of equal labels."""
    runs: list[tuple[int, int, int]] = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            runs.append((labels[start], start, t))
            start = t
    return runs


def levels(scores: Sequence[np.ndarray], labels: Sequence[Sequence[int]], speakers: int) -> np.ndarray:
    """(speakers, speakers): the median score to speaker ``i``'s centroid of the steps cut as speaker ``j``'s,
    over a recording's segments: ``[i, i]`` is how ``i`` scores where it speaks, ``[i, j]`` how it scores where
    ``j`` speaks alone (mostly); NaN where no step was cut as ``j``'s."""
    stacked = np.vstack(scores) if scores else np.zeros((0, speakers))
    cut = np.concatenate([np.asarray(lab, int) for lab in labels]) if labels else np.zeros(0, int)
    out = np.full((speakers, speakers), np.nan)
    for j in range(speakers):
        mine = stacked[cut == j]
        if mine.size:
            out[:, j] = np.median(mine, axis=0)
    return out


def find_overlaps(scores: np.ndarray, labels: Sequence[int], level: np.ndarray, presence: float, trim: int,
                  min_steps: int) -> list[Overlap]:
    """The overlaps at each speaker change of one segment (see the module docstring).

    Args:
        scores: (steps, speakers) cosine of each step's short windows to each speaker's centroid (mean over the
            windows covering the step).
        labels: each step's speaker (after smoothing), as the segment is cut.
        level: :func:`levels` of the recording.
        presence: a speaker is heard in the other's run where its score is at least this share of the way from
            its level in the other's speech to its level in its own (0: off).
        trim: steps taken off each end of a span (the window's smear over a clean change).
        min_steps: the shortest span kept.

    Returns:
        One :class:`Overlap` per change with enough overlapped speech, in time order; a span never reaches past
        the run before the change or the run after it.
    """
    if presence <= 0:
        return []

    def heard(t: int, who: int, over: int) -> bool:
        floor, own = level[who, over], level[who, who]
        return bool(scores[t, who] >= floor + presence * (own - floor))

    out = []
    for (first, a_start, change), (second, _, b_end) in itertools.pairwise(_runs(labels)):
        if np.isnan(level[[first, second]][:, [first, second]]).any():
            continue
        end = change
        while end < b_end and heard(end, first, second):
            end += 1
        start = change
        while start > a_start and heard(start - 1, second, first):
            start -= 1
        start, end = min(start + trim, change), max(end - trim, change)
        if end - start >= max(1, min_steps):
            out.append(Overlap(start, end, change, first, second))
    return out


def widen(bounds: Sequence[tuple[int, int]], overlaps: Sequence[Overlap]) -> list[tuple[int, int]]:
    """Each run's steps ``[start, end)`` (``bounds``, in order, one per run of the segment) widened by the
    overlaps: the run before a change goes on to the overlap's end, the run after it starts at its beginning."""
    out = [list(b) for b in bounds]
    starts = [b[0] for b in bounds]
    for o in overlaps:
        after = starts.index(o.change)
        out[after - 1][1] = max(out[after - 1][1], o.end)
        out[after][0] = min(out[after][0], o.start)
    return [(a, b) for a, b in out]


def step_means(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per-step means of summed window scores; a step no window covers takes the mean of all windows'."""
    covered = count > 0
    out = np.empty_like(total)
    out[covered] = total[covered] / count[covered, None]
    if not covered.all():
        out[~covered] = total[covered].sum(axis=0) / max(1.0, float(count[covered].sum()))
    return out
