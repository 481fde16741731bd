"""Quality-inspection rules: every operator, the combinators, validation errors (key path and line), live
decisions that equal the post-call score, the default pack, aggregates and the ``speechsvc qa`` command.

Pure tests write small rule files without sentence embeddings and load nothing; the ``model`` tests use the
real USE encoder (loaded once) for ``similar``, embedding repetition and the default pack."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechsvc.analysis.qa import QaEngine, QaOutcome, QaReport, qa_aggregates
from speechsvc.analysis.qa.rules import DEFAULT_RULES, QaRules, QaRulesError
from speechsvc.analysis.record import CallEnd, Utterance, call_end_from_report, utterances_from_report
from tests.support.datasets import DATA

HEADER = 'version = 1\n'


def rule(when: str, kind: str = "violation", rule_id: str = "r", score: float = -5, extra: str = "") -> str:
    return (f'[[rule]]\nid = "{rule_id}"\ncategory = "test"\nseverity = "major"\nscore = {score}\nkind = "{kind}"\n'
            f'description = "test rule"\nwhen = {when}\n{extra}\n')


def engine(*rules: str, matchers: str = "", embed: Callable[[list[str]], np.ndarray] | None = None) -> QaEngine:
    return QaEngine(QaRules.parse(HEADER + matchers + "\n" + "".join(rules)), embed)


class Calls:
    """Utterances with per-leg indices, times in seconds."""

    def __init__(self) -> None:
        self.items: list[Utterance] = []
        self._index = {"agent": 0, "customer": 0, "mixed": 0}

    def __call__(self, leg: str, start_s: float, end_s: float, text: str, **extra: Any) -> Calls:
        self.items.append(Utterance(leg, self._index[leg], int(start_s * 1000), int(end_s * 1000), text,  # type: ignore[arg-type]
                                    **extra))
        self._index[leg] += 1
        return self

    def agent(self, start_s: float, end_s: float, text: str, **extra: Any) -> Calls:
        return self("agent", start_s, end_s, text, **extra)

    def customer(self, start_s: float, end_s: float, text: str, **extra: Any) -> Calls:
        return self("customer", start_s, end_s, text, **extra)


def ended(duration_ms: int, ended_by: str | None = None, mid_utterance: bool = False,
          mid_utterance_leg: str | None = None) -> CallEnd:
    """How a call of ``duration_ms`` ended: who hung up, and whether (and which leg) was cut off."""
    cut = (mid_utterance_leg or "customer",) if mid_utterance else ()
    return CallEnd("stop", {"customer": duration_ms, "agent": duration_ms}, cut, ended_by)  # type: ignore[arg-type]


def score(eng: QaEngine, calls: Calls, duration_s: float | None = None, **end: Any) -> QaReport:
    duration = int((duration_s or max(u.end_ms for u in calls.items) / 1000 + 1) * 1000)
    return eng.score_call(calls.items, ended(duration, **end))


def status(eng: QaEngine, calls: Calls, rule_id: str = "r", **end: Any) -> str:
    return score(eng, calls, **end).outcome(rule_id).status


def live_order(items: list[Utterance], seed: int) -> list[Utterance]:
    """Each leg's finals in that leg's order, legs interleaved at random: how a live call delivers them."""
    rng = random.Random(seed)
    queues = {leg: [u for u in items if u.leg == leg] for leg in ("customer", "agent")}
    out = []
    while any(queues.values()):
        leg = rng.choice([leg for leg, q in queues.items() if q])
        out.append(queues[leg].pop(0))
    return out


def run_live(eng: QaEngine, items: list[Utterance], end: CallEnd) -> list[QaOutcome]:
    call = eng.call()
    outcomes = []
    for u in items:
        outcomes.extend(call.update(u))
    outcomes.extend(call.end(end))
    return outcomes


# ---- operators -------------------------------------------------------------------------------------------


def test_keyword_any_all_none_role_and_normalisation() -> None:
    eng = engine(rule('{ op = "keyword", role = "agent", any = ["请稍等", "稍后"], none = ["不用"] }'))
    assert status(eng, Calls().agent(1, 3, "好的 請 稍等，我查一下")) == "fail"  # Traditional, spaces, punctuation
    assert status(eng, Calls().customer(1, 3, "请稍等")) == "pass"  # the customer's words are not the agent's
    assert status(eng, Calls().agent(1, 3, "不用请稍等了")) == "pass"  # `none` vetoes
    both = engine(rule('{ op = "keyword", all = ["身份证", "后六位"] }'))
    assert status(both, Calls().agent(1, 3, "请提供身份证后六位")) == "fail"
    assert status(both, Calls().agent(1, 3, "请提供身份证").agent(4, 5, "后六位")) == "pass"  # all: one utterance


def test_keyword_within_first_s_is_decided_live_when_the_window_passes() -> None:
    eng = engine(rule('{ op = "keyword", role = "agent", any = ["工号"], within_first_s = 15 }', kind="requirement"))
    call = eng.call()
    assert call.update(Utterance("agent", 0, 16_000, 18_000, "您好工号1024")) == []  # customer may still speak
    decided = call.update(Utterance("customer", 0, 16_500, 17_000, "喂"))
    assert [(o.rule, o.status, o.decided_at) for o in decided] == [("r", "fail", "live")]
    assert "first 15 s" in decided[0].note
    on_time = Calls().agent(2, 4, "您好工号1024").customer(5, 6, "你好")
    assert status(eng, on_time) == "pass"


def test_within_last_s_is_decided_at_the_end() -> None:
    eng = engine(rule('{ op = "keyword", role = "agent", any = ["还有什么可以帮您"], within_last_s = 30 }',
                      kind="requirement"))
    calls = Calls().agent(1, 3, "您好").agent(10, 12, "请问还有什么可以帮您").customer(13, 14, "没了")
    assert status(eng, calls, duration_s=20) == "pass"
    assert status(eng, calls, duration_s=60) == "fail"


def test_regex_matches_normalised_text_and_reports_what_it_found() -> None:
    eng = engine(rule(r'{ op = "regex", role = "agent", any = ["工号\\s*[0-9]{3,}"] }', kind="requirement"))
    report = score(eng, Calls().agent(1, 4, "您好，工号 3017，为您服务"))
    assert report.outcome("r").status == "pass"
    assert report.outcome("r").evidence[0].cue == "regex:工号3017"


def test_intent_negativity_and_emotion_thresholds_ignore_missing_values() -> None:
    intent = engine(rule('{ op = "intent", role = "customer", any = ["complaint"], min_probability = 0.6 }'))
    assert status(intent, Calls().customer(1, 2, "投诉", intent="complaint", intent_probability=0.9)) == "fail"
    assert status(intent, Calls().customer(1, 2, "投诉", intent="complaint", intent_probability=0.5)) == "pass"
    negativity = engine(rule('{ op = "negativity", above = 0.8 }'))
    assert status(negativity, Calls().customer(1, 2, "太差了", negativity=0.93)) == "fail"
    assert status(negativity, Calls().customer(1, 2, "太差了")) == "pass"  # no text model: no match
    emotion = engine(rule('{ op = "emotion", labels = ["angry"], p_angry_above = 0.7 }'))
    assert status(emotion, Calls().customer(1, 2, "啊", emotion="angry", p_angry_smoothed=0.8)) == "fail"
    assert status(emotion, Calls().customer(1, 2, "啊", emotion="angry", p_angry_smoothed=0.6)) == "pass"
    assert status(emotion, Calls().customer(1, 2, "啊", emotion="neutral", p_angry_smoothed=0.9)) == "pass"


MATCHERS = '''
[matchers.complaint]
op = "keyword"
role = "customer"
any = ["投诉", "太差"]

[matchers.apology]
op = "keyword"
role = "agent"
any = ["抱歉", "对不起"]
'''


def test_sequence_pair_within_utterances() -> None:
    eng = engine(rule('{ op = "sequence", first = "complaint", then = "apology", within_utterances = 2 }',
                      kind="requirement"), matchers=MATCHERS)
    ok = Calls().customer(1, 2, "我要投诉").agent(3, 4, "非常抱歉")
    assert status(eng, ok) == "pass"
    late = Calls().customer(1, 2, "我要投诉").agent(3, 4, "嗯").customer(5, 6, "对").agent(7, 8, "抱歉")
    assert status(eng, late) == "fail"
    before = Calls().agent(1, 2, "抱歉").customer(3, 4, "我要投诉")
    assert status(eng, before) == "fail"  # then must come after first


def test_sequence_not_followed_is_decided_live_when_the_window_closes() -> None:
    eng = engine(rule('{ op = "sequence", first = "complaint", then = "apology", within_utterances = 2, '
                      'absent = "then" }', extra='applies_if = "complaint"'), matchers=MATCHERS)
    call = eng.call()
    assert call.update(Utterance("customer", 0, 1000, 2000, "服务太差了")) == []
    assert call.update(Utterance("agent", 0, 2500, 3000, "嗯")) == []
    assert call.update(Utterance("customer", 1, 3500, 4000, "你说话啊")) == []
    decided = call.update(Utterance("agent", 1, 4500, 5000, "好的"))
    assert [(o.status, o.decided_at) for o in decided] == [("fail", "live")]
    assert decided[0].evidence[0].text == "服务太差了" and "not followed" in decided[0].note
    calm = Calls().customer(1, 2, "查余额").agent(3, 4, "好的")
    assert status(eng, calm) == "not_applicable"
    answered = Calls().customer(1, 2, "太差了").agent(3, 4, "对不起")
    assert status(eng, answered) == "pass"


def test_sequence_waiting_at_the_end_counts_only_if_the_answering_role_had_a_chance() -> None:
    eng = engine(rule('{ op = "sequence", first = "complaint", then = "apology", within_utterances = 4, '
                      'absent = "then" }'), matchers=MATCHERS)
    hung_up = Calls().agent(1, 2, "您好").customer(3, 4, "我要投诉")
    assert status(eng, hung_up, ended_by="customer") == "pass"  # the customer hung up on the complaint
    assert status(eng, hung_up, ended_by="agent") == "fail"  # the agent hung up instead of answering
    ignored = Calls().customer(1, 2, "我要投诉").agent(3, 4, "那你投诉吧")
    assert status(eng, ignored, ended_by="customer") == "fail"


def test_sequence_lookback_lets_one_apology_cover_its_episode() -> None:
    spec = ('{ op = "sequence", first = "complaint", then = "apology", within_utterances = 2, absent = "then", '
            'lookback_utterances = 3 }')
    calls = (Calls().customer(1, 2, "太差了").agent(3, 4, "非常抱歉").customer(5, 6, "我要投诉")
             .agent(7, 8, "我帮您反馈").customer(9, 10, "好").agent(11, 12, "好的"))
    assert status(engine(rule(spec), matchers=MATCHERS), calls) == "pass"
    without = spec.replace(", lookback_utterances = 3", "")
    assert status(engine(rule(without), matchers=MATCHERS), calls) == "fail"


def test_sequence_not_preceded_and_within_s() -> None:
    matchers = MATCHERS + '\n[matchers.verify]\nop = "keyword"\nrole = "agent"\nany = ["身份证"]\n' \
        '\n[matchers.balance]\nop = "regex"\nrole = "agent"\nany = ["余额.{0,4}[0-9]+元"]\n'
    eng = engine(rule('{ op = "sequence", first = "verify", then = "balance", absent = "first" }',
                      extra='applies_if = "balance"'), matchers=matchers)
    call = eng.call()
    call.update(Utterance("agent", 0, 1000, 2000, "您的余额是300元"))
    decided = call.update(Utterance("customer", 0, 2500, 3000, "好"))
    assert [(o.status, o.decided_at) for o in decided] == [("fail", "live")]
    verified = Calls().agent(1, 2, "请提供身份证后六位").customer(3, 4, "一二三").agent(5, 6, "您的余额是300元")
    assert status(eng, verified) == "pass"
    assert status(eng, Calls().agent(1, 2, "您好")) == "not_applicable"
    timed = engine(rule('{ op = "sequence", first = "complaint", then = "apology", within_s = 5 }',
                        kind="requirement"), matchers=MATCHERS)
    assert status(timed, Calls().customer(1, 2, "投诉").agent(6, 7, "抱歉")) == "pass"
    assert status(timed, Calls().customer(1, 2, "投诉").agent(8, 9, "抱歉")) == "fail"


def test_repeat_count_and_near_duplicates() -> None:
    counted = engine(rule('{ op = "repeat", match = { op = "keyword", role = "agent", any = ["不知道"] }, '
                          'min_count = 2 }'))
    assert status(counted, Calls().agent(1, 2, "不知道").agent(3, 4, "这我不知道")) == "fail"
    assert status(counted, Calls().agent(1, 2, "不知道").customer(3, 4, "不知道")) == "pass"
    same = engine(rule('{ op = "repeat", role = "customer", min_count = 3, min_similarity = 0.6 }'))
    repeated = (Calls().customer(1, 2, "我要取消彩铃业务").agent(3, 4, "您要办彩铃吗")
                .customer(5, 6, "不是我要取消彩铃业务").customer(7, 8, "取消彩铃业务"))
    report = score(same, repeated)
    assert report.outcome("r").status == "fail" and len(report.outcome("r").evidence) == 3
    assert status(same, Calls().customer(1, 2, "我要取消彩铃业务").customer(3, 4, "快递到哪了")
                  .customer(5, 6, "发票怎么开")) == "pass"


def test_silence_excused_and_attributed() -> None:
    eng = engine(rule('{ op = "silence", min_s = 30, excused_by = { op = "keyword", role = "agent", '
                      'any = ["稍等"] }, excuse_lookback = 2 }'))
    hold = Calls().customer(1, 2, "查一下").agent(3, 4, "好的").customer(40, 41, "还在吗")
    report = score(eng, hold)
    assert report.outcome("r").status == "fail"
    gap = report.outcome("r").evidence[0]
    assert (gap.utterance, gap.leg, gap.start_ms, gap.end_ms) == (None, "agent", 4000, 40_000)
    announced = Calls().agent(1, 2, "请您稍等").customer(3, 4, "好").agent(40, 41, "久等了")
    assert status(eng, announced) == "pass"
    assert status(eng, Calls().agent(1, 2, "您好").customer(20, 21, "好")) == "pass"
    after_agent = engine(rule('{ op = "silence", min_s = 10, after = "customer" }'))
    assert status(after_agent, Calls().agent(1, 2, "您好").customer(20, 21, "好")) == "pass"
    assert status(after_agent, Calls().customer(1, 2, "喂").agent(20, 21, "您好")) == "fail"


def test_silence_edges_and_a_hold_in_progress_decided_by_advance() -> None:
    inner = engine(rule('{ op = "silence", min_s = 30 }'))
    assert status(inner, Calls().agent(1, 2, "您好"), duration_s=60) == "pass"  # trailing silence is no gap
    edges = engine(rule('{ op = "silence", min_s = 30, edges = true }'))
    assert status(edges, Calls().agent(1, 2, "您好"), duration_s=60) == "fail"
    call = edges.call()
    call.update(Utterance("agent", 0, 1000, 2000, "请稍等"))
    assert call.advance("agent", 40_000) == []  # the customer's side is not known yet
    decided = call.advance("customer", 33_000)
    assert [(o.status, o.decided_at) for o in decided] == [("fail", "live")]
    assert "in progress" in decided[0].evidence[0].cue


def test_speaking_rate_per_call_and_per_utterance() -> None:
    eng = engine(rule('{ op = "speaking_rate", role = "agent", above = 330, below = 120, min_talk_s = 5 }'))
    normal = Calls().agent(0, 6, "您好工号一零二四很高兴为您服务请问有什么可以帮您")  # 24 chars in 6 s = 240/min
    assert status(eng, normal) == "pass"
    fast = Calls().agent(0, 6, "您好工号一零二四很高兴为您服务请问有什么可以帮您请问有什么可以帮您请问有什么")
    # 37 chars in 6 s = 370/min
    assert status(eng, fast) == "fail"
    slow = Calls().agent(0, 12, "您好工号一零二四很高兴为您服务")  # 75/min
    assert status(eng, slow) == "fail"
    assert status(eng, Calls().agent(0, 2, "您好")) == "not_applicable"  # under min_talk_s
    per = engine(rule('{ op = "speaking_rate", role = "agent", above = 330, per = "utterance", min_chars = 10 }'))
    call = per.call()
    call.update(Utterance("agent", 0, 0, 2000, "您好工号一零二四很高兴为您服务"))  # 15 chars in 2 s: 450/min
    decided = call.update(Utterance("customer", 0, 2500, 3000, "嗯"))
    assert [(o.status, o.decided_at) for o in decided] == [("fail", "live")]


def test_interruption_overlap_backchannels_and_direction() -> None:
    eng = engine(rule('{ op = "interruption", role = "agent", over = "customer", min_overlap_ms = 1000, '
                      'min_chars = 4 }'))
    cut_in = Calls().customer(0, 6, "我想问一下我上个月的账单为什么这么多").agent(4.5, 8, "那是因为您超了流量")
    report = score(eng, cut_in)
    assert report.outcome("r").status == "fail"
    assert "by 1500 ms" in report.outcome("r").evidence[0].cue
    assert status(eng, Calls().customer(0, 6, "我想问一下账单").agent(5.5, 6.2, "嗯嗯")) == "pass"  # backchannel
    assert status(eng, Calls().customer(0, 6, "我想问一下账单").agent(5.5, 8, "好的您说说看")) == "pass"  # 500 ms
    assert status(eng, Calls().agent(0, 6, "您好工号一零二四").customer(3, 8, "你听我说我要问账单")) == "pass"


def test_hangup_and_unknown_ended_by() -> None:
    eng = engine(rule('{ op = "hangup", by = ["agent"], mid_leg = "customer" }'))
    calls = Calls().agent(1, 2, "您好").customer(3, 5, "我还没说完")
    cut = {"duration_s": 5, "mid_utterance": True, "mid_utterance_leg": "customer"}
    assert status(eng, calls, ended_by="agent", **cut) == "fail"
    assert status(eng, calls, ended_by="customer") == "pass"
    assert status(eng, calls) == "not_applicable"  # who hung up is unknown
    helped = engine(rule('{ op = "keyword", role = "agent", any = ["还有什么"] }', kind="requirement",
                         extra='applies_if = { not = { op = "hangup", by = ["customer"], mid_leg = "customer" } }'))
    assert status(helped, calls) == "fail"  # applies_if unknown does not exclude the rule
    assert status(helped, calls, duration_s=5, ended_by="customer", mid_utterance=True,
                  mid_utterance_leg="customer") == "not_applicable"


def test_duration_decided_live_once_the_call_is_long_enough() -> None:
    eng = engine(rule('{ op = "duration", above_s = 10 }'))
    call = eng.call()
    call.update(Utterance("agent", 0, 1000, 11_000, "您好"))
    decided = call.update(Utterance("customer", 0, 11_500, 12_000, "喂"))
    assert [(o.status, o.decided_at) for o in decided] == [("fail", "live")]
    assert status(eng, Calls().agent(1, 2, "您好"), duration_s=8) == "pass"


# ---- combinators and scoring ----------------------------------------------------------------------------


def test_call_level_and_or_not() -> None:
    both = engine(rule('{ and = [{ op = "keyword", any = ["您好"] }, { op = "keyword", any = ["工号"] }] }',
                       kind="requirement"))
    assert status(both, Calls().agent(1, 2, "您好").agent(3, 4, "工号1024")) == "pass"  # two utterances
    assert status(both, Calls().agent(1, 2, "您好")) == "fail"
    either = engine(rule('{ or = [{ op = "keyword", any = ["投诉"] }, { op = "negativity", above = 0.9 }] }'))
    assert status(either, Calls().customer(1, 2, "差", negativity=0.95)) == "fail"
    assert status(either, Calls().customer(1, 2, "好", negativity=0.1)) == "pass"
    negated = engine(rule('{ not = { op = "keyword", role = "agent", any = ["再见"] } }'))
    assert status(negated, Calls().agent(1, 2, "好的")) == "fail"
    assert status(negated, Calls().agent(1, 2, "好的再见")) == "pass"


def test_matcher_level_combinators_test_one_utterance() -> None:
    same = engine(rule('{ op = "utterance", match = { and = [{ op = "keyword", any = ["您好"] }, '
                       '{ op = "keyword", any = ["工号"] }], role = "agent" } }', kind="requirement"))
    assert status(same, Calls().agent(1, 2, "您好").agent(3, 4, "工号1024")) == "fail"
    assert status(same, Calls().agent(1, 2, "您好工号1024")) == "pass"
    assert status(same, Calls().customer(1, 2, "您好工号1024")) == "fail"  # role on the combinator
    unless = engine(rule('{ op = "utterance", match = { and = [{ op = "keyword", any = ["没办法"] }, '
                         '{ not = { op = "keyword", any = ["抱歉"] } }] } }'))
    assert status(unless, Calls().agent(1, 2, "抱歉 这个没办法")) == "pass"
    assert status(unless, Calls().agent(1, 2, "这个没办法")) == "fail"


def test_score_deductions_bonuses_and_not_applicable() -> None:
    eng = engine(
        rule('{ op = "keyword", any = ["不知道"] }', rule_id="taboo", score=-10),
        rule('{ op = "keyword", any = ["工号"] }', kind="requirement", rule_id="greeting", score=-5),
        rule('{ op = "keyword", any = ["先生", "女士"] }', kind="requirement", rule_id="name_used", score=2),
        rule('{ op = "keyword", role = "customer", any = ["投诉"] }', rule_id="only_if",
             extra='applies_if = { op = "keyword", any = ["账单"] }'),
    )
    report = score(eng, Calls().agent(1, 2, "李先生 我不知道"))
    assert {o.rule: o.status for o in report.outcomes} == {"taboo": "fail", "greeting": "fail", "name_used": "pass",
                                                          "only_if": "not_applicable"}
    assert report.score == 100 - 10 - 5 + 2 and report.failed == ("taboo", "greeting")
    assert report.to_dict()["outcomes"][0]["status"] == "fail"


def test_rules_about_a_role_the_call_lacks_are_not_applicable() -> None:
    eng = engine(rule('{ op = "keyword", role = "agent", any = ["工号"] }', kind="requirement", rule_id="greeting"),
                 rule('{ op = "keyword", any = ["投诉"] }', rule_id="anyone"))
    mono = Calls()("mixed", 1, 2, "您好工号1024 我要投诉")
    report = eng.score_call(mono.items, ended(3000))
    assert report.outcome("greeting").status == "not_applicable"
    assert report.outcome("anyone").status == "fail"


# ---- live vs post-call -------------------------------------------------------------------------------------

PACK = MATCHERS + '''
[matchers.verify]
op = "keyword"
role = "agent"
any = ["身份证"]

[matchers.balance]
op = "regex"
role = "agent"
any = ["余额.{0,4}[0-9]+元"]
'''

PACK_RULES = [
    rule('{ and = [{ ref = "greeting", within_first_s = 15 }] }'.replace('"greeting"', '"greeting_words"'),
         kind="requirement", rule_id="greeting"),
    rule('{ op = "keyword", role = "agent", any = ["不知道", "没办法"] }', rule_id="taboo"),
    rule('{ op = "sequence", first = "complaint", then = "apology", within_utterances = 3, absent = "then" }',
         rule_id="apology", extra='applies_if = "complaint"'),
    rule('{ op = "sequence", first = "verify", then = "balance", absent = "first" }', rule_id="verify",
         extra='applies_if = "balance"'),
    rule('{ op = "silence", min_s = 20 }', rule_id="hold"),
    rule('{ op = "interruption", min_overlap_ms = 800 }', rule_id="interrupt"),
    rule('{ op = "repeat", role = "customer", min_count = 2, min_similarity = 0.7 }', rule_id="repeat"),
    rule('{ op = "speaking_rate", role = "agent", above = 300, min_talk_s = 5 }', rule_id="rate"),
    rule('{ op = "hangup", by = ["agent"], mid_leg = "customer" }', rule_id="hangup"),
    rule('{ op = "keyword", role = "agent", any = ["还有什么"], within_last_s = 20 }', kind="requirement",
         rule_id="closing"),
]
PACK_MATCHERS = PACK + '\n[matchers.greeting_words]\nop = "keyword"\nrole = "agent"\nany = ["您好"]\n'


def random_calls(seed: int) -> Iterator[tuple[list[Utterance], CallEnd]]:
    """Calls assembled from service phrases at random, with overlaps, holds and out-of-order legs."""
    rng = random.Random(seed)
    agent_lines = ["您好工号1024", "请提供身份证后六位", "您的余额是300元", "非常抱歉", "这个不知道", "请稍等",
                   "还有什么可以帮您", "好的", "没办法"]
    customer_lines = ["我要投诉", "服务太差了", "查一下余额", "好的", "你好", "我要取消彩铃", "我要取消彩铃"]
    for _ in range(40):
        t = rng.uniform(0, 20) * 1000
        items: list[Utterance] = []
        index = {"agent": 0, "customer": 0}
        ends = {"agent": 0, "customer": 0}
        for _ in range(rng.randint(1, 14)):
            leg = rng.choice(("agent", "customer"))
            start = max(ends[leg], int(t) + rng.choice((-1500, -300, 200, 800, 25_000)))
            start = max(start, 0)
            end = start + rng.randint(400, 4000)
            text = rng.choice(agent_lines if leg == "agent" else customer_lines)
            items.append(Utterance(leg, index[leg], start, end, text))  # type: ignore[arg-type]
            index[leg] += 1
            ends[leg] = end
            t = max(t, end)
        cut = rng.random() < 0.3
        last = max(items, key=lambda u: u.end_ms)
        duration = last.end_ms if cut else last.end_ms + rng.randint(0, 30_000)
        yield items, ended(duration, rng.choice(("agent", "customer", None)), cut, last.leg if cut else None)


@pytest.mark.parametrize("seed", range(5))
def test_live_outcomes_equal_the_post_call_score(seed: int) -> None:
    eng = engine(*PACK_RULES, matchers=PACK_MATCHERS)
    for n, (items, end) in enumerate(random_calls(seed)):
        post = eng.score_call(items, end)
        live = run_live(eng, live_order(items, seed * 1000 + n), end)
        assert sorted(o.rule for o in live) == sorted(o.rule for o in post.outcomes)  # each rule decided once
        for outcome in live:
            expected = post.outcome(outcome.rule)
            assert (outcome.passed, outcome.score, outcome.evidence) == (expected.passed, expected.score,
                                                                         expected.evidence), outcome.rule


def test_some_rules_are_decided_while_the_call_goes_on() -> None:
    eng = engine(*PACK_RULES, matchers=PACK_MATCHERS)
    calls = (Calls().agent(1, 3, "您好工号1024").customer(3.5, 5, "服务太差了").agent(5.5, 6, "这个不知道")
             .customer(6.5, 7, "什么").agent(7.5, 8, "好的").customer(8.5, 9, "好的").agent(9.5, 10, "好的"))
    outcomes = run_live(eng, calls.items, ended(11_000, "customer"))
    live = {o.rule for o in outcomes if o.decided_at == "live"}
    assert {"greeting", "taboo", "apology"} <= live
    assert {o.rule for o in outcomes if o.decided_at == "end"} >= {"closing", "hangup"}


def test_update_after_end_and_unknown_legs_are_refused() -> None:
    eng = engine(rule('{ op = "keyword", any = ["x"] }'))
    call = eng.call()
    with pytest.raises(ValueError, match="not one of this call's legs"):
        call.update(Utterance("mixed", 0, 0, 1000, "x"))
    call.end(ended(1000))
    with pytest.raises(ValueError, match="after end"):
        call.update(Utterance("agent", 0, 0, 1000, "x"))
    assert call.end(ended(1000)) == []


# ---- validation ---------------------------------------------------------------------------------------------


def error(text: str) -> QaRulesError:
    with pytest.raises(QaRulesError) as e:
        QaRules.parse(text, "rules.toml")
    return e.value


def test_validation_names_key_path_and_line() -> None:
    text = HEADER + rule('{ op = "keyword", any = ["a"] }', rule_id="first") + \
        '[[rule]]\nid = "second"\ncategory = "c"\nseverity = "major"\nscore = -1\nkind = "violation"\n' \
        'description = "d"\n[rule.when]\nor = [\n  { op = "keyword", any = ["a"] },\n' \
        '  { op = "similar", examples = ["x"], treshold = 0.7 },\n]\n'
    e = error(text)
    assert e.key == ("rule", 1, "when", "or", 1, "treshold")
    assert "rule[1].when.or[1].treshold: unknown key" in str(e)
    assert e.line == text.splitlines().index('  { op = "similar", examples = ["x"], treshold = 0.7 },') + 1
    assert str(e).startswith(f"rules.toml:{e.line}: ")


@pytest.mark.parametrize(("text", "message"), [
    ("", "version: missing"),
    ("version = 2\n", "unsupported version 2"),
    (HEADER, "need at least one [[rule]]"),
    (HEADER + rule('{ op = "keywrd", any = ["a"] }'), "rule[0].when.op: unknown operator 'keywrd'"),
    (HEADER + rule('"nowhere"'), "rule[0].when: undefined matcher 'nowhere'"),
    (HEADER + rule('{ op = "regex", any = ["(unclosed"] }'), "rule[0].when.any[0]: bad regular expression"),
    (HEADER + rule('{ op = "keyword", any = ["a"] }').replace('"major"', '"huge"'), "severity: must be one of"),
    (HEADER + rule('{ op = "keyword", any = ["a"] }') * 2, "rule[1].id: duplicate rule id 'r'"),
    (HEADER + rule('{ op = "keyword", none = ["a"] }'), "needs any or all"),
    (HEADER + rule('{ op = "sequence", first = { op = "silence", min_s = 3 }, then = { op = "keyword", '
                   'any = ["a"] } }'),
     "rule[0].when.first.op: operator 'silence' is about the whole call"),
    (HEADER + rule('{ op = "sequence", first = "a", then = "a", lookback_utterances = 2 }')
     + '[matchers.a]\nop = "keyword"\nany = ["x"]\n', "lookback_utterances: only with absent = 'then'"),
    (HEADER + rule('{ op = "interruption", role = "agent", over = "agent" }'), "role and over must differ"),
    (HEADER + rule('{ op = "silence" }'), "needs min_s"),
    (HEADER + rule('{ op = "keyword", any = ["a"], within_first_s = -3 }'), "within_first_s: must be > 0"),
    (HEADER + rule('{ op = "keyword", any = "a", role = "boss" }'), "role: must be one of agent, customer, any"),
    (HEADER + rule('{ op = "keyword", any = ["a"] }').replace('id = "r"', 'id = "Bad Id"'), "lower_snake_case"),
    (HEADER + rule('{ op = "keyword", any = ["a"], and = [] }'), "either an operator (op) or a combinator"),
    (HEADER + rule('"loop"') + '[matchers.loop]\nnot = "loop"\n', "refers to itself"),
])
def test_validation_errors(text: str, message: str) -> None:
    assert message in str(error(text))


def test_syntax_errors_and_matcher_errors_carry_lines() -> None:
    e = error(HEADER + "[[rule]]\nid = \n")
    assert e.line == 3 and "not valid TOML" in str(e)
    text = HEADER + rule('"m"') + '\n[matchers.m]\nop = "keyword"\nrole = "agent"\nany = ["a"]\nwithin_first_s = "15"\n'
    e = error(text)
    assert e.key == ("matchers", "m", "within_first_s")
    assert e.line == text.splitlines().index('within_first_s = "15"') + 1


def test_similar_rules_need_an_encoder() -> None:
    rules = QaRules.parse(HEADER + rule('{ op = "similar", examples = ["还有什么可以帮您"], threshold = 0.7 }'))
    with pytest.raises(ValueError, match="needs embed"):
        QaEngine(rules)


def test_disabled_rules_are_left_out() -> None:
    rules = QaRules.parse(HEADER + rule('{ op = "keyword", any = ["a"] }', extra="enabled = false")
                          + rule('{ op = "keyword", any = ["b"] }', rule_id="kept"))
    assert [r.id for r in rules.rules] == ["kept"]


# ---- default pack, reports, aggregates ---------------------------------------------------------------------


def test_default_pack_loads_and_documents_every_rule() -> None:
    rules = QaRules.load()
    ids = [r.id for r in rules.rules]
    assert ids == ["greeting_with_id", "identity_before_account", "offer_further_help", "no_forbidden_phrases",
                   "apology_after_complaint", "no_unexplained_hold", "no_interrupting", "agent_speaking_rate",
                   "anger_addressed", "no_agent_hangup", "customer_not_repeating"]
    assert all(r.description and r.category and r.severity and r.score < 0 for r in rules.rules)
    assert rules.embedding_roles() == {"agent", "customer"}
    assert rules.identity.startswith("qa_default.toml v1 sha256:")
    assert DEFAULT_RULES.is_file()


def test_reports_become_utterances_and_a_call_end() -> None:
    report = json.loads((DATA / "qa_report.json").read_text())
    utterances = utterances_from_report(report)
    assert [u.start_ms for u in utterances] == sorted(u.start_ms for u in utterances)
    assert utterances[5].intent == "complaint" and utterances[5].negativity == 0.97
    end = call_end_from_report(report)
    assert (end.duration_ms, end.ended_by, end.mid_utterance, end.mid_utterance_leg) == (38_200, None, False, None)
    cut = call_end_from_report({**report, "duration_s": 36.9, "ended_by": "agent"})
    assert (cut.duration_ms, cut.ended_by, cut.mid_utterance, cut.mid_utterance_leg) == (36_900, "agent", True,
                                                                                          "customer")


def test_aggregates_over_reports() -> None:
    def qa(score: float, failed: list[str]) -> dict[str, Any]:
        rules = ["a", "b", "c"]
        return {"score": score, "outcomes": [{"rule": r, "passed": (False if r in failed else True) if r != "c"
                                              else None} for r in rules]}

    reports = [{"agent_id": "x", "qa": qa(90, ["a"])}, {"agent_id": "x", "qa": qa(80, ["a", "b"])},
               {"agent_id": "y", "qa": qa(100, [])}, qa(70, ["b"])]
    out = qa_aggregates(reports)
    assert out["calls"] == 4
    assert out["score"] == {"mean": 85.0, "p10": 73.0, "p50": 85.0, "p90": 97.0}
    assert out["top_failing"] == [{"rule": "a", "failed": 2, "applicable": 4, "fail_rate": 0.5},
                                  {"rule": "b", "failed": 2, "applicable": 4, "fail_rate": 0.5}]
    assert out["per_agent"] == {"x": {"calls": 2, "mean_score": 85.0}, "y": {"calls": 1, "mean_score": 100.0}}


def test_cli_rescores_reports_with_custom_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from speechsvc.cli import main

    rules = tmp_path / "rules.toml"
    rules.write_text(HEADER + rule('{ op = "regex", role = "agent", any = ["不归.{0,4}管"] }', rule_id="taboo")
                     + rule('{ op = "keyword", role = "agent", any = ["工号"], within_first_s = 15 }',
                            kind="requirement", rule_id="greeting"), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    code = main(["qa", "--rules", str(rules), "--aggregates", str(DATA / "qa_report.json"), str(broken)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # one report could not be read
    assert lines[0]["path"] == "calls/card-loss.wav" and lines[0]["agent_id"] == "a-17"
    assert lines[0]["qa"]["score"] == 95 and lines[0]["qa"]["failed"] == ["taboo"]
    assert lines[0]["qa"]["outcomes"][0]["evidence"][0]["text"] == "这个不归我管"
    assert lines[1]["aggregates"]["per_agent"] == {"a-17": {"calls": 1, "mean_score": 95.0}}


def test_cli_refuses_bad_rules_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from speechsvc.cli import main

    rules = tmp_path / "rules.toml"
    rules.write_text(HEADER + rule('{ op = "keyword", any = ["a"], severity = 1 }'), encoding="utf-8")
    assert main(["qa", "--rules", str(rules), str(DATA / "qa_report.json")]) == 2
    assert "rules.toml:9: rule[0].when.severity: unknown key" in capsys.readouterr().err


# ---- with the real sentence encoder ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def encoder() -> Callable[[list[str]], np.ndarray]:
    from speechsvc.analysis.intent import embedder

    return embedder().encode  # type: ignore[no-any-return]


class CountingEncoder:
    def __init__(self, encode: Callable[[list[str]], np.ndarray]) -> None:
        self.encode = encode
        self.calls: list[int] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.encode(texts)


@pytest.mark.model
def test_similar_matches_paraphrases_and_embeds_examples_once(encoder: Callable[[list[str]], np.ndarray]) -> None:
    counting = CountingEncoder(encoder)
    eng = engine(rule('{ op = "similar", role = "agent", examples = ["请问还有什么可以帮您", "您还有别的需要吗"], '
                      'threshold = 0.6 }', kind="requirement"), embed=counting)
    assert counting.calls == [2]  # the examples, once, at construction
    report = score(eng, Calls().agent(1, 3, "好的那您看还有什么其他需要帮助的吗").customer(4, 5, "没了"))
    assert report.outcome("r").status == "pass"
    assert report.outcome("r").evidence[0].cue.startswith("similar:0.")
    assert counting.calls == [2, 1]  # one embedding per agent utterance; customer utterances need none
    assert status(eng, Calls().agent(1, 3, "您的退款已经原路退回了")) == "fail"


@pytest.mark.model
def test_repeat_by_embedding_catches_the_same_request_in_other_words(
        encoder: Callable[[list[str]], np.ndarray]) -> None:
    eng = engine(rule('{ op = "repeat", role = "customer", min_count = 3, similarity = "embedding", '
                      'min_similarity = 0.7, min_chars = 5 }'), embed=encoder)
    asked = (Calls().customer(1, 3, "我想问一下我的订单什么时候发货").agent(4, 5, "订单号多少")
             .customer(6, 7, "那什么时候发货").agent(8, 9, "还没发货").customer(10, 11, "那大概什么时候能发货啊"))
    assert status(eng, asked) == "fail"
    varied = (Calls().customer(1, 3, "你好 我想退一个蓝牙耳机").customer(4, 5, "另外我想开个发票")
              .customer(6, 7, "那退货运费要我出吗"))
    assert status(eng, varied) == "pass"


def default_pack_call() -> Calls:
    return (Calls()
            .agent(0.5, 4, "您好，工号3017，很高兴为您服务")
            .customer(4.6, 8, "你们银行怎么又乱扣我年费 太不合理了", intent="fee_charge_dispute",
                      intent_probability=0.98, negativity=0.99)
            .agent(8.5, 10, "这个不归我管")
            .customer(10.5, 12, "什么态度啊我要投诉你", intent="complaint", intent_probability=0.99, negativity=1.0,
                      p_angry_smoothed=0.8, emotion="angry")
            .agent(12.5, 15, "您的账单金额是三千六百元")
            .customer(15.5, 16, "算了")
            .agent(16.5, 18, "请问还有其他问题吗"))


@pytest.mark.model
def test_default_pack_scores_a_call_live_and_after_alike(encoder: Callable[[list[str]], np.ndarray]) -> None:
    eng = QaEngine(QaRules.load(), encoder)
    calls = default_pack_call()
    end = ended(20_000, "customer")
    post = eng.score_call(calls.items, end)
    assert set(post.failed) == {"no_forbidden_phrases", "apology_after_complaint", "identity_before_account",
                                "anger_addressed"}
    assert post.outcome("greeting_with_id").status == "pass"
    assert post.outcome("agent_speaking_rate").status == "not_applicable"
    assert post.score == 100 - 10 - 5 - 20 - 10
    for seed in range(3):
        live = run_live(eng, live_order(calls.items, seed), end)
        assert {(o.rule, o.passed, o.score) for o in live} == {(o.rule, o.passed, o.score) for o in post.outcomes}
    first = run_live(eng, calls.items, end)
    assert next(o for o in first if o.rule == "no_forbidden_phrases").decided_at == "live"


@pytest.mark.model
def test_cli_with_the_default_pack(capsys: pytest.CaptureFixture[str]) -> None:
    from speechsvc.cli import main

    assert main(["qa", str(DATA / "qa_report.json")]) == 0
    record = json.loads(capsys.readouterr().out)
    qa = record["qa"]
    assert qa["rules"].startswith("qa_default.toml v1")
    assert {o["rule"] for o in qa["outcomes"]} == {r.id for r in QaRules.load().rules}
    assert set(qa["failed"]) == {"no_forbidden_phrases", "apology_after_complaint"}
    assert qa["score"] == 85


def test_the_helper_orders_are_per_leg() -> None:
    items = default_pack_call().items
    for seed in range(3):
        order = live_order(items, seed)
        for leg in ("agent", "customer"):
            assert [u.index for u in order if u.leg == leg] == sorted(u.index for u in items if u.leg == leg)
    assert list(itertools.islice(random_calls(0), 1))
