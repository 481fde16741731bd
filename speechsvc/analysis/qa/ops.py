"""Evaluation of the rule operators of :mod:`.qa_rules` over one call, incrementally.

Utterances reach a node in their final time order (the caller, :class:`~speechsvc.analysis.qa.QaCall`, holds
them back until no earlier one can still arrive) together with a *horizon*: no utterance still to come
starts before it. A node answers each step with a :class:`Verdict` only once nothing that can still come
would change it (three-valued, monotone), so a rule decided live is decided exactly as the whole call
decides it afterwards. At the call's end every node decides.

Per call and single-threaded: one node tree per call, fed by its owner.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from speechsvc.analysis.qa import rules as spec
from speechsvc.analysis.record import CallEnd, Role, Utterance
from speechsvc.types import Leg

# ---- evidence and verdicts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QaEvidence:
    """Why a rule decided as it did: an utterance (and what matched in it), or a span of the call
    (a silence: utterance None, leg = who spoke last before it)."""

    utterance: int | None
    leg: Leg | None
    start_ms: int
    end_ms: int
    text: str
    cue: str


@dataclass(frozen=True)
class Verdict:
    # True / False, or None: not applicable (what decides it is missing, e.g. who hung up).
    value: bool | None
    evidence: tuple[QaEvidence, ...] = ()
    # Why, when evidence alone does not say (a requirement never met, the figure measured).
    note: str = ""


NOT_APPLICABLE = Verdict(None)
W = TypeVar("W")


# ---- utterances as the operators see them -------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[a-z0-9]+")


def speech_units(form: str) -> int:
    """Characters of Chinese plus words of Latin script (digits included) in a match-form text."""
    return len(_CJK.findall(form)) + len(_LATIN_WORD.findall(form))


@dataclass(eq=False)
class Utt:
    """A settled utterance: its place in the call's time order and its derived forms."""

    u: Utterance
    # 0-based position in the call's time order (both legs).
    pos: int
    # match_form of the text.
    form: str
    units: int
    embedding: np.ndarray | None = None
    # Matcher results for this utterance, by id(matcher): a cue or None.
    hits: dict[int, str | None] = field(default_factory=dict)

    def evidence(self, cue: str) -> QaEvidence:
        u = self.u
        return QaEvidence(u.index, u.leg, u.start_ms, u.end_ms, u.text, cue)


def plays(leg: str, role: Role) -> bool:
    return role == "any" or leg == role


class Matching:
    """Utterance matchers, with the example embeddings of every ``similar`` matcher (computed once per
    rules load) and a per-utterance cache, so a matcher named in several rules runs once per utterance."""

    def __init__(self, examples: Mapping[int, np.ndarray]) -> None:
        # id(SimilarMatch) -> (n_examples, dim) L2-normalised example embeddings.
        self.examples = examples

    def __call__(self, m: spec.Matcher, utt: Utt) -> str | None:
        key = id(m)
        if key in utt.hits:
            return utt.hits[key]
        cue = self._match(m, utt)
        if cue is not None and m.name:
            cue = f"{m.name}({cue})"
        utt.hits[key] = cue
        return cue

    def _match(self, m: spec.Matcher, utt: Utt) -> str | None:
        u = utt.u
        if not plays(u.leg, m.role) or (m.within_first_s is not None and u.start_ms >= m.within_first_s * 1000):
            return None
        if isinstance(m, spec.KeywordMatch):
            return _words(utt.form, m.any, m.all, m.none, lambda w, t: w if w in t else None, "keyword")
        if isinstance(m, spec.RegexMatch):
            return _words(utt.form, m.any, m.all, m.none, _search, "regex")
        if isinstance(m, spec.SimilarMatch):
            if utt.embedding is None:
                return None
            sims = self.examples[id(m)] @ utt.embedding
            best = int(np.argmax(sims))
            return f"similar:{float(sims[best]):.2f}:{m.examples[best]}" if sims[best] >= m.threshold else None
        if isinstance(m, spec.IntentMatch):
            p = u.intent_probability if u.intent_probability is not None else 1.0
            return f"intent:{u.intent}:{p:.2f}" if u.intent in m.labels and p >= m.min_probability else None
        if isinstance(m, spec.EmotionMatch):
            if m.labels and u.emotion not in m.labels:
                return None
            if m.p_angry_above is not None and (u.p_angry_smoothed is None or u.p_angry_smoothed < m.p_angry_above):
                return None
            if m.arousal_above is not None and (u.arousal is None or u.arousal < m.arousal_above):
                return None
            return f"emotion:{u.emotion}:p_angry={u.p_angry_smoothed}:arousal={u.arousal}"
        if isinstance(m, spec.NegativityMatch):
            v = u.negativity
            if v is None or (m.above is not None and v < m.above) or (m.below is not None and v > m.below):
                return None
            return f"negativity:{v:.2f}"
        if isinstance(m, spec.MatchAnd):
            cues = []
            for child in m.children:
                cue = self(child, utt)
                if cue is None:
                    return None
                cues.append(cue)
            return " & ".join(cues)
        if isinstance(m, spec.MatchOr):
            return next((cue for child in m.children if (cue := self(child, utt)) is not None), None)
        if isinstance(m, spec.MatchNot):
            return None if self(m.child, utt) is not None else "not"
        raise TypeError(f"unknown matcher {type(m).__name__}")


