"""Number ITN: digit runs with exact original offsets, values and readable output. Pure logic, no model."""

from __future__ import annotations

from decimal import Decimal

import pytest

from speechsvc.analysis.itn import digit_runs, digitize, fold, parse_value, readable


def runs(text: str) -> list[tuple[str, str]]:
    return [(r.digits, text[r.start : r.end]) for r in digit_runs(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13800138000", [("13800138000", "13800138000")]),
        ("幺三八零零幺三八零零零", [("13800138000", "幺三八零零幺三八零零零")]),
        ("两个九 三个五", [("99555", "两个九 三个五")]),
        ("〇幺〇 洞洞幺", [("010001", "〇幺〇 洞洞幺")]),
        ("157 八五零二 5517", [("15785025517", "157 八五零二 5517")]),
        ("159-9748-2123", [("15997482123", "159-9748-2123")]),
        ("１３５ ２２９０", [("1352290", "１３５ ２２９０")]),
        ("一七三 呃 二四五八 嗯 九二幺五", [("17324589215", "一七三 呃 二四五八 嗯 九二幺五")]),
        ("132 9910 2347 哦不 2374", [("132991023472374", "132 9910 2347 哦不 2374")]),
        ("三二零一 艾克斯", [("3201X", "三二零一 艾克斯")]),
        ("尾号803x", [("803X", "803x")]),
    ],
)
def test_digit_runs_every_style(text: str, expected: list[tuple[str, str]]) -> None:
    assert runs(text) == expected


def test_fillers_outside_a_run_are_not_part_of_it() -> None:
    text = "呃 七六八四 嗯 对"
    (run,) = digit_runs(text)
    assert text[run.start : run.end] == "七六八四"


@pytest.mark.parametrize(
    "text",
    ["一下", "一般来说", "十分感谢", "万一不行", "等一点儿", "我有三张卡 两张信用卡", "一万三千八百一十二", "三点八五",
     "下午两点到四点"],
)
def test_words_and_value_readings_are_not_digit_runs(text: str) -> None:
    assert digit_runs(text) == []


def test_digitize_keeps_an_offset_map_to_the_original() -> None:
    text = "电话 幺三八 呃 零零幺二 好的"
    mapped = digitize(text)
    assert mapped.text == "电话 1380012 好的"
    start = mapped.text.index("1380012")
    a, b = mapped.to_original(start, start + 7)
    assert text[a:b] == "幺三八 呃 零零幺二"
    a, b = mapped.to_original(start + 3, start + 4)
    assert text[a:b] == "零"


def test_fold_keeps_length() -> None:
    for text in ["手機號碼１３８", "請問這個月的帳單", "ＡＢＣ　123"]:
        assert len(fold(text)) == len(text)
    assert fold("手機號碼１３８") == "手机号码138"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("一百二十三", "123"), ("一万三千八百一十二", "13812"), ("九百六", "960"), ("一万五", "15000"),
        ("两千零五", "2005"), ("十八", "18"), ("三点八五", "3.85"), ("二零二五", "2025"), ("3,865.20", "3865.20"),
        ("幺三八", "138"),
    ],
)
def test_parse_value(text: str, value: str) -> None:
    assert parse_value(text) == Decimal(value)


@pytest.mark.parametrize("text", ["一下", "你好", "一二三四十", ""])
def test_parse_value_refuses_non_numbers(text: str) -> None:
    assert parse_value(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("一百二十三块五", "123.5元"),
        ("我这个月话费扣了一百二十八块五", "我这个月话费扣了128.5元"),
        ("二零二五年十一月三号那天", "2025年11月3号那天"),
        ("年利率是百分之三点八五吗", "年利率是3.85%吗"),
        ("电话是幺三八 零零幺二 三四五六", "电话是138 0012 3456"),
        ("要退的金额是 三千四百九十九", "要退的金额是 3499"),
        ("一般十分钟 万一不行等一下", "一般十分钟 万一不行等一下"),
        ("我有三张卡", "我有三张卡"),
    ],
)
def test_readable(text: str, expected: str) -> None:
    assert readable(text) == expected
