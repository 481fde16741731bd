"""Recorded audio: a long spontaneous turn is one utterance (decoded whole), not pieces cut at the live limit."""

from __future__ import annotations

import json

import pytest

from speechsvc.batch.chunks import GAP_S, plan_chunks
from speechsvc.batch.transcribe import RECORDED_MAX_SEGMENT_S, recorded_vad, segment_audio
from speechsvc.config import Settings
from speechsvc.speech.audio import decode_file
from speechsvc.speech.vad import SileroModel
from tests.support.datasets import eval_path


def test_recorded_audio_is_cut_by_force_only_past_the_window_with_silero_throughout() -> None:
    live = Settings().vad()
    assert live.max_segment_s < RECORDED_MAX_SEGMENT_S  # live calls keep their latency bound
    recorded = recorded_vad(live)
    assert recorded.max_segment_s == RECORDED_MAX_SEGMENT_S <= 28.0
    assert recorded.webrtc_mode is None  # no WebRTC gate on recordings, even where a deployment gates live calls
    assert recorded_vad(Settings(vad_webrtc_mode=1).vad()).webrtc_mode is None
    assert recorded.speech_pad_ms == 400 and recorded_vad(Settings(vad_speech_pad_ms=600).vad()).speech_pad_ms == 600
    assert recorded_vad(Settings(vad_max_segment_s=28.0).vad()).max_segment_s == 28.0
    changed = {"max_segment_s", "speech_pad_ms", "webrtc_mode"}
    assert {k: v for k, v in vars(recorded).items() if k not in changed} == {
        k: v for k, v in vars(live).items() if k not in changed}


@pytest.mark.model
def test_a_26_second_turn_of_a_talk_is_decoded_as_one_chunk(vad_model: SileroModel) -> None:
    """A 26 s stretch of a spontaneous talk: its utterances (cut at its pauses, never by force) are decoded as one
    chunk with the pauses as recorded, as faster-whisper decodes it, not in pieces."""
    talk = eval_path("long", "audio", "magicdata_viewer_guava_talk_monologue.wav")
    slices = json.loads(eval_path("long", "segments", "magicdata_viewer_guava_talk_monologue.json").read_text())
    audio = decode_file(talk)[0][0]
    start, end = slices[0]["start"], next(s["end"] for s in slices if s["end"] - slices[0]["start"] > 24)
    turn = audio[int(start * 16000) : int(end * 16000)]
    segments = segment_audio(turn, "mixed", vad_model, Settings().vad())
    assert len(segments) > 1 and not any(s.forced for s in segments)
    [chunk] = plan_chunks(segments, recording={"mixed": turn})
    assert len(chunk.segments) == len(segments)
    first, last = segments[0], segments[-1]
    span = last.start_ms * 16 + last.audio.size - first.start_ms * 16
    assert abs(chunk.audio.size - (span + int(GAP_S * 16000))) < 16 * len(segments)  # pauses kept, not shrunk
