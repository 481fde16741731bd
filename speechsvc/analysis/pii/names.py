"""NAME: a private person's name — LAC's PER words and rule candidates (a common surname after a strong cue,
surname + 先生/女士, minority names with ·), kept only with a context cue (我叫, 持卡人是我爸, 收件人 …);
staff (张经理, 客服小王), brands and places are left alone."""

from __future__ import annotations

import re

import speechsvc.analysis.pii.rules as R
from speechsvc.analysis.pii.context import HAN, Span
from speechsvc.analysis.pii.model import Token

_NAME_CUE_RE = re.compile("(?:" + "|".join(re.escape(c) for c in sorted(R.NAME_CUES, key=len, reverse=True)) + r")$")
_RELATION_RE = re.compile("(?:" + "|".join(re.escape(c) for c in sorted(R.RELATIONS, key=len, reverse=True)) + r")$")
# Minority names with a middle dot (买买提·艾力), which LAC often splits, after a name cue.
_DOTTED_NAME_RE = re.compile(
    r"(?:叫|是|人|者|姓名|户名)\s*((?![叫是])[\u4e00-\u9fff]{1,6}·[\u4e00-\u9fff]{1,8})"
)
_STRONG_NAME_CUE = re.compile(r"(?:我叫|名字叫|名字是|姓名是?)\s*$")
_TITLED_RE = re.compile(f"[{''.join(sorted(R.SURNAMES))}](?:{'|'.join(R.CALLER_TITLES)})")


def names(t: str, tokens: list[Token], taken: list[tuple[int, int]]) -> list[Span]:
    """NAME spans of an utterance (folded text ``t``, LAC ``tokens`` or none), outside the ``taken`` regions."""
    out: list[Span] = []
    for name, tag, s in [*_candidates(t, tokens), *_rule_candidates(t, tokens)]:
        e = s + len(name)
        if any(a < e and s < b for a, b in [*taken, *((x.start, x.end) for x in out)]):
            continue
        span = _judge(t, name, tag, s, e)
        if span is not None:
            out.append(span)
    return out


def _candidates(t: str, tokens: list[Token]) -> list[tuple[str, str, int]]:
    """(text, LAC tag, start) of every word that may be a name."""
    # A whole minority name with its dot first: LAC often tags only the part before the dot.
    out: list[tuple[str, str, int]] = [(m.group(1), "PER", m.start(1)) for m in _DOTTED_NAME_RE.finditer(t)]
    for tok in tokens:
        # LAC sometimes joins a bare surname and the name after a pause (姓王 王先生 → "王 王先生").
        out.extend((m.group(0), tok.tag, tok.start + m.start()) for m in re.finditer(r"\S+", tok.text))
    out.extend((m.group(0), "PER", m.start()) for m in _TITLED_RE.finditer(t))
    return out


def read_name(t: str, s: int) -> str | None:
    """A surname at ``s`` and one or two given-name characters after it (no model), else None."""
    surname = next((c for c in R.COMPOUND_SURNAMES if t.startswith(c, s)), None)
    if surname is None:
        surname = t[s] if s < len(t) and t[s] in R.SURNAMES else None
    if surname is None:
        return None
    e = s + len(surname)
    given = ""
    while e < len(t) and len(given) < 2 and re.match(r"[\u4e00-\u9fff]", t[e]) and (
        t[e] not in R.GIVEN_STOP or (t[e] in R.GIVEN_FINAL and not re.match(r"[\u4e00-\u9fff]", t[e + 1 : e + 2]))
    ):
        given += t[e]
        e += 1
    name = surname + given
    if not given or R.NOT_NAMES.match(t[s:]) or re.match(r"[省市区县路街镇村号]", t[e : e + 1]):
        return None
    return name


def _rule_candidates(t: str, tokens: list[Token]) -> list[tuple[str, str, int]]:
    """Names read without the model right after a strong cue (我叫 / 收货人 / 机主是 …); not where LAC
    says the word is a place or an organisation."""
    places = [(tok.start, tok.end) for tok in tokens if tok.tag in ("LOC", "ORG", "TIME")]
    out: list[tuple[str, str, int]] = []
    for m in re.finditer(r"\S", t):
        s = m.start()
        if not _strong_cue(t[max(0, s - 16) : s]) or any(a <= s < b for a, b in places):
            continue
        name = read_name(t, s)
        if name is not None:
            out.append((name, "RULE", s))
    return out


def _strong_cue(before: str) -> bool:
    b = before.rstrip(" ：:，,")
    for _ in range(3):
        if R.STRONG_NAME_CUE.search(b):
            return True
        m = _RELATION_RE.search(b)
        if m is None or m.group(0) in ("是", "叫", "的", "为"):
            return False
        b = b[: m.start()].rstrip(" ：:，,")
    return False


def ends_with_name_cue(t: str) -> bool:
    """The utterance ends in a strong name cue (持卡人姓名是 / 收件人写): the name comes in the next one."""
    return _strong_cue(R.TRAILING_PARTICLES.sub("", t)) and not t.rstrip().endswith("给")


def leading_name(t: str, start: int) -> Span | None:
    """A name at the start of an utterance (after fillers), continuing a name cue of the previous one."""
    name = read_name(t, start)
    if name is None:
        return None
    return Span(R.NAME, start, start + len(name), 0.8)


def _judge(t: str, name: str, tag: str, s: int, e: int) -> Span | None:
    if tag == "RULE":
        if name.endswith(R.STAFF_TITLES) or t[max(0, s - 14) : s].rstrip().endswith(R.STAFF_BEFORE):
            return None
        return Span(R.NAME, s, e, 0.85)
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
    if name_cue(before):
        return Span(R.NAME, s, e, 0.9)
    return Span(R.NAME, s, e, 0.8) if _said_alone(t, name, s, e) else None


def _said_alone(t: str, name: str, s: int, e: int) -> bool:
    """A name the model tags said on its own at the start of an utterance (the answer to 您贵姓 / 怎么称呼 on
    the other leg: 彭桐 是租户, 贾海): a surname, one or two more characters, nothing Han glued after it
    (李宁的鞋, 王老吉一箱 are not answers)."""
    surname = next((c for c in R.COMPOUND_SURNAMES if name.startswith(c)), name[:1])
    return (
        R.LEAD_IN.match(t[:s]) is not None and surname in (R.SURNAMES | set(R.COMPOUND_SURNAMES))
        and 2 <= len(name) <= len(surname) + 2 and HAN.match(name) is not None
        and re.match(r"[\u4e00-\u9fff]", t[e : e + 1]) is None and not R.NOT_NAMES.match(name)
    )


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
