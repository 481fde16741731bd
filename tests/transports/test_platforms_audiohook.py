"""Genesys Cloud AudioHook (Monitor) conformance. No third-party AudioHook client is published (npm ``audiohook``
and ``genesys-audiohook`` do not exist, PyPI has none, Genesys' reference client is an unpublished private
package), so the client here is written from the protocol as Genesys' reference implementation defines it
(purecloudlabs/audiohook-reference-implementation): the third-party ``websocket-client`` for the socket and the
third-party ``http-message-signatures`` (PyPI) for the RFC 9421 connection signature, which was checked to
interoperate both ways with the reference signer and verifier (research note). Fake engine: a tone's transcript
names its pitch."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import websocket  # websocket-client
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

from speechsvc.speech.audio import mulaw_encode
from tests.support.platforms import FakeServer, finals, quiet, subscribe, tone, until_ended

API_KEY = "test-api-key-123"
SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
COMPONENTS = ("@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
              "audiohook-correlation-id", "x-api-key")
ORG = "d7934305-0972-4844-938e-9060eef73d05"
OFFERS = [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000},
          {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
          {"type": "audio", "format": "PCMU", "channels": ["internal"], "rate": 8000}]


@pytest.fixture(scope="module")
def open_server() -> Iterator[FakeServer]:
    with FakeServer() as s:
        yield s


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[FakeServer]:
    with FakeServer(audiohook_api_key=API_KEY, audiohook_client_secret=SECRET) as s:
        yield s


class _Key(HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id: str) -> bytes:
        return base64.b64decode(SECRET)

    def resolve_public_key(self, key_id: str) -> bytes:
        return base64.b64decode(SECRET)


@dataclass
class _Request:
    url: str
    headers: dict[str, str]
    method: str = "GET"


class Genesys:
    """Genesys Cloud's side of one AudioHook session, from the protocol: headers (signed when asked), then
    version-2 messages with seq/serverseq/position, and PCMU audio."""

    def __init__(self, server: FakeServer, *, api_key: str | None = API_KEY, sign: bool = True,
                 org: str = ORG, tamper: bool = False) -> None:
        self.id = str(uuid.uuid4())
        self.seq = self.serverseq = 0
        self.samples = 0
        path = "/v1/audiohook?tenant=acme"
        headers = {"Audiohook-Organization-Id": org, "Audiohook-Session-Id": self.id,
                   "Audiohook-Correlation-Id": str(uuid.uuid4())}
        if api_key is not None:
            headers["X-API-KEY"] = api_key
        if sign:
            request = _Request(f"https://127.0.0.1:{server.port}{path}", headers)
            now = datetime.datetime.now()
            HTTPMessageSigner(signature_algorithm=algorithms.HMAC_SHA256, key_resolver=_Key()).sign(
                request, key_id=api_key or "", created=now, expires=now + datetime.timedelta(seconds=30),
                nonce=base64.b64encode(secrets.token_bytes(18)).decode(), include_alg=True,
                covered_component_ids=COMPONENTS)
            headers = request.headers
        if tamper:
            headers["Audiohook-Correlation-Id"] = str(uuid.uuid4())
        self.ws = websocket.create_connection(server.ws(path), header=[f"{k}: {v}" for k, v in headers.items()],
                                              timeout=20)

    def send(self, kind: str, **parameters: Any) -> int:
        self.seq += 1
        self.ws.send(json.dumps({"version": "2", "id": self.id, "type": kind, "seq": self.seq,
                                 "serverseq": self.serverseq, "position": f"PT{self.samples / 8000:.3f}S",
                                 "parameters": parameters}))
        return self.seq

    def recv(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv())
        self.serverseq = message["seq"]
        return message

    def recv_until(self, kind: str) -> list[dict[str, Any]]:
        got = [self.recv()]
        while got[-1]["type"] != kind:
            got.append(self.recv())
        return got

    def open(self, conversation: str, **extra: Any) -> dict[str, Any]:
        participant = {"id": str(uuid.uuid4()), "ani": "+1-555-555-1234", "aniName": "John Doe",
                       "dnis": "+1-800-555-6789"}
        self.send("open", organizationId=ORG, conversationId=conversation, participant=participant,
                  media=extra.pop("media", OFFERS), **extra)
        return self.recv()

    def audio(self, external: np.ndarray, internal: np.ndarray, frame_ms: int = 200) -> None:
        """Stereo PCMU, interleaved per sample in the order of the channels (external, internal)."""
        both = np.stack([np.frombuffer(mulaw_encode(external), np.uint8),
                         np.frombuffer(mulaw_encode(internal), np.uint8)], axis=1).reshape(-1).tobytes()
        step = 8 * frame_ms * 2
        for i in range(0, len(both), step):
            self.ws.send_binary(both[i : i + step])
        self.samples += len(external)

    def close(self) -> list[dict[str, Any]]:
        close_seq = self.send("close", reason="end")
        got = self.recv_until("closed")
        assert got[-1]["clientseq"] == close_seq
        self.ws.close()
        return got


def pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = max(len(a), len(b))
    return np.pad(a, (0, n - len(a))), np.pad(b, (0, n - len(b)))


async def test_a_monitor_session_from_open_to_closed(keyed_server: FakeServer) -> None:
    """Signed connection, open with three offers (stereo chosen, echoed verbatim), ping/pong with the right
    clientseq, paused/resumed, update/updated, audio external=customer internal=agent, then close: the open
    utterances' transcripts come as ``event`` messages (channelId 0/1) before ``closed``. Server seq counts 1, 2,
    ... without gaps; the participant's ani/dnis appear nowhere."""
    conversation = str(uuid.uuid4())
    events_ws = await subscribe(keyed_server, conversation)

    def session() -> list[dict[str, Any]]:
        g = Genesys(keyed_server)
        replies = [g.open(conversation, language="en-US", supportedLanguages=True)]
        ping = g.send("ping", rtt="PT0.05S")
        replies.append(g.recv())
        assert replies[-1]["type"] == "pong" and replies[-1]["clientseq"] == ping
        g.audio(*pair(np.concatenate([quiet(0.2), tone(440, 0.8), quiet(0.6)]),
                      np.concatenate([quiet(0.4), tone(660, 0.6), quiet(0.6)])))
        g.send("paused")
        g.send("resumed", start="PT1.6S", discarded="PT0S")
        g.send("update", language="en-US")
        replies += g.recv_until("updated")  # transcripts of what was said may come first
        g.audio(tone(500, 0.5), tone(500, 0.5))  # still speaking when the call closes
        return replies + g.close()

    replies = await asyncio.to_thread(session)
    events = await until_ended(events_ws)
    opened = replies[0]
    assert opened["type"] == "opened" and opened["parameters"]["media"] == [OFFERS[0]]
    assert opened["parameters"]["supportedLanguages"] == ["zh-CN", "en-US"]
    assert [r["seq"] for r in replies] == list(range(1, len(replies) + 1))
    assert "updated" in [r["type"] for r in replies]
    transcripts = [e["data"] for r in replies if r["type"] == "event" for e in r["parameters"]["entities"]
                   if e["type"] == "transcript"]
    got = {(t["channelId"], t["alternatives"][0]["interpretations"][0]["transcript"][:5]) for t in transcripts
           if t["isFinal"]}
    assert got == {(0, "440hz"), (1, "660hz"), (0, "500hz"), (1, "500hz")}
    assert all(t["offset"].startswith("PT") and t["alternatives"][0]["languages"] == ["en-US"] for t in transcripts)
    last = [r["type"] for r in replies[-3:]]
    assert last[-1] == "closed" and "event" in last  # the finals of the open utterances, then closed
    assert events[0]["legs"] == ["customer", "agent"] and events[0]["language"] == "en"
    assert {(f["leg"], f["text"][:5]) for f in finals(events)} >= {("customer", "440hz"), ("agent", "660hz")}
    text = json.dumps(events)
    assert "555-555-1234" not in text and "John Doe" not in text and "800-555" not in text
    assert events[0]["metadata"]["conversationId"] == conversation


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"api_key": None, "sign": False}, "X-API-KEY"),
    ({"api_key": "wrong-key"}, "X-API-KEY"),
    ({"sign": False}, "not signed"),
    ({"tamper": True}, "signature not valid"),
])
async def test_connections_without_the_key_or_a_valid_signature_are_unauthorized(
    keyed_server: FakeServer, kwargs: dict[str, Any], why: str
) -> None:
    def session() -> list[dict[str, Any]]:
        g = Genesys(keyed_server, **kwargs)
        first = g.recv()  # the server speaks first, before any open
        assert first["type"] == "disconnect"
        return [first, *_close(g)]

    replies = await asyncio.to_thread(session)
    assert replies[0]["parameters"]["reason"] == "unauthorized" and why in replies[0]["parameters"]["info"]
    assert replies[-1]["type"] == "closed" and keyed_server.engine.active_calls == 0


