"""Wire protocol v1: message validation and event shape."""

from __future__ import annotations

import pytest

from speechsvc.errors import ProtocolError, UnsupportedFormat
from speechsvc.protocol import StartMessage, error_event, event_dict, parse_client_message
from speechsvc.types import CallEvent, Ready, Transcript


def test_start_defaults() -> None:
    msg = parse_client_message('{"type":"start","call_id":"c-1","sample_rate":8000,"encoding":"mulaw"}')
    assert isinstance(msg, StartMessage)
    config = msg.to_config("zh")
    assert config.legs == ("customer",) and config.language == "zh" and config.audio.sample_rate == 8000


def test_stereo_defaults_to_customer_and_agent() -> None:
    msg = parse_client_message('{"type":"start","channels":2}')
    assert isinstance(msg, StartMessage)
    assert msg.to_config("zh").legs == ("customer", "agent")


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("not json", ProtocolError, "not valid JSON"),
        ("[1,2]", ProtocolError, "JSON object"),
        ('{"type":"hello"}', ProtocolError, "unknown message type 'hello'"),
        ('{"type":"start","sample_rate":NaN}', ProtocolError, "NaN"),
        ('{"type":"start","encoding":"opus"}', UnsupportedFormat, "encoding"),
        ('{"type":"start","channels":3}', UnsupportedFormat, "channels"),
        ('{"type":"start","call_id":"bad id with spaces"}', ProtocolError, "call_id"),
        ('{"type":"start","colour":"blue"}', ProtocolError, "colour"),
        ('{"type":"start","language":"' + "x" * 40 + '"}', ProtocolError, "language"),
        ("[" * 100_000 + "]" * 100_000, ProtocolError, "not valid JSON"),
    ],
)
def test_bad_messages(text: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        parse_client_message(text)


def test_transcript_event_shape() -> None:
    t = Transcript("agent", 3, 100, 900, "你好", "zh", True, 0.8, "你好", emitted_at=1.5)
    body = event_dict(CallEvent("c-1", 7, t, {"callSid": "CA1"}))
    assert body["type"] == "transcript.final" and body["seq"] == 7 and body["call_id"] == "c-1"
    assert body["leg"] == "agent" and body["start_ms"] == 100 and body["end_ms"] == 900
    assert body["metadata"] == {"callSid": "CA1"} and "is_final" not in body and body["emitted_at"] == 1.5
    partial = event_dict(CallEvent("c-1", 8, Transcript("agent", 4, 0, 1, "你", "zh", False, 0.5, "")))
    assert partial["type"] == "transcript.partial" and "metadata" not in partial


def test_ready_and_error_are_built_once() -> None:
    ready = event_dict(CallEvent("c-2", 0, Ready(("customer", "agent"), "mulaw", 8000, "zh", "twilio")))
    assert ready["type"] == "ready" and ready["seq"] == 0 and ready["legs"] == ["customer", "agent"]
    assert ready["transport"] == "twilio" and ready["sample_rate"] == 8000
    error = event_dict(error_event(UnsupportedFormat("no"), "c-3"))
    assert error["type"] == "error" and error["fatal"] is True and error["code"] == "unsupported_format"
    assert error["call_id"] == "c-3" and error["seq"] == 0


def test_words_are_asked_for_the_same_way_on_websocket_and_grpc() -> None:
    from speechsvc.transports.grpc_server import config_from_proto
    from speechsvc.types import Word
    from speechsvc.v1 import speechsvc_pb2 as pb

    msg = parse_client_message('{"type":"start","words":true}')
    assert isinstance(msg, StartMessage) and msg.to_config("zh").words
    assert config_from_proto(pb.CallConfig(words=True), "zh").words
    assert not config_from_proto(pb.CallConfig(), "zh").words
    timed = Transcript("agent", 0, 0, 900, "你好", "zh", True, 0.8, "你好",
                       words=(Word("你", 0, 400, 0.9), Word("好", 400, 900, 0.8)))
    assert event_dict(CallEvent("c-1", 1, timed))["words"][1] == {"text": "好", "punctuated_word": "好",
                                                                   "start_ms": 400, "end_ms": 900, "confidence": 0.8}


def test_hotwords_per_call_on_websocket_and_grpc() -> None:
    from speechsvc.transports.grpc_server import config_from_proto
    from speechsvc.v1 import speechsvc_pb2 as pb

    msg = parse_client_message('{"type":"start","hotwords":["九井日本料理"," 星巴克 ","九井日本料理"]}')
    assert isinstance(msg, StartMessage) and msg.to_config("zh").hotwords == ("九井日本料理", "星巴克")
    assert config_from_proto(pb.CallConfig(hotwords=["瑞福园"]), "zh").hotwords == ("瑞福园",)
    with pytest.raises(ProtocolError, match="hotwords"):
        parse_client_message('{"type":"start","hotwords":["' + "长" * 65 + '"]}')
