"""The model tier on the audio committed in tests/data (no ../shared/eval needed): every surface once, with the
real models and real clients, on real English telephone prompts (CC-BY-SA-3.0) and synthetic Mandarin.

The Asterisk prompts are real 8 kHz speech and carry the accuracy assertions (WER bounds). The Mandarin clips
are espeak-ng output (robotic, ~0.5 CER): they only exercise Mandarin paths (a second leg, language handling,
reports), never an accuracy claim. The evaluation sets in ../shared/eval stay the benchmarks."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import wave
from pathlib import Path

import grpc
import httpx
import numpy as np
import openai
import pytest
import websockets

from speechsvc.clients.grpc_client import stream_grpc
from speechsvc.clients.ws import StreamAudio, stream_ws, to_pcm16
from speechsvc.evaluation.scoring import error_rate
from speechsvc.speech.audio import decode_file, encode_file, mulaw_encode, resample
from speechsvc.v1 import pb, pb_grpc
from tests.support.datasets import DATA, fixture_clip, fixture_clips
from tests.support.liveserver import LiveServer

FAST = 4.0  # pace at 4x real time
RATE = 16000
CJK = re.compile(r"[\u4e00-\u9fff]")
# The English call: three prompts with pauses between them (the VAD ends an utterance after 0.5 s of silence).
CALL = ("asterisk_queue-periodic-announce", "asterisk_agent-user", "asterisk_agent-newlocation")


def test_fixture_checksums() -> None:
    """Every committed clip matches the sha256, duration and rate its README row states, and every file in
    tests/data/audio is listed (licence texts aside)."""
    clips = fixture_clips()
    assert len(clips) >= 9 and 25 <= sum(c.seconds for c in clips.values()) <= 40
    for name, clip in clips.items():
        assert clip.digest() == clip.sha256, f"{name}: sha256 differs from tests/data/README.md"
        with wave.open(str(clip.path)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, clip.rate), name
            assert abs(w.getnframes() / w.getframerate() - clip.seconds) < 0.01, name
        assert clip.licence in ("CC-BY-SA-3.0", "Apache-2.0") and clip.text and clip.language in ("en", "zh")
    listed = {c.path for c in clips.values()}
    assert {p for p in (DATA / "audio").iterdir() if not p.name.startswith("LICENSE")} == listed
    assert "Attribution-ShareAlike 3.0" in (DATA / "audio" / "LICENSE-asterisk-core-sounds-en.txt").read_text()


def clip16k(name: str) -> np.ndarray:
    return decode_file(fixture_clip(name).path)[0][0]


def english_call() -> tuple[np.ndarray, str]:
    """~19 s mono 16 kHz: three prompts 0.8 s apart, 1 s of silence at the end; and its reference text."""
    gap = np.zeros(int(RATE * 0.8), np.float32)
    parts = []
    for name in CALL:
        parts += [clip16k(name), gap]
    parts.append(np.zeros(RATE, np.float32))
    return np.concatenate(parts), " ".join(fixture_clip(n).text for n in CALL)


def stream(audio: np.ndarray) -> StreamAudio:
    return StreamAudio(to_pcm16(audio)[:, None], RATE, 1)


def finals_of(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "transcript.final"]


def text_of(events: list[dict], leg: str | None = None) -> str:
    return " ".join(e["text"] for e in finals_of(events) if leg is None or e["leg"] == leg)


@pytest.mark.model
async def test_ws_streams_real_telephone_speech(server: LiveServer) -> None:
    audio, reference = english_call()
    events = await stream_ws(server.url, stream(audio), language="auto", speed=FAST, call_id="fixture-ws")
    types = [e["type"] for e in events]
    assert types[0] == "ready" and types[-1] == "ended" and "transcript.partial" in types
    assert [e["seq"] for e in events[1:]] == list(range(1, len(events)))
    finals = finals_of(events)
    assert len(finals) >= 3 and all(e["call_id"] == "fixture-ws" for e in events)
    assert [f["utterance"] for f in finals] == sorted(f["utterance"] for f in finals)
    for f in finals:
        assert f["leg"] == "customer" and f["language"] == "en" and 0 < f["confidence"] <= 1
        assert 0 <= f["start_ms"] < f["end_ms"] <= audio.size * 1000 // RATE
        i = events.index(f)  # analysis follows its transcript
        intent = next(e for e in events if e["type"] == "intent" and e["utterance"] == f["utterance"])
        sentiment = next(e for e in events if e["type"] == "sentiment" and e["utterance"] == f["utterance"])
        assert events.index(intent) > i and events.index(sentiment) > i and intent["label"]
    assert error_rate(reference, text_of(events), "en") < 0.15, text_of(events)
    assert events[-1]["reason"] == "stop" and events[-1]["legs"][0]["utterances"] == len(finals)


@pytest.mark.model
async def test_ws_stereo_mulaw_call_keeps_legs_apart(server: LiveServer) -> None:
    """Customer: Mandarin (synthetic) on the left; agent: an English prompt on the right; 8 kHz μ-law."""
    customer, agent = clip16k("espeak_zh_bill"), clip16k("asterisk_agent-newlocation")
    n = max(customer.size, agent.size) + RATE
    both = np.zeros((n, 2), np.float32)
    both[: customer.size, 0] = customer
    both[: agent.size, 1] = agent
    payload = mulaw_encode(to_pcm16(resample(both, RATE, 8000)).reshape(-1))
    ws = await websockets.connect(server.url, max_size=None)
    await ws.send(json.dumps({"type": "start", "encoding": "mulaw", "sample_rate": 8000, "channels": 2,
                              "language": "auto", "call_id": "fixture-stereo"}))
    ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert ready["type"] == "ready" and ready["legs"] == ["customer", "agent"]
    for i in range(0, len(payload), 320):  # 20 ms of 8 kHz stereo μ-law
        await ws.send(payload[i : i + 320])
    await ws.send(json.dumps({"type": "stop"}))
    events = []
    try:
        async for raw in ws:
            events.append(json.loads(raw))
    except websockets.ConnectionClosed:
        pass
    assert ws.close_code == 1000
    legs = {e["leg"]: e for e in finals_of(events)}
    assert error_rate(fixture_clip("asterisk_agent-newlocation").text, legs["agent"]["text"], "en") < 0.2
    assert legs["agent"]["language"] == "en"
    assert legs["customer"]["language"] == "zh" and CJK.search(legs["customer"]["text"]), legs["customer"]


@pytest.mark.model
async def test_grpc_stream_unary_and_parity_with_ws(server: LiveServer) -> None:
    audio, reference = english_call()
    events = await stream_grpc(server.grpc_target, stream(audio), language="en", speed=FAST, call_id="fixture-g")
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "ready" and events[-1]["type"] == "ended" and len(finals_of(events)) >= 3
    assert error_rate(reference, text_of(events), "en") < 0.15, text_of(events)

    short = stream(clip16k("asterisk_agent-newlocation"))  # the same file over both transports, partials off
    ws_events = await stream_ws(server.url, short, language="en", speed=0, partials=False, call_id="p-ws")
    grpc_events = await stream_grpc(server.grpc_target, short, language="en", speed=0, partials=False,
                                    call_id="p-grpc")
    keys = ("type", "leg", "utterance", "start_ms", "end_ms", "text", "language")
    assert [tuple(f[k] for k in keys) for f in finals_of(ws_events)] == \
        [tuple(f[k] for k in keys) for f in finals_of(grpc_events)] != []

    path = fixture_clip("asterisk_agent-user").path  # unary: the 8 kHz WAV file, then its raw PCM frames
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.SpeechStub(channel)
        whole = await stub.Transcribe(pb.TranscribeRequest(audio=path.read_bytes(), language="en"))
        text = " ".join(s.text for s in whole.segments)
        assert whole.legs == ["mixed"] and 4.5 < whole.duration_s < 5.5
        assert error_rate(fixture_clip("asterisk_agent-user").text, text, "en") < 0.2, text
        with wave.open(str(path)) as w:
            pcm = w.readframes(w.getnframes())
        raw = await stub.Transcribe(pb.TranscribeRequest(audio=pcm, language="en",
                                                         config=pb.CallConfig(sample_rate=8000)))
        assert " ".join(s.text for s in raw.segments) == text


def openai_client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.http}/v1", api_key=server.key, max_retries=0, timeout=120)


@pytest.mark.model
async def test_openai_sdk_transcribes_a_real_prompt(server: LiveServer, tmp_path: Path) -> None:
    clip = fixture_clip("asterisk_agent-user")
    mp3 = tmp_path / "prompt.mp3"
    audio, rate = decode_file(clip.path)
    encode_file(mp3, audio, rate)

    def create(**kw: object) -> object:
        with mp3.open("rb") as f:
            return openai_client(server).audio.transcriptions.create(  # type: ignore[call-overload]
                model="whisper-1", file=f, **kw)

    loop = asyncio.get_running_loop()
    plain = await loop.run_in_executor(None, lambda: create(language="en"))  # the default is the server's (zh)
    assert error_rate(clip.text, plain.text, "en") < 0.2, plain.text  # type: ignore[attr-defined]
    verbose = await loop.run_in_executor(None, lambda: create(response_format="verbose_json", language="auto",
                                                              timestamp_granularities=["word", "segment"]))
    assert verbose.language == "english" and 4.5 < verbose.duration < 5.5  # type: ignore[attr-defined]
    words = verbose.words  # type: ignore[attr-defined]
    assert len(words) >= 8 and [w.start for w in words] == sorted(w.start for w in words)
    assert "pound" in " ".join(w.word for w in words).lower()
    srt = await loop.run_in_executor(None, lambda: create(response_format="srt", language="en"))
    assert str(srt).startswith("1\n00:00:0") and " --> " in str(srt)


def stereo_call(path: Path) -> Path:
    """A recorded stereo call, 16 kHz FLAC: customer (left) speaks the two Mandarin clips at 0 s and 10 s; the
    agent (right) answers with English prompts at 6.5 s and 16 s."""
    n = RATE * 22
    stereo = np.zeros((2, n), np.float32)
    for leg, at, name in ((0, 0.0, "espeak_zh_network"), (0, 10.0, "espeak_zh_bill"),
                          (1, 6.5, "asterisk_pls-hold-while-try"), (1, 16.0, "asterisk_agent-user")):
        clip, start = clip16k(name), int(at * RATE)
        stereo[leg, start : start + clip.size] = clip
    encode_file(path, stereo, RATE)
    return path


def check_report(report: dict) -> None:
    assert report["legs"] == ["customer", "agent"]
    agent = [s for s in report["segments"] if s["leg"] == "agent"]
    customer = [s for s in report["segments"] if s["leg"] == "customer"]
    reference = f'{fixture_clip("asterisk_pls-hold-while-try").text} {fixture_clip("asterisk_agent-user").text}'
    assert error_rate(reference, " ".join(s["text"] for s in agent), "en") < 0.2, agent
    assert customer and all(CJK.search(s["text"]) for s in customer), customer
    assert all(s["intent"] and 0 <= s["negativity"] <= 1 and s["emotion"] for s in report["segments"])
    assert [s["start_ms"] for s in report["segments"]] == sorted(s["start_ms"] for s in report["segments"])


@pytest.mark.model
async def test_batch_cli_and_rest_job_on_a_recorded_call(server: LiveServer, tmp_path: Path) -> None:
    call = stereo_call(tmp_path / "call.flac")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "speechsvc.cli", "--log-level", "WARNING", "batch", str(call),
                           "--out", str(out), "--format", "srt", "txt", "--language", "auto", "-q"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] == 1
    report = json.loads(next(out.glob("*call.flac-*.json")).read_text())
    check_report(report)
    assert next(out.glob("*call.flac-*.srt")).read_text().startswith("1\n")

    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:  # the same file as a REST upload
        with call.open("rb") as f:
            created = await http.post("/v1/jobs", files=[("files", ("call.flac", f, "audio/flac"))],
                                      data={"language": "auto"})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        for _ in range(600):
            state = (await http.get(f"/v1/jobs/{job_id}")).json()
            if state["state"] in ("done", "failed"):
                break
            await asyncio.sleep(0.2)
        assert state["state"] == "done"
        (result,) = (await http.get(f"/v1/jobs/{job_id}/results")).json()["results"]
    check_report(result["report"])
    assert [s["text"] for s in result["report"]["segments"]] == [s["text"] for s in report["segments"]]
