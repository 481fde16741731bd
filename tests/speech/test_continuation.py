"""Recorded chunks whose text stops before their audio does: the rest is decoded and appended (issue 27)."""

from __future__ import annotations

import numpy as np

from speechsvc.speech.asr import AsrRequest, AsrResult, WhisperRecognizer, _appended
from speechsvc.speech.audio import decode_file
from speechsvc.types import Word
from tests.support.datasets import fixture_clip


def result(text: str, language: str, words: tuple[Word, ...]) -> AsrResult:
    return AsrResult(text, language, 0.8, 0.1, None, words)


def test_the_rest_is_appended_on_the_heads_clock() -> None:
    head = result("你好。", "zh", (Word("你", 0, 200, 0.9), Word("好。", 200, 400, 0.9)))
    tail = result("再见。", "zh", (Word("再", 100, 300, 0.7), Word("见。", 300, 500, 0.7)))
    joined = _appended(head, tail, 2000, words=True)
    assert joined.text == "你好。再见。" and "".join(w.text for w in joined.words) == joined.text
    assert [w.start_ms for w in joined.words] == [0, 200, 2100, 2300]
    english = _appended(result("Hello.", "en", (Word("Hello.", 0, 300, 0.9),)),
                        result("Goodbye.", "en", (Word("Goodbye.", 0, 400, 0.9),)), 1000, words=True)
    assert english.text == "Hello. Goodbye." and "".join(w.text for w in english.words) == english.text
    assert not _appended(head, result("再见。", "zh", ()), 2000, words=True).words  # timings must spell the text
    assert _appended(head, tail, 2000, words=False).words == ()


def test_a_chunk_that_stopped_early_gets_its_rest(recognizer: WhisperRecognizer) -> None:
    """Two sentences in one chunk; the first decoded alone stands for a decode that stopped after it. Continuing
    from where its text ended decodes the second and appends it, with timings on the chunk's clock."""
    first = decode_file(fixture_clip("espeak_zh_network").path)[0][0]
    second = decode_file(fixture_clip("espeak_zh_bill").path)[0][0]
    chunk = np.concatenate([first, np.zeros(8000, np.float32), second])
    request = AsrRequest(chunk, "zh", words=True, complete=True)
    (head,) = recognizer.transcribe([AsrRequest(first, "zh", words=True)])
    (tail,) = recognizer.transcribe([AsrRequest(second, "zh")])
    assert len(head.text) >= 5 and len(tail.text) >= 5, (head.text, tail.text)
    (done,) = recognizer._completed([request], [head], [first.size / 16000])
    rest = done.text[len(head.text):]
    assert done.text.startswith(head.text) and len(rest) >= 5, done.text
    assert len(set(rest) & set(tail.text)) >= 3, (rest, tail.text)  # the second sentence, heard again
    assert "".join(w.text for w in done.words) == done.text
    assert done.words[-1].start_ms > first.size * 1000 // 16000  # the rest's timings: after the first sentence
    (whole,) = recognizer.transcribe([request])  # and a chunk decoded whole keeps both sentences
    assert len(set(whole.text) & set(head.text)) >= 3 and len(set(whole.text) & set(tail.text)) >= 3, whole.text
