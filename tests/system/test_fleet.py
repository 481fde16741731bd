"""The fleet, for real: two ``speechsvc serve`` processes (real models, the smallest settings) sharing a real
PostgreSQL (jobs), a real redis-server (events) and one job folder, behind a real HAProxy running
``deploy/haproxy.cfg``; everything on loopback, started here. Skipped, saying why, when a server is missing.

- calls through HAProxy spread over both replicas, a subscriber on either replica sees every call, and either
  replica's call index (``/v1/calls``, the console's) lists both, each with the replica that holds it;
- SIGTERM on a replica drains its call (finals, then ``ended``) while the other takes new calls through HAProxy;
- a REST job uploaded to replica A finishes on replica B after A is killed (SIGKILL) in the middle of an item:
  A's item is taken over after its lease, no item is lost, none is done twice, results name the uploaded
  files, and B sends the signed completion callback.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from speechsvc.security.signing import new_secret
from tests.support.clients import frames, read_until_closed
from tests.support.datasets import REPO, eval_path
from tests.support.pgserver import INITDB, PostgresServer
from tests.support.pgserver import SKIP_REASON as PG_SKIP
from tests.support.redisserver import REDIS_SERVER, RedisServer
from tests.support.redisserver import SKIP_REASON as REDIS_SKIP

pytestmark = pytest.mark.model
HAPROXY = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.path.exists(p)), None)
LEASE_S = 3.0
CLIPS = [f"aishellsample_BAC009S0150W000{i}.wav" for i in range(1, 9)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.port, self.grpc_port, self.audiosocket_port = free_port(), free_port(), free_port()
        self.env = {**os.environ, **env, "SPEECHSVC_REPLICA_ID": name, "SPEECHSVC_PORT": str(self.port),
                    "SPEECHSVC_GRPC_PORT": str(self.grpc_port),
                    "SPEECHSVC_AUDIOSOCKET_PORT": str(self.audiosocket_port)}
        self.log = logs / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "speechsvc.cli", "serve"], env=self.env,
                                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"replica {self.name} not ready: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self.process = None
        return code


class HAProxy:
    def __init__(self, replicas: list[Replica], workdir: Path) -> None:
        self.http_port, self.grpc_port, self.audiosocket_port = free_port(), free_port(), free_port()
        env = {"HTTP_BIND": f"127.0.0.1:{self.http_port}", "GRPC_BIND": f"127.0.0.1:{self.grpc_port}",
               "AUDIOSOCKET_BIND": f"127.0.0.1:{self.audiosocket_port}"}
        for letter, r in zip("AB", replicas, strict=True):
            env |= {f"REPLICA_{letter}_HTTP": f"127.0.0.1:{r.port}",
                    f"REPLICA_{letter}_GRPC": f"127.0.0.1:{r.grpc_port}",
                    f"REPLICA_{letter}_AUDIOSOCKET": f"127.0.0.1:{r.audiosocket_port}"}
        self.env = {**os.environ, **env}
        self.log = workdir / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HAProxy:
        assert HAPROXY is not None
        config = str(REPO / "deploy" / "haproxy.cfg")
        check = subprocess.run([HAPROXY, "-c", "-f", config], env=self.env, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([HAPROXY, "-db", "-f", config], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:  # listening, and a replica passed its health checks
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(3)  # both replicas up (rise 2 checks, 1 s apart)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


class Receiver:
    """A webhook receiver on loopback: what it was sent (headers, body)."""

    def __init__(self) -> None:
        received = self.received = list[tuple[dict[str, str], bytes]]()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jobs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def fleet() -> Iterator[dict[str, Any]]:
    for missing, reason in ((INITDB is None, PG_SKIP), (REDIS_SERVER is None, REDIS_SKIP),
                            (HAPROXY is None, "haproxy is not installed (apt-get install haproxy, or `make install` "
                                              "as root on Debian)")):
        if missing:
            pytest.skip(reason)
    audio = [eval_path("asr_zh", "telephone_sim_8k", clip) for clip in CLIPS]
    work = Path(tempfile.mkdtemp(prefix="speechsvc-fleet-"))
    secret = new_secret()
    receiver = Receiver()
    with PostgresServer() as pg, RedisServer() as redis:
        env = {"SPEECHSVC_JOBS_DB": pg.url, "SPEECHSVC_EVENT_BROKER": redis.url,
               "SPEECHSVC_JOBS_DIR": str(work / "jobs"), "SPEECHSVC_JOBS_LEASE_S": str(LEASE_S),
               "SPEECHSVC_JOBS_POLL_S": "0.2", "SPEECHSVC_MAX_JOBS": "1", "SPEECHSVC_BATCH_CONCURRENCY": "1",
               "SPEECHSVC_WEBHOOK_SECRET": secret, "SPEECHSVC_AUDIT_LOG": "-", "SPEECHSVC_CPU_THREADS": "1",
               "SPEECHSVC_TEXT_ANALYSIS": "false", "SPEECHSVC_EMOTION": "false", "SPEECHSVC_ASSIST": "false",
               "SPEECHSVC_QA": "false", "SPEECHSVC_PII_NAMES_ADDRESSES": "false",
               # Loopback only; HAProxy adds X-Forwarded-For, and a proxied request is anonymous only with auth off.
               "SPEECHSVC_AUTH": "off",
               "SPEECHSVC_SHUTDOWN_GRACE_S": "10"}
        replicas = [Replica(name, env, work) for name in ("A", "B")]
        for r in replicas:
            r.start()
        try:
            for r in replicas:
                r.wait_ready()
            with HAProxy(replicas, work) as lb:
                yield {"a": replicas[0], "b": replicas[1], "lb": lb, "audio": audio, "secret": secret,
                       "receiver": receiver, "work": work}
        finally:
            for r in replicas:
                r.stop(signal.SIGKILL, 10)
            receiver.server.shutdown()
            shutil.rmtree(work, ignore_errors=True)


def pcm(path: Path) -> bytes:
    import numpy as np

    from speechsvc.speech.audio import decode_file

    audio, _ = decode_file(path)
    return (np.clip(audio[0], -1, 1) * 32767).astype("<i2").tobytes()


async def call(url: str, audio: bytes, call_id: str, opened: asyncio.Event | None = None,
               go: asyncio.Event | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """A whole call; ``opened`` is set once the server said ``ready``, and the audio waits for ``go``."""
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "call_id": call_id, "sample_rate": 16000}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if opened is not None:
            opened.set()
        if go is not None:
            await go.wait()
        for frame in frames(audio):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "stop"}))
        return [first, *await read_until_closed(ws, timeout=120)], ws.close_code


async def subscribe(url: str, until: set[str], seen: dict[str, set[str]]) -> None:
    """Follow ``/v1/events`` until every call in ``until`` has ended."""
    async with websockets.connect(url, max_size=None) as ws:
        while not until <= {c for c, types in seen.items() if "ended" in types}:
            event = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if "call_id" in event:
                seen.setdefault(event["call_id"], set()).add(event["type"])


def call_index(replica: Replica) -> dict[str, str]:
    """What ``/v1/calls`` on ``replica`` shows: call id -> the replica that holds the call."""
    rows = httpx.get(f"{replica.url}/v1/calls", timeout=10).json()["calls"]
    return {row["call_id"]: row["replica"] for row in rows}


async def test_calls_spread_over_the_replicas_and_every_subscriber_sees_them(fleet: dict[str, Any]) -> None:
    a, b, lb = fleet["a"], fleet["b"], fleet["lb"]
    audio = pcm(fleet["audio"][0])
    ids = {"spread-1", "spread-2"}
    seen_a: dict[str, set[str]] = {}
    seen_b: dict[str, set[str]] = {}
    followers = [asyncio.create_task(subscribe(f"ws://127.0.0.1:{r.port}/v1/events", ids, seen))
                 for r, seen in ((a, seen_a), (b, seen_b))]
    await asyncio.sleep(1.0)  # the subscriptions are open
    # The second call connects while the first is open: least connections sends it to the other replica.
    url, first_open, go = f"ws://127.0.0.1:{lb.http_port}/v1/stream", asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(call(url, audio, "spread-1", first_open, go))
    await asyncio.wait_for(first_open.wait(), 30)
    second = asyncio.create_task(call(url, audio, "spread-2", None, go))
    await asyncio.sleep(0.5)
    go.set()
    results = await asyncio.gather(first, second)
    for events, code in results:
        assert code == 1000 and any(e["type"] == "transcript.final" for e in events)
    await asyncio.wait_for(asyncio.gather(*followers), 60)
    for seen in (seen_a, seen_b):  # each subscriber saw both calls, whichever replica held them
        assert all({"ready", "transcript.final", "ended"} <= seen[i] for i in ids), seen
    index_a, index_b = call_index(a), call_index(b)
    holders = {i: index_a.get(i) for i in ids}
    assert sorted(holders.values()) == ["A", "B"]  # HAProxy spread them, and each index shows both calls
    assert {i: index_b.get(i) for i in ids} == holders  # with the same holder on either replica


async def test_sigterm_drains_a_replica_while_the_other_takes_new_calls(fleet: dict[str, Any]) -> None:
    a, b, lb = fleet["a"], fleet["b"], fleet["lb"]
    audio = pcm(fleet["audio"][1])
    async with websockets.connect(f"ws://127.0.0.1:{a.port}/v1/stream", max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "call_id": "drained", "sample_rate": 16000}))
        for frame in frames(audio):
            await ws.send(frame)
        await asyncio.sleep(0.5)
        assert a.process is not None
        a.process.send_signal(signal.SIGTERM)  # no stop from the client: the drain ends the call
        events = await read_until_closed(ws, timeout=60)
    ended = [e for e in events if e["type"] == "ended"]
    assert any(e["type"] == "transcript.final" for e in events) and ended and ended[0]["reason"] == "shutdown"
    deadline = time.time() + 20
    while True:  # HAProxy sees A's /readyz fail within a couple of checks; until then a new call may be refused
        try:
            events, code = await call(f"ws://127.0.0.1:{lb.http_port}/v1/stream", audio, "after-drain")
            if code == 1000:
                break
        except (websockets.WebSocketException, OSError):  # refused at the handshake, or closed: draining
            pass
        assert time.time() < deadline, "no new call was taken while a replica drained"
        await asyncio.sleep(0.5)
    assert any(e["type"] == "transcript.final" for e in events) and call_index(b)["after-drain"] == "B"
    assert a.stop(timeout=30) != -signal.SIGKILL  # A exits by itself after its drain (not killed at the timeout)
    a.start()  # back for the next test
    a.wait_ready()


async def test_a_job_survives_killing_the_replica_that_runs_it(fleet: dict[str, Any]) -> None:
    from standardwebhooks.webhooks import Webhook

    a, b, lb, receiver = fleet["a"], fleet["b"], fleet["lb"], fleet["receiver"]
    files = [("files", (f"客户 {i}.wav", path.read_bytes(), "audio/wav")) for i, path in enumerate(fleet["audio"])]
    started = time.time()
    async with httpx.AsyncClient(timeout=30) as http:
        created = await http.post(f"{a.url}/v1/jobs", files=files,
                                  data={"formats": "srt", "language": "zh", "webhook_url": receiver.url})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        held, done_by_a = None, set()
        while held is None or not done_by_a:  # wait until A has finished an item and is in the middle of the next
            results = (await http.get(f"{b.url}/v1/jobs/{job_id}/results")).json()["results"]
            held = next((r for r in results if r["status"] == "running" and r.get("replica") == "A"), None)
            done_by_a = {r["index"] for r in results if r["status"] == "done" and r.get("replica") == "A"}
            assert time.time() - started < 180 and any(r["status"] != "done" for r in results), results
            await asyncio.sleep(0.05)
        a.stop(signal.SIGKILL)
        killed = time.time()
        while (job := (await http.get(f"{lb.url}/v1/jobs/{job_id}")).json())["state"] != "done":
            assert time.time() - killed < 120, job
            await asyncio.sleep(0.2)
        results = (await http.get(f"{lb.url}/v1/jobs/{job_id}/results")).json()["results"]
    assert [r["input"] for r in results] == [f"客户 {i}.wav" for i in range(len(files))]  # the client's names
    assert all(r["status"] == "done" and r["report"]["summary"] for r in results), results  # none lost
    taken = results[held["index"]]
    assert taken["replica"] == "B" and taken["attempts"] == 2  # taken over after A's lease expired
    for r in results:  # none done twice: every other item ran once, where it first ran
        if r["index"] != held["index"]:
            assert r["attempts"] == 1, r
        if r["index"] in done_by_a:
            assert r["replica"] == "A"
    assert job["done"] + job["skipped"] == len(files) and job["failed"] == 0
    for _ in range(100):
        if receiver.received:
            break
        await asyncio.sleep(0.1)
    (headers, body), = receiver.received
    payload = Webhook(fleet["secret"]).verify(body, headers)
    assert payload["type"] == "job.completed" and payload["job"]["id"] == job_id
    assert payload["job"]["state"] == "done" and headers["user-agent"].startswith("speechsvc/")
    print(f"fleet job: {len(files)} items, A killed at {killed - started:.1f} s, done at {time.time() - started:.1f} s")
