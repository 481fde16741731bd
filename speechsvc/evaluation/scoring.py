"""Error rates for evaluation: CER for Chinese, WER for English, with the normalisation we report.

Chinese: OpenCC t2s, NFKC, lower case, Arabic digits spoken as Chinese numerals, punctuation and spaces
removed, then characters compared. English: lower case, punctuation removed, digits kept, words compared.
"""

from __future__ import annotations

import re
import unicodedata

from speechsvc.speech.text import converter

_DIGITS = "零一二三四五六七八九"


def _spoken_integer(number: str) -> str:
    """'29' -> 二十九; numbers of five or more digits, or with a leading zero, are read digit by digit."""
    if len(number) > 4 or (len(number) > 1 and number.startswith("0")):
        return "".join(_DIGITS[int(d)] for d in number)
    value = int(number)
    if value == 0:
        return "零"
    units = ["", "十", "百", "千"]
    out, zero = "", False
    for power in range(len(number) - 1, -1, -1):
        digit = (value // 10**power) % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[digit] + units[power]
    return out[1:] if out.startswith("一十") else out


def normalize_zh(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = converter("t2s").convert(text)
    text = re.sub(r"\d+", lambda m: _spoken_integer(m.group()), text)
    return "".join(ch for ch in text if ch.isalnum())


_EN_NUMBERS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}


def normalize_en(text: str) -> list[str]:
    """Lower-case words without punctuation; number words up to twenty as digits (Whisper writes digits)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    words = re.sub(r"[^\w\s']", " ", text).replace("'", "").split()
    return [_EN_NUMBERS.get(w, w) for w in words]


def edit_distance(ref: list[str] | str, hyp: list[str] | str) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def error_counts(ref: str, hyp: str, language: str) -> tuple[int, int]:
    """(edits, reference length) in characters for zh, words otherwise."""
    if language == "zh":
        r, h = normalize_zh(ref), normalize_zh(hyp)
        return edit_distance(r, h), len(r)
    rw, hw = normalize_en(ref), normalize_en(hyp)
    return edit_distance(rw, hw), len(rw)


def error_rate(ref: str, hyp: str, language: str) -> float:
    edits, n = error_counts(ref, hyp, language)
    return edits / max(1, n)
