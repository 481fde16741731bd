"""The analysis stages end to end on real audio with the real models (model tier):

- PII: a caller reads digits over several utterances; with a low digit-run threshold, no event, subscription
  message, webhook body, batch output file or log line carries the clear digits.
- QA and assist: a stereo call assembled from eval clips (agent and customer legs) streamed over WebSocket; the
  expected ``qa`` and ``assist`` events arrive in order with evidence, and the batch report of the same recording
  gives the same rule outcomes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from speechsvc.batch.recording import analyze_recording
from speechsvc.clients.ws import StreamAudio, stream_ws, to_pcm16
from speechsvc.speech.audio import decode_file, encode_file
from speechsvc.transports.webhook import WebhookPoster
from tests.support.datasets import eval_path
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model

# "one two three" three times: Whisper writes digits, one or a few per utterance (the VAD cuts at the pauses).
DIGITS = re.compile(r"[0-9]")
# The dictated run "1, 2, 3" as a transcript writes it; not the same digits inside a hex call id, a number or a
# time of day (19:12:37), which a log line may carry.
SPOKEN_RUN = re.compile(r"(?<![\w.:])1[,，、 ]{0,3}2[,，、 ]{0,3}3(?![\w:])")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def digits_call() -> np.ndarray:
    clip = decode_file(eval_path("asr_en", "audio", "speechrecognition_english.wav"))[0][0]
    gap = np.zeros(2400, np.float32)
    return np.concatenate([clip, gap, clip, gap, clip, np.zeros(16000, np.float32)])


class Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        Receiver.bodies.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[str]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_port}/hook"
    http.shutdown()


def texts_of(event: dict) -> list[str]:
    """Every text a client could read in an event."""
    out = [str(event.get(k, "")) for k in ("text", "stable_text")]
    out += [str(ev.get("text", "")) for ev in event.get("evidence", [])]
    return out


async def test_dictated_digits_never_leave_in_the_clear(webhook: str, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    audio = digits_call()
    stream = StreamAudio(to_pcm16(audio)[:, None], 16000, 1)
    with LiveServer(pii_min_digits=1, pii_names_addresses=False) as server:
        poster = WebhookPoster(server.engine.bus, webhook, retries=3, timeout_s=5)
        server.loop.call_soon_threadsafe(poster.start)
        import websockets

        async with websockets.connect(f"ws://127.0.0.1:{server.port}/v1/events") as subscriber:
            events = await stream_ws(server.url, stream, language="en", speed=0, words=True)
            published = []
            while not published or published[-1]["type"] != "ended":
                published.append(json.loads(await asyncio.wait_for(subscriber.recv(), 30)))
        for _ in range(100):  # the webhook posts in the background
            if any(b'"ended"' in b for b in Receiver.bodies):
                break
            await asyncio.sleep(0.1)
        asyncio.run_coroutine_threadsafe(poster.stop(), server.loop).result(10)
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert len(finals) >= 3 and all(f["redactions"] for f in finals)
    for f in finals:  # the timings spell the redacted text, and each value has its place in the audio
        assert "".join(w["punctuated_word"] for w in f["words"]) == f["text"].replace(" ", "")
        assert all(f["start_ms"] - 100 <= r["start_ms"] < r["end_ms"] <= f["end_ms"] + 100 for r in f["redactions"])
    for e in events + published + [json.loads(b) for b in Receiver.bodies]:
        assert not any(DIGITS.search(t) for t in texts_of(e)), e
    assert any(b'"redactions"' in b for b in Receiver.bodies)
    ours = [r for r in caplog.records if r.name.startswith(("speechsvc", "uvicorn", "websockets.server"))]
    leaked = [r.getMessage() for r in ours if SPOKEN_RUN.search(r.getMessage())]
    assert not leaked, leaked

    wav = tmp_path / "digits.wav"
    encode_file(wav, audio[None, :], 16000)
    out = tmp_path / "out"
    env = {"SPEECHSVC_PII_MIN_DIGITS": "1", "SPEECHSVC_PII_NAMES_ADDRESSES": "false", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "speechsvc.cli", "batch", str(wav), "--out", str(out), "--format",
                           "srt", "vtt", "txt", "--language", "en", "-q",
                           "--redact-audio", "silence"], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, **env}, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(next(out.glob("*digits.wav-*.json")).read_text())
    assert report["segments"] and all(s["redactions"] for s in report["segments"])
    assert not any(DIGITS.search(s["text"]) for s in report["segments"])
    for suffix in ("srt", "vtt", "txt"):
        body = next(out.glob(f"*digits.wav-*.{suffix}")).read_text()
        # Cue text without its speaker label (a mono recording is diarized: "[speaker_0] ", "<v speaker_1>").
        spoken = [re.sub(r"^(\[[a-z]+(_\d+)?\] |<v [a-z]+(_\d+)?>)", "", line) for line in body.splitlines()
                  if "-->" not in line and not line.strip().isdigit()]
        assert not any(DIGITS.search(line) for line in spoken if line != "WEBVTT"), body
    assert not SPOKEN_RUN.search(done.stderr)

    # The redacted copy: silence where each value was said, the rest of the recording untouched.
    covered = decode_file(next(out.glob("*digits.wav-*.redacted.wav")))[0][0]
    assert covered.shape == audio.shape
    spans = [(r["start_ms"] * 16, r["end_ms"] * 16) for s in report["segments"] for r in s["redactions"]]
    assert len(spans) >= 3
    for a, b in spans:
        assert rms(audio[a:b]) > 0.01 and rms(covered[a:b]) < 1e-4  # speech before, silence after
    untouched = np.ones(audio.size, bool)
    for a, b in spans:
        untouched[a:b] = False
    assert np.abs(covered[untouched] - audio[untouched]).max() < 1e-3  # 16-bit rounding only


RULES = """
version = 1
base_score = 100

