"""Authentication, tenants, limits, webhooks, TLS and the audit log on a real server with the fake engine (fast
tier): every surface as an unauthenticated client and as another tenant."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest
import websockets

from speechsvc.config import Settings, WebhookTarget
from speechsvc.errors import Forbidden, Unauthorized
from speechsvc.security.auth import Authenticator, credential_from
from speechsvc.security.keys import KeyStore
from speechsvc.security.network import SourceAllowlist, check_webhook_url, safe_url
from speechsvc.v1 import pb, pb_grpc
from tests.support.clients import bearer, finals, frames, handshake_status, hz, read_until_closed, utterance, ws_call
from tests.support.fakes import fast_settings
from tests.support.fakeserver import FakeServer

# ---- keys ----------------------------------------------------------------------------------------------------


def test_keys_are_stored_hashed_0600_and_revocable(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "home" / "keys.json")
    token, record = store.create("acme", "stream,subscribe", name="pbx-1")
    text = store.path.read_text()
    assert token not in text and token.split("_")[2] not in text and record.sha256 in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    principal = KeyStore(store.path).verify(token)  # another process (the service) reads the same file
    assert (principal.tenant, principal.scopes, principal.key_id) == ("acme", {"stream", "subscribe"}, record.id)
    other = KeyStore(store.path)
    store.revoke(record.id)
    with pytest.raises(Unauthorized, match="revoked"):
        other.verify(token)  # a running service sees the revocation without a restart
    for bad in ("ssk_000000000000_" + "A" * 43, token[:-1] + ("A" if token[-1] != "A" else "B"), "nope"):
        with pytest.raises(Unauthorized):
            other.verify(bad)
    with pytest.raises(ValueError, match="scope"):
        store.create("acme", "stream,root")
    with pytest.raises(ValueError, match="tenant"):
        store.create("a b\n", "stream")


def test_credentials_from_headers_and_query() -> None:
    assert credential_from({"authorization": "Bearer k1"}) == "k1"
    assert credential_from({"authorization": "Basic " + __import__("base64").b64encode(b"fs:k2").decode()}) == "k2"
    assert credential_from({"x-api-key": "k3"}) == "k3"
    assert credential_from({}, {"access_token": "k4"}) == "k4"
    assert credential_from({}, None) is None  # the query string only where a surface allows it
    with pytest.raises(Unauthorized):
        credential_from({"authorization": "Token k5"})


def test_auth_modes_and_the_startup_refusal() -> None:
    loopback = Authenticator(fast_settings(auth="auto", host="127.0.0.1"))
    open_net = Authenticator(fast_settings(auth="auto", host="0.0.0.0"))
    assert not loopback.required and open_net.required
    assert loopback.authenticate(None).is_admin
    with pytest.raises(Unauthorized):
        open_net.authenticate(None)
    with pytest.raises(Unauthorized):
        loopback.authenticate("ssk_000000000000_" + "A" * 43)  # a wrong key never becomes the anonymous admin
    with pytest.raises(ValueError, match=r"refusing to serve 0\.0\.0\.0"):
        Authenticator(fast_settings(auth="off", host="0.0.0.0")).startup_check()
    Authenticator(fast_settings(auth="off", host="0.0.0.0", insecure=True)).startup_check()
    Authenticator(fast_settings(auth="off", host="127.0.0.1")).startup_check()


def test_cli_refuses_an_open_address_without_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from speechsvc.cli import main

    monkeypatch.setenv("SPEECHSVC_HOME", str(tmp_path))
    monkeypatch.setenv("SPEECHSVC_AUTH", "off")
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2  # before any model is loaded


def test_keys_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from speechsvc.cli import main

    monkeypatch.setenv("SPEECHSVC_HOME", str(tmp_path))
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "stream,jobs"]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["keys", "list"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed[0]["tenant"] == "acme" and token not in json.dumps(listed)
    assert main(["keys", "revoke", listed[0]["id"]]) == 0
    assert main(["keys", "revoke", "nope"]) == 2
    with pytest.raises(Unauthorized):
        KeyStore(tmp_path / "keys.json").verify(token)
    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [a["action"] for a in audit] == ["key.create", "key.revoke"] and token not in json.dumps(audit)
    assert main(["keys", "webhook-secret"]) == 0 and capsys.readouterr().out.startswith("whsec_")


# ---- JWT -----------------------------------------------------------------------------------------------------


def test_jwt_hs256_and_rs256(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    secret = tmp_path / "hs.key"
    secret.write_text("a-shared-secret-of-enough-length-123456")
    hs = Authenticator(fast_settings(auth="required", jwt_key_file=secret, jwt_algorithms=("HS256",),
                                     jwt_issuer="https://idp", jwt_audience="speechsvc", home=tmp_path))
    claims = {"sub": "u1", "tenant": "acme", "scope": "openid stream subscribe", "iss": "https://idp",
              "aud": "speechsvc", "exp": int(time.time()) + 60}
    principal = hs.authenticate(jwt.encode(claims, secret.read_text(), "HS256"))
    assert principal.tenant == "acme" and principal.scopes == {"stream", "subscribe"} and principal.via == "jwt"
    for change in ({"iss": "https://evil"}, {"aud": "other"}, {"exp": int(time.time()) - 10}, {"tenant": "a b"}):
        with pytest.raises(Unauthorized):
            hs.authenticate(jwt.encode({**claims, **change}, secret.read_text(), "HS256"))
    with pytest.raises(Unauthorized):
        hs.authenticate(jwt.encode(claims, "another-secret-another-secret-123", "HS256"))

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = tmp_path / "rs.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    rs = Authenticator(fast_settings(auth="required", jwt_key_file=public, jwt_issuer="https://idp",
                                     jwt_audience="speechsvc", home=tmp_path))
    token = jwt.encode({**claims, "scope": "jobs"}, key, "RS256")
    assert rs.authenticate(token).scopes == {"jobs"}
    forged = _hs256({**claims, "scope": "admin"}, public.read_bytes())  # algorithm confusion: the public key as secret
    with pytest.raises(Unauthorized):
        rs.authenticate(forged)
    with pytest.raises(ValueError, match="mix"):
        Authenticator(fast_settings(jwt_key_file=public, jwt_algorithms=("RS256", "HS256"), home=tmp_path))


def _hs256(claims: dict[str, Any], key: bytes) -> str:
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + part(json.dumps(claims).encode())
    return signing + "." + part(hmac.new(key, signing.encode(), hashlib.sha256).digest())


# ---- every surface: unauthenticated, another tenant, another scope ------------------------------------------------


@pytest.fixture
def secured() -> Any:
    with FakeServer(grpc=True, auth="required", rate_burst=1000) as s:
        store = KeyStore(s.settings.keys_path)
        s.keys = {  # type: ignore[attr-defined]
            "a": store.create("tenant-a", "stream,subscribe,jobs")[0],
            "b": store.create("tenant-b", "stream,subscribe,jobs")[0],
            "stream_only": store.create("tenant-a", "stream")[0],
            "admin": store.create("ops", "admin")[0],
        }
        yield s


async def test_websocket_upgrades_are_refused_with_http_statuses(secured: FakeServer) -> None:
    keys = secured.keys  # type: ignore[attr-defined]
    stream, events = secured.ws("/v1/stream"), secured.ws("/v1/events")
    assert await handshake_status(stream) == 401
    assert await handshake_status(stream, "ssk_000000000000_" + "A" * 43) == 401
    assert await handshake_status(stream, keys["a"]) == 101
    assert await handshake_status(events, keys["stream_only"]) == 403
    assert await handshake_status(secured.ws(f"/v1/stream?access_token={keys['a']}")) == 101  # browsers
    for path in ("/v1/twilio", "/v1/audio_fork", "/v1/audiohook"):
        assert await handshake_status(secured.ws(path)) == 401  # the platform adapters too
    audit = [json.loads(line) for line in secured.settings.audit_path.read_text().splitlines()]  # type: ignore[union-attr]
    denied = [a for a in audit if a["action"] == "auth.denied"]
    assert [a["outcome"] for a in denied][:3] == ["unauthorized", "unauthorized", "forbidden"]
    assert all(keys["a"] not in json.dumps(a) for a in audit)


async def test_tenants_see_only_their_own_calls(secured: FakeServer) -> None:
    keys = secured.keys  # type: ignore[attr-defined]
    subs = {name: await websockets.connect(secured.ws("/v1/events"), additional_headers=bearer(keys[name]))
            for name in ("a", "b", "admin")}
    one_call = await websockets.connect(secured.ws("/v1/calls/shared-id/events"), additional_headers=bearer(keys["b"]))
    await asyncio.sleep(0.1)
    (a_events, _), (b_events, _) = await asyncio.gather(
        ws_call(secured.ws("/v1/stream"), utterance(440), keys["a"], call_id="shared-id"),
        ws_call(secured.ws("/v1/stream"), utterance(660), keys["b"], call_id="shared-id"),
    )
    assert hz(finals(a_events)) == ["440"] and hz(finals(b_events)) == ["660"]
    seen = {}
    for name, ws in subs.items():
        seen[name] = await read_until_closed(ws, until="ended" if name != "admin" else None, timeout=2) \
            if name != "admin" else await _collect(ws, 2)
        await ws.close()
    one = await read_until_closed(one_call, until="ended")
    await one_call.close()
    assert hz(finals(seen["a"])) == ["440"] and hz(finals(seen["b"])) == ["660"] and hz(finals(one)) == ["660"]
    assert sorted(hz(finals(seen["admin"]))) == ["440", "660"]
    assert {e["call_id"] for e in seen["admin"]} == {"shared-id"}


async def _collect(ws: websockets.ClientConnection, seconds: float) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    try:
        while True:
            events.append(json.loads(await asyncio.wait_for(ws.recv(), seconds)))
    except (TimeoutError, websockets.ConnectionClosed):
        return events


async def test_grpc_needs_credentials_and_keeps_tenants_apart(secured: FakeServer) -> None:
    keys = secured.keys  # type: ignore[attr-defined]

    async def call(key: str | None, call_id: str) -> tuple[list[str], grpc.StatusCode]:
        async def requests():  # type: ignore[no-untyped-def]
            yield pb.ClientMessage(config=pb.CallConfig(call_id=call_id))
            for frame in frames(utterance()):
                yield pb.ClientMessage(audio=frame)
            yield pb.ClientMessage(control=pb.Control(action=pb.Control.STOP))

        out: list[str] = []
        metadata = (("authorization", f"Bearer {key}"),) if key else None
        async with grpc.aio.insecure_channel(secured.grpc_target) as channel:
            try:
                async for message in pb_grpc.SpeechStub(channel).StreamCall(requests(), metadata=metadata):
                    out.append(message.WhichOneof("event"))
            except grpc.aio.AioRpcError as e:
                return out, e.code()
        return out, grpc.StatusCode.OK

    assert await call(None, "g1") == ([], grpc.StatusCode.UNAUTHENTICATED)
    assert (await call("ssk_000000000000_" + "A" * 43, "g1"))[1] == grpc.StatusCode.UNAUTHENTICATED
    (a, a_code), (b, b_code) = await asyncio.gather(call(keys["a"], "g1"), call(keys["b"], "g1"))
    assert a_code == b_code == grpc.StatusCode.OK and a[0] == b[0] == "ready" and "final" in a and "final" in b
    async with grpc.aio.insecure_channel(secured.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.SpeechStub(channel).Transcribe(pb.TranscribeRequest(audio=b"x"))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes stay public


async def test_rest_jobs_need_credentials_and_hide_other_tenants(secured: FakeServer, tmp_path: Path) -> None:
    from speechsvc.speech.audio import encode_file
    from tests.support.fakes import silence, tone

    wav = tmp_path / "c.wav"
    encode_file(wav, __import__("numpy").concatenate([tone(440, 1.0), silence(0.8)])[None, :], 16000)
    keys = secured.keys  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=secured.http_url) as client:
        assert (await client.get("/v1/jobs")).status_code == 401
        assert (await client.get("/v1/jobs", headers=bearer(keys["stream_only"]))).status_code == 403
        assert (await client.get(f"/v1/jobs?access_token={keys['a']}")).status_code == 401  # never the query
        created = await client.post("/v1/jobs", headers=bearer(keys["a"]), files={"files": ("c.wav", wav.read_bytes())},
                                    data={"formats": "srt,vtt"})
        assert created.status_code == 201 and created.json()["tenant"] == "tenant-a"
        job = created.json()["id"]
        assert (await client.get(f"/v1/jobs/{job}", headers=bearer(keys["b"]))).status_code == 404
        assert (await client.get(f"/v1/jobs/{job}/results", headers=bearer(keys["b"]))).status_code == 404
        assert (await client.get(f"/v1/jobs/{job}", headers=bearer(keys["admin"]))).status_code == 200
        assert [j["id"] for j in (await client.get("/v1/jobs", headers=bearer(keys["a"]))).json()["jobs"]] == [job]
        assert (await client.get("/v1/jobs", headers=bearer(keys["b"]))).json()["jobs"] == []
        assert job in [j["id"] for j in (await client.get("/v1/jobs", headers=bearer(keys["admin"]))).json()["jobs"]]


# ---- safe job inputs ---------------------------------------------------------------------------------------------


async def test_job_inputs_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    from speechsvc.speech.audio import encode_file
    from tests.support.fakes import silence, tone

    root, outside = tmp_path / "calls", tmp_path / "secret"
    root.mkdir()
    outside.mkdir()
    audio = __import__("numpy").concatenate([tone(440, 1.0), silence(0.8)])[None, :]
    encode_file(root / "in.wav", audio, 16000)
    encode_file(outside / "private.wav", audio, 16000)
    (outside / "list.csv").write_text("path\n/etc/passwd-like-secret-path.wav\n")
    (root / "escape.wav").symlink_to(outside / "private.wav")
    (root / "inside.csv").write_text(f"path\nin.wav\n{outside / 'private.wav'}\n")
    with FakeServer(batch_roots=(str(root),)) as s:
        async with httpx.AsyncClient(base_url=s.http_url) as client:
            async def post(inputs: list[str], **extra: Any) -> httpx.Response:
                return await client.post("/v1/jobs", json={"inputs": inputs, **extra})

            for bad in (f"file://{outside / 'private.wav'}", str(outside / "private.wav"), str(root / "escape.wav"),
                        str(root / ".." / "secret" / "private.wav"), str(outside / "list.csv")):
                response = await post([bad])
                assert response.status_code == 403, bad
                assert "passwd-like" not in response.text
            response = await post([str(root / "inside.csv")])
            assert response.status_code == 403 and "private.wav" in response.text
            assert (await post(["s3://bucket/x.wav"])).status_code == 403
            assert (await post([str(root / "missing.wav")])).status_code == 422
            assert (await post([str(root / "in.wav")], formats=["srt"])).status_code == 201
            walked = await post([str(root)])  # a symlink out of the root is refused inside a folder too
            assert walked.status_code == 403 and "escape.wav" in walked.text
            (root / "escape.wav").unlink()
            assert (await post([str(root)])).json()["inputs"] == 1
            assert (await client.post("/v1/jobs", files={"files": ("a.wav", b"RIFF")},
                                      data={"formats": "srt"})).status_code == 201
            for formats in ("[1]", "pdf", "[\"srt\""):
                response = await client.post("/v1/jobs", files={"files": ("a.wav", b"RIFF")}, data={"formats": formats})
                assert response.status_code == 422, formats
            assert (await client.post("/v1/jobs", content=b"{bad json")).status_code == 422


async def test_uploads_are_capped_while_they_arrive() -> None:
    with FakeServer(max_upload_bytes=64 * 1024) as s:
        async with httpx.AsyncClient(base_url=s.http_url) as client:
            big = await client.post("/v1/jobs", files={"files": ("a.wav", b"\0" * 200_000)})

            async def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: the cap applies as bytes arrive
                yield b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.wav\"\r\n\r\n"
                for _ in range(100):
                    yield b"\0" * 4096
                yield b"\r\n--x--\r\n"

            streamed = await client.post("/v1/jobs", content=chunks(),
                                         headers={"content-type": "multipart/form-data; boundary=x"})
    assert big.status_code == 413 and streamed.status_code == 413


# ---- per-tenant limits and rate limits --------------------------------------------------------------------------


async def test_per_tenant_call_limit_and_rate_limit() -> None:
    with FakeServer(grpc=True, auth="required", tenant_max_calls=1, rate_per_s=0.001, rate_burst=3) as s:
        store = KeyStore(s.settings.keys_path)
        a, b = store.create("a", "stream")[0], store.create("b", "stream")[0]
        async with websockets.connect(s.ws("/v1/stream"), additional_headers=bearer(a)) as first:
            await first.send(json.dumps({"type": "start"}))
            await first.recv()
            second, code = await ws_call(s.ws("/v1/stream"), utterance(), a)
            _, other_code = await ws_call(s.ws("/v1/stream"), utterance(), b)
            await first.send(json.dumps({"type": "stop"}))
        assert code == 1013 and second[0]["code"] == "rate_limited" and other_code == 1000
        # Tenant a's bucket (3 handshakes) is empty after the next one: 429 at the WebSocket handshake,
        # RESOURCE_EXHAUSTED on gRPC; tenant b still has tokens.
        assert await handshake_status(s.ws("/v1/stream"), a) == 101
        assert await handshake_status(s.ws("/v1/stream"), a) == 429
        async with grpc.aio.insecure_channel(s.grpc_target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.SpeechStub(channel).Transcribe(pb.TranscribeRequest(audio=b"x"),
                                                            metadata=(("authorization", f"Bearer {a}"),))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await handshake_status(s.ws("/v1/stream"), b) == 101
        metrics = s.engine.metrics.registry.get_sample_value
        assert metrics("speechsvc_tenant_rejections_total", {"tenant": "a", "reason": "rate"}) >= 2
        assert metrics("speechsvc_tenant_rejections_total", {"tenant": "a", "reason": "calls"}) == 1


# ---- webhooks --------------------------------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on loopback answering with the given statuses in turn (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


async def test_webhooks_are_signed_filtered_per_tenant_and_4xx_is_not_retried() -> None:
    from standardwebhooks.webhooks import Webhook

    from speechsvc.security.signing import new_secret
    from speechsvc.transports.webhook import start_webhooks

    secret = new_secret()
    signed, refusing = Receiver(), Receiver([400, 500, 503])
    async with signed as url, refusing as bad_url:
        with FakeServer(auth="required") as s:
            store = KeyStore(s.settings.keys_path)
            a, b = store.create("a", "stream")[0], store.create("b", "stream")[0]
            settings = s.settings.model_copy(update={"webhooks": (
                WebhookTarget(url=url, tenant="a", events=("transcript.final", "ended"), secret=secret),
                WebhookTarget(url=bad_url, tenant="b", events=("ready", "ended")),
            )})
            stops = s.run(start_webhooks(s.engine, settings))
            await ws_call(s.ws("/v1/stream"), utterance(440), a, call_id="w1")
            await ws_call(s.ws("/v1/stream"), utterance(660), b, call_id="w2")
            for _ in range(100):
                if len(signed.requests) >= 2 and len(refusing.requests) >= 4:
                    break
                await asyncio.sleep(0.05)
            loop = asyncio.get_running_loop()
            for stop in stops:  # the receivers live on this loop: keep it free while the server's loop stops them
                await loop.run_in_executor(None, s.run, stop())
            deliveries = s.engine.metrics.registry.get_sample_value
            assert deliveries("speechsvc_webhook_deliveries_total", {"outcome": "rejected"}) == 1
            assert deliveries("speechsvc_webhook_deliveries_total", {"outcome": "delivered"}) == 3
    verifier = Webhook(secret)
    bodies = [verifier.verify(body, headers) for headers, body in signed.requests]
    assert [(e["type"], e["call_id"]) for e in bodies] == [("transcript.final", "w1"), ("ended", "w1")]
    with pytest.raises(Exception, match="signature"):
        verifier.verify(signed.requests[0][1].replace(b"440", b"999"), signed.requests[0][0])
    # Tenant b's hook: `ready` refused with 400 (not retried), `ended` retried after 500 and 503.
    assert [json.loads(body)["type"] for _, body in refusing.requests] == ["ready", "ended", "ended", "ended"]
    assert "webhook-signature" not in refusing.requests[0][0]


def test_webhook_urls_are_validated() -> None:
    for url in ("http://169.254.169.254/latest/meta-data", "http://[fe80::1]/x", "http://metadata.google.internal/",
                "ftp://example.com/", "http://0.0.0.0/", "http://[::ffff:169.254.169.254]/"):
        with pytest.raises(Forbidden):
            check_webhook_url(url)
    check_webhook_url("http://169.254.10.10/x", allow_link_local=True)
    check_webhook_url("https://127.0.0.1:8443/hook")
    check_webhook_url("http://10.1.2.3/hook")
    assert safe_url("https://u:pw@h.example:8443/p?token=x#f") == "https://h.example:8443/p"
    with pytest.raises(Forbidden):
        Settings(webhook_url="http://169.254.169.254/")  # settings load; the service refuses at start
        asyncio.run(_start_one("http://169.254.169.254/"))


async def _start_one(url: str) -> None:
    from speechsvc.transports.webhook import start_webhooks
    from tests.support.fakes import fake_engine

    settings = fast_settings(webhook_url=url)
    await start_webhooks(fake_engine(settings), settings)


def test_audiosocket_source_allowlist() -> None:
    allow = SourceAllowlist(("127.0.0.0/8", "10.20.0.0/16", "::1/128"))
    assert allow.allows("127.0.0.1") and allow.allows("10.20.3.4") and allow.allows("::ffff:10.20.3.4")
    assert not allow.allows("10.21.0.1") and not allow.allows("") and not allow.allows(None)
    with pytest.raises(Forbidden):
        allow.check("192.0.2.1")


# ---- TLS ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("pbx-1.example")
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key", "client_cert", "client_key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    return {"ca": ca, **paths}


async def test_https_and_wss_with_client_certificates(pki: dict[str, Any]) -> None:
    with FakeServer(tls_cert=pki["cert"], tls_key=pki["key"], tls_client_ca=pki["ca"],
                    tls_client_cert="required") as s:
        trusted = ssl.create_default_context(cafile=str(pki["ca"]))
        with_cert = ssl.create_default_context(cafile=str(pki["ca"]))
        with_cert.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
        url = f"wss://127.0.0.1:{s.port}/v1/stream"
        async with websockets.connect(url, ssl=with_cert) as ws:
            await ws.send(json.dumps({"type": "start"}))
            assert json.loads(await ws.recv())["type"] == "ready"
            for frame in frames(utterance()):
                await ws.send(frame)
            await ws.send(json.dumps({"type": "stop"}))
            assert hz(finals(await read_until_closed(ws))) == ["440"]
        with pytest.raises((ssl.SSLError, ConnectionError, websockets.InvalidMessage, OSError)):
            async with websockets.connect(url, ssl=trusted) as ws:  # no client certificate
                await ws.recv()
        with pytest.raises((ConnectionError, websockets.InvalidMessage, OSError)):
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/v1/stream") as ws:  # plaintext
                await ws.recv()
        async with httpx.AsyncClient(verify=with_cert) as client:
            assert (await client.get(f"https://127.0.0.1:{s.port}/healthz")).status_code == 200


async def test_grpc_mutual_tls(pki: dict[str, Any]) -> None:
    with FakeServer(grpc=True, grpc_tls_cert=pki["cert"], grpc_tls_key=pki["key"], grpc_tls_client_ca=pki["ca"]) as s:
        ca = Path(pki["ca"]).read_bytes()
        good = grpc.ssl_channel_credentials(ca, Path(pki["client_key"]).read_bytes(),
                                            Path(pki["client_cert"]).read_bytes())
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        async with grpc.aio.secure_channel(s.grpc_target, good) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.secure_channel(s.grpc_target, grpc.ssl_channel_credentials(ca)) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


# ---- audit log -----------------------------------------------------------------------------------------------------


async def test_audit_log_records_who_did_what_and_never_transcripts() -> None:
    with FakeServer(auth="required") as s:
        key = KeyStore(s.settings.keys_path).create("acme", "stream,subscribe,jobs")[0]
        async with websockets.connect(s.ws("/v1/events"), additional_headers=bearer(key)):
            await asyncio.sleep(0.1)
        events, _ = await ws_call(s.ws("/v1/stream"), utterance(440), key, call_id="audited")
        await handshake_status(s.ws("/v1/stream"), "ssk_aaaaaaaaaaaa_" + "B" * 43)
        path = s.settings.audit_path
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    actions = [(r["action"], r["tenant"], r["target"], r["outcome"]) for r in records]
    assert ("subscribe", "acme", "*", "ok") in actions and ("call.start", "acme", "audited", "ok") in actions
    assert ("auth.denied", "-", "", "unauthorized") in actions
    assert next(r for r in records if r["action"] == "auth.denied")["key_id"] == "aaaaaaaaaaaa"
    transcript = finals(events)[0]
    assert transcript not in text and key not in text and os.path.getsize(path) < 4096


# ---- platform adapters: guarded in front of their routers ------------------------------------------------


async def test_platform_upgrades_are_authenticated_and_their_calls_belong_to_the_tenant() -> None:
    import base64

    import numpy as np

    from speechsvc.speech.audio import resample
    from tests.support.fakes import pcm16, silence, tone

    pcm = pcm16(resample(np.concatenate([tone(440, 1.0), silence(0.8)]), 16000, 8000))
    with FakeServer(auth="required") as s:
        store = KeyStore(s.settings.keys_path)
        a, b = store.create("a", "stream,subscribe")[0], store.create("b", "stream,subscribe")[0]
        basic = {"Authorization": "Basic " + base64.b64encode(f"freeswitch:{a}".encode()).decode()}
        fork = s.ws("/v1/audio_fork?mix=mono&rate=8k")
        assert await handshake_status(fork) == 401
        assert await handshake_status(fork, "ssk_000000000000_" + "A" * 43) == 401
        sub_a = await websockets.connect(s.ws("/v1/events"), additional_headers=bearer(a))
        sub_b = await websockets.connect(s.ws("/v1/events"), additional_headers=bearer(b))
        await asyncio.sleep(0.1)
        async with websockets.connect(fork, additional_headers=basic,
                                      subprotocols=["audio.drachtio.org"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"callId": "fork-a"}))
            for i in range(0, len(pcm), 320):
                await ws.send(pcm[i : i + 320])
        seen_a = await read_until_closed(sub_a, until="ended")
        async with websockets.connect(s.ws("/v1/twilio"), additional_headers={"X-API-KEY": b}) as ws:
            await ws.send(json.dumps({"event": "start", "start": {
                "callSid": "CAb", "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
            await ws.send(json.dumps({"event": "stop"}))
            await read_until_closed(ws)
        seen_b = await read_until_closed(sub_b, until="ended")
        await sub_a.close()
        await sub_b.close()
    assert {e["call_id"] for e in seen_a} == {"fork-a"} and hz(finals(seen_a)) == ["440"]
    assert {e["call_id"] for e in seen_b} == {"CAb"}


async def test_platform_connections_are_bounded_and_time_out_before_their_start() -> None:
    with FakeServer(max_connections=2, platform_start_timeout_s=0.5) as s:
        idle = [await websockets.connect(s.ws("/v1/twilio")) for _ in range(2)]
        assert await handshake_status(s.ws("/v1/audio_fork")) == 503
        closed = [await read_until_closed(ws, timeout=5) for ws in idle]  # nothing sent: closed after 0.5 s
        assert closed == [[], []] and all(ws.close_code is not None for ws in idle)
        assert await handshake_status(s.ws("/v1/audio_fork"), subprotocols=["audio.drachtio.org"]) == 101


async def test_audiosocket_peers_outside_the_allowlist_are_refused() -> None:
    import uuid

    with FakeServer(audiosocket=True, audiosocket_allow=("10.99.0.0/16",)) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.audiosocket.port)
        writer.write(bytes([0x01, 0, 16]) + uuid.uuid4().bytes)
        await writer.drain()
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once, nothing admitted
        except ConnectionResetError:
            pass
        writer.close()
        assert s.engine.active_calls == 0


async def test_a_half_open_audiosocket_peer_frees_its_call_and_keeps_its_finals() -> None:
    import struct
    import uuid

    from speechsvc.speech.audio import resample
    from tests.support.fakes import pcm16, tone

    pcm = pcm16(resample(tone(440, 1.0), 16000, 8000))  # speech still open when the peer goes silent
    call = uuid.uuid4()
    with FakeServer(audiosocket=True, audiosocket_idle_s=0.5, audiosocket_tenant="pbx") as s:
        admin = KeyStore(s.settings.keys_path).create("ops", "admin")[0]
        sub = await websockets.connect(s.ws("/v1/events"), additional_headers=bearer(admin))
        await asyncio.sleep(0.1)
        _, writer = await asyncio.open_connection("127.0.0.1", s.audiosocket.port)
        writer.write(bytes([0x01, 0, 16]) + call.bytes)
        for i in range(0, len(pcm), 320):
            writer.write(bytes([0x10]) + struct.pack(">H", len(pcm[i : i + 320])) + pcm[i : i + 320])
        await writer.drain()  # then silence on the wire, the socket left open (a half-open peer)
        events = await read_until_closed(sub, until="ended", timeout=10)
        for _ in range(100):
            if s.engine.active_calls == 0:
                break
            await asyncio.sleep(0.02)
        assert s.engine.active_calls == 0
        writer.close()
        await sub.close()
    assert hz(finals(events)) == ["440"] and events[-1]["type"] == "ended"
