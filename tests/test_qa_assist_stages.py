"""The QA and assist stages on the analysis seam (fast tier, scripted texts from the fake recognizer): qa events
live as rules are decided and at the end with a summary, the same outcomes for the recording in batch, evidence
with redacted text only; assist only live, from the intent stage's embedding."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallInfo, Mode
from speechsvc.analysis.inspection import InspectionStage, Qa, QaSummary
from speechsvc.analysis.pii.stage import RedactionStage
from speechsvc.analysis.suggestions import AssistStage
from speechsvc.batch.recording import analyze_recording
from speechsvc.config import Settings
from speechsvc.types import AudioFormat, CallConfig
from tests.fakes import fake_engine, fast_settings, silence, tone
from tests.test_session import run_call

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
    assert report.qa is not None and report.qa["score"] == summary.score
    assert {o["rule"]: o["status"] for o in report.qa["outcomes"]} == {
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
