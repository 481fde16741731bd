"""The detector: one utterance, given what the call's earlier utterances left, → PII spans and the new context.

Each family reads the utterance on its own (`numbers`, `shapes`, `names`, `addresses`); the detector runs
them in order of confidence — a pending value's continuation, then shapes, then the model's families, then
the digit runs nobody has explained — resolves overlaps, and works out what stays open for the next utterance.
Pure apart from the shared model.
"""

from __future__ import annotations

import re
from dataclasses import replace

import speechsvc.analysis.pii.rules as R
from speechsvc.analysis.itn import digit_runs, fold
from speechsvc.analysis.pii.addresses import addresses
from speechsvc.analysis.pii.context import (
    LEAD_RE,
    Context,
    Findings,
    Found,
    Pending,
    Span,
    Utterance,
    find_cues,
    incomplete,
    resolve,
    trailing,
)
from speechsvc.analysis.pii.heard import heard_digits
from speechsvc.analysis.pii.model import Tagger, tokens
from speechsvc.analysis.pii.names import ends_with_name_cue, leading_name, names
from speechsvc.analysis.pii.numbers import extension, number_spans
from speechsvc.analysis.pii.policy import PiiPolicy
from speechsvc.analysis.pii.shapes import alnum_codes, email_tail, emails, passports, plate_tail, plates

_HAN_CHAR = re.compile(r"[\u4e00-\u9fff]")


class Detector:
    """Finds PII spans in one utterance given the call context."""

    def __init__(self, policy: PiiPolicy, tagger: Tagger | None) -> None:
        self.policy = policy
        self.tagger = tagger

    def detect(self, text: str, ctx: Context, at_ms: int | None) -> tuple[list[Span], Context]:
        """The spans of ``text`` (offsets into it) and the context the next utterance starts from."""
        u = self._read(text, ctx, at_ms)
        pending = self._alive(ctx.pending, u)
        found = Findings()
        if pending is not None and self._continue(u, pending, found):
            pending = None
        self._shapes(u, found)
        self._model_families(u, found)
        self._numbers(u, ctx, found)
        spans = resolve(found.spans)
        return spans, self._next_context(u, ctx, spans, found, pending)

    # ------------------------------------------------------------ steps

    def _read(self, text: str, ctx: Context, at_ms: int | None) -> Utterance:
        # Folding to Simplified must not rewrite a Simplified surname (OpenCC's t2s turns 沈 into 沉).
        t = "".join(c if c in R.SURNAMES else f for c, f in zip(text, fold(text), strict=True))
        toks = tokens(self.tagger, t) if self.tagger is not None and _HAN_CHAR.search(t) else []
        return Utterance(t, ctx.turn + 1, at_ms, digit_runs(heard_digits(text)), find_cues(t), toks)

    def _alive(self, pending: Pending | None, u: Utterance) -> Pending | None:
        """The pending value, unless it waited too many utterances or too long."""
        if pending is None:
            return None
        waited = u.at_ms - pending.at_ms if u.at_ms is not None and pending.at_ms is not None else 0
        too_late = waited > self.policy.max_pending_ms
        if u.turn - pending.turn > self.policy.max_pending_turns + 1 or too_late:
            return None
        return pending

    def _continue(self, u: Utterance, pending: Pending, found: Findings) -> bool:
        cont = continuation(u, pending)
        if cont is None:
            return False
        span, nxt = cont
        found.add(span, nxt)
        return True

    def _shapes(self, u: Utterance, found: Findings) -> None:
        heard = heard_digits(u.text, letters=True)  # a plate or code as the recognizer spells it: 京Z 八六动E六
        shaped = [*emails(u.text, u.cues), *plates(heard, u.cues), *passports(heard, u.cues)]
        for span, nxt in [*shaped, *alnum_codes(heard, u.cues)]:
            if not found.overlaps(span.start, span.end):
                found.add(span, nxt, u)

    def _model_families(self, u: Utterance, found: Findings) -> None:
        if u.tokens and R.ADDRESS in self.policy.types:
            for span, nxt in addresses(u.text, u.tokens, found.taken):
                found.add(span, nxt, u)
        if R.NAME in self.policy.types:  # without the model (no tokens): names by the rules alone
            for span in names(u.text, u.tokens, found.taken):
                found.add(span, None, explains=False)

    def _numbers(self, u: Utterance, ctx: Context, found: Findings) -> None:
        extensions: set[int] = set()
        for run in u.runs:
            if found.overlaps(run.start, run.end) or run.start in extensions:
                continue
            for span, nxt in number_spans(u, run, ctx, self.policy):
                ext = extension(u, span) if span.type == R.PHONE and span.whole else None
                if ext is not None:  # the extension is part of the number (转 802)
                    extensions.add(ext.start)
                    span, nxt = replace(span, end=ext.end, units=span.units + ext.char_spans), None
                found.add(span, nxt, u, explains=False)

    def _next_context(
        self, u: Utterance, ctx: Context, spans: list[Span], found: Findings, pending: Pending | None
    ) -> Context:
        kept = {s.end for s in spans}
        new_pending = None
        for end, p in sorted(found.pendings, key=lambda x: x[0]):
            if trailing(u.text, end) and end in kept:
                new_pending = p
        if new_pending is None:
            new_pending = _bare_cue_pending(u)
        if new_pending is None and R.NAME in self.policy.types and ends_with_name_cue(u.text):
            new_pending = Pending(R.NAME, "", u.turn, u.at_ms)
        if new_pending is None and pending is not None and not spans:
            new_pending = pending  # a context turn inside a dictation (等一下 我看一下卡上面)
        topic = ctx.topic
        typed = [c for c in u.cues if c.kind != R.PIECE]
        if typed:
            topic = (typed[-1].kind, u.turn)
        return Context(turn=u.turn, pending=new_pending, topic=topic)


