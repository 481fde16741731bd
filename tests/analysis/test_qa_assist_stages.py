"""The QA and assist stages on the analysis seam (fast tier, scripted texts from the fake recognizer): qa events
live as rules are decided and at the end with a summary, the same outcomes for the recording in batch, evidence
with redacted text only; assist only live, from the intent stage's embedding."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.assist.stage import AssistStage
from speechsvc.analysis.base import CallInfo, Mode, Stage, StageCall
from speechsvc.analysis.pii.stage import RedactionStage
from speechsvc.analysis.qa import QaEngine
from speechsvc.analysis.qa.rules import QaRules
from speechsvc.analysis.qa.stage import InspectionStage, Qa, QaSummary
from speechsvc.analysis.record import CallEnd, Utterance, call_end_from_report, utterances_from_report
from speechsvc.batch.recording import analyze_recording
from speechsvc.batch.report import CallReport, summarize
from speechsvc.config import Settings
from speechsvc.types import AudioFormat, CallConfig, Event, Transcript
from tests.support.calls import run_call
from tests.support.fakes import fake_engine, fast_settings, silence, tone

RULES = """
version = 1
base_score = 100

[[rule]]
id = "greeting"
category = "script"
severity = "major"
score = -10
kind = "requirement"
description = "agent greets with a staff number in the first 5 s"
when = { op = "utterance", match = { op = "keyword", role = "agent", all = ["您好", "工号"] }, within_first_s = 5 }

[[rule]]
id = "forbidden"
category = "attitude"
severity = "critical"
score = -20
kind = "violation"
description = "no forbidden phrases"
when = { op = "utterance", match = { op = "keyword", role = "agent", any = ["不归我管"] } }

[[rule]]
id = "closing"
category = "script"
severity = "minor"
score = -5
kind = "requirement"
description = "agent offers more help before closing"
when = { op = "utterance", match = { op = "keyword", role = "agent", any = ["还有什么可以帮您"] }, within_last_s = 8 }
"""

# customer = left (300, 700 Hz), agent = right (500, 900 Hz... 900 fails in the fake model, so 600)
TEXTS = {300: "我的银行卡丢了手机号13800138000", 500: "您好工号三五七很高兴为您服务", 700: "好的谢谢",
         600: "这个不归我管"}


def stereo_call() -> np.ndarray:
    """customer: 0-1 s, 4-5 s; agent: 1.5-2.5 s, 6-7 s; 9 s in all."""
    left = np.concatenate([tone(300, 1.0), silence(3.0), tone(700, 1.0), silence(4.0)])
    right = np.concatenate([silence(1.5), tone(500, 1.0), silence(3.5), tone(600, 1.0), silence(2.0)])
    return np.stack([left, right], axis=1).reshape(-1)


def stages(tmp_path: Path) -> list[object]:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    settings = Settings(qa_rules=rules, text_analysis=False, pii_names_addresses=False)
    return [RedactionStage.load(settings), InspectionStage.load(settings)]


@pytest.mark.parametrize("asr_delay_s", [0.0, 0.3])
async def test_qa_events_live_and_the_same_outcomes_for_the_recording(tmp_path: Path, asr_delay_s: float) -> None:
    """With a slow model the last finals arrive while the call is closing; the rules they decide are still
    decided live (the watermarks their finals move reach the analysis), not only at the end."""
    engine = fake_engine(fast_settings(), stages=stages(tmp_path), texts=TEXTS)
    if asr_delay_s:
        transcribe = engine.recognizer.transcribe

        def slow(requests):  # type: ignore[no-untyped-def]
            time.sleep(asr_delay_s)
            return transcribe(requests)

        engine.recognizer.transcribe = slow
    await engine.start()
    cfg = CallConfig("qa-1", AudioFormat("pcm16", 16000, 2), legs=("customer", "agent"))
    events = await run_call(engine, cfg, stereo_call())
    qa = [e.event for e in events if isinstance(e.event, Qa)]
    by_rule = {q.rule: q for q in qa}
    assert by_rule["forbidden"].passed is False and by_rule["forbidden"].decided_at == "live"
    assert by_rule["forbidden"].evidence[0].leg == "agent" and "不归我管" in by_rule["forbidden"].evidence[0].text
    assert by_rule["greeting"].passed is True and by_rule["closing"].passed is False
    (summary,) = [e.event for e in events if isinstance(e.event, QaSummary)]
    assert summary.score == 100 - 20 - 5 and set(summary.failed) == {"forbidden", "closing"}
    kinds = [e.event.type for e in events]
    assert kinds.index("qa.summary") == len(kinds) - 2  # the summary right before `ended`
    assert "13800138000" not in str([q.evidence for q in qa])  # rules only ever see redacted text

    stereo = stereo_call().reshape(-1, 2).T.astype(np.float32)
    report = await analyze_recording(engine, stereo, "call.wav", "zh")
    assert report.sections["qa"] is not None and report.sections["qa"]["score"] == summary.score
    assert {o["rule"]: o["status"] for o in report.sections["qa"]["outcomes"]} == {
        q.rule: ("pass" if q.passed else "fail") for q in qa}
    assert any(r.type == "PHONE" for s in report.segments for r in s.redactions)
    await engine.stop()


def test_stages_that_compare_sentences_need_the_text_analysis(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TEXT_ANALYSIS"):
        AssistStage.load(Settings(text_analysis=False))
    with pytest.raises(ValueError, match="compare sentence embeddings"):
        InspectionStage.load(Settings(text_analysis=False))  # the default pack has similar rules
    assert InspectionStage.load(Settings(qa=False)) is None and AssistStage.load(Settings(assist=False)) is None


def test_assist_says_nothing_about_recordings() -> None:
    class Engine:
        def call(self) -> None:
            raise AssertionError("a recording must not open an assist call")

    stage = AssistStage.__new__(AssistStage)
    stage.engine = Engine()  # type: ignore[assignment]
    analyzer = CallAnalyzer([stage], CallInfo("r", ("customer", "agent"), Mode.BATCH))
    assert analyzer.end.__self__ is analyzer  # opened without touching the engine


ANGER = """
version = 1
[[rule]]
id = "anger"
category = "emotion"
severity = "major"
score = -10
kind = "violation"
description = "the customer's voice stays angry"
when = { op = "utterance", match = { op = "emotion", role = "customer", p_angry_above = 0.7 } }
"""


class _Voice(Stage):
    """Stands in for the emotion stage: one sharp burst of anger (raw P(angry) 0.9) that the leg's smoothing
    keeps below the rule's threshold (0.5)."""

    name = "voice-test"
    phase = 1

    @classmethod
    def load(cls, settings: Settings) -> None:
        return None  # never loaded from settings: the test builds it

    def open(self, call: CallInfo) -> StageCall[None]:
        return _VoiceCall()


