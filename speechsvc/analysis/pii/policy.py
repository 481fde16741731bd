"""What to redact and how (`PiiPolicy`), and what a redaction gives back (`Redaction`, `Entity`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import speechsvc.analysis.pii.rules as R

PiiType = str
Style = Literal["tag", "mask"]


@dataclass(frozen=True)
class PiiPolicy:
    """What to redact and how; validated once at construction."""

    enabled: bool = True  # False: every text passes through unchanged (the detector still loads nothing)
    types: frozenset[str] = frozenset(R.ALL_TYPES)  # the PII types to redact; the others pass through
    style: Style = "tag"  # "tag": 138… → [PHONE]; "mask": 13800125678 → 138****5678 (the value's own characters)
    min_digits: int = 6  # an unexplained digit run this long at the end of an utterance or partial is masked
    keep_last: int = 4  # mask style: digits left clear at the end of a complete number (banks show the last 4)
    keep_first_phone: int = 3  # mask style: digits left clear at the start of a complete mobile number
    mask_char: str = "*"  # mask style: the character that replaces a hidden character
    max_pending_turns: int = 3  # utterances a started value waits for its continuation (context turns included)
    max_pending_ms: int = 30_000  # and at most this long between pieces, when utterance times are given
    use_model: bool = True  # run the LAC model for NAME and ADDRESS (False: names by rules only, no addresses)

    def __post_init__(self) -> None:
        unknown = set(self.types) - set(R.ALL_TYPES)
        if unknown:
            raise ValueError(f"unknown PII types {sorted(unknown)}; supported: {', '.join(R.ALL_TYPES)}")
        if self.style not in ("tag", "mask"):
            raise ValueError(f"style must be 'tag' or 'mask', not {self.style!r}")
        if self.min_digits < 1 or self.keep_last < 0 or self.keep_first_phone < 0:
            raise ValueError("min_digits must be ≥ 1, keep_last and keep_first_phone ≥ 0")
        if len(self.mask_char) != 1:
            raise ValueError("mask_char must be one character")
        if self.max_pending_turns < 0 or self.max_pending_ms < 0:
            raise ValueError("max_pending_turns and max_pending_ms must be ≥ 0")


@dataclass(frozen=True)
class Entity:
    """One redacted value. ``start``/``end`` index the *redacted* text (what clients get); ``source_start`` /
    ``source_end`` index the original text (internal: to find the value's audio from word timings). Never send
    the source offsets to a client that has only the redacted text; `public()` leaves them out."""

    type: PiiType  # one of rules.ALL_TYPES
    start: int  # offset in the redacted text
    end: int  # end offset (exclusive) in the redacted text
    source_start: int = field(repr=False)  # offset in the original text
    source_end: int = field(repr=False)  # end offset (exclusive) in the original text
    score: float = field(default=1.0, repr=False)  # confidence 0–1 (cue + checksum high, conservative guess low)
    ends_on_digit: bool = field(default=False, repr=False)  # the value's last character is a digit (any script)

    def public(self) -> dict[str, Any]:
        """The client-facing form: type and offsets into the redacted text."""
        return {"type": self.type, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Redaction:
    """An utterance with its PII replaced. The clear text is deliberately not kept here."""

    text: str  # the redacted text: the input with only the PII spans replaced
    entities: tuple[Entity, ...]  # in text order, offsets into ``text``

    def public(self) -> dict[str, Any]:
        """The client-facing form (``{"text", "entities": [{"type", "start", "end"}]}``)."""
        return {"text": self.text, "entities": [e.public() for e in self.entities]}
