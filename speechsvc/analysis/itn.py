"""Inverse text normalisation (ITN) of numbers in Mandarin transcripts: Chinese numerals ↔ Arabic digits.

Two uses, two shapes of output:

* **Detection** (`digit_runs`, `digitize`): callers read identifiers digit by digit — 幺三八 零零幺二, 一七三 呃
  二四五八, 132-9910-2347, 两个九 — and the recognizer writes them in any mix of Arabic, full-width and Chinese
  digits, with spaces, hyphens and fillers in between. `digit_runs` finds each such run and keeps, for every
  digit, the original characters behind it, so a value found in the normalised form maps back to exact
  original offsets (the PII redactor masks those). Value readings (一百二十三, 三点八五) and words that merely
  contain a numeral (一下, 一般, 十分, 万一, 一点儿) are *not* digit runs.
* **Display** (`parse_value`, `readable`): amounts (一百二十三块五 → 123.5元), dates (二零二五年十一月三号 →
  2025年11月3号), percentages (百分之三点八五 → 3.85%) and digit strings (幺三八 → 138) for people to read.

Everything here is pure and deterministic; the only resource is OpenCC's Traditional→Simplified table, loaded
once per process. Safe to call from any thread.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

# One digit per character: Arabic, Chinese (幺 = 1 and 两 = 2 in digit-by-digit reading; 〇/○ = 0; 洞 = 0 in
# radio style, only next to other digits).
DIGITS: dict[str, str] = {
    **{str(d): str(d) for d in range(10)},
    "零": "0", "〇": "0", "○": "0", "洞": "0",
    "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
    "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
}
CHINESE_DIGITS = frozenset(c for c in DIGITS if not c.isascii())
# Multipliers of value readings (一百二十三); a Chinese digit next to one of them is part of a value, not a
# digit string.
UNITS: dict[str, int] = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}

# Characters allowed between two digits of one run (the recognizer's grouping and separators).
_SEPARATORS = frozenset(" \t\u3000-–—.,，、·•/()（）")
# Words allowed between two digits of one run: hesitations and self-corrections (132 9910 2347 哦不 2374).
FILLERS: tuple[str, ...] = (
    "我说错了", "说错了", "不好意思", "不对", "不是", "哦不", "错了", "应该是",
    "那个", "就是", "然后是", "然后", "呃", "嗯", "啊", "额", "哦", "噢", "唔", "诶", "欸", "呢", "对",
)
_MAX_GAP = 8  # characters between two digits of one run, separators and fillers together
_MAX_GAP_WORDS = 2  # filler words in one gap
# After a 1–2 digit Chinese run, a Han character that makes it a word or a quantity (一下, 一般, 三个, 两点).
# Longer runs (二零二五年) stay runs: the caller decides what a date-like run is.
_HAN = re.compile(r"[\u4e00-\u9fff]")
# Before a single Chinese digit: words that end in a numeral-looking character's neighbour (万一, 统一, 唯一, 第一).
_LEXICAL_BEFORE = frozenset("万统唯之第初单同专划合归逐整周礼拜星期")
_X_WORDS = ("艾克斯", "叉", "X", "x")  # the last character of a resident ID read aloud


@functools.lru_cache(maxsize=1)
def _t2s() -> object:
    import opencc

    return opencc.OpenCC("t2s")


def fold(text: str) -> str:
    """Width and script folding that keeps every character's position: full-width ASCII → ASCII, ideographic
    space → space, Traditional → Simplified (only where OpenCC maps character for character).

    Args:
        text: any text.
    Returns:
        A string of the same length, so offsets into it are offsets into ``text``.
    """
    chars = []
    for c in text:
        n = unicodedata.normalize("NFKC", c)
        chars.append(n if len(n) == 1 else c)
    folded = "".join(chars)
    simplified = str(_t2s().convert(folded))  # type: ignore[attr-defined]
    return simplified if len(simplified) == len(folded) else folded


@dataclass(frozen=True)
class DigitRun:
    """One digit string as read: first digit character to last, fillers and separators inside included."""

    digits: str  # ASCII digits; a resident ID's last character may be "X"
    start: int  # offset of the first digit character in the original text
    end: int  # offset just past the last digit character
    char_spans: tuple[tuple[int, int], ...]  # original characters behind each digit (两个九 → 两个, 九)
    breaks: tuple[int, ...]  # digit indices where a gap (space, hyphen, filler) came before that digit
    chinese: bool  # at least one digit written as a Chinese numeral
    arabic: bool  # at least one digit written with 0–9

    def groups(self) -> list[str]:
        """The digits split where the speaker or the recognizer put a gap."""
        cuts = [0, *self.breaks, len(self.digits)]
        return [self.digits[a:b] for a, b in itertools.pairwise(cuts) if b > a]

    def slice(self, a: int, b: int) -> DigitRun:
        """The sub-run of digits ``a:b`` (offsets and breaks recomputed)."""
        spans = self.char_spans[a:b]
        text_digits = self.digits[a:b]
        return DigitRun(
            digits=text_digits,
            start=spans[0][0],
            end=spans[-1][1],
            char_spans=spans,
            breaks=tuple(i - a for i in self.breaks if a < i < b),
            chinese=self.chinese,
            arabic=self.arabic,
        )


def _element(t: str, i: int) -> tuple[str, list[tuple[int, int]], int] | None:
    """The digit(s) that start at ``t[i]``: (digits, their character spans, next index), or None."""
    c = t[i]
    if c not in DIGITS:
        return None
    if (i + 1 < len(t) and t[i + 1] in UNITS) or (i > 0 and t[i - 1] in UNITS):
        return None
    if c in CHINESE_DIGITS and i + 1 < len(t) and t[i + 1] == "点" and i + 2 < len(t) and t[i + 2] in DIGITS:
        return None  # 三点八五: a decimal value
    if c == "洞" and not ((i > 0 and t[i - 1] in DIGITS) or (i + 1 < len(t) and t[i + 1] in DIGITS)):
        return None
    # 两个九 = 99, 三个五 = 555: a count, 个, then the digit.
    if c in "两二三四五六七八九" and t[i + 1 : i + 2] == "个" and i + 2 < len(t) and t[i + 2] in DIGITS:
        nxt = t[i + 3 : i + 4]
        if not nxt or nxt in DIGITS or nxt in _SEPARATORS or not _HAN.match(nxt) or nxt in "呃嗯啊对了吧呢":
            count = int(DIGITS[c])
            d = DIGITS[t[i + 2]]
            return d * count, [(i, i + 2)] + [(i + 2, i + 3)] * (count - 1), i + 3
    return DIGITS[c], [(i, i + 1)], i + 1


def _gap(t: str, i: int) -> int | None:
    """End of a gap of separators and fillers starting at ``i`` if a digit follows it, else None."""
    j, words = i, 0
    while j < len(t) and j - i <= _MAX_GAP:
        if t[j] in _SEPARATORS:
            j += 1
            continue
        if t[j] in DIGITS and _element(t, j) is not None:
            return j if j > i else None
        for w in FILLERS:
            if t.startswith(w, j):
                words += 1
                j += len(w)
                break
        else:
            return None
        if words > _MAX_GAP_WORDS:
            return None
    return None


def _x_suffix(t: str, i: int) -> int | None:
    """End of an ID's final X (X, x, 叉, 艾克斯; one space allowed before it) at ``i``, else None."""
    j = i + 1 if t[i : i + 1] == " " else i
    for w in _X_WORDS:
        if t.startswith(w, j):
            k = j + len(w)
            if k < len(t) and (t[k].isascii() and t[k].isalnum()):
                return None
            return k
    return None


