"""Numbers: PHONE, ID_CARD, BANK_CARD and VERIFICATION_CODE from digit runs in any script.

A run is typed by the nearest cue word (手机, 身份证, 卡号, 验证码; 订单号, 工号, 余额 … say *not* PII), then by
shape and checksum (mobile prefixes, GB 11643 ID check digit and birth date, Luhn), never by checksum alone.
Hotlines (95588, 10086, 12315, 400-…), amounts, dates, quantities and codes glued to letters survive.
"""

from __future__ import annotations

import re

import speechsvc.analysis.pii.rules as R
from speechsvc.analysis.itn import DigitRun
from speechsvc.analysis.pii.context import Context, Cue, Found, Pending, Span, Utterance, incomplete, trailing
from speechsvc.analysis.pii.policy import PiiPolicy


def number_spans(u: Utterance, run: DigitRun, ctx: Context, policy: PiiPolicy) -> list[Found]:
    """The spans of one digit run (two when a value is said twice), each with what it leaves open."""
    kind, piece = cue_for(run, u.runs, u.cues, u.text)
    if kind == R.PIECE:
        kind = ctx.topic[0] if ctx.topic and ctx.topic[0] in R.NUMBER_TYPES else R.BANK_CARD
    if kind == R.NEG:
        return []
    if kind in R.NUMBER_TYPES:
        typed = _with_cue(u, run, kind, piece)
    else:
        typed = _without_cue(u, run, kind, ctx, policy)
    if typed is None:
        return []
    typ, score, piece = typed[0], typed[1], piece or typed[2]
    if typ not in R.NUMBER_TYPES:
        return []
    d = run.digits
    if (typ == R.ID_CARD and R.id_checksum_ok(d)) or (typ == R.BANK_CARD and R.luhn_ok(d)):
        score = min(1.0, score + 0.05)  # a valid checksum raises confidence; an invalid one never vetoes
    return _pieces(u, run, typ, score, piece)


def _with_cue(u: Utterance, run: DigitRun, kind: str, piece: bool) -> tuple[str, float, bool] | None:
    """A run named by a cue of a number type (手机 / 身份证 / 卡号 / 验证码)."""
    d = run.digits
    if kind == R.PHONE and _hotline(run):
        return None
    if negative_context(u.text, run) and not (len(d) >= 7 and not run.arabic):
        return None
    if kind == R.VERIFICATION_CODE and not (trailing(u.text, run.end) or 4 <= len(d) <= 8):
        return None
    shape = shape_of(run)
    if shape is not None and shape != kind and kind == R.PHONE and not piece:
        return shape, 0.8, False  # 电话 … then an 18-digit ID: the shape is the better witness
    if shape == R.PHONE and kind == R.BANK_CARD and not piece:
        return shape, 0.8, False  # 副卡号码 + a mobile number: a card number is never 11 digits
    return kind, 0.9 if shape == kind else 0.8, False


def _without_cue(
    u: Utterance, run: DigitRun, kind: str | None, ctx: Context, policy: PiiPolicy
) -> tuple[str, float, bool] | None:
    """A run with a weak cue (号码), a cue of another type, or none: shape, then the call's topic, then a
    conservative guess for a long run at the end of the utterance."""
    if kind not in (R.WEAK, None, R.EMAIL, R.PASSPORT, R.LICENSE_PLATE):
        return None
    if _hotline(run) or negative_context(u.text, run):
        return None
    d = run.digits
    ends = trailing(u.text, run.end)
    shape = shape_of(run)
    if shape is not None:
        return shape, 0.9 if kind == R.WEAK else 0.8, False
    if kind == R.WEAK and (3 <= len(d) <= 12 or ends):
        return R.PHONE, 0.7, False
    recent = ctx.topic is not None and u.turn - ctx.topic[1] <= policy.max_pending_turns
    if (
        kind is None and recent and ctx.topic is not None and ctx.topic[0] in R.NUMBER_TYPES and len(d) >= 3
        and R.LEAD_IN.match(u.text[: run.start]) is not None and ends
    ):
        return ctx.topic[0], 0.6, True  # a bare dictated piece after the cue was given
    if ends and len(d) >= policy.min_digits and kind in (None, R.WEAK) and not (
        recent and ctx.topic is not None and ctx.topic[0] == R.NEG
    ):
        return guess(d, ctx, u.turn, policy), 0.5, False  # conservative: may be the start of a number
    return None


