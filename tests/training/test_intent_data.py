"""The operator's labelled intent files (checks before training) and the labelling sheet from batch reports.
Pure logic: nothing here loads a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechsvc.cli import main
from speechsvc.training.intent_data import (
    MIN_PER_INTENT,
    SHEET_COLUMNS,
    IntentDataError,
    candidates,
    check_counts,
    read_examples,
    select,
)
from speechsvc.training.intent_train import SHIPPED_DATA


def tsv(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "data.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_reads_utf8_with_bom_and_utf16_from_spreadsheets(tmp_path: Path) -> None:
    body = "text\tintent\tnegative\n我要查话费\tbill\t0\n气死我了退钱\trefund\t1\n转人工\thuman\t\n"
    for encoding in ("utf-8", "utf-8-sig", "utf-16"):
        examples = read_examples(tsv(tmp_path, body, encoding, f"d-{encoding}.tsv"))
        assert [(e.text, e.intent, e.negative) for e in examples] == [
            ("我要查话费", "bill", 0), ("气死我了退钱", "refund", 1), ("转人工", "human", None)]


def test_gbk_file_is_refused_with_how_to_convert(tmp_path: Path) -> None:
    path = tsv(tmp_path, "text\tintent\n我要查话费\tbill\n", "gbk")
    with pytest.raises(IntentDataError, match=r"not UTF-8.*GB18030.*iconv"):
        read_examples(path)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("", "empty"),
        ("text,intent\n我要查话费,bill\n", "not tab-separated"),
        ("text\tlabel\n我要查话费\tbill\n", r"missing column\(s\) \['intent'\]"),
        ("text\tintent\tlable\n我要查话费\tbill\tx\n", r"unknown column\(s\) \['lable'\]"),
        ("text\tintent\tintent\n我要查话费\tbill\tbill\n", "appear twice"),
        ("text\tintent\n我要查话费\tbill\textra\n", r"data.tsv:2: 3 fields, the header has 2"),
        ("text\tintent\n\tbill\n", r"data.tsv:2: empty text"),
        ("text\tintent\n我要查话费\tbill\n转人工\t\n好的\t \n", r"2 row\(s\) have an empty intent \(lines 3, 4\)"),
        ("text\tintent\n我要查话费\tpay bill\n", "without spaces"),
        ("text\tintent\tnegative\n我要查话费\tbill\tyes\n", "negative is 'yes'"),
        ("text\tintent\n", "no labelled rows"),
    ],
)
def test_bad_files_are_refused_with_the_row_and_the_fix(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(IntentDataError, match=match):
        read_examples(tsv(tmp_path, body))


def test_too_few_examples_per_intent_names_the_intents(tmp_path: Path) -> None:
    rows = [f"查账单{i}\tbill" for i in range(MIN_PER_INTENT)] + ["转人工\thuman", "人工客服\thuman"]
    examples = read_examples(tsv(tmp_path, "text\tintent\n" + "\n".join(rows) + "\n"))
    with pytest.raises(IntentDataError, match=r"too few examples for \{'human': 2\}"):
        check_counts(examples, "data.tsv")
    with pytest.raises(IntentDataError, match="two or more"):
        check_counts(examples[:MIN_PER_INTENT], "data.tsv")


def test_shipped_training_data_passes_the_same_checks() -> None:
    examples = read_examples(SHIPPED_DATA)
    counts = check_counts(examples, "shipped")
    assert len(counts) == 17 and len(examples) >= 900 and all(e.negative is not None for e in examples)


def report(path: Path, segments: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"path": "call.wav", "segments": segments}, ensure_ascii=False), encoding="utf-8")
    return path


def seg(leg: str, index: int, text: str, intent: str | None, p: float | None) -> dict[str, object]:
    return {"leg": leg, "index": index, "start_ms": 0, "end_ms": 1, "text": text, "intent": intent,
            "intent_probability": p}


def test_export_picks_least_sure_then_a_sample_over_intents(tmp_path: Path) -> None:
    a = report(tmp_path / "a.json", [
        seg("customer", 0, "我想查一下话费", "balance_bill_query", 0.91),
        seg("agent", 1, "您好请问有什么可以帮您", "greeting_closing", 0.12),  # agent leg: not exported
        seg("customer", 2, "那个就是上次那个", "other", 0.21),
        seg("customer", 3, "我想查一下话费！", "balance_bill_query", 0.95),  # same text once normalised
        seg("customer", 4, "嗯", "greeting_closing", 0.30),  # too short to label
    ])
    b = report(tmp_path / "b.json", [
        seg("customer", 0, "宽带又断了", "technical_fault", 0.88),
        seg("customer", 1, "我要退订这个业务", "cancel_service", 0.35),
        seg("mixed", 2, "你们扣了我二十块钱", "fee_charge_dispute", 0.77),
        seg("customer", 3, "快递到哪了", "order_delivery_status", 0.93),
    ])
    found = candidates([a, b])
    assert [c.text for c in found] == ["我想查一下话费", "那个就是上次那个", "宽带又断了", "我要退订这个业务",
                                       "你们扣了我二十块钱", "快递到哪了"]
    chosen = select(found, uncertain=2, sample=3)
    assert [(c.text, why) for c, why in chosen[:2]] == [("那个就是上次那个", "uncertain"),
                                                      ("我要退订这个业务", "uncertain")]
    sampled = chosen[2:]
    assert len(sampled) == 3 and {why for _, why in sampled} == {"sample"}
    assert len({c.suggested for c, _ in sampled}) == 3  # spread over predicted intents


def test_sheet_round_trips_into_training_once_labelled(tmp_path: Path) -> None:
    texts = ["网络断了\t怎么办", "账单不对", "我要退货", "卡被冻结了", "积分怎么用"]
    a = report(tmp_path / "a.json", [seg("customer", i, t, "other", 0.1 * i) for i, t in enumerate(texts, 1)])
    sheet = tmp_path / "to_label.tsv"
    assert main(["intents", "export", str(a), "--uncertain", "2", "--sample", "1", "--out", str(sheet)]) == 0
    lines = sheet.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].split("\t") == list(SHEET_COLUMNS) and len(lines) == 4
    with pytest.raises(IntentDataError, match="empty intent"):  # not labelled yet
        read_examples(sheet)
    labelled = tmp_path / "labelled.tsv"
    rows = [line.split("\t") for line in lines]
    for row in rows[1:]:
        row[1], row[2] = "my_intent", "0"
    labelled.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8-sig")
    examples = read_examples(labelled)
    assert [e.text for e in examples][:2] == ["网络断了 怎么办", "账单不对"]
    assert {e.intent for e in examples} == {"my_intent"}


def test_export_refuses_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    assert main(["intents", "export", str(bad), "--uncertain", "5", "--out", str(tmp_path / "o.tsv")]) == 2


def test_asr_style_text_substitutes_homophones_and_drops_characters() -> None:
    pytest.importorskip("pypinyin")
    from pypinyin import Style, lazy_pinyin

    from speechsvc.evaluation.text import AsrNoise

    noise = AsrNoise(SHIPPED_DATA.read_text(encoding="utf-8"), substitute=0.3, drop=0.1)
    text = "我想查一下这个月的话费账单为什么扣了这么多钱"
    out = [noise(text, seed) for seed in range(50)]
    assert noise(text, 7) == out[7]  # deterministic per seed
    changed = [o for o in out if o != text]
    assert len(changed) > 40 and any(len(o) < len(text) for o in out)
    same_length = [o for o in out if len(o) == len(text)]
    for o in same_length:  # a substitute sounds like what it replaces
        for a, b in zip(text, o, strict=True):
            assert lazy_pinyin(a, style=Style.NORMAL) == lazy_pinyin(b, style=Style.NORMAL)
    assert noise("转人工 12315 ok", 3).endswith("12315 ok")  # digits and Latin are left alone


def test_overlapping_intents_are_named() -> None:
    import numpy as np

    from speechsvc.training.intent_train import confusions

    labels = ["bill", "invoice", "refund"]
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    pred = np.array([0, 0, 1, 0, 0, 1, 2, 2, 0])  # invoice is mostly read as bill
    assert confusions(y, pred, labels) == {"bill": ("invoice", 0.333), "invoice": ("bill", 0.667),
                                           "refund": ("bill", 0.333)}