Stage.registry.remove(_Voice)  # built by the test only; never found by discovery


class _VoiceCall(StageCall[None]):
    def apply(self, u: Utterance, found: None) -> list[Event]:
        u.emotion, u.p_angry, u.p_angry_smoothed = "angry", 0.9, 0.5
        return []


async def test_live_qa_and_rescoring_a_saved_report_see_the_same_anger() -> None:
    """The record the stages fill in is what the report saves and what ``speechsvc qa`` reads back, so a rule on
    the voice decides the same live and when the report is re-scored (it once saw the smoothed P(angry) live
    and the raw one when re-scoring)."""
    qa = InspectionStage(QaEngine(QaRules.parse(ANGER)))
    analyzer = CallAnalyzer([_Voice(), qa], CallInfo("anger", ("customer", "agent"), Mode.BATCH))
    said = Transcript("customer", 0, 1000, 3000, "你们这是什么服务", "zh", True, 0.9, "你们这是什么服务")
    await analyzer.analyze([Utterance.of(said)])
    end = CallEnd("recording", {"customer": 5000, "agent": 5000})
    live = [e for e in analyzer.end(end) if isinstance(e, Qa)]
    summary = summarize(5.0, ("customer", "agent"), [], analyzer.utterances)
    report = json.loads(CallReport("anger.wav", 5.0, ("customer", "agent"), tuple(analyzer.utterances), summary,
                                   analyzer.sections()).to_json())
    (segment,) = report["segments"]
    assert (segment["p_angry"], segment["p_angry_smoothed"]) == (0.9, 0.5)
    rescored = QaEngine(QaRules.parse(ANGER)).score_call(utterances_from_report(report),
                                                         call_end_from_report(report), legs=report["legs"])
    assert [o.passed for o in live] == [rescored.outcome("anger").passed] == [True]
    assert report["qa"]["outcomes"][0]["status"] == "pass"
