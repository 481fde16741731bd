"""A REST job says how many speakers its mono recordings have (diarization, issue 29; fast tier, fake engine):
the count is checked, shown on the job, and reaches every claim of its items from the store."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from speechsvc.batch.jobs import SqliteJobStore
from speechsvc.speech.audio import encode_file
from tests.support.fakes import silence, tone
from tests.support.fakeserver import FakeServer


def _wav(path: Path) -> bytes:
    encode_file(path, np.concatenate([tone(440, 0.5), silence(0.5)])[None, :], 16000)
    return path.read_bytes()


async def test_a_job_carries_its_speaker_count(tmp_path: Path) -> None:
    audio = _wav(tmp_path / "a.wav")
    with FakeServer(jobs_dir=tmp_path / "jobs", jobs_poll_s=0.05) as s:
        async with httpx.AsyncClient(base_url=s.http_url, timeout=30) as client:
            created = await client.post("/v1/jobs", files=[("files", ("a.wav", audio, "audio/wav"))],
                                        data={"speakers": "3"})
            assert created.status_code == 201, created.text
            assert created.json()["speakers"] == 3
            plain = await client.post("/v1/jobs", files=[("files", ("a.wav", audio, "audio/wav"))])
            assert plain.status_code == 201 and "speakers" not in plain.json()
            for bad in ("0", "9", "two"):
                refused = await client.post("/v1/jobs", files=[("files", ("a.wav", audio, "audio/wav"))],
                                            data={"speakers": bad})
                assert refused.status_code == 422, bad
            refused = await client.post("/v1/jobs", json={"inputs": [str(tmp_path / "a.wav")], "speakers": 9})
            assert refused.status_code == 422 and "speakers" in refused.text


def test_claims_carry_the_jobs_speaker_count(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs")
    try:
        request = {"inputs": ["a.wav", "b.wav"], "language": "zh", "formats": ["json"], "uploaded": False}
        store.create({**request, "speakers": 3}, tenant="t")
        store.create({**request, "inputs": ["c.wav"]}, tenant="t")
        claims = {c.input: c for c in store.claim("r1", 3, 30.0)}
        assert {k: c.speakers for k, c in claims.items()} == {"a.wav": 3, "b.wav": 3, "c.wav": None}
    finally:
        store.close()