def _close(g: Genesys) -> list[dict[str, Any]]:
    g.send("close", reason="disconnect")
    got = g.recv_until("closed")
    g.ws.close()
    return got


async def test_organization_must_match_the_header(keyed_server: FakeServer) -> None:
    def session() -> dict[str, Any]:
        g = Genesys(keyed_server, org=str(uuid.uuid4()))
        reply = g.open(str(uuid.uuid4()))
        _close(g)
        return reply

    reply = await asyncio.to_thread(session)
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "unauthorized"


async def test_protocol_errors_disconnect_with_the_reason_and_keep_what_was_heard(open_server: FakeServer) -> None:
    conversation = str(uuid.uuid4())
    events_ws = await subscribe(open_server, conversation)

    def session() -> list[dict[str, Any]]:
        g = Genesys(open_server, api_key=None, sign=False)
        assert g.open(conversation)["type"] == "opened"
        g.audio(*pair(np.concatenate([tone(440, 0.8), quiet(0.6)]), quiet(1.4)))
        g.ws.send_binary(b"\x01\x02\x03")  # not whole sample pairs: dropped, reported, the call goes on
        g.seq += 1  # a message lost: seq skips one
        g.send("ping")
        return [*g.recv_until("disconnect"), *_close(g)]

    replies = await asyncio.to_thread(session)
    events = await until_ended(events_ws)
    disconnect = next(r for r in replies if r["type"] == "disconnect")  # after the finals of what was heard
    assert disconnect["parameters"]["reason"] == "error" and "seq" in disconnect["parameters"]["info"]
    assert replies[0]["type"] == "event" and replies[-1]["type"] == "closed"
    assert [f["text"][:5] for f in finals(events)] == ["440hz"]
    assert [e["code"] for e in events if e["type"] == "error"] == ["invalid_audio", "protocol_error"]


