"""Escalation policy, table-driven: each rule fires where it should, stays quiet where it should, and fires
once per episode (hysteresis). Pure logic: no models."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechsvc.analysis.escalation import EscalationPolicy, EscalationRules
from speechsvc.analysis.record import Utterance
from speechsvc.config import Settings
from speechsvc.models import head_labels

RULES = EscalationRules.load()
INTENTS = head_labels(Settings().heads_dir / "text")


def utt(text: str, intent: str = "other", p: float = 0.9, neg: float = 0.1, angry: float | None = None,
        leg: str = "customer", i: int = 0) -> Utterance:
    return Utterance(leg, i, i * 1000, i * 1000 + 900, text, "zh", 0.9,  # type: ignore[arg-type]
                             intent=intent, intent_probability=p, negativity=neg, p_angry_smoothed=angry,
                             cues=RULES.detect(text))


@pytest.mark.parametrize(
    ("analysis", "kinds"),
    [
        (utt("我要转人工", "human_agent"), {"human_requested"}),
        (utt("帮我叫你们经理来", "human_agent", 0.5), {"human_requested"}),
        (utt("借呗可以人工审核吗", "loan_credit"), set()),  # manual review is not asking for a human
        (utt("我要投诉你们", "complaint", neg=0.95), {"complaint"}),
        (utt("你们服务太差了", "complaint", 0.95, neg=0.95), {"complaint"}),
        (utt("我要打12315", "complaint", neg=0.9), {"complaint", "regulator_threat"}),
        (utt("我明天去工信部反映", "other"), {"regulator_threat"}),
        (utt("花呗没有还款会起诉吗", "loan_credit"), set()),  # the caller asking whether *they* get sued
        (utt("我要销户", "cancel_service", neg=0.2), {"cancellation_risk"}),
        (utt("再这样我就携号转网", "cancel_service", neg=0.8), {"cancellation_risk"}),
        (utt("帮我取消这个订单", "refund_return"), set()),  # an order is not a subscription
        (utt("什么垃圾服务气死我了", "complaint", 0.9, neg=0.99), {"angry_caller", "complaint"}),
        (utt("好的谢谢", "greeting_closing", angry=0.95, neg=0.05), {"angry_caller"}),  # polite words, angry voice
        (utt("好的谢谢", "greeting_closing", angry=0.2, neg=0.05), set()),
        (utt("我的卡丢了帮我挂失", "card_account_security", neg=0.1), set()),  # a neutral request
        (utt("查一下余额", "balance_bill_query"), set()),
    ],
)
def test_each_rule_fires_where_it_should(analysis: Utterance, kinds: set[str]) -> None:
    fired = EscalationPolicy(RULES).update(analysis)
    assert {e.kind for e in fired} == kinds
    for e in fired:
        assert e.reasons and 0 < e.score <= 1 and e.leg == "customer"
        assert all(ev.utterance == analysis.index and ev.text == analysis.text for ev in e.evidence)


def test_fires_once_per_episode_and_rearms_after_calm() -> None:
    policy = EscalationPolicy(RULES)
    angry = [policy.update(utt("垃圾服务气死了", "complaint", neg=0.99, i=i)) for i in range(4)]
    assert [len([e for e in f if e.kind == "angry_caller"]) for f in angry] == [1, 0, 0, 0]
    for i in range(4, 4 + RULES.release_after):  # calm utterances release the episode
        assert policy.update(utt("好的", "greeting_closing", neg=0.05, i=i)) == []
    again = policy.update(utt("你们就是骗子", "complaint", neg=0.99, i=10))
    assert "angry_caller" in {e.kind for e in again}


def test_agent_leg_is_not_escalated() -> None:
    assert EscalationPolicy(RULES).update(utt("我要投诉", "complaint", neg=0.9, leg="agent")) == []


def test_evidence_names_cue_and_media_time() -> None:
    (event,) = [e for e in EscalationPolicy(RULES).update(utt("我要转人工", "human_agent", i=3))
                if e.kind == "human_requested"]
    cues = {ev.cue for ev in event.evidence}
    assert "asks_human" in cues and "intent:human_agent" in cues
    assert event.evidence[0].start_ms == 3000 and event.evidence[0].end_ms == 3900


def test_operator_rules_file(tmp_path: Path) -> None:
    custom = tmp_path / "rules.toml"
    custom.write_text(
        '[policy]\nlegs = ["customer"]\n[cues]\nvip = ["黑金卡"]\n'
        '[kinds.vip_customer]\ncues = { vip = 1.0 }\nfire_at = 0.5\nrelease_below = 0.1\n', encoding="utf-8")
    rules = EscalationRules.load(custom)
    fired = EscalationPolicy(rules).update(
        Utterance("customer", 0, 0, 1, "我是黑金卡用户", "zh", 1.0, cues=rules.detect("我是黑金卡用户")))
    assert [e.kind for e in fired] == ["vip_customer"]


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ('[cues]\na = ["("]\n', "bad pattern"),
        ('[cues]\na = ["x"]\n[kinds.k]\ncues = { b = 1.0 }\n', "undefined cues"),
        ('[cues]\na = ["x"]\n[kinds.k]\ncues = { a = 1.0 }\nfire_at = 0.3\nrelease_below = 0.5\n', "release_below"),
        ('[cues]\na = ["x"]\n[kinds.k]\ncues = { a = 1.0 }\nfire_att = 0.9\n', "unknown key kinds.k.fire_att"),
        ('[polcy]\nlegs = ["customer"]\n', "unknown key polcy"),
        ('[policy]\nlegs = ["caller"]\n', "policy.legs"),
        ('[kinds.k]\nintents = { human_agnet = 1.0 }\n', "kinds.k.intents names intents .*human_agnet"),
        ('[kinds.k]\nintents = { human_agent = -1 }\n', "weights must be numbers"),
        ('[kinds.k]\nfire_at = 0.9\n[kinds', "cannot read"),
    ],
)
def test_bad_rules_are_rejected_with_the_key(tmp_path: Path, toml: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ValueError, match=match):
        EscalationRules.load(path, INTENTS)


def test_packaged_rules_name_only_known_intents() -> None:
    rules = EscalationRules.load(None, INTENTS)
    assert {k.name for k in rules.kinds} >= {"human_requested", "complaint", "angry_caller"}