[[rule]]
id = "greeting"
category = "script"
severity = "major"
score = -10
kind = "requirement"
description = "the agent welcomes the caller in the first 8 s"
when = { op = "utterance", match = { op = "keyword", role = "agent", any = ["欢迎"] }, within_first_s = 8 }

[[rule]]
id = "no_rambling"
category = "attitude"
severity = "minor"
score = -5
kind = "violation"
description = "the agent does not call their own talk 废话"
when = { op = "utterance", match = { op = "keyword", role = "agent", any = ["废话"] } }

[[rule]]
id = "closing"
category = "script"
severity = "minor"
score = -5
kind = "requirement"
description = "the agent offers more help before the end"
when = { op = "utterance", match = { op = "keyword", role = "agent", any = ["还有什么可以帮您"] }, within_last_s = 10 }
"""

KNOWLEDGE = """
version = 1

[[entry]]
id = "music"
title = "点播歌曲"
questions = ["想听歌曲", "我想听一首歌", "帮我放一首歌", "播放歌曲"]
answer = "请告诉客户歌曲名称，在点播系统中搜索后播放。"
intents = []
"""


def qa_call() -> np.ndarray:
    """Stereo, 16 kHz: agent greets (0.5 s), customer asks for a song (7 s), agent rambles (11 s)."""
    def clip(*parts: str) -> np.ndarray:
        return decode_file(eval_path(*parts))[0][0]

    greet = clip("asr_zh", "audio", "funasr_asr_example.wav")  # 欢迎大家来体验达摩院推出的语音识别模型
    song = clip("asr_zh", "audio", "aishellsample_BAC009S0150W0045.wav")  # 想听歌曲自由自在
    ramble = clip("asr_zh", "audio", "mossttsd_zh_spk1_moon.wav")  # … 言下之意呢，就是废话有点多 …
    n = 16000 * 23
    agent, customer = np.zeros(n, np.float32), np.zeros(n, np.float32)
    agent[8000 : 8000 + greet.size] = greet
    customer[16000 * 7 : 16000 * 7 + song.size] = song
    agent[16000 * 11 : 16000 * 11 + ramble.size] = ramble
    return np.stack([customer, agent])


async def test_qa_and_assist_live_and_the_same_outcomes_in_batch(tmp_path: Path) -> None:
    rules, knowledge = tmp_path / "rules.toml", tmp_path / "kb.toml"
    rules.write_text(RULES, encoding="utf-8")
    knowledge.write_text(KNOWLEDGE, encoding="utf-8")
    audio = qa_call()
    stream = StreamAudio(to_pcm16(audio.T), 16000, 2)
    with LiveServer(qa_rules=rules, assist_knowledge=knowledge, emotion=False) as server:
        events = await stream_ws(server.url, stream, language="zh", speed=0)
        report = asyncio.run_coroutine_threadsafe(
            analyze_recording(server.engine, audio, "qa_call.wav", "zh"), server.loop).result(300)
    kinds = [e["type"] for e in events]
    qa = {e["rule"]: e for e in events if e["type"] == "qa"}
    assert qa["greeting"]["passed"] is True and qa["greeting"]["decided_at"] == "live"
    assert qa["greeting"]["evidence"][0]["leg"] == "agent" and "欢迎" in qa["greeting"]["evidence"][0]["text"]
    assert qa["no_rambling"]["passed"] is False and "废话" in qa["no_rambling"]["evidence"][0]["text"]
    assert qa["closing"]["passed"] is False and qa["closing"]["decided_at"] == "end"
    (assist,) = [e for e in events if e["type"] == "assist"]
    assert assist["leg"] == "agent" and assist["entry"] == "music" and assist["utterance_leg"] == "customer"
    song_final = next(i for i, e in enumerate(events) if e["type"] == "transcript.final" and "歌" in e["text"])
    assert kinds.index("assist") > song_final  # after the final it answers
    summary = next(e for e in events if e["type"] == "qa.summary")
    assert summary["score"] == 100 - 5 - 5 and kinds.index("qa.summary") == len(kinds) - 2
    section = report.sections["qa"]
    assert section is not None and section["score"] == summary["score"]
    assert {o["rule"]: o["passed"] for o in section["outcomes"]} == {r: q["passed"] for r, q in qa.items()}
