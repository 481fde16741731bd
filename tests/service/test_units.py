"""Pure pieces, fast tier: partial stabiliser, event bus, QA-summary maths, writers, output names, settings,
stage discovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from speechsvc.analysis import stage_classes
from speechsvc.analysis.emotion import EmotionStage
from speechsvc.analysis.intent import IntentStage
from speechsvc.analysis.record import Utterance
from speechsvc.batch.outputs import OutputDir, output_name, read_report, write_outputs
from speechsvc.batch.report import CallReport, summarize
from speechsvc.batch.transcribe import FileSegment, FileTranscript
from speechsvc.batch.writers import WRITERS
from speechsvc.config import Settings
from speechsvc.runtime.bus import EventBus
from speechsvc.runtime.partials import PartialStabilizer, common_prefix
from speechsvc.types import CallEvent, ErrorEvent, SpeechSegment


def test_local_agreement_commits_only_what_two_hypotheses_share() -> None:
    s = PartialStabilizer()
    assert s.update("我想查") == ("我想查", "")
    assert s.update("我想查一下") == ("我想查一下", "我想查")
    assert s.update("我想差异") == ("我想查", "我想查")  # never takes back the committed prefix
    assert s.update("我想查一下余额") == ("我想查一下余额", "我想查")
    s.reset()
    assert s.stable == "" and common_prefix("abc", "abd") == "ab"


async def test_bus_filters_by_call_and_drops_oldest_for_slow_subscribers() -> None:
    bus = EventBus(queue_size=10)
    with bus.subscribe("a") as one, bus.subscribe() as every:
        for i in range(15):
            bus.publish(CallEvent("a" if i % 2 == 0 else "b", i, ErrorEvent("x", str(i), False)))
        assert one.queue.qsize() == 8 and one.dropped == 0
        assert every.queue.qsize() == 10 and every.dropped == 5
        first = await asyncio.wait_for(anext(every.events()), 1)
        assert first.seq == 5  # the oldest five were dropped
    assert bus.subscribers == 0


def seg(leg: str, start: int, end: int) -> SpeechSegment:
    return SpeechSegment(leg, 0, start, end, np.zeros(0, np.float32))  # type: ignore[arg-type]


def report(leg: str, start: int, end: int, text: str, language: str = "zh", **kw: object) -> Utterance:
    return Utterance(leg, 0, start, end, text, language, 0.9, **kw)  # type: ignore[arg-type]


def test_quality_summary_maths() -> None:
    segments = [seg("customer", 1000, 4000), seg("agent", 3500, 6000), seg("customer", 9000, 10000)]
    reports = [report("customer", 1000, 4000, "我想查一下余额", intent="balance_bill_query", emotion="neutral"),
               report("agent", 3500, 6000, "好的请稍等", emotion="happy"),
               report("customer", 9000, 10000, "谢谢", intent="greeting_closing", emotion="neutral")]
    s = summarize(12.0, ("customer", "agent"), segments, reports)
    assert s.overtalk_s == 0.5 and s.silence_s == 1.0 + 3.0 + 2.0 and s.longest_silence_s == 3.0
    customer, agent = s.legs
    assert customer.talk_s == 4.0 and customer.utterances == 2
    assert customer.speaking_rate == round(9 / 4 * 60, 1) and customer.rate_unit == "chars/min"
    assert agent.speaking_rate == round(5 / 2.5 * 60, 1)
    # What the intent and emotion stages add to the report, from the same records.
    intents = IntentStage.report(None, reports, [])  # type: ignore[arg-type]
    assert intents == {"counts": {"balance_bill_query": 1, "greeting_closing": 1}}
    assert IntentStage.columns(intents) == {"top_intent": "balance_bill_query"}
    assert EmotionStage.report(None, reports, []) == {"dominant": {"customer": "neutral", "agent": "happy"}}  # type: ignore[arg-type]
    english = summarize(2.0, ("mixed",), [seg("mixed", 0, 2000)], [report("mixed", 0, 2000, "hello there", "en")])
    assert english.legs[0].speaking_rate == 60.0 and english.legs[0].rate_unit == "words/min"


def transcript() -> FileTranscript:
    return FileTranscript("x.wav", 3.0, ("customer", "agent"), (
        FileSegment("customer", 0, 0, 1500, "你好", "zh", 0.9),
        FileSegment("agent", 0, 3_600_000 + 61_001, 3_600_000 + 62_500, "您好", "zh", 0.8),
    ))


def test_writers() -> None:
    t = transcript()
    assert WRITERS["txt"](t) == "[customer] 你好\n[agent] 您好\n"
    srt = WRITERS["srt"](t)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,500\n[customer] 你好\n")
    assert "2\n01:01:01,001 --> 01:01:02,500\n[agent] 您好" in srt
    assert WRITERS["vtt"](t).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n")
    assert '"text": "你好"' in WRITERS["json"](t)


def test_output_names_are_unique_and_reports_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert output_name("calls/x y.wav") != output_name("calls/x_y.wav")
    assert output_name("s3://b/a/b.wav") != output_name("/a/b.wav")
    assert "/" not in output_name("../../etc/passwd") and len(output_name("a" * 1000)) < 140
    assert output_name("../x/y.wav").startswith("x_y.wav-") and output_name("./.hidden.wav").startswith("hidden.wav-")
    assert output_name("calls/x y.wav").startswith("calls_x_y.wav-")  # names of earlier jobs stay (resume)
    out = OutputDir(tmp_path)
    summary = summarize(1.0, ("mixed",), [], [])
    rep = CallReport("calls/x y.wav", 1.0, ("mixed",), (), summary)
    write_outputs(out, "calls/x y.wav", rep, ["json", "srt"])
    assert read_report(out, "calls/x y.wav")["path"] == "calls/x y.wav"  # type: ignore[index]
    assert read_report(out, "calls/x_y.wav") is None
    assert not list(tmp_path.glob("*.tmp"))


def test_settings_are_the_single_source() -> None:
    s = Settings()
    assert s.vad().min_silence_ms == s.vad_min_silence_ms and s.vad().neg_threshold == pytest.approx(0.35)
    assert s.asr().tokens_per_second == s.asr_tokens_per_second and s.asr().languages == s.languages
    assert s.jobs_path == s.home / "jobs" and s.whisper_dir == s.home / "models" / "whisper-base-ct2"
    assert (s.heads_dir / "text" / "model.json").is_file()  # models/ in a checkout, package data in a wheel
    with pytest.raises(ValidationError, match="default_language"):
        Settings(languages=("en",), default_language="zh")


def test_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SPEECHSVC_HOME", str(tmp_path))
    monkeypatch.setenv("SPEECHSVC_VAD_MIN_SILENCE_MS", "700")
    s = Settings()
    assert s.home == tmp_path and s.vad().min_silence_ms == 700 and s.jobs_path == tmp_path / "jobs"


def test_stages_are_discovered_in_phase_order() -> None:
    """Every stage of the package, those in a folder of their own (qa/, assist/) included, in (phase, name)
    order."""
    built_in = {"pii", "intent", "emotion", "escalation", "qa", "assist"}
    names = [cls.name for cls in stage_classes() if cls.name in built_in]
    assert names == ["pii", "emotion", "intent", "escalation", "assist", "qa"]


def test_hotwords_file(tmp_path: Path) -> None:
    from speechsvc.speech.asr import load_hotwords

    path = tmp_path / "hotwords.txt"
    path.write_text("# branches\n瑞福园茂名店\n\n星巴克咖啡  # a shop\n瑞福园茂名店\n", encoding="utf-8")
    assert load_hotwords(path) == ("瑞福园茂名店", "星巴克咖啡")
    path.write_text("长" * 65 + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"hotwords.txt:1: a hotword is at most 64"):
        load_hotwords(path)
    with pytest.raises(ValueError, match="cannot read the hotwords file"):
        load_hotwords(tmp_path / "missing.txt")


def test_text_normalizer_script_and_punctuation() -> None:
    from speechsvc.speech.text import TextNormalizer

    text = TextNormalizer()
    assert text("看著我,好嗎?", "zh") == "看着我，好吗？" and text("著名的乾淨", "zh") == "著名的干净。"
    assert text("價格是3.5元,時間10:30", "zh", final=False) == "价格是3.5元，时间10:30"
    assert text("我用www.abc.com註冊", "zh") == "我用www.abc.com注册。" and text("OK.", "zh") == "OK."
    assert text("Hello, world.", "en") == "Hello, world."
    bare = TextNormalizer(punctuation=False)
    assert bare("看著我,好嗎?", "zh") == "看着我好吗" and bare("Hello, world. 3.5", "en") == "Hello world 3.5"
    assert text("字幕由Amara.org社區提供", "zh") == ""