async def test_a_connection_probe_creates_no_call_and_audio_before_open_is_an_error(open_server: FakeServer) -> None:
    def probe() -> list[dict[str, Any]]:
        g = Genesys(open_server, api_key=None, sign=False)
        replies = [g.open("00000000-0000-0000-0000-000000000000")]
        return replies + g.close()

    def early_audio() -> dict[str, Any]:
        g = Genesys(open_server, api_key=None, sign=False)
        g.ws.send_binary(b"\xff" * 320)
        reply = g.recv()
        _close(g)
        return reply

    replies = await asyncio.to_thread(probe)
    assert [r["type"] for r in replies] == ["opened", "closed"] and open_server.engine.active_calls == 0
    early = await asyncio.to_thread(early_audio)
    assert early["type"] == "disconnect" and early["parameters"]["reason"] == "error"


async def test_position_is_the_call_clock(open_server: FakeServer) -> None:
    """A client message whose position is ahead of the audio received (audio the client counted but that never
    arrived) moves the call's clock: the gap becomes silence, and later speech is timed on the client's clock."""
    conversation = str(uuid.uuid4())
    events_ws = await subscribe(open_server, conversation)

    def session() -> None:
        g = Genesys(open_server, api_key=None, sign=False)
        g.open(conversation, media=[OFFERS[1]])  # mono: external only
        g.ws.send_binary(mulaw_encode(quiet(1.0)))
        g.samples = 8000 * 3  # the client says 3 s were sent
        g.send("ping")
        g.recv()
        g.ws.send_binary(mulaw_encode(np.concatenate([tone(440, 0.6), quiet(0.6)])))
        g.samples += 8000 * 12 // 10
        g.close()

    await asyncio.to_thread(session)
    events = await until_ended(events_ws)
    final = finals(events)[0]
    assert events[0]["legs"] == ["customer"] and 2700 <= final["start_ms"] <= 3000


