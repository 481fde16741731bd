"""Which figures an item of the split ASR sets counts in (one rule for the benchmark's scores and its gap test)."""

from __future__ import annotations

from pathlib import Path

from speechsvc.evaluation.asr_sets import Item
from speechsvc.evaluation.heldout import pooled_in


def item(family: str, quality: str) -> Item:
    return Item(f"{family}-{quality}", "zh", family, "src", quality, "你好", Path("x.wav"))


def test_the_headline_takes_gold_and_silver_items_of_families_not_shown_apart() -> None:
    assert pooled_in(item("read", "gold")) == ("read", "all")
    assert pooled_in(item("spontaneous", "silver")) == ("spontaneous", "all")
    assert pooled_in(item("read_turn", "gold")) == ("read_turn",)
    assert pooled_in(item("long_turn", "bronze")) == ("long_turn", "bronze")
