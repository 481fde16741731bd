"""One lock for every door (fast tier, no model): the routes and gRPC methods are read from the running app itself,
never from a hand-written list, and each is tried as an anonymous client, with a key that lacks its scope, and as
another tenant. Also: proxies are not loopback, revocation reaches open connections, failed logins are throttled,
call metadata is allow-listed and masked, the call index is per tenant, recorded-audio bombs are refused on every
entry point, and a call whose close is stuck still ends."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import av
import grpc
import httpx
import jwt
import numpy as np
import pytest
import websockets
from fastapi import WebSocket
from google.protobuf import descriptor_pool

from speechsvc.security.access import PUBLIC_ROUTES, flat_routes, route_access
from speechsvc.security.keys import KeyStore
from speechsvc.security.metadata import mask_value
from speechsvc.v1 import pb, pb_grpc
from tests.support.clients import bearer, finals, frames, handshake_status, hz, read_until_closed, utterance, ws_call
from tests.support.fakeserver import FakeServer

# A key of each kind: what each route's scope is refused to.
LACKING = {"stream": "subscribe_only", "subscribe": "stream_only", "jobs": "stream_only", "admin": "a"}


def _keys(s: FakeServer) -> dict[str, str]:
    store = KeyStore(s.settings.keys_path)
    return {
        "a": store.create("tenant-a", "stream,subscribe,jobs")[0],
        "b": store.create("tenant-b", "stream,subscribe,jobs")[0],
        "stream_only": store.create("tenant-a", "stream")[0],
        "subscribe_only": store.create("tenant-a", "subscribe")[0],
        "admin": store.create("ops", "admin")[0],
    }


@pytest.fixture
def locked() -> Any:
    with FakeServer(grpc=True, auth="required", rate_burst=10_000, auth_fail_burst=10_000) as s:
        s.keys = _keys(s)  # type: ignore[attr-defined]
        yield s


def _concrete(path: str) -> str:
    """A route's path with every parameter filled (``{index}`` takes a number)."""
    return re.sub(r"\{(\w+)\}", lambda m: "0" if m.group(1) == "index" else "x", path)


async def test_every_route_the_app_serves_is_behind_the_gate(locked: FakeServer) -> None:
    keys = locked.keys  # type: ignore[attr-defined]
    routes = flat_routes(locked.app.router.routes)
    checked: list[str] = []
    async with httpx.AsyncClient(base_url=locked.http_url, timeout=10) as client:
        for route in routes:
            path = getattr(route, "path", "")
            needed = route_access(route)
            methods = sorted((getattr(route, "methods", None) or set()) - {"HEAD"})
            if needed is None:
                assert path in PUBLIC_ROUTES
                if methods:
                    answer = await client.get(_concrete(path))
                    assert answer.status_code not in (401, 403), path
                continue
            if not methods:  # a WebSocket route
                url = locked.ws(_concrete(path))
                assert await handshake_status(url) == 401, path
                assert await handshake_status(url, keys[LACKING[needed.scope]]) == 403, path
                checked.append(f"WS {path}")
                continue
            for method in methods:
                anonymous = await client.request(method, _concrete(path))
                assert anonymous.status_code == 401, (method, path, anonymous.text)
                assert anonymous.headers["www-authenticate"].startswith("Bearer")
                assert anonymous.json()["error"]["code"] == "unauthorized"  # OpenAI SDKs read error.message
                lacking = await client.request(method, _concrete(path), headers=bearer(keys[LACKING[needed.scope]]))
                assert lacking.status_code == 403, (method, path, lacking.text)
                checked.append(f"{method} {path}")
    # The walk reached every kind of door the app has (a guard against walking an empty list).
    for door in ("WS /v1/stream", "WS /v1/events", "WS /v1/twilio", "GET /v1/calls", "GET /v1/calls/{call_id}",
                 "POST /v1/audio/transcriptions", "GET /v1/models", "POST /v1/jobs", "GET /metrics"):
        assert door in checked


def test_a_route_added_without_declaring_access_needs_admin() -> None:
    server = FakeServer(auth="required")
    server.app.add_api_route("/v1/forgotten", lambda: {"every": "tenant's secrets"}, methods=["GET"])

    async def forgotten_ws(ws: WebSocket) -> None:  # pragma: no cover - never admitted
        raise AssertionError("reached")

    server.app.add_api_websocket_route("/v1/forgotten-ws", forgotten_ws)
    with server as s:
        keys = _keys(s)
        url = f"{s.http_url}/v1/forgotten"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers=bearer(keys["a"])).status_code == 403  # every scope but admin
        assert httpx.get(url, headers=bearer(keys["admin"])).json() == {"every": "tenant's secrets"}
        assert asyncio.run(handshake_status(s.ws("/v1/forgotten-ws"), keys["a"])) == 403


