"""What the detector's families share: found spans, values left open for the next utterance, the call
context, cue words, and small text helpers. Internal to the package."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import speechsvc.analysis.pii.rules as R
from speechsvc.analysis.itn import DIGITS, DigitRun
from speechsvc.analysis.pii.model import Token


@dataclass(frozen=True)
class Span:
    type: str
    start: int
    end: int
    score: float
    units: tuple[tuple[int, int], ...] = ()  # characters of the value itself (digits, letters) for mask style
    whole: bool = True  # the complete value in this utterance (mask style may keep some digits clear)


@dataclass(frozen=True)
class Pending:
    """A value begun in one utterance whose rest is expected in the next."""

    type: str
    value: str  # digits / letters collected so far ("" after a bare cue such as 我的电话是)
    turn: int  # utterance number of the last piece
    at_ms: int | None  # when the last piece ended, if known
    guessed: bool = False  # opened by a conservative mask (type guessed)


@dataclass(frozen=True)
class Context:
    """What a call's earlier utterances leave for the next one."""

    turn: int = 0
    pending: Pending | None = None
    topic: tuple[str, int] | None = None  # last cue kind mentioned in the call and its utterance number


@dataclass(frozen=True)
class Cue:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Utterance:
    """One utterance as the families read it: folded text, digit runs, cue words, LAC tokens."""

    text: str  # folded (same length as the original)
    turn: int
    at_ms: int | None
    runs: list[DigitRun]
    cues: list[Cue]
    tokens: list[Token]


Found = tuple[Span, Pending | None]  # a span and what it leaves open (None: nothing)


@dataclass
class Findings:
    """Spans found so far in one utterance, the regions they explain, and what they leave open."""

    spans: list[Span] = field(default_factory=list)
    taken: list[tuple[int, int]] = field(default_factory=list)  # regions whose digit runs are explained
    pendings: list[tuple[int, Pending]] = field(default_factory=list)  # (end of the piece, what it leaves open)

    def overlaps(self, start: int, end: int) -> bool:
        return any(a < end and start < b for a, b in self.taken)

    def add(self, span: Span, nxt: Pending | None, u: Utterance | None = None, explains: bool = True) -> None:
        """Record a span; ``u`` given: the pending value is stamped with the utterance's turn and time."""
        self.spans.append(span)
        if explains:
            self.taken.append((span.start, span.end))
        if nxt is not None:
            self.pendings.append((span.end, replace(nxt, turn=u.turn, at_ms=u.at_ms) if u is not None else nxt))


def _cue_regex() -> tuple[re.Pattern[str], dict[str, str]]:
    kinds: dict[str, str] = {}
    for kind, words in R.CUES.items():
        for w in words:
            kinds.setdefault(w.lower(), kind)
    ordered = sorted(kinds, key=len, reverse=True)  # longest first: 身份证号码 before 号码
    return re.compile("|".join(re.escape(w) for w in ordered), re.IGNORECASE), kinds


_CUE_RE, _CUE_KIND = _cue_regex()
LEAD_RE = re.compile(r"^(?:[\s,，。、:：]|呃|嗯|啊|额|哦|对|然后|接着|后面是|还有|就是)*")
HAN = re.compile(r"^[\u4e00-\u9fff·]+$")


def find_cues(t: str) -> list[Cue]:
    return [Cue(_CUE_KIND[m.group(0).lower()], m.start(), m.end()) for m in _CUE_RE.finditer(t)]


def window_has(cues: list[Cue], kind: str, pos: int, window: int = R.CUE_WINDOW) -> bool:
    """A cue of ``kind`` ends at most ``window`` characters before ``pos``."""
    return any(c.kind == kind and c.end <= pos and pos - c.end <= window for c in cues)


def digit_fold(t: str) -> str:
    """Each digit character → its ASCII digit, one for one (for plate and passport shapes)."""
    return "".join(DIGITS.get(c, c) for c in t)


def trailing(t: str, end: int) -> bool:
    """Only fillers, particles and punctuation after ``end``."""
    return R.TRAILING.match(t[end:]) is not None


def units_of(t: str, start: int, end: int) -> tuple[tuple[int, int], ...]:
    return tuple((i, i + 1) for i in range(start, end) if t[i].isalnum() and t[i] not in "呃嗯啊哦对不是")


def incomplete(kind: str, value: str) -> bool:
    """A value of ``kind`` this long may still go on (its rest expected in the next utterance)."""
    lo, hi = R.expected_length(kind, value)
    if kind == R.BANK_CARD:
        return len(value) < lo or (len(value) < hi and not R.luhn_ok(value))
    if kind == R.PASSPORT:
        return sum(c.isdigit() for c in value) < 8 and len(value) < hi
    return len(value) < lo


def resolve(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans, higher score (then longer) first, returned in text order."""
    chosen: list[Span] = []
    for sp in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if all(sp.end <= c.start or c.end <= sp.start for c in chosen):
            chosen.append(sp)
    return sorted(chosen, key=lambda s: s.start)
