"""Values known by their shape: EMAIL (艾特 / 点 com in any spoken form), LICENSE_PLATE (province + letter +
5–6 characters), PASSPORT (E/G/C + 8 digits, E + letter + 7 digits), letter-and-digit VERIFICATION_CODEs after
a code cue, over a digit-folded text; and the tail of each when it was begun in the previous utterance."""

from __future__ import annotations

import re

import speechsvc.analysis.pii.rules as R
from speechsvc.analysis.pii.context import Cue, Found, Pending, Span, digit_fold, units_of, window_has


def emails(t: str, cues: list[Cue]) -> list[Found]:
    f = digit_fold(t)
    out: list[Found] = []
    for m in R.EMAIL_RE.finditer(f):
        s, e = m.start(1), m.end(2)
        out.append((Span(R.EMAIL, s, e, 0.95, units_of(t, s, e)), None))
    if not out:
        head = R.EMAIL_HEAD.search(f)
        if head is not None and window_has(cues, R.EMAIL, head.start(1)):
            s, e = head.start(1), head.end(1)
            out.append((Span(R.EMAIL, s, e, 0.8, whole=False), Pending(R.EMAIL, "x", 0, None)))
    return out


def plates(t: str, cues: list[Cue]) -> list[Found]:
    f = digit_fold(t)
    out: list[Found] = []
    for m in R.PLATE.finditer(f):
        if not any(c.isdigit() for c in m.group(3)):
            continue
        e = m.start(1) + len(m.group(0).rstrip())
        out.append((Span(R.LICENSE_PLATE, m.start(1), e, 0.9), None))
    if not out:
        head = R.PLATE_HEAD.search(f)
        if head is not None and window_has(cues, R.LICENSE_PLATE, head.start(1)):
            s, e = head.start(1), head.start(1) + len(head.group(0).rstrip())
            out.append((Span(R.LICENSE_PLATE, s, e, 0.8, whole=False), Pending(R.LICENSE_PLATE, "x", 0, None)))
    return out


def passports(t: str, cues: list[Cue]) -> list[Found]:
    f = digit_fold(t)
    out: list[Found] = []
    for m in R.PASSPORT_SHAPE.finditer(f):
        cue = window_has(cues, R.PASSPORT, m.start(1))
        if cue or R.PASSPORT_STRONG.fullmatch(m.group(1)):
            s, e = m.start(1), m.start(1) + len(m.group(1).rstrip())
            out.append((Span(R.PASSPORT, s, e, 0.9 if cue else 0.75, units_of(t, s, e)), None))
    if not out:
        head = R.PASSPORT_HEAD.search(f)
        if head is not None and window_has(cues, R.PASSPORT, head.start(1)):
            s, e = head.start(1), head.start(1) + len(head.group(0).rstrip())
            value = re.sub(r"\s", "", f[s:e])
            out.append((Span(R.PASSPORT, s, e, 0.8, whole=False), Pending(R.PASSPORT, value, 0, None)))
    return out


def alnum_codes(t: str, cues: list[Cue]) -> list[Found]:
    """Verification codes of letters and digits (EQ28F, 3 Y 4 W W) right after a code cue; codes of digits
    only are the number family's."""
    f = digit_fold(t)
    out: list[Found] = []
    for m in R.ALNUM_CODE.finditer(f):
        value = m.group(1).replace(" ", "")
        spelled = value.isalpha() and " " in m.group(1)  # Y V A X W: letters read one by one
        cued = window_has(cues, R.VERIFICATION_CODE, m.start(1), 6)
        if value.isdigit() or (value.isalpha() and not spelled) or not cued:
            continue
        s, e = m.start(1), m.end(1)
        out.append((Span(R.VERIFICATION_CODE, s, e, 0.85, units_of(t, s, e)), None))
    return out


def email_tail(t: str, start: int, turn: int, at_ms: int | None) -> Found | None:
    """The rest of an e-mail address begun in the previous utterance, from ``start``."""
    m = R.EMAIL_TAIL.match(t[start:])
    if m is None or not m.group(1).strip():
        return None
    s, e = start + m.start(1), start + m.end(1)
    e = s + len(t[s:e].rstrip())
    done = re.search(rf"{R.DOT} ?{R.TLD}\s*$", t[s:e], re.IGNORECASE) is not None
    return Span(R.EMAIL, s, e, 0.8, whole=False), None if done else Pending(R.EMAIL, "x", turn, at_ms)


def plate_tail(t: str, start: int) -> Found | None:
    """The rest of a plate begun in the previous utterance (its province and letter), from ``start``."""
    m = R.PLATE_TAIL.match(digit_fold(t[start:]))
    if m is None or not any(c.isdigit() for c in m.group(1)):
        return None
    s, e = start + m.start(1), start + m.start(1) + len(m.group(1).rstrip())
    return Span(R.LICENSE_PLATE, s, e, 0.8, whole=False), None