def _lexical(t: str, run: DigitRun) -> bool:
    """A short Chinese-only run that is part of a word or a quantity (一下, 一般, 三个, 万一), not digits."""
    if run.start > 1 and t[run.start - 1] == "点" and (t[run.start - 2] in DIGITS or t[run.start - 2] in UNITS):
        return True  # the fraction of a decimal value (三点八五, 十二点五)
    if run.arabic or len(run.digits) > 2:
        return False
    after = t[run.end : run.end + 1]
    if after and _HAN.match(after) and after not in DIGITS:
        return True
    return len(run.digits) == 1 and run.start > 0 and t[run.start - 1] in _LEXICAL_BEFORE


def digit_runs(text: str) -> list[DigitRun]:
    """Digit strings in ``text``, in order.

    A run is a maximal sequence of digits (any script, 两个九 style repeats) joined by at most ``_MAX_GAP``
    characters of separators and filler words; an ID's trailing X ends a run of at least three digits. Digits
    inside value readings (一百二十三, 三点八五) and short numerals inside words (一下, 万一, 三个) are left out.

    Args:
        text: the original transcript (any width, Traditional or Simplified).
    Returns:
        Runs with offsets into ``text``.
    """
    t = fold(text)
    runs: list[DigitRun] = []
    i = 0
    while i < len(t):
        first = _element(t, i)
        if first is None:
            i += 1
            continue
        digits, spans, k = first
        breaks: list[int] = []
        while k < len(t):
            if len(digits) >= 3 and (x_end := _x_suffix(t, k)) is not None:
                digits += "X"
                spans.append((x_end - (1 if t[x_end - 1] in "Xx叉" else 3), x_end))
                k = x_end
                break
            if t[k] in DIGITS and (el := _element(t, k)) is not None:
                digits += el[0]
                spans.extend(el[1])
                k = el[2]
                continue
            g = _gap(t, k)
            if g is None:
                break
            breaks.append(len(digits))
            k = g
        scripts = {t[a] for a, _ in spans}
        run = DigitRun(
            digits=digits,
            start=spans[0][0],
            end=spans[-1][1],
            char_spans=tuple(spans),
            breaks=tuple(breaks),
            chinese=any(c in CHINESE_DIGITS for c in scripts),
            arabic=any(c.isascii() for c in scripts),
        )
        if not _lexical(t, run):
            runs.append(run)
        i = k
    return runs


