"""ADDRESS: a street-level or finer location from LAC's words and the structure of a Chinese address (admin
units → road + house number → compound → building / unit / room); a road or district said after an address
cue at the end of an utterance opens a value that the next utterance completes."""

from __future__ import annotations

import re

import speechsvc.analysis.pii.rules as R
from speechsvc.analysis.pii.context import HAN, Found, Pending, Span, trailing
from speechsvc.analysis.pii.model import Token

_ADDRESS_CUE_RE = re.compile("(?:" + "|".join(re.escape(c) for c in R.ADDRESS_CUES) + r")[\s:：]*$")
_FILLER_WORDS = frozenset({"呃", "嗯", "啊", "额", "哦", "噢", "那个", "就是", "然后", ",", "，", "、"})
_STARTS: tuple[str, ...] = ("admin", "road", "loc", "place")


def addresses(t: str, tokens: list[Token], taken: list[tuple[int, int]], continuing: bool = False) -> list[Found]:
    """ADDRESS spans of an utterance; ``continuing``: the first piece continues an address begun before."""
    kinds = [address_kind(tok) for tok in tokens]
    out: list[Found] = []
    i = 0
    while i < len(tokens):
        if not _starts(kinds, i, continuing):
            i += 1
            continue
        last = _extent(kinds, i)
        found = _judge(t, tokens, kinds, i, last, taken, continuing)
        if found is not None:
            out.append(found)
            if continuing and found[1] is None and not found[0].whole:
                break  # the piece that continues the address
        i = last + 1
    return out


def _starts(kinds: list[str], i: int, continuing: bool) -> bool:
    starts = (*_STARTS, "unit", "num", "name") if continuing else _STARTS
    return kinds[i] in starts and not (kinds[i] in ("num", "name") and not _next_is(kinds, i, ("unit", "place")))


def _extent(kinds: list[str], i: int) -> int:
    """The last token of the address that starts at token ``i``."""
    j, prev, last = i, "", i
    while j < len(kinds):
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
    return last


def _judge(
    t: str, tokens: list[Token], kinds: list[str], i: int, last: int, taken: list[tuple[int, int]], continuing: bool
) -> Found | None:
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
        return Span(R.ADDRESS, s, e, 0.8, whole=False), None
    if any(a < e and s < b for a, b in taken):
        return None
    if full:
        return Span(R.ADDRESS, s, e, 0.85), None
    if (
        (has_road or has_place or re.search(r"(?:区|县|镇|街道)$", text.rstrip()))
        and trailing(t, e) and _ADDRESS_CUE_RE.search(t[:s]) is not None
    ):
        # 寄到杭州市西湖区文三路 … (the house number comes in the next utterance)
        return Span(R.ADDRESS, s, e, 0.6, whole=False), Pending(R.ADDRESS, "x", 0, None)
    return None


def _next_is(kinds: list[str], i: int, wanted: tuple[str, ...]) -> bool:
    for k in kinds[i + 1 :]:
        if k == "gap":
            continue
        return k in wanted
    return False


def address_kind(tok: Token) -> str:
    """The role of a LAC word in an address (admin, road, place, unit, num, …; gap for fillers)."""
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
    return _place_kind(tok, w)


def _place_kind(tok: Token, w: str) -> str:
    if R.ROAD_SUFFIX.match(w) or (tok.tag == "LOC" and R.HOUSE_NUMBER.search(w)):
        return "road"
    if R.ADMIN_SUFFIX.match(w):
        return "admin"
    if R.PLACE_SUFFIX.match(w) and len(w) >= 2:
        return "place"
    if tok.tag == "LOC":
        return "loc"
    if tok.tag in ("ORG", "nz", "n", "nw", "PER") and 2 <= len(w) <= 6 and HAN.match(w):  # 华凯(PER) 广场
        return "name"
    return "other"
