"""Agent assist: the knowledge file, ranking bonuses, thresholds, no repeats until the topic returns (pure,
with a bag-of-characters encoder), and suggestions from the real USE encoder (``model``)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from speechsvc.analysis.assist import AssistEngine, AssistOptions, Knowledge, KnowledgeError, Suggestion
from speechsvc.analysis.record import Utterance

KNOWLEDGE = '''
version = 1

[[entry]]
id = "card_loss"
title = "银行卡挂失"
questions = ["我的银行卡丢了", "卡丢了怎么挂失"]
answer = "核实身份后办理临时挂失"
intents = ["card_account_security"]
keywords = ["挂失"]
tags = ["bank"]

[[entry]]
id = "invoice"
title = "开具发票"
questions = ["发票怎么开", "我要开发票"]
answer = "在 App 里申请电子发票"
'''


def characters(texts: list[str]) -> np.ndarray:
    """A bag-of-characters encoder: enough for the logic (shared characters = similar), no model."""
    out = np.zeros((len(texts), 256), np.float32)
    for i, text in enumerate(texts):
        for ch in text:
            out[i, zlib.crc32(ch.encode()) % 256] += 1.0
    return out


def assist(options: AssistOptions | None = None, embed: Callable[[list[str]], np.ndarray] = characters) -> AssistEngine:
    return AssistEngine(Knowledge.parse(KNOWLEDGE), embed, options or AssistOptions(min_score=0.5))


class Customer:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, text: str, **extra: object) -> Utterance:
        self.n += 1
        return Utterance("customer", self.n, self.n * 3000, self.n * 3000 + 2000, text, **extra)  # type: ignore[arg-type]


def entries(suggestions: list[Suggestion]) -> list[str]:
    return [s.entry for s in suggestions]


def test_default_knowledge_loads_with_every_field() -> None:
    knowledge = Knowledge.load()
    ids = [e.id for e in knowledge.entries]
    assert {"card_loss", "bill_query", "refund_progress", "delivery_status", "plan_change"} <= set(ids)
    assert len(ids) == len(set(ids)) >= 15
    assert all(e.title and e.answer and len(e.questions) >= 3 and e.tags for e in knowledge.entries)


@pytest.mark.parametrize(("text", "message"), [
    ("version = 2\n", "need version = 1"),
    ("version = 1\n", "need at least one [[entry]]"),
    ('version = 1\n[[entry]]\nid = "a"\ntitle = "t"\nanswer = "x"\n', "entry[0].questions: must not be empty"),
    ('version = 1\n[[entry]]\nid = "A b"\ntitle = "t"\nanswer = "x"\nquestions = ["q"]\n', "lower_snake_case"),
    ('version = 1\n[[entry]]\nid = "a"\ntitle = "t"\nquestions = ["q"]\n', "entry[0].answer: required"),
    ('version = 1\n[[entry]]\nid = "a"\ntitle = "t"\nanswer = "x"\nquestions = ["q"]\nfaq = 1\n', "unknown keys"),
    ('version = 1\n[[entry]]\nid = "a"\ntitle = "t"\nanswer = "x"\nquestions = ["q"]\nintents = "x"\n',
     "entry[0].intents: must be a list"),
    (KNOWLEDGE + '[[entry]]\nid = "invoice"\ntitle = "t"\nanswer = "x"\nquestions = ["q"]\n', "duplicate entry id"),
    ("version = \n", "not valid TOML"),
])
def test_knowledge_validation(text: str, message: str) -> None:
    with pytest.raises(KnowledgeError) as e:
        Knowledge.parse(text, "kb.toml")
    assert message in str(e.value) and str(e.value).startswith("kb.toml: ")


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="top_k"):
        AssistOptions(top_k=0)


def test_only_customer_finals_with_enough_text_get_suggestions() -> None:
    call = assist().call()
    say = Customer()
    assert call.update(Utterance("agent", 0, 0, 1000, "我的银行卡丢了")) == []
    assert call.update(say("喂")) == []  # shorter than min_chars
    got = call.update(say("我的银行卡丢了"))
    assert entries(got) == ["card_loss"]
    s = got[0]
    assert (s.title, s.utterance, s.text) == ("银行卡挂失", 2, "我的银行卡丢了") and s.score >= 0.5
    assert "similar" in s.reason


def test_intent_and_keyword_bonuses() -> None:
    engine = assist()
    plain = engine.rank("银行卡要挂失")[0]
    boosted = engine.rank("银行卡要挂失", intent="card_account_security", intent_probability=0.9)[0]
    assert plain.entry.id == boosted.entry.id == "card_loss"
    assert boosted.score == pytest.approx(plain.score + 0.15 * 0.9, abs=1e-3)
    assert "keyword 挂失" in plain.reason and "intent card_account_security" in boosted.reason
    weak = engine.rank("银行卡要挂失", intent="card_account_security", intent_probability=0.3)[0]
    assert weak.score == plain.score  # below min_intent_probability


def test_no_repeat_while_the_topic_goes_on_and_again_when_it_returns() -> None:
    call = assist(AssistOptions(min_score=0.5, repeat_after=2)).call()
    say = Customer()
    assert entries(call.update(say("我的银行卡丢了"))) == ["card_loss"]
    assert call.update(say("银行卡丢了怎么挂失")) == []  # same topic: already on screen
    assert entries(call.update(say("发票怎么开"))) == ["invoice"]
    assert call.update(say("我的银行卡丢了")) == []  # only one utterance about something else since
    assert call.update(say("发票怎么开呢")) == []
    assert call.update(say("嗯嗯嗯嗯嗯")) == []
    assert entries(call.update(say("我的银行卡丢了"))) == ["card_loss"]  # two utterances away: it returns


def test_top_k_and_margin() -> None:
    knowledge = Knowledge.parse(KNOWLEDGE)
    both = AssistEngine(knowledge, characters, AssistOptions(min_score=0.1, top_k=2, margin=1.0))
    assert len(both.call().update(Customer()("发票和银行卡丢了"))) == 2
    one = AssistEngine(knowledge, characters, AssistOptions(min_score=0.1, top_k=1, margin=1.0))
    assert len(one.call().update(Customer()("发票和银行卡丢了"))) == 1


def test_a_precomputed_embedding_is_used() -> None:
    calls: list[list[str]] = []

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return characters(texts)

    engine = assist(embed=counting)
    assert len(calls) == 1  # titles and questions, once
    vector = characters(["我的银行卡丢了"])[0]
    vector /= np.linalg.norm(vector)
    assert entries(engine.call().update(Customer()("我的银行卡丢了"), embedding=vector)) == ["card_loss"]
    assert len(calls) == 1


# ---- with the real sentence encoder ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def use_assist() -> AssistEngine:
    from speechsvc.analysis.intent import embedder

    return AssistEngine.load(embedder().encode)


@pytest.mark.model
@pytest.mark.parametrize(("text", "intent", "expected"), [
    ("喂你好，我那个信用卡好像丢了", "card_account_security", "card_loss"),
    ("我想问一下我那个快递怎么一直不动啊", "order_delivery_status", "delivery_status"),
    ("退款到现在都没到", "refund_return", "refund_progress"),
    ("能帮我改成三十九的那个套餐吗", "change_plan_service", "plan_change"),
    ("我这个月信用卡账单是多少", "balance_bill_query", "bill_query"),
])
def test_customer_questions_get_their_entry(use_assist: AssistEngine, text: str, intent: str, expected: str) -> None:
    got = use_assist.call().update(Customer()(text, intent=intent, intent_probability=0.95))
    assert got and got[0].entry == expected


@pytest.mark.model
@pytest.mark.parametrize("text", ["喂你好", "好的谢谢", "嗯对", "行吧那就这样", "今天天气挺热的哈"])
def test_small_talk_gets_nothing(use_assist: AssistEngine, text: str) -> None:
    assert use_assist.call().update(Customer()(text, intent="greeting_closing", intent_probability=0.99)) == []


@pytest.mark.model
def test_default_threshold_is_the_documented_one(use_assist: AssistEngine) -> None:
    assert use_assist.options == AssistOptions()
    stricter = AssistEngine(use_assist.knowledge, use_assist.embed, replace(AssistOptions(), min_score=2.0))
    assert stricter.call().update(Customer()("我的银行卡丢了")) == []
