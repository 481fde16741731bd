"""Whether one transcriber is really ahead of another on the same items: a paired bootstrap of the difference in
pooled error rate (edits over reference length, as every figure here is pooled), and the items each side wins.

On a family of a few dozen short clips a per-item edit moves the pooled rate by a point or more, so a gap of
0.02 can be either side's luck. Resampling the items (both sides together, so each clip is compared with
itself) gives the interval the difference would move in over sets like this one; a gap whose 95 % interval
holds 0 is not a verdict either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedGap:
    """``a``'s pooled error rate minus ``b``'s, its 95 % bootstrap interval, and who wins how many items."""

    difference: float
    low: float
    high: float
    items: int
    a_better: int  # items where a makes fewer edits
    b_better: int

    @property
    def settled(self) -> bool:
        """The interval leaves out 0: one side is ahead on sets like this one, not by luck of these items."""
        return self.low > 0 or self.high < 0


def paired_gap(a_edits: Sequence[int], b_edits: Sequence[int], lengths: Sequence[int], rounds: int = 10000,
               seed: int = 0) -> PairedGap:
    """The paired bootstrap over items (``rounds`` resamples, seeded: the same input gives the same interval)."""
    a, b, n = (np.asarray(v, np.int64) for v in (a_edits, b_edits, lengths))
    if not (a.shape == b.shape == n.shape) or a.size == 0:
        raise ValueError("paired_gap needs the same non-empty items on both sides")
    if int(n.sum()) <= 0:
        raise ValueError("paired_gap needs references with some length")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, a.size, size=(rounds, a.size))
    totals = np.maximum(1, n[picks].sum(axis=1))
    diffs = (a[picks].sum(axis=1) - b[picks].sum(axis=1)) / totals
    low, high = np.percentile(diffs, [2.5, 97.5])
    return PairedGap(
        difference=round(float((a.sum() - b.sum()) / n.sum()), 4),
        low=round(float(low), 4),
        high=round(float(high), 4),
        items=int(a.size),
        a_better=int((a < b).sum()),
        b_better=int((a > b).sum()),
    )
