"""Call metadata policy: which keys a call's ``metadata`` may carry to events, webhooks, the console and reports,
and masking of personal values in them (PIPL: a caller's phone number must not reach a subscriber while the
transcript shows ``[PHONE]``).

- Keys: only those in the allow-list pass (``SPEECHSVC_METADATA_KEYS``; ``*`` in it = every key); others are
  dropped at admission, so nothing downstream ever sees them.
- Values: a value that is a phone, ID-card or bank-card number (digits with ``+ - ( )`` and spaces, 7 or more
  digits, or an 18-character ID with a final X) keeps its last 4 digits (``*********5678``); an e-mail address
  keeps its domain; a value under a key that names a person (``*name*``) keeps its first character. Platform ids
  (call SIDs, UUIDs: letters and digits mixed) pass unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

NUMBER = re.compile(r"^[+\d\s().-]*$")
ID_CARD = re.compile(r"^\d{17}[\dXx]$")
EMAIL = re.compile(r"^[^@\s]+@([^@\s]+\.[^@\s]+)$")
MIN_NUMBER_DIGITS = 7
KEEP_DIGITS = 4


def mask_value(key: str, value: str) -> str:
    """The value as it may be shown (see the module docstring)."""
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    if ID_CARD.match(text):
        return "*" * (len(text) - KEEP_DIGITS) + text[-KEEP_DIGITS:]
    if NUMBER.match(text) and len(digits) >= MIN_NUMBER_DIGITS:
        return "*" * (len(digits) - KEEP_DIGITS) + digits[-KEEP_DIGITS:]
    email = EMAIL.match(text)
    if email is not None:
        return "***@" + email.group(1)
    if "name" in key.lower() and text:
        return text[0] + "*" * max(1, len(text) - 1)
    return value


@dataclass(frozen=True)
class MetadataPolicy:
    """The keys allowed through (None = every key) and whether values are masked."""

    allow: frozenset[str] | None
    mask: bool = True

    @classmethod
    def of(cls, keys: tuple[str, ...], mask: bool) -> MetadataPolicy:
        return cls(None if "*" in keys else frozenset(keys), mask)

    def apply(self, metadata: Mapping[str, str]) -> dict[str, str]:
        kept = {k: v for k, v in metadata.items() if self.allow is None or k in self.allow}
        return {k: mask_value(k, v) for k, v in kept.items()} if self.mask else kept
