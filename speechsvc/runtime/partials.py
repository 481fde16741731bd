"""Partial transcripts: their stability (LocalAgreement-2, ufal/whisper_streaming) and their cadence.

The prefix two consecutive hypotheses agree on is committed and never changes; every partial shown starts
with the committed text, so a caption that was on screen is never taken back. :class:`PartialCadence` decides
when a leg's next partial is due and stretches that under load.
"""

from __future__ import annotations


def common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


class PartialStabilizer:
    """One per leg; reset at every utterance boundary."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.stable = ""
        self._previous = ""

    def update(self, hypothesis: str) -> tuple[str, str]:
        """Return (text to show, stable prefix) for a new hypothesis."""
        agreed = common_prefix(self._previous, hypothesis)
        if len(agreed) > len(self.stable) and agreed.startswith(self.stable):
            self.stable = agreed
        self._previous = hypothesis
        if hypothesis.startswith(self.stable):
            return hypothesis, self.stable
        return self.stable, self.stable


class PartialCadence:
    """When a leg's next partial is due, and how the cadence stretches under load (one per leg).

    The cadence is ``interval`` of new speech times a stretch of 1, 2 or 4 (up to ``max_stretch``): a partial that
    could not be decoded in time (skipped because the ASR worker is behind, or dropped as stale before its turn)
    doubles the leg's stretch; one delivered promptly halves it. Under load every leg's partial rate degrades
    step by step instead of all partials stopping at once, and comes back when the load goes. ``waiting_since``
    (wall time of the leg's last partial, or of the start of its utterance) orders partials across calls: the
    call that has waited longest goes first.
    """

    def __init__(self, interval: int, first: int, max_stretch: int) -> None:
        self.interval = interval  # samples of new speech between partials, at stretch 1
        self.first = first  # samples of speech before the first partial of an utterance
        self.max_stretch = max(1, max_stretch)
        self.stretch = 1
        self.at = 0  # samples of the utterance at the last partial (0: none yet)
        self.waiting_since = 0.0

    def reset(self, now: float) -> None:
        """A new utterance begins (the stretch is kept: the load has not changed)."""
        self.at = 0
        self.waiting_since = now

    def due(self) -> int:
        """Samples of the utterance at which the next partial is due."""
        return self.at + self.interval * self.stretch if self.at else self.first

    def taken(self, samples: int) -> None:
        """A partial slot was used (decoded or skipped) at ``samples`` of the utterance."""
        self.at = samples

    def missed(self) -> None:
        """A partial was skipped or dropped as stale: stretch the cadence."""
        self.stretch = min(self.max_stretch, self.stretch * 2)

    def delivered(self, now: float, prompt: bool) -> None:
        """A partial went out; ``prompt`` if it came well within its interval: relax the cadence."""
        self.waiting_since = now
        if prompt and self.stretch > 1:
            self.stretch //= 2