@pytest.fixture(scope="module")
def required_server() -> Iterator[FakeServer]:
    """Credentials required, no AudioHook key configured."""
    with FakeServer(auth="required") as s:
        yield s


async def test_genesys_own_key_is_not_a_speechsvc_key(open_server: FakeServer, required_server: FakeServer) -> None:
    """Genesys always sends its integration's X-API-KEY. With no AudioHook key configured it used to be checked as
    a speechsvc key and refused with HTTP 401 at the upgrade: where credentials are optional the session now opens;
    where they are required the refusal is the protocol's ``disconnect`` (unauthorized), after the upgrade."""
    def optional() -> list[dict[str, Any]]:
        g = Genesys(open_server, api_key="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh", sign=False)
        return [g.open("00000000-0000-0000-0000-000000000000"), *g.close()]

    def required() -> list[dict[str, Any]]:
        g = Genesys(required_server, api_key="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh", sign=False)
        return [g.recv(), *_close(g)]

    assert [r["type"] for r in await asyncio.to_thread(optional)] == ["opened", "closed"]
    refused = await asyncio.to_thread(required)
    assert refused[0]["type"] == "disconnect" and refused[0]["parameters"]["reason"] == "unauthorized"
    assert refused[-1]["type"] == "closed" and required_server.engine.active_calls == 0


async def test_a_non_ascii_key_is_unauthorized_not_a_server_error(keyed_server: FakeServer) -> None:
    """hmac.compare_digest raised TypeError on a str with non-ASCII characters: the connection died unanswered."""
    def session() -> list[dict[str, Any]]:
        g = Genesys(keyed_server, api_key="clé-ü", sign=False)
        return [g.recv(), *_close(g)]

    replies = await asyncio.to_thread(session)
    assert replies[0]["type"] == "disconnect" and replies[0]["parameters"]["reason"] == "unauthorized"


async def test_an_unsupported_language_is_refused_at_open(open_server: FakeServer) -> None:
    def session(language: str) -> dict[str, Any]:
        g = Genesys(open_server, api_key=None, sign=False)
        reply = g.open(str(uuid.uuid4()), language=language)
        _close(g)
        return reply

    refused = await asyncio.to_thread(session, "fr-FR")
    assert refused["type"] == "disconnect" and refused["parameters"]["reason"] == "error"
    assert "fr-FR" in refused["parameters"]["info"] and "en-US" in refused["parameters"]["info"]
    assert (await asyncio.to_thread(session, "zh-CN"))["type"] == "opened"


async def test_discarded_audio_is_silence_at_its_start(open_server: FakeServer) -> None:
    """1 s heard, a pause whose 2 s the client discarded (``resumed`` with start PT1S, discarded PT2S; the
    position counts the audio sent), then speech: it is placed at 3 s, where it was said, not at 1 s."""
    conversation = str(uuid.uuid4())
    events_ws = await subscribe(open_server, conversation)

    def session() -> None:
        g = Genesys(open_server, api_key=None, sign=False)
        g.open(conversation, media=[OFFERS[1]])  # mono: external only
        g.ws.send_binary(mulaw_encode(quiet(1.0)))
        g.samples = 8000
        g.send("paused")
        g.send("resumed", start="PT1S", discarded="PT2S")
        g.ws.send_binary(mulaw_encode(np.concatenate([tone(440, 0.6), quiet(0.6)])))
        g.samples += 8000 * 12 // 10
        g.close()

    await asyncio.to_thread(session)
    events = await until_ended(events_ws)
    final = finals(events)[0]
    assert 2700 <= final["start_ms"] <= 3000 and events[-1]["legs"][0]["audio_ms"] == 4200  # VAD pre-roll