@dataclass(frozen=True)
class Mapped:
    """A normalised text with, for each of its characters, the original characters it came from."""

    text: str  # the normalised text
    starts: tuple[int, ...]  # original start offset of each normalised character
    ends: tuple[int, ...]  # original end offset of each normalised character
    original: str  # the text it was made from

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Original offsets of the normalised span ``start:end`` (end exclusive, ``start < end``)."""
        return self.starts[start], self.ends[end - 1]


def digitize(text: str) -> Mapped:
    """The detection form: every digit run becomes contiguous ASCII digits (separators and fillers inside it
    dropped, 幺→1, 两→2, 〇→0, 两个九→99), every other character is width- and script-folded.

    >>> digitize("电话 幺三八 呃 零零幺二").text
    '电话 1380012'
    """
    t = fold(text)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for run in digit_runs(text):
        for i in range(pos, run.start):
            out.append(t[i])
            starts.append(i)
            ends.append(i + 1)
        for d, (a, b) in zip(run.digits, run.char_spans, strict=True):
            out.append(d)
            starts.append(a)
            ends.append(b)
        pos = run.end
    for i in range(pos, len(t)):
        out.append(t[i])
        starts.append(i)
        ends.append(i + 1)
    return Mapped("".join(out), tuple(starts), tuple(ends), text)


# ---------------------------------------------------------------- values (for display)

_VALUE_CHARS = "零〇一二两三四五六七八九十百千万亿幺"


def _section(s: str) -> int | None:
    """Value of a reading below 10 000 (三千四百九十九, 九百六 = 960, 十八 = 18)."""
    total, cur, last_unit, zero_after_unit = 0, None, 0, False
    for ch in s:
        if ch in UNITS:
            unit = UNITS[ch]
            if unit >= 10_000 or (last_unit and unit >= last_unit):
                return None
            total += (1 if cur is None else cur) * unit
            cur, last_unit, zero_after_unit = None, unit, False
        elif ch in ("零", "〇"):
            if cur is not None:
                return None
            zero_after_unit = True
        elif ch in DIGITS:
            if cur is not None:
                return None
            cur = int(DIGITS[ch])
        else:
            return None
    if cur is not None:
        # Colloquial: 九百六 = 960, 一千二 = 1200 (a bare digit after a unit ≥ 100 means the next unit down).
        total += cur * (last_unit // 10) if last_unit >= 100 and not zero_after_unit else cur
    return total


def _integer(s: str) -> int | None:
    if not s:
        return None
    if all(c in DIGITS for c in s):  # digit by digit: 二零二五
        return int("".join(DIGITS[c] for c in s))
    for big in ("亿", "万"):
        if big in s:
            head, _, tail = s.partition(big)
            hv = _integer(head) if head else 1
            if hv is None:
                return None
            scale = UNITS[big]
            if tail and len(tail) == 1 and tail in DIGITS and tail not in ("零", "〇"):
                return hv * scale + int(DIGITS[tail]) * scale // 10  # 一万五 = 15000
            tv = _integer(tail.lstrip("零〇")) if tail.strip("零〇") else 0
            if tv is None or tv >= scale:
                return None
            return hv * scale + tv
    return _section(s)


def parse_value(text: str) -> Decimal | None:
    """The number a reading stands for, or None when it is not one number.

    Value readings (一百二十三 → 123, 一万三千八百一十二 → 13812, 九百六 → 960, 一万五 → 15000), decimals
    (三点八五 → 3.85), digit-by-digit readings (二零二五 → 2025, 幺三八 → 138) and Arabic numbers (3,865.20)
    all work; surrounding spaces are ignored.
    """
    s = fold(text).strip()
    if not s:
        return None
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?|\d+(\.\d+)?", s):
        return Decimal(s.replace(",", ""))
    head, dot, tail = s.partition("点")
    if dot and (not tail or not all(c in DIGITS for c in tail)):
        return None
    if any(c not in _VALUE_CHARS and c not in DIGITS for c in head):
        return None
    value = _integer(head)
    if value is None:
        return None
    if dot:
        return Decimal(f"{value}.{''.join(DIGITS[c] for c in tail)}")
    return Decimal(value)


def _fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


_NUM = "[零〇一二两三四五六七八九十百千万亿幺0-9]"
_PERCENT = re.compile(rf"百分之({_NUM}+(?:点[零〇一二两三四五六七八九0-9]+)?)")
_DATE = re.compile(
    rf"(?:({_NUM}{{2,4}})年)?(?:([一二三四五六七八九十0-9]{{1,3}})月)(?:([一二三四五六七八九十0-9]{{1,3}})([日号]))?"
    rf"|({_NUM}{{4}})年"
)
_AMOUNT = re.compile(
    rf"({_NUM}+(?:点[零一二两三四五六七八九0-9]+)?)(块钱|块|元)(?:([一二两三四五六七八九])(?![{_VALUE_CHARS}])(毛|角)?)?"
)
_VALUE = re.compile(rf"(?<![{_VALUE_CHARS}])[一二两三四五六七八九十][{_VALUE_CHARS}]*[十百千万亿][{_VALUE_CHARS}]*")


def _date(m: re.Match[str]) -> str:
    if m.group(5):
        year = parse_value(m.group(5))
        return f"{year}年" if year is not None and all(c in DIGITS for c in m.group(5)) else m.group(0)
    parts: list[str] = []
    if m.group(1):
        year = parse_value(m.group(1))
        if year is None:
            return m.group(0)
        parts.append(f"{_fmt(year)}年")
    month = parse_value(m.group(2))
    if month is None or not 1 <= month <= 12:
        return m.group(0)
    parts.append(f"{_fmt(month)}月")
    if m.group(3):
        day = parse_value(m.group(3))
        if day is None or not 1 <= day <= 31:
            return m.group(0)
        parts.append(f"{_fmt(day)}{m.group(4)}")
    return "".join(parts)


def _amount(m: re.Match[str]) -> str:
    value = parse_value(m.group(1))
    if value is None:
        return m.group(0)
    if m.group(3):  # 一百二十八块五 = 128.5; 三块五毛 = 3.5
        value += Decimal(int(DIGITS[m.group(3)])) / 10
    return f"{_fmt(value)}元"


def _value(m: re.Match[str]) -> str:
    s = m.group(0)
    value = parse_value(s)
    return m.group(0) if value is None else _fmt(value)


def readable(text: str) -> str:
    """Text for people to read: numbers written as digits, everything else unchanged.

    Percentages (百分之三点八五 → 3.85%), dates (二零二五年十一月三号 → 2025年11月3号), amounts
    (一百二十八块五 → 128.5元), value readings (三千四百九十九 → 3499) and digit strings read digit by digit
    (幺三八 零零幺二 → 138 0012; 两个九 → 99). Words that merely contain a numeral (一下, 一般, 十分, 万一,
    一点儿) and short counts (三张卡) are left alone.
    """
    t = _PERCENT.sub(lambda m: f"{_fmt(v)}%" if (v := parse_value(m.group(1))) is not None else m.group(0), text)
    t = _DATE.sub(_date, t)
    t = _AMOUNT.sub(_amount, t)
    t = _VALUE.sub(_value, t)
    out: list[str] = []
    pos = 0
    for run in digit_runs(t):
        if not run.chinese or len(run.digits) < 3:
            continue
        out.append(t[pos : run.start])
        pieces = []
        last = run.start
        for d, (a, b) in zip(run.digits, run.char_spans, strict=True):
            between = t[last:a]
            pieces.append(between if between.strip(" -") == "" else " ")
            pieces.append(d)
            last = b
        out.append("".join(pieces).replace("  ", " "))
        pos = run.end
    out.append(t[pos:])
    return "".join(out)
