"""Captions read by caption libraries we did not write (``webvtt-py``, ``srt``): the speaker of each cue (WebVTT
voice spans ``<v customer>``, SubRip ``[customer]``), text escaped as WebVTT requires; and words as clients get
them: text without punctuation, ``punctuated_word``, ``confidence`` (the utterance's name for it), on the
WebSocket/gRPC event and the protobuf alike."""

from __future__ import annotations

import srt
import webvtt
from google.protobuf import json_format

from speechsvc.batch.transcribe import FileSegment, FileTranscript
from speechsvc.batch.writers import WRITERS
from speechsvc.protocol import event_dict
from speechsvc.types import CallEvent, Transcript, Word
from speechsvc.wordtext import plain_word


def stereo() -> FileTranscript:
    return FileTranscript("call.wav", 5.0, ("customer", "agent"), (
        FileSegment("customer", 0, 0, 1500, "我要 <退款> & 投诉。", "zh", 0.9),
        FileSegment("agent", 0, 1600, 3200, "Hello, how can I help?", "en", 0.8),
    ))


def test_webvtt_carries_the_speaker_as_a_voice_span() -> None:
    captions = webvtt.from_string(WRITERS["vtt"](stereo())).captions
    assert [c.voice for c in captions] == ["customer", "agent"]
    assert captions[0].raw_text == "<v customer>我要 &lt;退款&gt; &amp; 投诉。"
    assert (captions[1].start, captions[1].end) == ("00:00:01.600", "00:00:03.200")


def test_srt_carries_the_speaker() -> None:
    subtitles = list(srt.parse(WRITERS["srt"](stereo())))
    assert [s.content.split("] ")[0] for s in subtitles] == ["[customer", "[agent"]
    assert subtitles[1].content == "[agent] Hello, how can I help?"


def test_mono_names_no_speaker() -> None:
    mono = FileTranscript("m.wav", 2.0, ("mixed",), (FileSegment("mixed", 0, 0, 900, "你好。", "zh", 0.9),))
    (caption,) = webvtt.from_string(WRITERS["vtt"](mono)).captions
    assert caption.voice is None and caption.text == "你好。"


def test_words_on_the_wire() -> None:
    from speechsvc.v1 import speechsvc_pb2 as pb

    words = (Word("设", 0, 100, 0.9), Word("定", 100, 200, 0.8), Word("度。", 200, 300, 0.7),
             Word(" Don't", 300, 400, 0.6), Word(" go", 400, 500, 0.5), Word("!", 500, 510, 0.5),
             Word(" [PHONE]", 600, 900, 0.4), Word(" 138****5678,", 900, 1000, 0.3))
    t = Transcript("customer", 0, 0, 1000, "".join(w.text for w in words), "zh", True, 0.8, "", words=words)
    body = event_dict(CallEvent("c-1", 1, t))
    got = [(w["text"], w["punctuated_word"]) for w in body["words"]]
    assert got == [("设", "设"), ("定", "定"), ("度", "度。"), ("Don't", "Don't"), ("go", "go!"),
                   ("[PHONE]", "[PHONE]"), ("138****5678", "138****5678,")]
    assert body["words"][0] == {"text": "设", "punctuated_word": "设", "start_ms": 0, "end_ms": 100,
                                "confidence": 0.9} and "confidence" in body
    message = json_format.ParseDict({k: body[k] for k in ("text", "words")}, pb.Transcript())
    assert message.words[2].punctuated_word == "度。" and abs(message.words[2].confidence - 0.7) < 1e-9
    assert plain_word(" «Hi»") == "«Hi»" and plain_word("“好”") == "好"
