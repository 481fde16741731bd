"""The REST job API over the fake engine (fast tier): results name uploads as the client did, the completion
callback is signed (checked with the Standard Webhooks reference library) and says who sent it, DELETE cancels
and deletes, a bad callback URL is 422, and a job store that cannot be reached is 503."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from standardwebhooks.webhooks import Webhook

from speechsvc import __version__
from speechsvc.security.signing import new_secret
from speechsvc.speech.audio import encode_file
from tests.support.fakes import silence, tone
from tests.support.fakeserver import FakeServer


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/done", received
    server.shutdown()


def wav(path: Path, hz: float) -> bytes:
    encode_file(path, np.concatenate([tone(hz, 0.8), silence(0.8)])[None, :], 16000)
    return path.read_bytes()


async def wait_state(client: httpx.AsyncClient, job_id: str, states: set[str]) -> dict[str, Any]:
    for _ in range(300):
        job: dict[str, Any] = (await client.get(f"/v1/jobs/{job_id}")).json()
        if job.get("state") in states:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}")


async def test_upload_names_signed_completion_and_delete(tmp_path: Path, receiver: Any) -> None:
    url, received = receiver
    secret = new_secret()
    files = [("files", ("客户 A.wav", wav(tmp_path / "a.wav", 440), "audio/wav")),
             ("files", ("broken.mp3", b"ID3" + b"\0" * 100, "audio/mpeg"))]
    with FakeServer(jobs_dir=tmp_path / "jobs", webhook_secret=secret, jobs_poll_s=0.05) as s:
        async with httpx.AsyncClient(base_url=s.http_url, timeout=30) as client:
            created = await client.post("/v1/jobs", files=files, data={"webhook_url": url})
            assert created.status_code == 201, created.text
            job_id = created.json()["id"]
            job = await wait_state(client, job_id, {"done"})
            assert job["done"] == 1 and job["failed"] == 1 and list(job["errors"]) == ["broken.mp3"]
            results = (await client.get(f"/v1/jobs/{job_id}/results")).json()["results"]
            assert [(r["input"], r["status"]) for r in results] == [("客户 A.wav", "done"), ("broken.mp3", "failed")]
            assert all(r["replica"] and r["attempts"] == 1 for r in results)
            assert str(tmp_path) not in json.dumps(results, ensure_ascii=False)  # never the internal path
            report = (await client.get(f"/v1/jobs/{job_id}/outputs/0/json")).json()
            assert report["path"] == "客户 A.wav" == results[0]["report"]["path"]
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.05)
            (headers, body), = received
            payload = Webhook(secret).verify(body, headers)
            assert payload["type"] == "job.completed" and payload["job"]["id"] == job_id
            assert payload["job"]["errors"] == {"broken.mp3": job["errors"]["broken.mp3"]}
            assert headers["user-agent"] == f"speechsvc/{__version__}"

            assert (await client.delete(f"/v1/jobs/{job_id}")).status_code == 204
            assert (await client.get(f"/v1/jobs/{job_id}")).status_code == 404
            assert (await client.delete(f"/v1/jobs/{job_id}")).status_code == 404
            assert job_id not in {j["id"] for j in (await client.get("/v1/jobs")).json()["jobs"]}
            bad = await client.post("/v1/jobs", files=files[:1], data={"webhook_url": "http://169.254.169.254/x"})
            assert bad.status_code == 422 and "webhook_url" in bad.json()["detail"]


async def test_a_job_store_that_cannot_be_reached_is_503(tmp_path: Path) -> None:
    from speechsvc.batch.jobs import StoreUnavailable

    with FakeServer(jobs_dir=tmp_path / "jobs") as s:
        store = s.app.state.jobs.store

        def down(*args: Any) -> Any:
            raise StoreUnavailable("job database postgresql://db/jobs: OperationalError")

        store.get = store.list = down
        async with httpx.AsyncClient(base_url=s.http_url, timeout=30) as client:
            for response in (await client.get("/v1/jobs"), await client.get("/v1/jobs/x")):
                assert response.status_code == 503 and response.headers["retry-after"] == "5"
