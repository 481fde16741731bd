"""Batch transcription of recorded calls: CLI outputs and QA summary, resume after a kill, corrupt files,
the REST job API, and the same job on a local Ray instance."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from speechsvc.speech.audio import decode_file, encode_file
from tests.support.datasets import EVAL, eval_path
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model


def speechsvc(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "speechsvc.cli", "--log-level", "WARNING", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A stereo call (customer: Mandarin utterances, agent: English prompts, overlapping once), a mono
    8 kHz talk clip, a corrupt file, and a CSV manifest listing them."""
    root = tmp_path_factory.mktemp("calls")
    zh = [decode_file(eval_path("asr_zh", "telephone_sim_8k", f"aishellsample_BAC009S0150W000{i}.wav"))[0][0]
          for i in (1, 2, 3)]
    en = [decode_file(eval_path("asr_en", "orig_8k", f"asterisk_{n}.wav"))[0][0]
          for n in ("agent-newlocation", "pls-hold-while-try")]
    rate = 16000
    n = rate * 24
    stereo = np.zeros((2, n), np.float32)
    for i, clip in enumerate(zh):  # customer at 0 s, 8 s, 16 s
        stereo[0, i * 8 * rate : i * 8 * rate + clip.size] = clip[: n - i * 8 * rate]
    for j, clip in enumerate(en):  # agent at 3 s and 9 s (the second overlaps the customer's second utterance)
        start = (3 + 6 * j) * rate
        stereo[1, start : start + clip.size] = clip[: n - start]
    call = root / "call_stereo.wav"
    encode_file(call, stereo, rate)
    talk, trate = decode_file(eval_path("long", "orig_8k", "ibm_05-gettysburg-address-2min.wav"))
    mono = root / "talk.flac"
    encode_file(mono, talk[:, : trate * 25], trate)
    broken = root / "broken.mp3"
    broken.write_bytes(b"ID3" + b"\x00" * 100)
    manifest = root / "calls.csv"
    manifest.write_text("path,agent_id\ncall_stereo.wav,a1\ntalk.flac,a2\nbroken.mp3,a3\n")
    return {"call": call, "mono": mono, "broken": broken, "manifest": manifest, "root": root}


