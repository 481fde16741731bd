"""Spoken digits as the recognizer writes them: homophones of digit names read back as digits.

Callers read identifiers digit by digit, and Mandarin ASR writes some digit names as other characters of the
same sound: 幺 (1) as 要 / 腰 / 妖, 洞 (0, radio style) as 动, and the radio names 拐 (7) and 勾 (9) are words
of their own. `heard_digits` rewrites those characters as digits where they sit in a chain of digits (digits
joined by a separator, hesitations such as 呃 / 那个, or 个 of 两个九), one character for one (offsets are
unchanged), and turns a full stop or … between two digits (the recognizer's pause marks: 一五七。四四幺。二七八九零)
into a separator that keeps the digits one run.

Written from how the syllables sound and how digits are dictated, not from any data set.
"""

from __future__ import annotations

import itertools
import re

from speechsvc.analysis.itn import DIGITS, FILLERS

# Homophone → the digit character it stands for.
HOMOPHONES: dict[str, str] = {"要": "幺", "腰": "幺", "妖": "幺", "拐": "七", "动": "零", "勾": "九"}
_SEPARATORS = frozenset(" 、,，-.。…·")  # one of these may sit between two digits of a chain
_MAX_GAP = 8  # characters of separators and filler words between two digits (as in a digit run)
_PAUSES = frozenset("。…")  # the recognizer's pause marks inside a number: become 、, a separator of digit runs
_MOBILE = re.compile(r"1[3-9]\d{9}")
# Before a chain-leading 动: only the end of a cue (座机, 电话, 打) or a pause (移动 / 启动 / 自动 are words).
_ZERO_AFTER = frozenset(" ，,:：是码号机话打")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def _count_word(t: str, i: int) -> bool:
    """个 of a repeated digit inside a number (两个九 = 99, 三个五 = 555)."""
    return t[i] == "个" and t[i - 1 : i] in set("两二三四五六七八九") and (t[i + 1 : i + 2] or " ") in DIGITS


def _chains(t: str, letters: bool) -> list[list[int]]:
    """Positions of digit and homophone characters (and capital letters, with ``letters``) grouped into chains:
    between two of them at most one separator, or hesitations (呃, 嗯, 那个 …) as a digit run allows them."""
    chains: list[list[int]] = []
    cur: list[int] = []
    i = 0
    while i < len(t):
        if _member(t[i], letters):
            cur.append(i)
            i += 1
            continue
        gap = _gap_end(t, i, letters) if cur and i - cur[-1] == 1 else None
        if gap is not None and _member(t[gap], letters):
            i = gap
            continue
        if cur:
            chains.append(cur)
            cur = []
        i += 1
    if cur:
        chains.append(cur)
    return chains


def _member(c: str, letters: bool) -> bool:
    return c in DIGITS or c in HOMOPHONES or (letters and "A" <= c <= "Z")


def _gap_end(t: str, i: int, letters: bool) -> int | None:
    """End of the gap at ``i`` between two digits: one separator or 个 of a count (两个九), or separators and
    at most two filler words within _MAX_GAP characters; None when no digit could follow."""
    if t[i] in _SEPARATORS and i + 1 < len(t) and _member(t[i + 1], letters):
        return i + 1
    if _count_word(t, i):
        return i + 1
    j, words = i, 0
    while j < len(t) and j - i <= _MAX_GAP and words <= 2:
        if t[j] in _SEPARATORS:
            j += 1
            continue
        word = next((w for w in FILLERS if t.startswith(w, j)), None)
        if word is None:
            break
        j += len(word)
        words += 1
    return j if j > i and j < len(t) and words <= 2 and words > 0 else None


def _real(c: str) -> bool:
    return c in DIGITS or "A" <= c <= "Z"


def _keep_homophone(t: str, chain: list[int], k: int) -> bool:
    """Whether the homophone at ``chain[k]`` is the word it spells rather than a digit."""
    i = chain[k]
    c = t[i]
    real = [j for j in chain if _real(t[j])]
    if k == 0:
        after = [j for j in chain[1:] if _real(t[j])]
        if len(after) < 2:
            return True
        if c == "要":
            rest = "".join(DIGITS[t[j]] for j in chain[1:] if t[j] in DIGITS)
            return _MOBILE.fullmatch(rest) is not None  # 手机号要13812345678: the verb, the number is whole
        if c == "动":
            return i > 0 and t[i - 1] not in _ZERO_AFTER
        return False
    if k == len(chain) - 1:
        nxt = t[i + 1 : i + 2]
        return len(real) < 2 or (nxt != "" and _HAN.match(nxt) is not None)  # 七八九动不了: a verb
    return len(real) < 2


def heard_digits(text: str, letters: bool = False) -> str:
    """``text`` with the recognizer's homophones of digit names read as digits where they sit among digits,
    one character for one.

    Args:
        text: an utterance (original or folded).
        letters: capital letters count as neighbours too (a plate or a code read aloud: 苏 E 三 动 拐 K 八).
    Returns:
        A string of the same length for digit detection: a homophone with at least two digits in its chain
        becomes a digit (first in the chain: two digits after it, and 要 not before a complete mobile number,
        动 only after a cue or a pause; last: nothing Han right after it); in a chain of 3–12 digits a full stop
        or … between two digits becomes 、 and 洞 becomes 零.
    """
    out = list(text)
    for chain in _chains(text, letters):
        converted = [k for k, i in enumerate(chain) if text[i] in HOMOPHONES and not _keep_homophone(text, chain, k)]
        for k in converted:
            out[chain[k]] = HOMOPHONES[text[chain[k]]]
        digits = [i for k, i in enumerate(chain) if text[i] in DIGITS or k in converted]
        if letters:
            continue
        if 3 <= len(digits) <= 12:  # a phone's length at most: two sentences' numbers stay apart
            for a, b in itertools.pairwise(digits):
                if b - a == 2 and text[a + 1] in _PAUSES:
                    out[a + 1] = "、"
            for i in digits:
                if text[i] == "洞":  # a radio-style zero among digits, also across a pause (三 洞 九)
                    out[i] = "零"
    return "".join(out)
