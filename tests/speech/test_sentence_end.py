"""A Mandarin final ends in one sentence mark: a trailing clause mark is replaced, never followed by ``。``; texts are
joined without spaces only between languages written without them."""

from __future__ import annotations

import pytest

from speechsvc.speech.text import end_sentence, word_separator
from speechsvc.transports.openai_api import joined


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


def test_one_rule_for_languages_written_without_spaces() -> None:
    assert word_separator("zh") == "" and word_separator("zh", "yue", "ja") == ""
    assert word_separator("ko") == " " and word_separator("en") == " " and word_separator("zh", "en") == " "

    class Seg:
        def __init__(self, text: str, language: str) -> None:
            self.text, self.language = text, language

    segs = [Seg("你好。", "zh"), Seg("再见。", "zh"), Seg("OK.", "en"), Seg("안녕하세요.", "ko"), Seg("네.", "ko")]
    assert joined(segs) == "你好。再见。 OK. 안녕하세요. 네."  # type: ignore[arg-type]
