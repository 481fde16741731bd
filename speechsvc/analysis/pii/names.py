"""NAME: a private person's name — LAC's PER words and rule candidates (a common surname after a strong cue,
surname + 先生/女士, minority names with ·), kept only with a context cue (我叫, 持卡人是我爸, 收件人 …);
staff (张经理, 客服小王), brands and places are left alone."""

from __future__ import annotations

import re

from speechsvc.analysis.pii import rules as R
from speechsvc.analysis.pii.context import HAN, Span
from speechsvc.analysis.pii.model import Token

_NAME_CUE_RE = re.compile("(?:" + "|".join(re.escape(c) for c in sorted(R.NAME_CUES, key=len, reverse=True)) + r")$")
_RELATION_RE = re.compile("(?:" + "|".join(re.escape(c) for c in sorted(R.RELATIONS, key=len, reverse=True)) + r")$")
# Minority names with a middle dot (买买提·艾力), which LAC often splits, after a name cue.
_DOTTED_NAME_RE = re.compile(
    r"(?:我叫|我是|名字是|名字叫|姓名是?|持卡人是?|收件人是?|户名是?)\s*([\u4e00-\u9fff]{1,6}·[\u4e00-\u9fff]{1,8})"
)
_STRONG_NAME_CUE = re.compile(r"(?:我叫|名字叫|名字是|姓名是?)\s*$")
_TITLED_RE = re.compile(f"[{''.join(sorted(R.SURNAMES))}](?:{'|'.join(R.CALLER_TITLES)})")


def names(t: str, tokens: list[Token], taken: list[tuple[int, int]]) -> list[Span]:
    """NAME spans of an utterance (folded text ``t``, LAC ``tokens``), outside the ``taken`` regions."""
    out: list[Span] = []
    for name, tag, s in _candidates(t, tokens):
        e = s + len(name)
        if any(a < e and s < b for a, b in [*taken, *((x.start, x.end) for x in out)]):
            continue
        span = _judge(t, name, tag, s, e)
        if span is not None:
            out.append(span)
    return out


def _candidates(t: str, tokens: list[Token]) -> list[tuple[str, str, int]]:
    """(text, LAC tag, start) of every word that may be a name."""
    out: list[tuple[str, str, int]] = []
    for tok in tokens:
        # LAC sometimes joins a bare surname and the name after a pause (姓王 王先生 → "王 王先生").
        out.extend((m.group(0), tok.tag, tok.start + m.start()) for m in re.finditer(r"\S+", tok.text))
    out.extend((m.group(0), "PER", m.start()) for m in _TITLED_RE.finditer(t))
    out.extend((m.group(1), "PER", m.start(1)) for m in _DOTTED_NAME_RE.finditer(t))
    return out


def _judge(t: str, name: str, tag: str, s: int, e: int) -> Span | None:
    if tag != "PER" and not (
        # LAC may miss a rare name right after 我叫 / 名字是: a 2–3 character Han word there.
        2 <= len(name) <= 3 and HAN.match(name) and name[0] in R.SURNAMES and _STRONG_NAME_CUE.search(t[:s])
    ):
        return None
    if not (2 <= len(name) <= 4 or ("·" in name and len(name) <= 12)) or not HAN.match(name):
        return None
    before = t[max(0, s - 14) : s]
    if name.endswith(R.CALLER_TITLES):
        if R.SELF_REFERENCE.search(before) is None and not re.search(r"我姓", t[:s]):
            return None
        return Span(R.NAME, s, e, 0.8)
    if name.endswith(R.STAFF_TITLES) or before.rstrip().endswith(R.STAFF_BEFORE):
        return None
    return Span(R.NAME, s, e, 0.9) if name_cue(before) else None


def name_cue(before: str) -> bool:
    """The text before a candidate ends in a name cue, possibly through relations (持卡人是我爸 …)."""
    b = before.rstrip(" ：:，,")
    for _ in range(3):
        if _NAME_CUE_RE.search(b):
            return True
        m = _RELATION_RE.search(b)
        if m is None:
            return False
        b = b[: m.start()].rstrip(" ：:，,")
    return False