async def test_the_call_index_is_per_tenant(locked: FakeServer) -> None:
    keys = locked.keys  # type: ignore[attr-defined]
    (a_events, _), (b_events, _) = await asyncio.gather(
        ws_call(locked.ws("/v1/stream"), utterance(440), keys["a"], call_id="same-id", metadata={"agentId": "a1"}),
        ws_call(locked.ws("/v1/stream"), utterance(660), keys["b"], call_id="same-id", metadata={"agentId": "b1"}),
    )
    assert hz(finals(a_events)) == ["440"] and hz(finals(b_events)) == ["660"]
    async with httpx.AsyncClient(base_url=locked.http_url, timeout=10) as client:
        for name, tone, agent in (("a", "440", "a1"), ("b", "660", "b1")):
            (listed,) = (await client.get("/v1/calls", headers=bearer(keys[name]))).json()["calls"]
            assert listed["tenant"] == f"tenant-{name}" and listed["metadata"] == {"agentId": agent}
            one = (await client.get("/v1/calls/same-id", headers=bearer(keys[name]))).json()
            texts = [e["text"] for e in one["events"] if e["type"] == "transcript.final"]
            assert hz(texts) == [tone], "two tenants' calls with one id must not merge"
        assert (await client.get("/v1/calls/same-id", headers=bearer(keys["admin"]),
                                 params={"tenant": "tenant-b"})).json()["tenant"] == "tenant-b"
        admin = (await client.get("/v1/calls", headers=bearer(keys["admin"]))).json()["calls"]
        assert sorted(c["tenant"] for c in admin) == ["tenant-a", "tenant-b"]
        # Another tenant's object is a 404, like a missing one.
        only_b = await ws_call(locked.ws("/v1/stream"), utterance(440), keys["b"], call_id="b-only")
        assert only_b[1] == 1000
        assert (await client.get("/v1/calls/b-only", headers=bearer(keys["a"]))).status_code == 404
        job = await client.post("/v1/jobs", headers=bearer(keys["b"]), json={"inputs": ["/nonexistent.wav"]})
        job_id = job.json()["id"] if job.status_code == 201 else "x"
        for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/results", f"/v1/jobs/{job_id}/outputs/0/json"):
            assert (await client.get(path, headers=bearer(keys["a"]))).status_code == 404, path


