"""A Mandarin final ends in one sentence mark: a trailing clause mark is replaced, never followed by ``。``."""

from __future__ import annotations

import pytest

from speechsvc.speech.text import end_sentence


@pytest.mark.parametrize(
    ("text", "ended"),
    [
        ("我想查一下话费，", "我想查一下话费。"),
        ("第一个、", "第一个。"),
        ("情况是这样：", "情况是这样："[:-1] + "。"),
        ("好的；", "好的。"),
        ("好的， ", "好的。"),
        ("好的,", "好的。"),
        ("好的，，", "好的。"),
        ("好的", "好的。"),
        ("好的。", "好的。"),
        ("真的吗？", "真的吗？"),
        ("太好了！", "太好了！"),
        ("嗯……", "嗯……"),
        ("", ""),
        ("，", "，"),  # nothing but a mark: left as it is
    ],
)
def test_sentence_end_replaces_a_trailing_clause_mark(text: str, ended: str) -> None:
    assert end_sentence(text, "zh") == ended
    assert not end_sentence(text, "zh").endswith(("，。", "、。", "；。", "：。"))


def test_other_languages_and_no_punctuation_are_left_alone() -> None:
    assert end_sentence("hello,", "en") == "hello,"
    assert end_sentence("好的，", "zh", punctuation=False) == "好的，"
