"""Voice emotion: the committed head on real clips, the per-call tracker, the CLI, and end to end through the
WebSocket (angry voice with polite words fires angry_caller; emotion never delays transcripts)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from speechsvc.analysis.emotion import EMOTIONS, EmotionHead, EmotionTracker, segment_features
from speechsvc.clients.ws import StreamAudio, stream_ws, to_pcm16
from speechsvc.config import Settings
from speechsvc.speech.audio import decode_file, encode_file, telephone_channel
from tests.support.datasets import EVAL, eval_path
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def head() -> EmotionHead:
    return EmotionHead(Settings().heads_dir / "emotion")


def clips(speaker: str, emotion: str, n: int) -> list[np.ndarray]:
    rows = [r for r in csv.DictReader(eval_path("emotion", "labels.csv").open())
            if r["speaker"] == speaker and r["emotion"] == emotion][:n]
    return [decode_file(EVAL / "emotion" / r["path"])[0][0] for r in rows]


def test_committed_head_shape(head: EmotionHead) -> None:
    assert head.labels == EMOTIONS and head.use_egemaps and head.dim == 88 + 1024
    assert head.meta["evaluation"]["casia"]["tel"]["uar4"] >= 0.72  # the LOSO figures it was shipped with


def test_angry_and_neutral_clips_of_a_call(head: EmotionHead, recognizer) -> None:  # type: ignore[no-untyped-def]
    """A call of one speaker: calm first, then angry. In-sample for the final head (the speaker-independent
    figures are in the model card); the bar guards the feature path end to end (encoder, eGeMAPS, tracker)."""
    calm, angry = clips("casia_wangzhe", "neutral", 8), clips("casia_wangzhe", "angry", 8)
    rng = np.random.default_rng(1)
    tracker = EmotionTracker(head)
    results = []
    for audio in calm + angry:
        tel = telephone_channel(audio, rng)  # as it arrives over a phone line
        stats = recognizer.encoder_stats([tel])[0]
        results.append(tracker.update(segment_features(tel, stats, head.use_egemaps)))
    calm_p = [r.p_angry for r in results[:8]]
    angry_p = [r.p_angry for r in results[8:]]
    assert np.mean(angry_p) > 0.6 > 0.25 > np.mean(calm_p)
    assert sum(r.label == "angry" for r in results[8:]) >= 6
    assert results[-1].p_angry_smoothed > 0.6 and all(0 <= r.arousal <= 1 for r in results)


def test_emotion_cli_prints_one_json_per_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    audio = np.concatenate([*clips("casia_zhaoquanyin", "angry", 3), np.zeros(8000, np.float32)])
    path = tmp_path / "angry.wav"
    encode_file(path, audio[None, :], 16000)
    out = subprocess.run([sys.executable, "-m", "speechsvc.cli", "emotion", str(path)], capture_output=True,
                         text=True, timeout=180, check=True).stdout.splitlines()
    record = json.loads(out[0])
    assert len(out) == 1 and record["file"] == str(path) and record["segments"]
    seg = record["segments"][0]
    assert set(seg["probabilities"]) == set(EMOTIONS) and 0 <= seg["p_angry"] <= 1 and seg["start_ms"] < seg["end_ms"]


async def test_angry_voice_with_polite_words_fires_angry_caller(server: LiveServer) -> None:
    """CASIA sentences are the same neutral text in every emotion: only the voice can tell."""
    gap = np.zeros(16000, np.float32)
    parts = [x for c in clips("casia_liuchanhg", "neutral", 4) + clips("casia_liuchanhg", "angry", 6) for x in (c, gap)]
    audio = StreamAudio(to_pcm16(np.concatenate(parts))[:, None], 16000, 1)
    events = await stream_ws(server.url, audio, speed=0, partials=False, call_id="angry-polite")
    emotions = [e for e in events if e["type"] == "emotion"]
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert len(emotions) >= 8 and {e["utterance"] for e in emotions} <= {f["utterance"] for f in finals}
    escalations = [e for e in events if e["type"] == "escalation" and e["kind"] == "angry_caller"]
    assert len(escalations) == 1, [(e["label"], e["p_angry_smoothed"]) for e in emotions]
    assert any(ev["cue"] == "voice:angry" for ev in escalations[0]["evidence"])
    assert escalations[0]["evidence"][0]["start_ms"] >= finals[3]["start_ms"]  # during the angry part


async def test_emotion_never_delays_transcripts(server: LiveServer) -> None:
    """Each final goes out before its emotion event; emotion is computed on another worker thread."""
    audio, _ = decode_file(eval_path("long", "audio", "aishellsample_S0150_S0252_concat_read.wav"))
    stream = StreamAudio(to_pcm16(audio[0][: 16000 * 15])[:, None], 16000, 1)
    events = await stream_ws(server.url, stream, speed=0, partials=False)
    index = {(e["type"], e.get("utterance")): i for i, e in enumerate(events)}
    emotions = [e for e in events if e["type"] == "emotion"]
    assert emotions
    for e in emotions:
        assert index[("transcript.final", e["utterance"])] < index[("emotion", e["utterance"])]
    (stage,) = [s for s in server.engine.stages if s.name == "emotion"]
    assert stage.worker is not None and stage.worker is not server.engine.asr
