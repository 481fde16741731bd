"""Stable partial transcripts: LocalAgreement-2 (ufal/whisper_streaming).

The prefix two consecutive hypotheses agree on is committed and never changes; every partial shown starts
with the committed text, so a caption that was on screen is never taken back.
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