def _search(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return found.group() if found else None


def _words(form: str, any_: tuple[W, ...], all_: tuple[W, ...], none: tuple[W, ...],
           find: Callable[[W, str], str | None], kind: str) -> str | None:
    hits = []
    if any_:
        first = next((h for w in any_ if (h := find(w, form)) is not None), None)
        if first is None:
            return None
        hits.append(first)
    for w in all_:
        h = find(w, form)
        if h is None:
            return None
        hits.append(h)
    if any(find(w, form) is not None for w in none):
        return None
    return f"{kind}:{'+'.join(hits)}" if hits else f"{kind}:none"


# ---- the call as nodes see it ---------------------------------------------------------------------------


@dataclass
class CallState:
    """What one call has settled so far."""

    legs: tuple[Leg, ...]
    match: Matching
    utts: list[Utt] = field(default_factory=list)
    # No utterance still to come starts before this (ms).
    horizon_ms: int = 0
    end: CallEnd | None = None


class Node:
    """One operator of one rule for one call. ``step`` returns the verdict once it is certain, else None;
    after that it is not asked again."""

    def step(self, call: CallState) -> Verdict | None:
        raise NotImplementedError


def build(c: spec.Condition) -> Node:
    """The per-call node tree of a condition."""
    if isinstance(c, spec.Exists):
        return ExistsNode(c)
    if isinstance(c, spec.Sequence):
        return SequenceNode(c)
    if isinstance(c, spec.Repeat):
        return RepeatNode(c)
    if isinstance(c, spec.Silence):
        return SilenceNode(c)
    if isinstance(c, spec.SpeakingRate):
        return RateNode(c)
    if isinstance(c, spec.Interruption):
        return InterruptionNode(c)
    if isinstance(c, spec.Hangup):
        return HangupNode(c)
    if isinstance(c, spec.Duration):
        return DurationNode(c)
    if isinstance(c, spec.CallAnd | spec.CallOr):
        return LogicNode([build(child) for child in c.children], isinstance(c, spec.CallAnd))
    if isinstance(c, spec.CallNot):
        return NotNode(build(c.child))
    raise TypeError(f"unknown condition {type(c).__name__}")


class LogicNode(Node):
    """``and`` / ``or`` in Kleene's three-valued logic: one decisive child decides; otherwise all must
    decide, and a not-applicable child makes the whole not applicable."""

    def __init__(self, children: list[Node], conjunction: bool) -> None:
        self.children = children
        self.conjunction = conjunction
        self.verdicts: list[Verdict | None] = [None] * len(children)

    def step(self, call: CallState) -> Verdict | None:
        decisive = not self.conjunction
        for i, child in enumerate(self.children):
            if self.verdicts[i] is None:
                self.verdicts[i] = child.step(call)
            v = self.verdicts[i]
            if v is not None and v.value is decisive:
                return v
        if any(v is None for v in self.verdicts):
            return None
        done = [v for v in self.verdicts if v is not None]
        if any(v.value is None for v in done):
            return NOT_APPLICABLE
        return Verdict(not decisive, tuple(e for v in done for e in v.evidence),
                       "; ".join(v.note for v in done if v.note))


class NotNode(Node):
    def __init__(self, child: Node) -> None:
        self.child = child

    def step(self, call: CallState) -> Verdict | None:
        v = self.child.step(call)
        if v is None or v.value is None:
            return v
        return Verdict(not v.value, v.evidence, v.note)


class ExistsNode(Node):
    """Some utterance matches. Without within_last_s: true at the first match; false once within_first_s
    (the node's or the matcher's) has passed, or at the end. With within_last_s: at the end (the end is not
    known before)."""

    def __init__(self, c: spec.Exists) -> None:
        self.c = c
        self.seen = 0
        self.candidates: list[tuple[Utt, str]] = []
        limits = [s for s in (c.within_first_s, c.match.within_first_s) if s is not None]
        self.first_s = min(limits) if limits else None

    def step(self, call: CallState) -> Verdict | None:
        c, first_s = self.c, self.first_s
        for utt in call.utts[self.seen:]:
            self.seen += 1
            if first_s is not None and utt.u.start_ms >= first_s * 1000:
                continue
            cue = call.match(c.match, utt)
            if cue is not None:
                if c.within_last_s is None:
                    return Verdict(True, (utt.evidence(cue),))
                self.candidates.append((utt, cue))
        what = _describe(c.match) + (f" in the first {first_s:g} s" if first_s is not None else "")
        if c.within_last_s is None and first_s is not None and call.horizon_ms >= first_s * 1000:
            return Verdict(False, note=f"no {what}")
        if call.end is None:
            return None
        if c.within_last_s is not None:
            limit = call.end.duration_ms - c.within_last_s * 1000
            hit = next(((u, cue) for u, cue in self.candidates if u.u.end_ms >= limit), None)
            if hit is not None:
                return Verdict(True, (hit[0].evidence(hit[1]),))
            return Verdict(False, note=f"no {what} in the last {c.within_last_s:g} s")
        return Verdict(False, note=f"no {what}")


def _describe(m: spec.Matcher) -> str:
    who = "" if m.role == "any" else f"{m.role} "
    return f"{who}utterance matching {m.name or type(m).__name__.removesuffix('Match').lower()}"


class SequenceNode(Node):
    def __init__(self, c: spec.Sequence) -> None:
        self.c = c
        self.seen = 0
        # Utterances matching `first` whose window is still open (present / absent="then"), or every one
        # seen (absent="first", looked back at).
        self.open: list[tuple[Utt, str]] = []
        # Positions of the utterances matching `then` (for lookback_utterances).
        self.thens: list[int] = []

    def in_window(self, a: Utt, b: Utt) -> bool:
        c = self.c
        if c.within_utterances is not None and b.pos - a.pos > c.within_utterances:
            return False
        return c.within_s is None or b.u.start_ms - a.u.end_ms <= c.within_s * 1000

    def passed_by(self, a: Utt, utt: Utt) -> bool:
        """``utt`` was the last utterance that could fall in a's window (or already fell outside it)."""
        c = self.c
        if c.within_utterances is not None and utt.pos - a.pos >= c.within_utterances:
            return True
        return c.within_s is not None and utt.u.start_ms - a.u.end_ms > c.within_s * 1000

    def answered_before(self, a: Utt) -> bool:
        """With lookback_utterances: a `then` shortly before `a` already answers it."""
        n = self.c.lookback_utterances
        return n is not None and any(0 < a.pos - p <= n for p in self.thens[-n:])

    def timed_out(self, a: Utt, call: CallState) -> bool:
        """No utterance still to come can start within a's window."""
        return self.c.within_s is not None and call.horizon_ms - a.u.end_ms > self.c.within_s * 1000

    def step(self, call: CallState) -> Verdict | None:
        c = self.c
        for utt in call.utts[self.seen:]:
            self.seen += 1
            then_cue = call.match(c.then, utt)
            if then_cue is not None:
                earlier = [(a, cue) for a, cue in self.open if self.in_window(a, utt)]
                if c.absent is None and earlier:
                    a, cue = earlier[0]
                    return Verdict(True, (a.evidence(cue), utt.evidence(then_cue)))
                if c.absent == "then":
                    self.open = [(a, cue) for a, cue in self.open if not any(a is e for e, _ in earlier)]
                if c.absent == "first" and not earlier:
                    return Verdict(True, (utt.evidence(then_cue),),
                                   f"not preceded by {_describe(c.first)}{self.window_text()}")
            if c.absent != "first":
                late = next(((a, cue) for a, cue in self.open if self.passed_by(a, utt)), None)
                if late is not None and c.absent == "then":
                    return self.not_followed(*late)
                self.open = [(a, cue) for a, cue in self.open if not self.passed_by(a, utt)]
            if then_cue is not None:
                self.thens.append(utt.pos)
            first_cue = call.match(c.first, utt)
            if first_cue is not None and not self.answered_before(utt):
                self.open.append((utt, first_cue))
        if c.absent == "then":
            late = next(((a, cue) for a, cue in self.open if self.timed_out(a, call)), None)
            if late is not None:
                return self.not_followed(*late)
        if call.end is None:
            return None
        if c.absent == "then":
            # Still waiting at the end: not followed only if then's role had a chance to answer: it spoke
            # after it, or it ended the call.
            role = c.then.role
            hung_up = role != "any" and call.end.ended_by == role
            late = next(((a, cue) for a, cue in self.open
                         if hung_up or any(plays(u.u.leg, role) for u in call.utts[a.pos + 1:])), None)
            if late is not None:
                return self.not_followed(*late, at_end=True)
        if c.absent is None:
            return Verdict(False, note=f"no {_describe(c.first)} then {_describe(c.then)}{self.window_text()}")
        return Verdict(False)

    def not_followed(self, a: Utt, cue: str, at_end: bool = False) -> Verdict:
        tail = " before the call ended" if at_end else ""
        return Verdict(True, (a.evidence(cue),), f"not followed by {_describe(self.c.then)}{self.window_text()}{tail}")

    def window_text(self) -> str:
        parts = []
        if self.c.within_utterances is not None:
            parts.append(f"{self.c.within_utterances} utterances")
        if self.c.within_s is not None:
            parts.append(f"{self.c.within_s:g} s")
        return f" within {' and '.join(parts)}" if parts else ""


def _dice(a: str, b: str) -> float:
    """Dice coefficient of character bigrams."""
    ga = [a[i : i + 2] for i in range(len(a) - 1)] or [a]
    gb = [b[i : i + 2] for i in range(len(b) - 1)] or [b]
    rest = list(gb)
    common = 0
    for g in ga:
        if g in rest:
            rest.remove(g)
            common += 1
    return 2 * common / (len(ga) + len(gb))


class RepeatNode(Node):
    def __init__(self, c: spec.Repeat) -> None:
        self.c = c
        self.seen = 0
        self.hits: list[tuple[Utt, str]] = []
        # Near-duplicate mode: groups of utterances saying the same thing (each similar to one of the others).
        self.groups: list[list[Utt]] = []

    def similar(self, a: Utt, b: Utt) -> bool:
        if self.c.similarity == "embedding":
            assert a.embedding is not None and b.embedding is not None
            return float(a.embedding @ b.embedding) >= self.c.min_similarity
        return _dice(a.form.replace(" ", ""), b.form.replace(" ", "")) >= self.c.min_similarity

    def step(self, call: CallState) -> Verdict | None:
        c = self.c
        for utt in call.utts[self.seen:]:
            self.seen += 1
            if not plays(utt.u.leg, c.role):
                continue
            if c.match is not None:
                cue = call.match(c.match, utt)
                if cue is not None:
                    self.hits.append((utt, cue))
                    if len(self.hits) >= c.min_count:
                        return Verdict(True, tuple(u.evidence(cue) for u, cue in self.hits))
                continue
            if len(utt.form.replace(" ", "")) < c.min_chars or (c.similarity == "embedding" and utt.embedding is None):
                continue
            group = next((g for g in self.groups if any(self.similar(u, utt) for u in g)), None)
            if group is None:
                self.groups.append([utt])
                continue
            group.append(utt)
            if len(group) >= c.min_count:
                return Verdict(True, tuple(u.evidence(f"repeat:{i + 1}") for i, u in enumerate(group)))
        if call.end is None:
            return None
        return Verdict(False, note=f"nothing said {c.min_count} times")


class SilenceNode(Node):
    def __init__(self, c: spec.Silence) -> None:
        self.c = c
        self.seen = 0
        # End of speech so far (any leg) and the utterance that reached it.
        self.cover_end = 0
        self.last: Utt | None = None

    def gap(self, call: CallState, start: int, end: int, after: Utt | None, before: Utt | None,
            in_progress: bool = False) -> Verdict | None:
        c = self.c
        if end - start <= c.min_s * 1000:
            return None
        if (after is None or before is None) and not c.edges:
            return None
        if c.after != "any" and (after is None or not plays(after.u.leg, c.after)):
            return None
        if c.before != "any" and (before is None or not plays(before.u.leg, c.before)):
            return None
        if c.excused_by is not None:
            # The utterances before the gap (those that started before it), of the excusing matcher's role.
            role = c.excused_by.role
            upto = before.pos if before is not None else len(call.utts)
            previous = [u for u in call.utts[:upto] if plays(u.u.leg, role)][-c.excuse_lookback:]
            if any(call.match(c.excused_by, u) is not None for u in previous):
                return None
        leg = after.u.leg if after is not None else None
        who = f" after {leg}" if leg else " at the start"
        if before is not None:
            who += f", before {before.u.leg}"
        state = " (in progress)" if in_progress else ""
        cue = f"silence {(end - start) / 1000:.1f} s{who}{state}"
        return Verdict(True, (QaEvidence(None, leg, start, end, "", cue),))

    def step(self, call: CallState) -> Verdict | None:
        for utt in call.utts[self.seen:]:
            self.seen += 1
            verdict = self.gap(call, self.cover_end, utt.u.start_ms, self.last, utt)
            if verdict is not None:
                return verdict
            if utt.u.end_ms >= self.cover_end:
                self.cover_end, self.last = utt.u.end_ms, utt
        if call.end is not None:
            verdict = self.gap(call, self.cover_end, call.end.duration_ms, self.last, None)
            return verdict or Verdict(False, note=f"no unexcused silence over {self.c.min_s:g} s")
        if self.c.edges and self.c.before == "any":
            # A gap still going on counts once the horizon is past it. Only with `edges`: without, a gap
            # counts only if someone speaks again, which the horizon cannot tell.
            return self.gap(call, self.cover_end, call.horizon_ms, self.last, None, in_progress=True)
        return None


class RateNode(Node):
    def __init__(self, c: spec.SpeakingRate) -> None:
        self.c = c
        self.seen = 0
        self.units = 0
        self.talk_ms = 0

    def outside(self, rate: float) -> bool:
        c = self.c
        return (c.above is not None and rate > c.above) or (c.below is not None and rate < c.below)

    def step(self, call: CallState) -> Verdict | None:
        c = self.c
        for utt in call.utts[self.seen:]:
            self.seen += 1
            if not plays(utt.u.leg, c.role):
                continue
            ms = max(utt.u.end_ms - utt.u.start_ms, 1)
            self.units += utt.units
            self.talk_ms += ms
            if c.per == "utterance" and utt.units >= c.min_chars:
                rate = utt.units / ms * 60000
                if self.outside(rate):
                    return Verdict(True, (utt.evidence(f"rate:{rate:.0f}/min"),))
        if call.end is None:
            return None
        if c.per == "utterance":
            return Verdict(False, note="every utterance within the rate limits")
        if self.talk_ms < c.min_talk_s * 1000:
            return Verdict(None, note=f"{c.role} spoke {self.talk_ms / 1000:.1f} s < {c.min_talk_s:g} s")
        rate = self.units / self.talk_ms * 60000
        note = f"{c.role} {rate:.0f} chars/min over {self.talk_ms / 1000:.1f} s of speech"
        if self.outside(rate):
            return Verdict(True, (QaEvidence(None, None, 0, call.end.duration_ms, "", f"rate:{rate:.0f}/min"),), note)
        return Verdict(False, note=note)


class InterruptionNode(Node):
    # Look this far back for the utterance being talked over (VAD cuts utterances at 15 s).
    LOOKBACK_MS = 60_000

    def __init__(self, c: spec.Interruption) -> None:
        self.c = c
        self.seen = 0
        self.found: list[QaEvidence] = []

    def step(self, call: CallState) -> Verdict | None:
        c = self.c
        for utt in call.utts[self.seen:]:
            self.seen += 1
            u = utt.u
            if not plays(u.leg, c.role) or utt.units < c.min_chars:
                continue
            for other in reversed(call.utts[: utt.pos]):
                o = other.u
                if o.start_ms < u.start_ms - self.LOOKBACK_MS:
                    break
                if o.leg == u.leg or not plays(o.leg, c.over) or not o.start_ms < u.start_ms < o.end_ms:
                    continue
                overlap = min(u.end_ms, o.end_ms) - u.start_ms
                if overlap >= c.min_overlap_ms:
                    self.found.append(utt.evidence(f"interrupts {o.leg} utterance {o.index} by {overlap} ms"))
                    break
            if len(self.found) >= c.min_count:
                return Verdict(True, tuple(self.found))
        if call.end is None:
            return None
        return Verdict(False, note=f"{len(self.found)} interruption(s), fewer than {c.min_count}")


class HangupNode(Node):
    def __init__(self, c: spec.Hangup) -> None:
        self.c = c

    def step(self, call: CallState) -> Verdict | None:
        end = call.end
        if end is None:
            return None
        c = self.c
        if c.by and end.ended_by is None:
            return Verdict(None, note="who hung up is unknown")
        ok = (not c.by or end.ended_by in c.by) and (c.mid_utterance is None or end.mid_utterance == c.mid_utterance)
        if c.mid_leg != "any":
            ok = ok and end.mid_utterance and end.mid_utterance_leg == c.mid_leg
        cue = f"ended by {end.ended_by or 'unknown'}"
        if end.mid_utterance:
            cue += f", {end.mid_utterance_leg} cut off"
        if not ok:
            return Verdict(False, note=cue)
        return Verdict(True, (QaEvidence(None, end.mid_utterance_leg, end.duration_ms, end.duration_ms, "", cue),))


class DurationNode(Node):
    def __init__(self, c: spec.Duration) -> None:
        self.c = c

    def step(self, call: CallState) -> Verdict | None:
        c = self.c
        if call.end is not None:
            ms = call.end.duration_ms
            ok = (c.above_s is None or ms > c.above_s * 1000) and (c.below_s is None or ms < c.below_s * 1000)
            return Verdict(ok, note=f"lasted {ms / 1000:.1f} s")
        # The call has lasted at least until the horizon.
        if c.below_s is not None and call.horizon_ms >= c.below_s * 1000:
            return Verdict(False, note=f"lasted at least {c.below_s:g} s")
        if c.below_s is None and c.above_s is not None and call.horizon_ms > c.above_s * 1000:
            return Verdict(True, note=f"lasted over {c.above_s:g} s")
        return None
