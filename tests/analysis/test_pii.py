"""PII detection and redaction. Number logic runs without the LAC model (fast tier); names, addresses, the
project's own examples and the eval set load LAC (marked `model`)."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest

from speechsvc.analysis.pii import (
    BEEP_HZ,
    PiiPolicy,
    PiiRedactor,
    Redaction,
    entity_spans_ms,
    redact_audio,
)
from speechsvc.analysis.pii.rules import ALL_TYPES, id_checksum_ok, id_plausible, luhn_ok
from tests.support.datasets import REPO, eval_path

NUMBERS = PiiPolicy(use_model=False)


@pytest.fixture(scope="module")
def numbers() -> PiiRedactor:
    return PiiRedactor(NUMBERS)


def spans(red: Redaction, original: str) -> list[tuple[str, str]]:
    return [(e.type, original[e.source_start : e.source_end]) for e in red.entities]


def call(redactor: PiiRedactor, *texts: str) -> list[Redaction]:
    state = redactor.new_state()
    return [state.redact_final(t) for t in texts]


# ------------------------------------------------------------------ numbers in every style


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我手机号是13912345678 帮我查一下", [("PHONE", "13912345678")]),
        ("电话 幺三九 零二八七 三六四一", [("PHONE", "幺三九 零二八七 三六四一")]),
        ("号码是一八六 两个九 四七 六二三幺", [("PHONE", "一八六 两个九 四七 六二三幺")]),
        ("打这个 幺九幺 〇幺四六 七三〇〇", [("PHONE", "幺九幺 〇幺四六 七三〇〇")]),
        ("电话是 一三九 呃 幺零二四 嗯 八八六七", [("PHONE", "一三九 呃 幺零二四 嗯 八八六七")]),
        ("号码是157 八五零二 5517", [("PHONE", "157 八五零二 5517")]),
        ("联系方式 +86 136 2258 4410", [("PHONE", "+86 136 2258 4410")]),
        ("座机0571-86912345", [("PHONE", "0571-86912345")]),
        ("手机１３５ ２２９０ ７７１８", [("PHONE", "１３５ ２２９０ ７７１８")]),
        ("手機號碼是13922458107", [("PHONE", "13922458107")]),
        ("电话是152 3847 6690 不对 6609", [("PHONE", "152 3847 6690 不对 6609")]),
        ("身份证号 510104198803143310", [("ID_CARD", "510104198803143310")]),
        ("身份证是三二零一零六一九七零零二零三二三九叉", [("ID_CARD", "三二零一零六一九七零零二零三二三九叉")]),
        ("证件号 440304 19850612 620X 对", [("ID_CARD", "440304 19850612 620X")]),
        ("身份证后四位是3310", [("ID_CARD", "3310")]),
        ("卡号 6228 4801 8159 0830 160", [("BANK_CARD", "6228 4801 8159 0830 160")]),
        ("储蓄卡尾号是四八一零", [("BANK_CARD", "四八一零")]),
        ("就是尾号6214的那张工资卡", [("BANK_CARD", "6214")]),
        ("验证码是 四七二九一五", [("VERIFICATION_CODE", "四七二九一五")]),
        ("动态码 8 3 0 6 2 1", [("VERIFICATION_CODE", "8 3 0 6 2 1")]),
        ("验证码6042 六零四二", [("VERIFICATION_CODE", "6042"), ("VERIFICATION_CODE", "六零四二")]),
        ("护照号是E73029581", [("PASSPORT", "E73029581")]),
        ("港澳通行证 C 五三八二 九一零四", [("PASSPORT", "C 五三八二 九一零四")]),
        ("车牌号是川A8K2L9", [("LICENSE_PLATE", "川A8K2L9")]),
        ("就是粤B·D72615 那辆", [("LICENSE_PLATE", "粤B·D72615")]),
        ("车牌 浙A 五八六Q九", [("LICENSE_PLATE", "浙A 五八六Q九")]),
        ("邮箱 lixiaoming2020 艾特 qq 点 com", [("EMAIL", "lixiaoming2020 艾特 qq 点 com")]),
        ("发到 wang.fang@163.com 就行", [("EMAIL", "wang.fang@163.com")]),
    ],
)
def test_values_in_every_style(numbers: PiiRedactor, text: str, expected: list[tuple[str, str]]) -> None:
    assert spans(numbers.redact(text), text) == expected


# ------------------------------------------------------------------ checksums


def test_checksums() -> None:
    assert id_checksum_ok("510104198803143310")
    assert id_checksum_ok("44030419850612620X")
    assert not id_checksum_ok("510104198803143311")
    assert id_plausible("510104198803143311")  # wrong check digit, still ID-shaped
    assert not id_plausible("510104198813443310")  # month 13
    assert luhn_ok("6228480181590830160")
    assert not luhn_ok("6228480181590830161")


def test_checksums_raise_confidence_but_are_not_required(numbers: PiiRedactor) -> None:
    valid = numbers.redact("身份证号 510104198803143310").entities[0]
    invalid = numbers.redact("身份证号 510104198803143311").entities[0]
    assert valid.type == invalid.type == "ID_CARD"
    assert valid.score > invalid.score
    # Without a cue word, shape and checksum decide: a Luhn-valid card number is found, a failing one is not.
    text = "钱退到4367429960308245里面 谢谢"
    assert spans(numbers.redact(text), text) == [("BANK_CARD", "4367429960308245")]
    assert numbers.redact("钱退到4367429960308246里面 谢谢").entities == ()
    # With the cue, a Luhn failure is still a card (callers misread, recognizers mishear).
    assert numbers.redact("卡号是6227002217403808291").entities[0].type == "BANK_CARD"


# ------------------------------------------------------------------ negatives


@pytest.mark.parametrize(
    "text",
    [
        "这个月的月租是五十八块", "上个月账单是1288元 比平时多", "余额显示¥3,865.20 对不对", "我是二零一八年十月办的卡",
        "预约的是2026年3月15号 下午三点半", "我打过95533了", "10086说让我找你们", "我打的是12315",
        "客服热线是不是400-610-5566", "订单编号 4521 8830 1196 4472", "订单号是 2843 9175 0062 8815 364",
        "快递单号是YT2398471125563", "中通的单号是 75139820476153", "上次的投诉工单号是20250618000327",
        "退货单号 三八二九 幺零四七", "你们工号1093的那个客服", "邮编是 510630", "我要转5000块到我妈卡上",
        "分期是12期的 每期手续费0.5%", "我手机上面收不到验证码", "航班是CA1832 晚上七点的", "高铁G1375的车票",
        "房间号1206 前台说没有包裹", "积分还有12600分", "一般都是下午一点以后才有人", "我有三张卡 两张信用卡一张储蓄卡",
        "交易流水号是 20240915 3382 7710", "iPhone 15 Pro Max 256G的", "发票抬头是公司 税号91330106MA2H0B7X3L",
        "字幕由Amara.org社区提供",
    ],
)
def test_negatives_survive(numbers: PiiRedactor, text: str) -> None:
    red = numbers.redact(text)
    assert red.text == text and red.entities == ()


# ------------------------------------------------------------------ across utterances


def test_number_split_across_utterances_redacts_each_piece(numbers: PiiRedactor) -> None:
    texts = ["我的手机号是一三八", "幺二三四", "五六七八"]
    reds = call(numbers, *texts)
    assert [r.text for r in reds] == ["我的手机号是[PHONE]", "[PHONE]", "[PHONE]"]
    assert spans(reds[0], texts[0]) == [("PHONE", "一三八")]


def test_context_turn_inside_a_dictation_keeps_the_value_open(numbers: PiiRedactor) -> None:
    texts = ["兴业银行的卡 622908", "等一下 我看一下卡上面", "5141 5102", "1635"]
    reds = call(numbers, *texts)
    assert [spans(r, t) for r, t in zip(reds, texts, strict=True)] == [
        [("BANK_CARD", "622908")], [], [("BANK_CARD", "5141 5102")], [("BANK_CARD", "1635")],
    ]


def test_piece_that_looks_like_a_date_or_a_mobile_takes_the_type_of_the_whole(numbers: PiiRedactor) -> None:
    reds = call(numbers, "我报一下身份证号啊 110108", "19690910", "803X")
    assert [e.type for r in reds for e in r.entities] == ["ID_CARD"] * 3
    reds = call(numbers, "退款退到我的农行卡 六二二八四八", "幺三八四幺幺二八三五七七九")
    assert [e.type for r in reds for e in r.entities] == ["BANK_CARD"] * 2


def test_cue_alone_then_value(numbers: PiiRedactor) -> None:
    reds = call(numbers, "我在办携号转网 要填个验证码", "验证码是三八", "五九零七")
    assert [[e.type for e in r.entities] for r in reds] == [[], ["VERIFICATION_CODE"], ["VERIFICATION_CODE"]]


def test_business_number_continued_is_not_masked(numbers: PiiRedactor) -> None:
    reds = call(numbers, "订单号是 三三八二 九一七七", "幺零四五 六六二三")
    assert [r.entities for r in reds] == [(), ()]


def test_pending_value_expires() -> None:
    redactor = PiiRedactor(PiiPolicy(use_model=False, max_pending_turns=1, min_digits=8))
    reds = call(redactor, "卡号是 6217", "你等等啊", "我再问一下", "我先挂了", "0012")
    assert reds[-1].entities == ()
    reds = call(redactor, "卡号是 6217", "你等等啊", "0012 3456")
    assert reds[-1].entities[0].type == "BANK_CARD"


def test_split_plate_email_passport(numbers: PiiRedactor) -> None:
    assert [r.text for r in call(numbers, "车牌号是鲁B", "3N7Q2")] == ["车牌号是[LICENSE_PLATE]", "[LICENSE_PLATE]"]
    assert [r.text for r in call(numbers, "邮箱是 zhoujie", "1988 艾特 163 点 com")] == ["邮箱是 [EMAIL]", "[EMAIL]"]
    passport = call(numbers, "我的护照号 E 三八", "七四六 二九一")
    assert [r.text for r in passport] == ["我的护照号 [PASSPORT]", "[PASSPORT]"]


# ------------------------------------------------------------------ partials and conservative masking


def test_partial_masks_a_trailing_digit_run_and_does_not_change_the_state() -> None:
    redactor = PiiRedactor(PiiPolicy(use_model=False, min_digits=3))
    state = redactor.new_state()
    assert state.redact_partial("那个 一三八 幺二").text == "那个 [PHONE]"
    assert state.redact_partial("那个 一三八 幺二三四 五六七八 好").text == "那个 [PHONE] 好"
    # the partials left nothing behind: a bare short run in a fresh utterance is not PII
    assert state.redact_final("好的 谢谢").entities == ()


def test_min_digits_decides_conservative_masking() -> None:
    low = PiiRedactor(PiiPolicy(use_model=False, min_digits=3)).new_state()
    high = PiiRedactor(PiiPolicy(use_model=False, min_digits=8)).new_state()
    assert low.redact_partial("先记一下 一三九二").text == "先记一下 [PHONE]"
    assert high.redact_partial("先记一下 一三九二").text == "先记一下 一三九二"


def test_final_trailing_run_is_masked_and_continued(numbers: PiiRedactor) -> None:
    reds = call(numbers, "幺三七 幺八二九", "六五四零 这是我手机号")
    assert [r.text for r in reds] == ["[PHONE]", "[PHONE] 这是我手机号"]


# ------------------------------------------------------------------ styles and offsets


def test_tag_style_offsets_index_the_redacted_text(numbers: PiiRedactor) -> None:
    text = "身份证110101197202154825 手机13519161461"
    red = numbers.redact(text)
    assert red.text == "身份证[ID_CARD] 手机[PHONE]"
    for e in red.entities:
        assert red.text[e.start : e.end] == f"[{e.type}]"
    assert [text[e.source_start : e.source_end] for e in red.entities] == ["110101197202154825", "13519161461"]
    assert red.public()["entities"] == [
        {"type": "ID_CARD", "start": 3, "end": 12}, {"type": "PHONE", "start": 15, "end": 22},
    ]
    assert "source_start" not in json.dumps(red.public())


def test_mask_style_keeps_the_last_four_in_any_script() -> None:
    redactor = PiiRedactor(PiiPolicy(use_model=False, style="mask"))
    red = redactor.redact("我手机号是13812345678")
    assert red.text == "我手机号是138****5678"
    assert red.text[red.entities[0].start : red.entities[0].end] == "138****5678"
    red = redactor.redact("电话 幺三八 幺二三四 五六七八")
    assert red.text == "电话 幺三八 **** 五六七八"
    red = redactor.redact("卡号 6228 4801 8159 0830 160")
    assert red.text == "卡号 **** **** **** ***0 160"
    red = redactor.redact("验证码是 四七二九")  # too short to keep anything
    assert red.text == "验证码是 ****"
    pieces = call(redactor, "我的手机号是一三八", "幺二三四", "五六七八")  # pieces are masked whole
    assert [r.text for r in pieces] == ["我的手机号是***", "****", "****"]


def test_types_and_disabled_policy() -> None:
    text = "手机13519161461 验证码 749203"
    only_codes = PiiRedactor(PiiPolicy(use_model=False, types=frozenset({"VERIFICATION_CODE"})))
    assert only_codes.redact(text).text == "手机13519161461 验证码 [VERIFICATION_CODE]"
    off = PiiRedactor(PiiPolicy(enabled=False))
    assert off.redact(text) == Redaction(text, ())


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="unknown PII types"):
        PiiPolicy(types=frozenset({"SSN"}))
    with pytest.raises(ValueError, match="style"):
        PiiPolicy(style="blur")  # type: ignore[arg-type]
    assert set(PiiPolicy().types) == set(ALL_TYPES)


# ------------------------------------------------------------------ timings and audio


def test_entity_spans_ms_from_word_and_char_timings(numbers: PiiRedactor) -> None:
    text = "我的电话是13912345678好的"
    red = numbers.redact(text)
    words = [("我的", 0, 300), ("电话", 300, 600), ("是", 600, 700), ("139", 700, 1200), ("1234", 1200, 1900),
             ("5678", 1900, 2600), ("好的", 2700, 3000)]
    assert "".join(w for w, _, _ in words) == text
    assert entity_spans_ms(red, words) == [(700, 2600)]
    chars = [(c, i * 100, i * 100 + 100) for i, c in enumerate(text)]
    assert entity_spans_ms(red, chars, pad_ms=50) == [(450, 1650)]
    with pytest.raises(ValueError, match="outside"):
        entity_spans_ms(red, words[:2])


def test_redact_audio_silence_and_beep() -> None:
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(16_000)).astype(np.float32)
    quiet = redact_audio(audio, [(250, 500)], mode="silence")
    assert quiet.dtype == np.float32 and quiet.shape == audio.shape
    assert float(np.abs(quiet[4000:8000]).max()) == 0.0
    assert np.array_equal(quiet[:4000], audio[:4000]) and np.array_equal(quiet[8000:], audio[8000:])
    beeped = redact_audio(audio, [(250, 500)], mode="beep")
    seg = beeped[4000:8000]
    assert float(np.sqrt(np.mean(seg**2))) < float(np.sqrt(np.mean(audio[4000:8000] ** 2)))
    spectrum = np.abs(np.fft.rfft(seg))
    assert abs(float(np.argmax(spectrum)) * 16_000 / len(seg) - BEEP_HZ) < 10
    assert np.array_equal(audio, (0.3 * np.random.default_rng(0).standard_normal(16_000)).astype(np.float32))
    with pytest.raises(ValueError, match="mode"):
        redact_audio(audio, [], mode="noise")  # type: ignore[arg-type]


# ------------------------------------------------------------------ CLI


def test_cli_redact_call_lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from speechsvc.cli import main

    lines = "我的手机号是一三八\n幺二三四\n五六七八\n\n幺二三四\n订单号是 2843 9175 0062 8815 364\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["redact", "--call", "--types", "PHONE,ID_CARD,BANK_CARD,VERIFICATION_CODE"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["text"] for o in out] == ["我的手机号是[PHONE]", "[PHONE]", "[PHONE]", "幺二三四",
                                        "订单号是 2843 9175 0062 8815 364"]
    assert out[0]["entities"] == [{"type": "PHONE", "start": 6, "end": 13}]


def test_cli_redact_arguments_mask(capsys: pytest.CaptureFixture[str]) -> None:
    from speechsvc.cli import main

    assert main(["redact", "--style", "mask", "--types", "PHONE", "手机 13812345678 好的", "没有号码"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out == [{"text": "手机 138****5678 好的", "entities": [{"type": "PHONE", "start": 3, "end": 14}]},
                   {"text": "没有号码", "entities": []}]


# ------------------------------------------------------------------ with the LAC model


@pytest.fixture(scope="module")
def full() -> PiiRedactor:
    return PiiRedactor(PiiPolicy())


@pytest.mark.model
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我叫张伟东 想查一下账单", [("NAME", "张伟东")]),
        ("收货人是我儿子 刘子豪", [("NAME", "刘子豪")]),
        ("户名是欧阳娜娜", [("NAME", "欧阳娜娜")]),
        ("免贵姓王 王先生", [("NAME", "王先生")]),
        ("我叫买买提·艾力 新疆来的", [("NAME", "买买提·艾力")]),
        ("你们那个张经理上次说给我退", []),
        ("你们那个李宁的鞋 四十二码的", []),
        ("邝嘉豪 就是我本人", [("NAME", "邝嘉豪")]),  # a name said on its own, as the answer to 怎么称呼
        ("李宁的鞋子还没到", []),  # a brand at the start of an utterance, glued to what follows
        ("收货地址是 成都市锦江区红星路三段一百零六号 二单元 五楼",
         [("ADDRESS", "成都市锦江区红星路三段一百零六号 二单元 五楼")]),
        ("寄到河南省周口市郸城县汲冢镇李楼村三组二十六号", [("ADDRESS", "河南省周口市郸城县汲冢镇李楼村三组二十六号")]),
        ("我家是合肥蜀山区绿地蓝海 五栋一单元九零二", [("ADDRESS", "合肥蜀山区绿地蓝海 五栋一单元九零二")]),
        ("寄到珠海香洲区情侣中路8号 海湾花园 呃 5栋2203", [("ADDRESS", "珠海香洲区情侣中路8号 海湾花园 呃 5栋2203")]),
        ("我在深圳宝安区这边", []),
        ("物流显示已经到了上海转运中心", []),
        ("我住1802 但是快递放到别人家门口了", []),
    ],
)
def test_names_and_addresses(full: PiiRedactor, text: str, expected: list[tuple[str, str]]) -> None:
    assert spans(full.redact(text), text) == expected


@pytest.mark.model
def test_address_split_across_utterances(full: PiiRedactor) -> None:
    reds = call(full, "地址改一下 改到广州市天河区体育西路", "一百零八号 嗯 二十三楼")
    assert [r.text for r in reds] == ["地址改一下 改到[ADDRESS]", "[ADDRESS]"]


@pytest.mark.model
def test_own_examples_are_all_found() -> None:
    from speechsvc.evaluation.pii_eval import evaluate_pii

    report = evaluate_pii(REPO / "data" / "pii_examples.tsv")
    assert report["span_strict"]["micro"]["recall"] >= 0.95
    assert report["precision"] >= 0.95
    assert report["redaction"]["negative_rows_changed"] == 0


@pytest.mark.model
def test_eval_set_targets() -> None:
    from speechsvc.evaluation.pii_eval import evaluate_pii

    report = evaluate_pii(eval_path("pii", "dev.tsv"))
    recall = {t: v["recall"] for t, v in report["span_relaxed"].items()}
    for typ in ("PHONE", "ID_CARD", "BANK_CARD"):
        assert recall[typ] >= 0.95, (typ, recall[typ])
    for typ in ("NAME", "ADDRESS"):
        assert recall[typ] >= 0.85, (typ, recall[typ])
    assert report["precision"] >= 0.90
    assert report["split_values"]["recall"] >= 0.95
