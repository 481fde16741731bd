from __future__ import annotations

import pytest

from speechsvc.evaluation.scoring import error_rate, normalize_en, normalize_zh


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("設定29度。", "设定二十九度"),
        ("第105号", "第一百零五号"),
        ("电话13800138000", "电话一三八零零一三八零零零"),
        ("Let It Go!", "letitgo"),
    ],
)
def test_normalize_zh(text: str, expected: str) -> None:
    assert normalize_zh(text) == expected


def test_error_rates() -> None:
    assert error_rate("设定二十九度", "设定29度", "zh") == 0
    assert error_rate("hello world", "Hello, world!", "en") == 0
    assert normalize_en("It's 5 o'clock") == ["its", "5", "oclock"]
    assert error_rate("a b c d", "a x c", "en") == 0.5
