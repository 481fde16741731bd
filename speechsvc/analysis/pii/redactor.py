"""Per-process redactor and per-leg state: a `PiiRedactor(policy)` (rules compiled, LAC loaded once) makes one
`PiiState` per call leg; the state sees the leg's utterances in order (`redact_final`) and may be asked about
the current partial hypothesis at any time (`redact_partial`, which reads the state but never changes it).
"""

from __future__ import annotations

import speechsvc.analysis.pii.rules as R
from speechsvc.analysis.itn import DIGITS
from speechsvc.analysis.pii.context import Context, Span
from speechsvc.analysis.pii.detector import Detector
from speechsvc.analysis.pii.model import Tagger, lac_model
from speechsvc.analysis.pii.policy import Entity, PiiPolicy, Redaction


def _ends_on_digit(text: str, sp: Span) -> bool:
    """The value's last character is a digit in any script (its audio ends on a spoken digit)."""
    tail = text[sp.start : sp.end].rstrip()
    return bool(tail) and (tail[-1] in DIGITS or tail[-1].isdigit())


def _apply(text: str, spans: list[Span], policy: PiiPolicy) -> Redaction:
    out: list[str] = []
    entities: list[Entity] = []
    pos = 0
    length = 0
    for sp in spans:
        chunk = text[pos : sp.start]
        out.append(chunk)
        length += len(chunk)
        replacement = f"[{sp.type}]" if policy.style == "tag" else _mask(text, sp, policy)
        out.append(replacement)
        entities.append(Entity(sp.type, length, length + len(replacement), sp.start, sp.end, sp.score,
                               _ends_on_digit(text, sp)))
        length += len(replacement)
        pos = sp.end
    out.append(text[pos:])
    return Redaction("".join(out), tuple(entities))


def _mask(text: str, sp: Span, policy: PiiPolicy) -> str:
    chars = list(text[sp.start : sp.end])
    c = policy.mask_char
    if sp.type == R.NAME:
        return chars[0] + c * (len(chars) - 1) if len(chars) > 1 else c
    units = [u for u in sp.units if sp.start <= u[0] and u[1] <= sp.end]
    if not units:
        return "".join(ch if ch.isspace() else c for ch in chars)
    keep: set[int] = set()
    if sp.whole and len(units) >= 2 * max(1, policy.keep_last):
        keep.update(range(len(units) - policy.keep_last, len(units)))
        if sp.type == R.PHONE and len(units) >= 11:
            keep.update(range(policy.keep_first_phone))
    hidden: set[int] = set()
    for i, (a, b) in enumerate(units):
        if i not in keep:
            hidden.update(range(a - sp.start, b - sp.start))
    for i in range(len(chars)):
        if i in hidden:
            chars[i] = c
    # keep_first may overlap a repeated unit span (两个九); anything not hidden stays as spoken
    return "".join(chars)


class PiiState:
    """Redaction state of one call leg: sees the leg's final utterances in order.

    Not thread-safe: one leg, one thread (or one task) at a time.
    """

    def __init__(self, detector: Detector, policy: PiiPolicy) -> None:
        self._detector = detector
        self._policy = policy
        self._ctx = Context()

    def redact_final(self, text: str, at_ms: int | None = None) -> Redaction:
        """Redact a final utterance and remember what it leaves open for the next one.

        Args:
            text: the utterance as recognised.
            at_ms: when the utterance ended in the call (enables ``policy.max_pending_ms``), if known.
        Returns:
            The redacted utterance.
        """
        if not self._policy.enabled:
            return Redaction(text, ())
        spans, self._ctx = self._detector.detect(text, self._ctx, at_ms)
        return _apply(text, [s for s in spans if s.type in self._policy.types], self._policy)

    def redact_partial(self, text: str, at_ms: int | None = None) -> Redaction:
        """Redact a partial hypothesis of the current utterance; the state is read, not changed. A trailing
        digit run of ``policy.min_digits`` or more is masked (it may be a number still being spoken)."""
        if not self._policy.enabled:
            return Redaction(text, ())
        spans, _ = self._detector.detect(text, self._ctx, at_ms)
        return _apply(text, [s for s in spans if s.type in self._policy.types], self._policy)

    def update(self, text: str, at_ms: int | None = None) -> Redaction:
        """The analysis-stage spelling of `redact_final`."""
        return self.redact_final(text, at_ms)

    def end(self, call_info: object | None = None) -> None:
        """End of the call (the analysis-stage hook): forget everything; nothing is pending across calls.
        Returns nothing: pieces already emitted were redacted when they were emitted."""
        self.reset()

    def reset(self) -> None:
        """Forget the call context (pending values, last cue)."""
        self._ctx = Context()


class PiiRedactor:
    """Per-process PII redactor: rules compiled and the LAC model loaded once; makes per-leg states.

    Args:
        policy: what to redact and how.
        tagger: the lexical analyser for NAME/ADDRESS (default: the shared LAC model when
            ``policy.use_model`` and either type is wanted).
    """

    def __init__(self, policy: PiiPolicy | None = None, tagger: Tagger | None = None) -> None:
        self.policy = policy or PiiPolicy()
        wants_model = self.policy.enabled and self.policy.use_model and bool({R.NAME, R.ADDRESS} & self.policy.types)
        if tagger is None and wants_model:
            tagger = lac_model()
        self._detector = Detector(self.policy, tagger if wants_model else None)

    def new_state(self) -> PiiState:
        """State for one call leg."""
        return PiiState(self._detector, self.policy)

    def redact(self, text: str) -> Redaction:
        """Redact one text on its own (no call context)."""
        return self.new_state().redact_final(text)