def _pieces(u: Utterance, run: DigitRun, typ: str, score: float, piece: bool) -> list[Found]:
    out: list[Found] = []
    ends = trailing(u.text, run.end)
    for part in repeats(run):
        whole = not piece and not incomplete(typ, part.digits)
        span = Span(typ, *with_prefix(u.text, part, typ), score, part.char_spans, whole)
        nxt = None
        if (part is run or part.end == run.end) and ends and not piece and incomplete(typ, part.digits):
            nxt = Pending(typ, part.digits, u.turn, None, guessed=score <= 0.5)
        out.append((span, nxt))
    return out


def _hotline(run: DigitRun) -> bool:
    return R.HOTLINE.fullmatch(run.digits.rstrip("X")) is not None


def cue_for(run: DigitRun, runs: list[DigitRun], cues: list[Cue], text: str = "") -> tuple[str | None, bool]:
    """(cue kind, is a piece) for a run: the nearest cue before it in the same stretch, else one right after
    (not an extension word: 0755-2666 1234 分机 802 is a phone with its extension; not a business word after a
    mobile number: 13812345678 的话费)."""
    before = [
        c for c in cues
        if c.end <= run.start and run.start - c.end <= R.CUE_WINDOW
        and not any(o is not run and o.start >= c.end and o.end <= run.start for o in runs)
    ]
    mobile = R.MOBILE.fullmatch(run.digits) is not None
    after = [
        c for c in cues
        if c.start >= run.end and c.kind != R.PIECE and text[c.start : c.end] not in R.EXTENSION_WORDS
        and not (c.kind == R.NEG and mobile)  # 13812345678 的话费: the bill of that phone
        and c.start - run.end <= (R.AFTER_WINDOW if c.kind not in (R.NEG, R.WEAK) else 4)  # … 这个号码
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


def negative_context(t: str, run: DigitRun) -> bool:
    """Amount, date, quantity, code glued to letters: not an identifier."""
    before = t[run.start - 1] if run.start > 0 else ""
    after = t[run.end : run.end + 2]
    if before in R.CURRENCY_BEFORE or (before.isascii() and before.isalpha()):
        return True
    if after[:1].isascii() and after[:1].isalpha() and after[:1] not in "Xx":
        return True
    return any(after.startswith(u) for u in R.UNITS_AFTER)


def shape_of(run: DigitRun) -> str | None:
    """The type a run's digits have on their own (mobile, landline with a gap after the area code, a
    plausible resident ID, a Luhn-valid card), else None."""
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


def guess(d: str, ctx: Context, turn: int, policy: PiiPolicy) -> str:
    """The type of an unexplained run masked conservatively: the call's recent topic, else by its digits."""
    if ctx.topic and ctx.topic[0] in R.NUMBER_TYPES and turn - ctx.topic[1] <= policy.max_pending_turns:
        return ctx.topic[0]
    if re.match(r"1[3-9]|0[1-9]", d):
        return R.PHONE
    if len(d) >= 15 or d.startswith("62"):
        return R.BANK_CARD
    return R.PHONE


def repeats(run: DigitRun) -> list[DigitRun]:
    """A value said twice for confirmation (6042 六零四二) is two values."""
    d = run.digits
    half = len(d) // 2
    if len(d) % 2 == 0 and half >= 4 and d[:half] == d[half:] and half in run.breaks:
        return [run.slice(0, half), run.slice(half, len(d))]
    return [run]


def with_prefix(t: str, run: DigitRun, typ: str) -> tuple[int, int]:
    """Span of a run; a phone number's "+" (also heard as 加: 加八六) or opening bracket belongs to it."""
    s = run.start
    if typ == R.PHONE:
        while s > 0 and t[s - 1] in "+(（":
            s -= 1
        if s == run.start and s > 0 and t[s - 1] == "加" and run.digits.startswith("86"):
            s -= 1
    return s, run.end


def extension(u: Utterance, phone: Span) -> DigitRun | None:
    """The extension said right after a phone number (转 802, 分机 0793, -8021), else None."""
    nxt = next((r for r in u.runs if r.start >= phone.end), None)
    if nxt is None or not 2 <= len(nxt.digits) <= 6 or R.EXTENSION.match(u.text[phone.end : nxt.start]) is None:
        return None
    return nxt
