"""The PII redaction stage on the analysis seam (fast tier: digits, cues and shapes need no model): transcripts
are rewritten before anyone sees them, per leg across utterances, with offsets, masked word timings and audio
times; per-call policy; and through a live session, later stages and subscribers only ever see redacted text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallInfo, Mode
from speechsvc.analysis.redaction import RedactionStage, check_request
from speechsvc.config import Settings
from speechsvc.errors import ProtocolError
from speechsvc.protocol import event_dict, parse_client_message
from speechsvc.types import AudioFormat, CallConfig, CallEvent, RedactionRequest, Transcript, Word
from tests.fakes import fake_engine, fast_settings


def stage(**settings: object) -> RedactionStage:
    loaded = RedactionStage.load(Settings(pii_names_addresses=False, **settings))  # type: ignore[arg-type]
    assert loaded is not None
    return loaded


def analyzer(s: RedactionStage, **request: object) -> CallAnalyzer:
    return CallAnalyzer([s], CallInfo("c", ("customer", "agent"), Mode.LIVE,
                                      redaction=RedactionRequest(**request)))  # type: ignore[arg-type]


def final(text: str, leg: str = "customer", i: int = 0, words: tuple[Word, ...] = ()) -> Transcript:
    return Transcript(leg, i, i * 1000, i * 1000 + 900, text, "zh", True, 0.9, text, words=words)  # type: ignore[arg-type]


def test_final_is_redacted_with_offsets_into_the_redacted_text() -> None:
    t = analyzer(stage()).rewrite(final("我的手机号是13800138000谢谢"))
    assert t.text == "我的手机号是[PHONE]谢谢" and t.stable_text == t.text
    (r,) = t.redactions
    assert (r.type, t.text[r.start : r.end]) == ("PHONE", "[PHONE]") and r.start_ms is None
    body = event_dict(CallEvent("c", 1, t))
    assert "138" not in str(body) and body["redactions"][0]["type"] == "PHONE" and "words" not in body


def test_number_dictated_over_utterances_is_redacted_piece_by_piece_per_leg() -> None:
    a = analyzer(stage())
    pieces = [a.rewrite(final(text, i=i)) for i, text in enumerate(["我的卡号是", "6222 0212", "3456 7890", "123"])]
    assert [p.text for p in pieces[1:]] == ["[BANK_CARD]"] * 3
    other_leg = a.rewrite(final("3456", leg="agent", i=1))
    assert other_leg.text == "3456"  # the agent leg has its own state: no card cue, a short run passes


def test_mask_style_per_call_and_types() -> None:
    masked = analyzer(stage(), style="mask").rewrite(final("手机13800138000"))
    assert masked.text == "手机138****8000"
    only_email = analyzer(stage(), types=("EMAIL",)).rewrite(final("手机13800138000"))
    assert only_email.text == "手机13800138000" and not only_email.redactions


def test_partial_masks_a_trailing_run_and_keeps_the_stable_prefix_outside_it() -> None:
    a = analyzer(stage(pii_min_digits=4))
    partial = Transcript("customer", 0, 0, 900, "记一下五六七八九", "zh", False, 0.5, "记一下五六")
    t = a.rewrite(partial)
    assert "五六七八九" not in t.text and t.redactions
    assert t.text.startswith(t.stable_text) and t.stable_text == "记一下"


def test_word_timings_are_masked_and_give_the_audio_span() -> None:
    text = "手机13800138000"
    words = tuple(Word(ch, 100 * i, 100 * i + 90, 0.9) for i, ch in enumerate(text))
    t = analyzer(stage()).rewrite(final(text, words=words))
    (r,) = t.redactions
    assert r.start_ms == 200 - 80 and r.end_ms == 1290 + 80  # the digits' words, widened by AUDIO_PAD_MS
    assert "".join(w.text for w in t.words) == "手机" + "*" * 11


def test_call_requests_are_checked_against_the_deployment() -> None:
    settings = Settings()
    check_request(RedactionRequest(style="mask", types=("PHONE",)), settings)
    with pytest.raises(ValueError, match="turn PII redaction off"):
        check_request(RedactionRequest(enabled=False), settings)
    check_request(RedactionRequest(enabled=False), Settings(pii_call_opt_out=True))
    with pytest.raises(ValueError, match="unknown PII types"):
        check_request(RedactionRequest(types=("SSN",)), settings)
    msg = parse_client_message('{"type":"start","redaction":{"style":"mask","types":["phone"]}}')
    assert msg.to_config("zh").redaction == RedactionRequest(None, ("PHONE",), "mask")  # type: ignore[union-attr]
    with pytest.raises(ProtocolError, match="redaction: this deployment"):
        fake_engine().check(replace(msg.to_config("zh"), redaction=RedactionRequest(enabled=False)))  # type: ignore[union-attr]


async def test_in_a_live_session_later_stages_and_subscribers_see_only_redacted_text() -> None:
    from tests.test_session import Echo, EchoStage, run_call, speech

    caller = {300: "我的手机号是", 500: "一三八零零", 700: "一三八零零零"}  # a number read over two utterances
    engine = fake_engine(fast_settings(), stages=[stage(), EchoStage()], texts=caller)
    await engine.start()
    cfg = CallConfig("c-pii", AudioFormat("pcm16", 16000, 1))
    with engine.bus.subscribe() as sub:
        events = await run_call(engine, cfg, speech(300, 500, 700))
        published = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    finals = [e.event for e in events if isinstance(e.event, Transcript) and e.event.is_final]
    assert [f.text for f in finals] == ["我的手机号是", "[PHONE]", "[PHONE]"]
    assert [f.redactions[0].type for f in finals[1:]] == ["PHONE", "PHONE"]
    echoes = [e.event.text for e in events if isinstance(e.event, Echo)]  # what a later stage saw
    assert echoes == ["我的手机号是", "[PHONE]", "[PHONE]"]
    wire = str([event_dict(e) for e in published])
    assert "一三八" not in wire and "零零" not in wire
    assert [event_dict(e) for e in published] == [event_dict(e) for e in events]
    await engine.stop()
