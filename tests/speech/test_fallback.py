"""Recorded audio whose greedy hypothesis the model doubts is sampled again, and the likeliest text kept (issue 27)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from speechsvc.speech.asr import AsrRequest, WhisperRecognizer
from speechsvc.speech.audio import decode_file
from tests.support.datasets import fixture_clip


@pytest.fixture()
def doubting(recognizer: WhisperRecognizer) -> Iterator[WhisperRecognizer]:
    """The shared recognizer with a threshold no greedy hypothesis reaches (every average log-prob is below it)."""
    kept = recognizer.options
    recognizer.options = replace(kept, fallback_logprob=-1e-4)
    try:
        yield recognizer
    finally:
        recognizer.options = kept


def test_a_doubted_recorded_chunk_keeps_the_likeliest_hypothesis(recognizer: WhisperRecognizer) -> None:
    audio = decode_file(fixture_clip("espeak_zh_bill").path)[0][0]
    kept = recognizer.options
    try:
        recognizer.options = replace(kept, fallback_logprob=0.0)  # off
        (greedy,) = recognizer.transcribe([AsrRequest(audio, "zh", complete=True)])
        recognizer.options = replace(kept, fallback_logprob=-1e-4)  # every greedy hypothesis is doubted
        (recorded,) = recognizer.transcribe([AsrRequest(audio, "zh", complete=True)])
        (live,) = recognizer.transcribe([AsrRequest(audio, "zh")])
    finally:
        recognizer.options = kept
    assert not greedy.fallback and recorded.fallback and recorded.text
    # The greedy hypothesis competes with the samples, so the kept one is at least as likely.
    assert recorded.confidence >= greedy.confidence - 1e-6, (recorded, greedy)
    assert len(set(recorded.text) & set(greedy.text)) >= 3, (recorded.text, greedy.text)
    # A live final is never sampled for doubt alone (its decodes come out of the calls a machine holds).
    assert not live.fallback and live.text


def test_partials_are_never_sampled_for_doubt(doubting: WhisperRecognizer) -> None:
    audio = decode_file(fixture_clip("espeak_zh_network").path)[0][0]
    (partial,) = doubting.transcribe([AsrRequest(audio, "zh", partial=True)])
    assert partial.text and not partial.fallback


def test_a_recorded_fallback_weighs_the_full_window_hypothesis(recognizer: WhisperRecognizer) -> None:
    """With ``fallback_window_s`` set, a doubted recorded chunk's hypotheses include the greedy one decoded in
    Whisper's own 30 s window, and the likeliest of them is kept."""
    audio = decode_file(fixture_clip("espeak_zh_bill").path)[0][0]
    kept = recognizer.options
    request = AsrRequest(audio, "zh", complete=True)
    try:
        recognizer.options = replace(kept, fallback_logprob=0.0)
        (narrow,) = recognizer.transcribe([request])
        recognizer.options = replace(kept, fallback_logprob=0.0, min_window_s=30.0)
        (wide,) = recognizer.transcribe([request])
        # No sampling: the two greedy hypotheses are the only candidates.
        recognizer.options = replace(kept, fallback_logprob=-1e-4, fallback_window_s=30.0, fallback_temperatures=())
        (chosen,) = recognizer.transcribe([request])
    finally:
        recognizer.options = kept
    likeliest = max((narrow, wide), key=lambda r: r.confidence)
    assert chosen.fallback
    assert chosen.text == likeliest.text, (chosen.text, narrow.text, wide.text)
    assert chosen.confidence == pytest.approx(likeliest.confidence, abs=1e-4)