def test_batch_outputs_and_quality_summary(recordings: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = speechsvc("batch", str(recordings["manifest"]), "--out", str(out), "--format", "srt", "txt",
                       "--language", "auto", "-q", "--words")
    assert result.returncode == 1  # one input failed, the job went on
    summary = json.loads(result.stdout)
    assert summary["done"] == 2 and summary["failed"] == 1
    call = json.loads(next(out.glob("*call_stereo.wav-*.json")).read_text())
    legs = {s["leg"] for s in call["segments"]}
    assert call["legs"] == ["customer", "agent"] and legs == {"customer", "agent"}
    customer = [s for s in call["segments"] if s["leg"] == "customer"]
    assert len(customer) == 3 and all("设定" in s["text"] for s in customer)
    assert all(s["intent"] and 0 <= s["negativity"] <= 1 and s["emotion"] in ("angry", "happy", "neutral", "sad")
               for s in call["segments"])
    starts = [s["start_ms"] for s in call["segments"]]
    assert starts == sorted(starts)
    for s in call["segments"]:  # --words: timings that spell the text, inside the segment, in order
        assert "".join(w["text"] for w in s["words"]) == s["text"]
        times = [(w["start_ms"], w["end_ms"]) for w in s["words"]]
        assert all(s["start_ms"] <= a <= b <= s["end_ms"] for a, b in times) and times == sorted(times)
    assert call["agent_id"] == "a1"  # from the manifest
    qa = call["summary"]
    talk = {leg["leg"]: leg for leg in qa["legs"]}
    assert 4 < talk["customer"]["talk_s"] < 9 and talk["customer"]["rate_unit"] == "chars/min"
    assert talk["agent"]["talk_s"] > 3 and talk["agent"]["rate_unit"] == "words/min"
    assert qa["overtalk_s"] > 0.2 and qa["silence_s"] > 5 and qa["duration_s"] == pytest.approx(24, abs=0.1)
    assert sum(call["intent"]["counts"].values()) == 3
    srt = next(out.glob("*call_stereo.wav-*.srt")).read_text()
    assert "[customer]" in srt and "[agent]" in srt and " --> " in srt
    assert call["qa"]["score"] <= 100 and {o["status"] for o in call["qa"]["outcomes"]} <= {
        "pass", "fail", "not_applicable"}
    qa_summary = json.loads((out / "qa_summary.json").read_text())
    assert qa_summary["calls"] == 2 and qa_summary["score"]["p50"] <= 100
    assert set(qa_summary["per_agent"]) == {"a1", "a2"}
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert rows[0]["qa_score"] and float(rows[0]["qa_score"]) <= 100
    assert [r["status"] for r in rows] == ["done", "done", "failed"]
    assert [r["agent_id"] for r in rows[:2]] == ["a1", "a2"]
    assert "cannot decode" in rows[2]["error"]
    assert "broken.mp3" in (out / "errors.jsonl").read_text()


def test_batch_resumes_after_being_killed(recordings: dict[str, Path], tmp_path: Path) -> None:
    talk, rate = decode_file(EVAL / "long" / "orig_8k" / "ibm_05-gettysburg-address-2min.wav")
    rest = tmp_path / "talk_rest.wav"  # the next 40 s of the talk: a third file, not begun or not done at the kill
    encode_file(rest, talk[:, rate * 25 : rate * 65], rate)
    inputs = [str(recordings["mono"]), str(recordings["call"]), str(rest)]
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "speechsvc.cli", "--log-level", "WARNING", "batch", *inputs,
                             "--out", str(out), "--concurrency", "1", "-q"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(out.glob("*.json")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # a crash mid-job
    proc.wait()
    finished_before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert 1 <= len(finished_before) < 3
    result = speechsvc("batch", *inputs, "--out", str(out), "-q")
    summary = json.loads(result.stdout)
    assert result.returncode == 0 and summary["skipped"] == len(finished_before)
    assert summary["done"] + summary["skipped"] == 3
    for name, mtime in finished_before.items():  # nothing already done was redone or lost
        assert (out / name).stat().st_mtime_ns == mtime
    assert not list(out.glob("*.tmp"))


async def test_rest_job_api_round_trip(recordings: dict[str, Path], tmp_path: Path) -> None:
    with LiveServer(jobs_dir=tmp_path / "jobs", batch_roots=(str(recordings["root"]),)) as server:
        async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
            created = await http.post("/v1/jobs", json={"inputs": [str(recordings["call"]), str(recordings["broken"])],
                                                        "formats": ["srt"], "language": "auto"})
            assert created.status_code == 201, created.text
            job = created.json()
            with recordings["mono"].open("rb") as f:
                uploaded = await http.post("/v1/jobs", files=[("files", ("talk.flac", f, "audio/flac"))],
                                           data={"language": "en"})
            assert uploaded.status_code == 201, uploaded.text
            for job_id in (job["id"], uploaded.json()["id"]):
                for _ in range(600):
                    state = (await http.get(f"/v1/jobs/{job_id}")).json()
                    if state["state"] in ("done", "failed"):
                        break
                    await asyncio.sleep(0.2)
                assert state["state"] == "done" and state["progress"] == 1.0
            results = (await http.get(f"/v1/jobs/{job['id']}/results")).json()["results"]
            assert [r["status"] for r in results] == ["done", "failed"]
            assert results[0]["report"]["summary"]["legs"][0]["leg"] == "customer"
            page = (await http.get(f"/v1/jobs/{job['id']}/results", params={"offset": 1, "limit": 1})).json()
            assert (page["total"], page["next_offset"]) == (2, None) and page["results"] == results[1:]
            first = (await http.get(f"/v1/jobs/{job['id']}/results", params={"limit": 1})).json()
            assert first["next_offset"] == 1 and first["results"] == results[:1]
            assert (await http.get(f"/v1/jobs/{job['id']}/results", params={"limit": 0})).status_code == 422
            upload_results = (await http.get(f"/v1/jobs/{uploaded.json()['id']}/results")).json()["results"]
            assert "seven years ago" in " ".join(s["text"] for s in upload_results[0]["report"]["segments"]).lower()
            assert not (tmp_path / "jobs" / uploaded.json()["id"] / "input").exists()  # no audio kept
            outside = await http.post("/v1/jobs", json={"inputs": ["/etc/passwd"]})
            assert outside.status_code == 403 and "allowed roots" in outside.json()["detail"]
            assert (await http.post("/v1/jobs", json={"inputs": []})).status_code == 422
            assert (await http.post("/v1/jobs", json={"inputs": ["x"], "colour": 1})).status_code == 422
            assert (await http.get("/v1/jobs/nope")).status_code == 404
            listed = (await http.get("/v1/jobs")).json()
            assert listed["total"] == 2 and [j["id"] for j in listed["jobs"]] == [uploaded.json()["id"], job["id"]]
            srt = await http.get(f"/v1/jobs/{job['id']}/outputs/0/srt")
            assert srt.status_code == 200 and " --> " in srt.text and "[customer]" in srt.text
            assert (await http.get(f"/v1/jobs/{job['id']}/outputs/1/srt")).status_code == 404  # that input failed
            assert (await http.get(f"/v1/jobs/{job['id']}/outputs/0/vtt")).status_code == 404  # not asked for
    # A restart loses no job: the store is on disk.
    with LiveServer(jobs_dir=tmp_path / "jobs") as again:
        async with httpx.AsyncClient(base_url=again.http) as http:
            assert (await http.get(f"/v1/jobs/{job['id']}")).json()["state"] == "done"


def test_batch_on_local_ray(recordings: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = speechsvc("batch", str(recordings["call"]), str(recordings["mono"]), str(recordings["broken"]),
                       "--out", f"file://{out}",  # an fsspec URL: any fsspec file system works
                       "--ray", "--ray-cpus", "2", "--actors", "1", "--language", "auto", "-q")
    summary = json.loads(result.stdout)
    assert summary["done"] == 2 and summary["failed"] == 1, result.stderr[-2000:]
    call = json.loads(next(out.glob("*call_stereo.wav-*.json")).read_text())
    assert {s["leg"] for s in call["segments"]} == {"customer", "agent"}
    assert [r["status"] for r in csv.DictReader((out / "summary.csv").open())] == ["done", "done", "failed"]