def continuation(u: Utterance, p: Pending) -> Found | None:
    """The piece of a pending value at the start of this utterance, and what it still leaves open."""
    t = u.text
    if p.type in R.NUMBER_TYPES or p.type == R.PASSPORT:
        return _digits_continuation(u, p)
    start = LEAD_RE.match(t).end()  # type: ignore[union-attr]
    if p.type == R.EMAIL:
        return email_tail(t, start, u.turn, u.at_ms)
    if p.type == R.LICENSE_PLATE:
        return plate_tail(t, start)
    if p.type == R.NAME:
        name = leading_name(t, start)
        return None if name is None else (name, None)
    if p.type == R.ADDRESS and u.tokens:
        for span, _ in addresses(t, u.tokens, [], continuing=True):
            if R.LEAD_IN.match(t[: span.start]) is not None:
                nxt = Pending(R.ADDRESS, "x", u.turn, u.at_ms) if trailing(t, span.end) else None
                return replace(span, whole=False), nxt
    return None


def _digits_continuation(u: Utterance, p: Pending) -> Found | None:
    """The next digits of a number (or a passport's) begun before: the utterance's first digit run, after at
    most a few lead-in words (对 后面是 …)."""
    if not u.runs or R.LEAD_IN.match(u.text[: u.runs[0].start]) is None or (p.type == R.PASSPORT and not p.value):
        return None
    run = u.runs[0]
    value = p.value + run.digits
    span = Span(p.type, run.start, run.end, 0.5 if p.guessed else 0.85, run.char_spans, whole=False)
    if trailing(u.text, run.end) and incomplete(p.type, value):
        return span, Pending(p.type, value, u.turn, u.at_ms, p.guessed)
    return span, None


def _bare_cue_pending(u: Utterance) -> Pending | None:
    """A cue with nothing after it (我的电话是 / 要填个验证码): its value comes in the next utterance."""
    if not u.cues:
        return None
    last = u.cues[-1]
    if last.kind in (R.NEG, R.PIECE, R.WEAK) or not trailing(u.text, last.end):
        return None
    return Pending(last.kind, "", u.turn, u.at_ms)