async def _reflected_methods(target: str, admin_key: str) -> list[tuple[str, Any]]:
    """Every method of every service the running gRPC server lists through its own reflection."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for answer in stub.ServerReflectionInfo(iter([request]), metadata=(("authorization",
                                                                                   f"Bearer {admin_key}"),)):
            services = [s.name for s in answer.list_services_response.service]
    pool = descriptor_pool.Default()
    methods = []
    for name in services:
        if name.startswith("grpc.reflection.v1alpha"):
            from grpc_reflection.v1alpha import reflection_pb2
        service = pool.FindServiceByName(name)
        methods.extend((f"/{name}/{m.name}", m) for m in service.methods)
    return methods


async def test_every_grpc_method_needs_a_key_except_health(locked: FakeServer) -> None:
    keys = locked.keys  # type: ignore[attr-defined]
    methods = await _reflected_methods(locked.grpc_target, keys["admin"])
    names = [m for m, _ in methods]
    assert "/speechsvc.v1.Speech/StreamCall" in names and "/grpc.health.v1.Health/Check" in names
    async with grpc.aio.insecure_channel(locked.grpc_target) as channel:
        for name, method in methods:
            identity = (lambda b: b, lambda b: b)
            if method.client_streaming and method.server_streaming:
                call: Any = channel.stream_stream(name, *identity)(iter([b""]))
            elif method.client_streaming:
                call = channel.stream_unary(name, *identity)(iter([b""]))
            elif method.server_streaming:
                call = channel.unary_stream(name, *identity)(b"")
            else:
                call = channel.unary_unary(name, *identity)(b"")
            try:
                if method.server_streaming:
                    async for _ in call:
                        break
                else:
                    await call
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as e:
                code = e.code()
            if name.startswith("/grpc.health.v1.Health/"):
                assert code != grpc.StatusCode.UNAUTHENTICATED, name
            else:
                assert code == grpc.StatusCode.UNAUTHENTICATED, name


async def test_a_request_through_a_proxy_is_never_a_loopback_admin() -> None:
    with FakeServer(grpc=True, auth="auto", host="127.0.0.1") as s:  # the default on a loopback bind
        async with httpx.AsyncClient(base_url=s.http_url, timeout=10) as client:
            assert (await client.get("/metrics")).status_code == 200  # a direct local client: the anonymous admin
            for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9;proto=https"},
                           {"X-Real-IP": "203.0.113.9"}):
                for path in ("/metrics", "/v1/calls", "/v1/models"):
                    assert (await client.get(path, headers=header)).status_code == 401, (path, header)
        with pytest.raises(websockets.InvalidStatus) as upgrade:
            await websockets.connect(s.ws("/v1/events"), additional_headers={"X-Forwarded-For": "203.0.113.9"})
        assert upgrade.value.response.status_code == 401
        async with grpc.aio.insecure_channel(s.grpc_target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.SpeechStub(channel).Transcribe(pb.TranscribeRequest(audio=b"x"),
                                                            metadata=(("x-forwarded-for", "203.0.113.9"),))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_revoking_a_key_closes_its_open_connections() -> None:
    with FakeServer(grpc=True, auth="required", auth_recheck_s=0.2) as s:
        store = KeyStore(s.settings.keys_path)
        key, record = store.create("tenant-a", "stream,subscribe")
        subscriber = await websockets.connect(s.ws("/v1/events"), additional_headers=bearer(key))
        caller = await websockets.connect(s.ws("/v1/stream"), additional_headers=bearer(key))
        await caller.send(json.dumps({"type": "start", "call_id": "revoked-call"}))
        for frame in frames(utterance(440)):
            await caller.send(frame)

        async def grpc_call() -> grpc.StatusCode:
            async def requests() -> Any:
                yield pb.ClientMessage(config=pb.CallConfig(call_id="revoked-grpc"))
                await asyncio.sleep(30)  # a long call, still open when the key goes

            async with grpc.aio.insecure_channel(s.grpc_target) as channel:
                try:
                    async for _ in pb_grpc.SpeechStub(channel).StreamCall(
                            requests(), metadata=(("authorization", f"Bearer {key}"),)):
                        pass
                except grpc.aio.AioRpcError as e:
                    return e.code()
            return grpc.StatusCode.OK

        streaming = asyncio.ensure_future(grpc_call())
        await asyncio.sleep(0.5)
        store.revoke(record.id)
        revoked_at = time.monotonic()
        await asyncio.wait_for(read_until_closed(subscriber, timeout=10), 10)
        await asyncio.wait_for(read_until_closed(caller, timeout=10), 10)
        assert subscriber.close_code == caller.close_code == 1008
        assert await asyncio.wait_for(streaming, 10) == grpc.StatusCode.UNAUTHENTICATED
        assert time.monotonic() - revoked_at < 5
        audit = s.settings.audit_path.read_text()  # type: ignore[union-attr]
        assert audit.count('"auth.revoked"') >= 3


async def test_a_token_that_expires_mid_call_closes_the_connection(tmp_path: Path) -> None:
    secret = tmp_path / "jwt.secret"
    secret.write_text("a-shared-secret-of-at-least-32-bytes!")
    with FakeServer(auth="required", auth_recheck_s=0.2, jwt_key_file=secret, jwt_algorithms=("HS256",)) as s:
        token = jwt.encode({"sub": "agent-7", "tenant": "acme", "scope": "subscribe", "exp": int(time.time()) + 2},
                           secret.read_text(), "HS256")
        subscriber = await websockets.connect(s.ws("/v1/events"), additional_headers=bearer(token))
        await asyncio.wait_for(read_until_closed(subscriber, timeout=10), 10)
        assert subscriber.close_code == 1008


def test_failed_logins_are_throttled_per_source_and_not_audited_line_by_line() -> None:
    with FakeServer(auth="required", auth_fail_burst=20, auth_fail_per_s=0.001) as s:
        codes = [httpx.get(f"{s.http_url}/v1/calls", headers=bearer(f"ssk_{i:012x}_" + "A" * 43)).status_code
                 for i in range(60)]
        assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
        audit = s.settings.audit_path.read_text().splitlines()  # type: ignore[union-attr]
        assert sum('"auth.denied"' in line for line in audit) == 20
        metrics = s.engine.metrics.registry.get_sample_value("speechsvc_auth_audit_suppressed_total")
        assert metrics == 40


def test_metadata_values_are_masked_and_unknown_keys_dropped() -> None:
    assert mask_value("callerPhone", "+8613812345678") == "*********5678"
    assert mask_value("customerId", "11010519491231002X") == "**************002X"
    assert mask_value("email", "li.lei@example.com") == "***@example.com"
    assert mask_value("callerName", "李雷") == "李*"
    assert mask_value("callSid", "CA1234567890abcdef1234567890abcdef") == "CA1234567890abcdef1234567890abcdef"
    with FakeServer(auth="off") as s:
        async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            sub = await websockets.connect(s.ws("/v1/calls/meta-1/events"))
            events, _ = await ws_call(s.ws("/v1/stream"), utterance(440), call_id="meta-1",
                                      metadata={"callerPhone": "+8613812345678", "callSid": "CA9", "idCard": "x"})
            return events, await read_until_closed(sub, until="ended", timeout=5)

        events, seen = asyncio.run(run())
        for stream in (events, seen):
            ready = next(e for e in stream if e["type"] == "ready")
            assert ready["metadata"] == {"callerPhone": "*********5678", "callSid": "CA9"}
        call = httpx.get(f"{s.http_url}/v1/calls/meta-1").json()
        assert "13812345678" not in json.dumps(call)


def _flac_of_silence(seconds: float, declare_length: bool, rate: int = 8000) -> bytes:
    """A small FLAC holding ``seconds`` of silence (a decompression bomb); without ``declare_length`` its header
    says nothing of its length, so only the decode loop can stop it."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate)
        stream.layout = "mono"  # type: ignore[union-attr]
        block = np.zeros((1, rate * 10), np.int16)
        for i in range(int(seconds / 10)):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, i * block.shape[1]
            for packet in stream.encode(frame):  # type: ignore[union-attr]
                container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)
    data = bytearray(buffer.getvalue())
    if not declare_length:  # STREAMINFO's 36-bit total-sample count → 0 (unknown)
        data[8 + 13] &= 0xF0
        data[8 + 14:8 + 18] = b"\0\0\0\0"
    return bytes(data)


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_recorded_audio_bomb_is_refused_on_every_entry_point(declare_length: bool) -> None:
    bomb = _flac_of_silence(600, declare_length)  # 10 minutes in ~110 KB; the bound here is 60 s
    assert len(bomb) < 200_000
    with FakeServer(grpc=True, auth="required", transcribe_max_s=60.0, max_recording_s=60.0) as s:
        keys = _keys(s)
        files = {"file": ("bomb.flac", bomb, "audio/flac")}
        url = f"{s.http_url}/v1/audio/transcriptions"
        assert httpx.post(url, files=files, data={"model": "whisper-1"}).status_code == 401  # no key, no decode
        refused = httpx.post(url, files=files, data={"model": "whisper-1"}, headers=bearer(keys["a"]), timeout=30)
        assert refused.status_code == 413 and "60 s" in refused.json()["error"]["message"]
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:  # a body declared at 1 TB
            raw.sendall(f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {keys['a']}\r\n"
                        f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {1 << 40}\r\n\r\n".encode())
            assert raw.recv(64).startswith(b"HTTP/1.1 413")

        async def grpc_transcribe() -> grpc.StatusCode:
            async with grpc.aio.insecure_channel(s.grpc_target) as channel:
                try:
                    await pb_grpc.SpeechStub(channel).Transcribe(
                        pb.TranscribeRequest(audio=bomb), metadata=(("authorization", f"Bearer {keys['a']}"),))
                except grpc.aio.AioRpcError as e:
                    return e.code()
            return grpc.StatusCode.OK

        assert asyncio.run(grpc_transcribe()) == grpc.StatusCode.RESOURCE_EXHAUSTED
        upload = httpx.post(f"{s.http_url}/v1/jobs", files={"files": ("bomb.flac", bomb, "audio/flac")},
                            headers=bearer(keys["a"]), timeout=30)
        assert upload.status_code == 201
        job_id = upload.json()["id"]
        deadline = time.time() + 30
        while time.time() < deadline:
            job = httpx.get(f"{s.http_url}/v1/jobs/{job_id}", headers=bearer(keys["a"])).json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.2)
        results = httpx.get(f"{s.http_url}/v1/jobs/{job_id}/results", headers=bearer(keys["a"])).json()
        assert "60 s" in json.dumps(results), results
        assert httpx.get(f"{s.http_url}/healthz").status_code == 200  # the server is still up


def test_readiness_shows_no_paths() -> None:
    with FakeServer() as s:
        body = httpx.get(f"{s.http_url}/readyz").json()
        assert body["status"] == "ready" and "/" not in json.dumps(body["models"])


@pytest.mark.parametrize("declare_length", [True, False])
def test_the_cli_and_batch_paths_stop_a_bomb_at_the_duration_bound(tmp_path: Path, declare_length: bool) -> None:
    from speechsvc.batch.files import load_audio
    from speechsvc.batch.transcribe import transcribe_file
    from speechsvc.errors import MessageTooLarge

    path = tmp_path / "bomb.flac"
    path.write_bytes(_flac_of_silence(600, declare_length))
    with pytest.raises(MessageTooLarge, match="60 s"):
        load_audio(str(path), 60.0)  # `speechsvc batch`, REST and Ray jobs
    with pytest.raises(MessageTooLarge, match="60 s"):  # `speechsvc transcribe`: refused before any model runs
        transcribe_file(path, None, None, None, "zh", max_seconds=60.0)  # type: ignore[arg-type]
