"""The PII redaction stage on the analysis seam (fast tier: digits, cues and shapes need no model): transcripts
are rewritten before anyone sees them, per leg across utterances, with offsets, masked word timings and audio
times; per-call policy; and through a live session, later stages and subscribers only ever see redacted text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallInfo, Mode
from speechsvc.analysis.pii.stage import AUDIO_PAD_MS, DIGIT_TAIL_MS, RedactionStage, check_request
from speechsvc.config import Settings
from speechsvc.errors import ProtocolError
from speechsvc.protocol import event_dict, parse_client_message
from speechsvc.types import AudioFormat, CallConfig, CallEvent, RedactionRequest, Transcript, Word
from tests.support.fakes import fake_engine, fast_settings


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


def test_word_timings_follow_the_redacted_text_and_give_the_audio_span() -> None:
    text = "手机13800138000"
    words = tuple(Word(ch, 100 * i, 100 * i + 90, 0.9) for i, ch in enumerate(text))
    t = analyzer(stage()).rewrite(final(text, words=words))
    (r,) = t.redactions
    # the digits' words, widened by AUDIO_PAD_MS, and the end by DIGIT_TAIL_MS more: the value ends on a digit
    assert r.start_ms == 200 - AUDIO_PAD_MS and r.end_ms == 1290 + AUDIO_PAD_MS + DIGIT_TAIL_MS
    assert [(w.text, w.start_ms, w.end_ms) for w in t.words] == [("手", 0, 90), ("机", 100, 190),
                                                                  (t.text[2:], 200, 1290)]  # one word: the value
    assert "".join(w.text for w in t.words) == t.text and "138" not in t.text


def test_only_a_value_that_ends_on_a_digit_gets_the_digit_tail() -> None:
    from speechsvc.analysis.pii import PiiPolicy, PiiRedactor, entity_spans_ms

    redactor = PiiRedactor(PiiPolicy(use_model=False))
    cases = {"车牌号京A12345": True, "验证码 三九一七": True, "手机 幺三八 零零幺三 八零零零 对": True,
             "邮箱 ab12@qq.com": False, "车牌号是粤B D1234F 的那辆": False}
    for text, digit in cases.items():
        red = redactor.redact(text)
        (e,) = red.entities
        words = [(ch, 100 * i, 100 * i + 90) for i, ch in enumerate(text)]  # one "word" per character
        ((start, end),) = entity_spans_ms(red, words, AUDIO_PAD_MS, DIGIT_TAIL_MS)
        assert start == 100 * e.source_start - AUDIO_PAD_MS, text
        assert end == 100 * (e.source_end - 1) + 90 + AUDIO_PAD_MS + (DIGIT_TAIL_MS if digit else 0), text


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
    from tests.support.calls import Echo, EchoStage, run_call, speech

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


def test_word_timings_must_spell_the_text() -> None:
    from speechsvc.speech.asr import shift_words, spell

    words = spell("设定29度", [("设", 0, 680, 0.9), ("定", 680, 900, 0.8), ("29", 900, 1440, 0.7),
                               ("度", 1440, 1800, 1)])
    assert [w.text for w in words] == ["设", "定", "29", "度"] and words[2].start_ms == 900
    english = spell("1, 2, 3", [(" 1", 0, 380, 1), (",", 380, 680, 1), (" 2", 680, 1300, 1), (",", 1300, 1800, 1),
                                (" 3", 1800, 2360, 1)])
    assert "".join(w.text for w in english) == "1, 2, 3" and english[2].text == " 2"
    assert spell("设定29度", [("设", 0, 1, 1), ("定", 1, 2, 1)]) == ()  # does not reach the end
    assert spell("设定", [("設", 0, 1, 1), ("定", 1, 2, 1)])  # converted in context: the same place
    assert spell("a b", [("x", 0, 1, 1), (" b", 1, 2, 1)]) == ()  # another word
    assert [w.text for w in spell("你好。", [("你", 0, 1, 1), ("好", 1, 2, 1)])] == ["你", "好。"]  # sentence end
    assert shift_words(words, 1000)[0].start_ms == 1000


def test_redacted_audio_covers_each_value_or_its_whole_utterance() -> None:
    import io

    import numpy as np

    from speechsvc.analysis.record import Utterance
    from speechsvc.batch.audio_redaction import redact_recording, redaction_spans, wav_bytes
    from speechsvc.batch.report import CallReport, CallSummary
    from speechsvc.speech.audio import decode_file
    from speechsvc.types import Redacted

    timed = Utterance("customer", 0, 1000, 3000, "我的手机号是[PHONE]", "zh", 0.9,
                          (Redacted("PHONE", 6, 13, 1500, 2500),))
    untimed = Utterance("agent", 0, 4000, 5000, "[PHONE]", "zh", 0.9, (Redacted("PHONE", 0, 7),))
    report = CallReport("x.wav", 6.0, ("customer", "agent"), (timed, untimed),
                        CallSummary(6.0, (), 0.0, 0.0, 0.0))
    assert redaction_spans(report) == {"customer": [(1500, 2500)], "agent": [(4000, 5000)]}
    audio = np.full((2, 16000 * 6), 0.3, np.float32)
    covered = redact_recording(audio, report, "silence")
    assert not covered[0, 24000:40000].any() and covered[0, :24000].all() and covered[0, 40000:].all()
    assert not covered[1, 64000:80000].any() and covered[1, :64000].all()
    beeped = redact_recording(audio, report, "beep")[0, 24000:40000]
    spectrum = np.abs(np.fft.rfft(beeped))
    assert abs(np.argmax(spectrum) * 16000 / beeped.size - 1000) < 5  # a 1 kHz tone
    back, rate = decode_file(io.BytesIO(wav_bytes(covered)))
    assert rate == 16000 and back.shape == covered.shape and np.abs(back - covered).max() < 1e-3
