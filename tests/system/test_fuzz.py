"""Fuzz and fault suite (issue 21), bounded and loopback only: property-based random and mutated input on every
protocol the service speaks to clients (WebSocket start/audio/stop, gRPC StreamCall and Transcribe, REST jobs,
event subscriptions), plus vanishing clients, slow readers and connection floods, against one real server with the
fake engine. Throughout, a good call streams beside the fuzz and must keep its transcript; afterwards the server
must still serve, its memory must not have grown without bound, no traceback may have been logged, and every
rejection must carry one of its protocol's documented codes.

``SPEECHSVC_FUZZ_EXAMPLES`` scales the number of examples per protocol (default 120: about a minute on 2 cores);
the totals are printed at the end of the module (``pytest -s``) and reported in the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest
import websockets
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speechsvc.v1 import pb
from tests.support.clients import finals, frames, hz, read_until_closed, utterance, ws_call
from tests.support.fakeserver import FakeServer

EXAMPLES = int(os.environ.get("SPEECHSVC_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

WS_CLOSE_CODES = {1000, 1001, 1003, 1007, 1008, 1009, 1013}
ERROR_CODES = {"invalid_audio", "protocol_error", "unsupported_format", "message_too_large", "overloaded",
               "rate_limited", "shutting_down"}
GRPC_CODES = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
              grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
HTTP_STATUSES = {201, 400, 403, 404, 405, 413, 415, 422, 429}

TALLY: Counter[str] = Counter()


class ClientLoop:
    """One event loop for every client of the module, in its own thread: gRPC's asyncio client binds to the
    first loop it sees, so a fresh ``asyncio.run`` per example would break it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


CLIENT = ClientLoop()


class Tracebacks(logging.Handler):
    """Every log record with a traceback, from any logger: each is a crash the fuzz found."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.levelno >= logging.ERROR:
            self.records.append(record)


def rss_mb() -> float:
    import gc

    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[FakeServer]:
    tracebacks = Tracebacks()
    logging.getLogger().addHandler(tracebacks)
    with FakeServer(grpc=True, max_message_bytes=64 * 1024, max_connections=64, max_subscribers=64,
                    rate_burst=10**6, rate_per_s=10**6, max_frame_ms=1000, auth_fail_burst=10**6) as s:
        s.tracebacks = tracebacks  # type: ignore[attr-defined]
        s.rss_start = rss_mb()  # type: ignore[attr-defined]
        yield s
        alive = CLIENT.run(_good_call(s))  # the server still serves after everything below
        growth = rss_mb() - s.rss_start  # type: ignore[attr-defined]
        leftovers = CLIENT.run(_leftovers(s))
    logging.getLogger().removeHandler(tracebacks)
    CLIENT.close()
    TALLY["crashes (tracebacks)"] = len(tracebacks.records)
    print("\nfuzz totals:", dict(TALLY), f"rss growth {growth:.1f} MB")
    assert alive
    assert leftovers == (0, 0, 0, 0, 0), leftovers
    assert not tracebacks.records, [r.getMessage() for r in tracebacks.records[:5]]
    assert growth < 200, f"memory grew {growth:.0f} MB"


async def _leftovers(s: FakeServer) -> tuple[int, ...]:
    """Calls, sessions, subscriptions and connections still held once every client has gone (0 each)."""
    for _ in range(100):
        left = (s.engine.active_calls, len(s.engine.sessions), s.engine.bus.subscribers,
                s.engine.guard.streams.open, s.engine.guard.subscriptions.open)
        if not any(left):
            break
        await asyncio.sleep(0.05)
    return left


async def _good_call(s: FakeServer) -> bool:
    events, code = await ws_call(s.ws("/v1/stream"), utterance(440) + utterance(660))
    return code == 1000 and hz(finals(events)) == ["440", "660"]


# ---- WebSocket /v1/stream ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
start_fields = st.fixed_dictionaries({}, optional={
    "call_id": st.text(max_size=140) | st.from_regex(r"[A-Za-z0-9._:@-]{1,20}", fullmatch=True),
    "encoding": st.sampled_from(["pcm16", "mulaw", "alaw", "f32", "opus", ""]) | json_values,
    "sample_rate": st.sampled_from([8000, 16000, 48000, 44100, 0, -1]) | json_values,
    "channels": st.sampled_from([1, 2, 3, 0]) | json_values,
    "legs": st.lists(st.sampled_from(["customer", "agent", "mixed", "boss"]), max_size=3) | json_values,
    "language": st.sampled_from(["zh", "en", "auto", "klingon"]) | json_values,
    "partials": st.booleans() | json_values,
    "metadata": st.dictionaries(st.text(max_size=8), st.text(max_size=300), max_size=40) | json_values,
    "extra": json_values,
})
ws_messages = st.one_of(
    st.binary(max_size=3000),  # odd lengths, garbage audio
    st.sampled_from([b"\x00\x00" * 1600, b"\x00", b"", b"\xff\x7f" * 8000]),  # silence, odd, empty, loud
    st.just(b"\x00" * (64 * 1024 + 100)),  # over max_message_bytes
    st.text(max_size=200),  # not JSON
    json_values.map(json.dumps),
    st.sampled_from(['{"type": "stop"}', '{"type": "start"}', '{"type": "audio", "data": "%%%"}',
                     '{"type": "audio", "data": "AAAA"}', '{"type": "audio"}', "[" * 5000 + "]" * 5000,
                     '{"type": "stop", "x": 1}']),
)
endings = st.sampled_from(["stop", "close", "abort", "nothing"])


@FUZZ
@given(start=st.one_of(start_fields.map(lambda d: json.dumps({"type": "start", **d})), ws_messages),
       messages=st.lists(ws_messages, max_size=8), ending=endings)
def test_fuzz_websocket_stream(fuzzed: FakeServer, start: Any, messages: list[Any], ending: str) -> None:
    TALLY["websocket sessions"] += 1
    TALLY["websocket messages"] += 1 + len(messages)
    code, events = CLIENT.run(_ws_session(fuzzed.ws("/v1/stream"), [start, *messages], ending))
    if ending in ("stop", "nothing") or code is not None:
        assert code in WS_CLOSE_CODES | {None}, (code, events[-2:])
    for event in events:
        if event.get("type") == "error":
            assert event["code"] in ERROR_CODES, event
    if events and events[0].get("type") == "ready":
        assert all(e["seq"] == i for i, e in enumerate(events)), "seq must count every event"


async def _ws_session(url: str, messages: list[Any], ending: str) -> tuple[int | None, list[dict[str, Any]]]:
    async with websockets.connect(url, max_size=None, open_timeout=10) as ws:
        try:
            for message in messages:
                await ws.send(message)
            if ending == "stop":
                await ws.send('{"type": "stop"}')
            elif ending == "close":
                await ws.close()
            elif ending == "abort":
                ws.transport.abort()
                return None, []
        except websockets.ConnectionClosed:
            pass
        if ending == "nothing":
            await ws.close()
        events = await read_until_closed(ws, timeout=20)
    return ws.close_code, events


# ---- gRPC -------------------------------------------------------------------------------------------------------

configs = st.builds(
    pb.CallConfig,
    call_id=st.text(max_size=140),
    encoding=st.integers(0, 6),
    sample_rate=st.sampled_from([0, 8000, 16000, 48000, 44100, 1, 2**31]),
    channels=st.integers(0, 4),
    legs=st.lists(st.sampled_from(["customer", "agent", "mixed", "x", ""]), max_size=3),
    language=st.sampled_from(["", "zh", "en", "auto", "xx"]),
    disable_partials=st.booleans(),
    metadata=st.dictionaries(st.text(max_size=8), st.text(max_size=50), max_size=5),
)
grpc_messages = st.one_of(
    configs.map(lambda c: pb.ClientMessage(config=c).SerializeToString()),
    st.binary(max_size=3000).map(lambda b: pb.ClientMessage(audio=b).SerializeToString()),
    st.integers(0, 3).map(lambda a: pb.ClientMessage(control=pb.Control(action=a)).SerializeToString()),  # type: ignore[arg-type]
    st.binary(max_size=200),  # corrupt protobuf
    st.just(pb.ClientMessage().SerializeToString()),
)


@FUZZ
@given(messages=st.lists(grpc_messages, max_size=8), first_valid=st.booleans(), vanish=st.booleans())
def test_fuzz_grpc_stream_call(fuzzed: FakeServer, messages: list[bytes], first_valid: bool, vanish: bool) -> None:
    TALLY["grpc calls"] += 1
    TALLY["grpc messages"] += len(messages) + first_valid
    if first_valid:
        messages = [pb.ClientMessage(config=pb.CallConfig()).SerializeToString(), *messages]
    code = CLIENT.run(_grpc_session(fuzzed.grpc_target, messages, vanish))
    # A message that is not protobuf at all ends the stream in gRPC's core, which reports INTERNAL to the client
    # (the servicer no longer hangs on it: it answers INVALID_ARGUMENT when it still can).
    allowed = GRPC_CODES | ({grpc.StatusCode.INTERNAL} if any(map(_corrupt, messages)) else set())
    assert code in allowed, code


def _corrupt(message: bytes) -> bool:
    try:
        pb.ClientMessage.FromString(message)
    except DecodeError:
        return True
    return False


async def _grpc_session(target: str, messages: list[bytes], vanish: bool) -> grpc.StatusCode:
    async def requests():  # type: ignore[no-untyped-def]
        for m in messages:
            yield m
        if vanish:
            await asyncio.sleep(30)

    async with grpc.aio.insecure_channel(target) as channel:
        method = channel.stream_stream("/speechsvc.v1.Speech/StreamCall", request_serializer=None,
                                       response_deserializer=pb.ServerMessage.FromString)
        call = method(requests())
        try:
            async def read() -> None:
                async for message in call:
                    if message.WhichOneof("event") == "error":
                        assert message.error.code in ERROR_CODES, message.error

            await asyncio.wait_for(read(), 0.5 if vanish else 20)
        except TimeoutError:
            assert vanish, "the call hung"
            call.cancel()
            return grpc.StatusCode.CANCELLED
        except grpc.aio.AioRpcError as e:
            return e.code()
    return grpc.StatusCode.OK


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(audio=st.binary(max_size=20000), config=st.none() | configs, language=st.sampled_from(["", "zh", "xx"]))
def test_fuzz_grpc_transcribe(fuzzed: FakeServer, audio: bytes, config: pb.CallConfig | None, language: str) -> None:
    TALLY["grpc transcribe requests"] += 1
    request = pb.TranscribeRequest(audio=audio, language=language)
    if config is not None:
        request.config.CopyFrom(config)

    async def one() -> grpc.StatusCode:
        async with grpc.aio.insecure_channel(fuzzed.grpc_target) as channel:
            try:
                await channel.unary_unary("/speechsvc.v1.Speech/Transcribe",
                                          request_serializer=pb.TranscribeRequest.SerializeToString,
                                          response_deserializer=pb.TranscribeResponse.FromString)(request, timeout=20)
            except grpc.aio.AioRpcError as e:
                return e.code()
        return grpc.StatusCode.OK

    assert CLIENT.run(one()) in GRPC_CODES - {grpc.StatusCode.CANCELLED}


# ---- REST jobs ----------------------------------------------------------------------------------------------------

@settings(max_examples=max(10, EXAMPLES // 2), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values.map(json.dumps), st.text(max_size=300),
                      st.fixed_dictionaries({"inputs": st.lists(st.text(max_size=60) | st.sampled_from(
                          ["/etc/passwd", "file:///etc/shadow", "s3://b/k.wav", "../../x.csv", "/", "~"]),
                          max_size=4)}, optional={"formats": json_values, "language": json_values}).map(json.dumps)),
       form=st.none() | st.fixed_dictionaries({"formats": st.text(max_size=30), "language": st.text(max_size=8)}),
       files=st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=2000)), max_size=3))
def test_fuzz_rest_jobs(fuzzed: FakeServer, body: str, form: dict[str, str] | None,
                        files: list[tuple[str, bytes]]) -> None:
    TALLY["rest requests"] += 1

    async def one() -> tuple[int, int]:
        async with httpx.AsyncClient(base_url=fuzzed.http_url, timeout=20) as client:
            a = await client.post("/v1/jobs", content=body.encode(), headers={"content-type": "application/json"})
            if form is None and not files:
                return a.status_code, 201
            b = await client.post("/v1/jobs", data=form or {}, files=[("files", f) for f in files] or None)
            return a.status_code, b.status_code

    json_status, form_status = CLIENT.run(one())
    assert json_status in HTTP_STATUSES and form_status in HTTP_STATUSES, (json_status, form_status)


@settings(max_examples=max(10, EXAMPLES // 2), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job_id=st.text(max_size=80), offset=st.integers(-5, 10**12), limit=st.integers(-5, 5000))
def test_fuzz_rest_job_reads(fuzzed: FakeServer, job_id: str, offset: int, limit: int) -> None:
    TALLY["rest requests"] += 1

    async def one() -> int:
        async with httpx.AsyncClient(base_url=fuzzed.http_url, timeout=20) as client:
            path = "/v1/jobs/" + quote(job_id, safe="") + "/results"
            return (await client.get(path, params={"offset": offset, "limit": limit})).status_code

    assert CLIENT.run(one()) in {200, 404, 422, 405, 307}


# ---- the OpenAI-compatible API and the call index (doors added later) -------------------------------------------

@settings(max_examples=max(10, EXAMPLES // 3), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(audio=st.binary(max_size=4000) | st.sampled_from([b"RIFF", b"fLaC" + bytes(40), b"OggS" + bytes(60)]),
       fields=st.dictionaries(st.sampled_from(["model", "language", "response_format", "temperature", "prompt",
                                               "timestamp_granularities[]"]), st.text(max_size=30), max_size=6),
       credential=st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60),
       proxied=st.booleans())
def test_fuzz_openai_transcriptions(fuzzed: FakeServer, audio: bytes, fields: dict[str, str],
                                    credential: str | None, proxied: bool) -> None:
    TALLY["openai requests"] += 1
    headers = {"X-Forwarded-For": "203.0.113.9"} if proxied else {}
    if credential is not None:
        headers["Authorization"] = "Bearer " + credential

    async def one() -> int:
        async with httpx.AsyncClient(base_url=fuzzed.http_url, timeout=20) as client:
            answer = await client.post("/v1/audio/transcriptions", data=fields, headers=headers,
                                       files={"file": ("a.wav", audio, "audio/wav")})
            return answer.status_code

    status = CLIENT.run(one())
    assert status in HTTP_STATUSES | {200, 401}, status
    if proxied and credential is None:
        assert status == 401  # a proxied request is never the loopback admin


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call_id=st.text(max_size=80), tenant=st.none() | st.text(max_size=40), active=st.sampled_from(["", "1", "x"]),
       proxied=st.booleans())
def test_fuzz_call_index(fuzzed: FakeServer, call_id: str, tenant: str | None, active: str, proxied: bool) -> None:
    TALLY["call index requests"] += 1
    headers = {"X-Real-IP": "203.0.113.9"} if proxied else {}

    async def one() -> tuple[int, int]:
        async with httpx.AsyncClient(base_url=fuzzed.http_url, timeout=20) as client:
            params = {"active": active, **({"tenant": tenant} if tenant is not None else {})}
            listed = await client.get("/v1/calls", params=params, headers=headers)
            one = await client.get("/v1/calls/" + quote(call_id, safe=""), headers=headers)
            return listed.status_code, one.status_code

    listed, one_status = CLIENT.run(one())
    if proxied:  # never the loopback admin (an empty id is only redirected, an id with "/" names no route)
        assert listed == 401 and one_status in {401, 307, 404}, (listed, one_status)
    else:
        assert listed in {200, 422} and one_status in {200, 404, 405, 307, 422}, (listed, one_status)


# ---- subscriptions ------------------------------------------------------------------------------------------------

@settings(max_examples=max(10, EXAMPLES // 3), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call_id=st.text(min_size=1, max_size=80), chatter=st.lists(st.text(max_size=100) | st.binary(max_size=100),
                                                                      max_size=4))
def test_fuzz_subscriptions(fuzzed: FakeServer, call_id: str, chatter: list[str | bytes]) -> None:
    TALLY["subscriptions"] += 1

    async def one() -> None:
        path = "/v1/calls/" + quote(call_id, safe="") + "/events"
        with contextlib.suppress(websockets.InvalidStatus, websockets.InvalidURI, websockets.ConnectionClosed):
            async with websockets.connect(fuzzed.ws(path), open_timeout=10) as ws:
                for message in chatter:  # read-only: whatever a subscriber sends is ignored
                    await ws.send(message)

    CLIENT.run(one())


# ---- floods, slow readers, vanishing clients, while a good call streams ---------------------------------------------

async def test_floods_slow_readers_and_vanishing_clients_spare_the_good_call(fuzzed: FakeServer) -> None:
    good = asyncio.ensure_future(ws_call(fuzzed.ws("/v1/stream"), b"".join(
        utterance(hz) for hz in (440, 660, 880))))
    # A flood of idle connections: beyond max_connections the handshake is refused (503), nothing else happens.
    opened, refused = [], 0
    for _ in range(100):
        try:
            opened.append(await websockets.connect(fuzzed.ws("/v1/stream"), open_timeout=10))
        except websockets.InvalidStatus as e:
            assert e.response.status_code == 503
            refused += 1
    TALLY["flood connections"] += 100
    assert refused > 0
    for ws in opened:
        ws.transport.abort()  # vanish without a close handshake
    # Slow readers: subscribers that never read while calls produce events; they lose their oldest, nobody waits.
    slow = [await websockets.connect(fuzzed.ws("/v1/events"), max_queue=1) for _ in range(3)]
    watcher = await websockets.connect(fuzzed.ws("/v1/events"))
    await asyncio.sleep(0.1)
    busy = [ws_call(fuzzed.ws("/v1/stream"), utterance(440) * 3) for _ in range(4)]
    vanishing = []
    for i in range(6):  # calls whose clients vanish mid-utterance: their finals still reach a fast subscriber
        ws = await websockets.connect(fuzzed.ws("/v1/stream"))
        await ws.send(json.dumps({"type": "start", "call_id": f"vanish-{i}"}))
        for frame in frames(utterance(440) + utterance(660, pause_s=0.0)):
            await ws.send(frame)
        vanishing.append(ws)
    await asyncio.sleep(0.2)
    for ws in vanishing:
        ws.transport.abort()
    TALLY["vanished clients"] += len(vanishing) + len(opened)
    results = await asyncio.gather(*busy)

    def all_ended(events: list[dict[str, Any]]) -> bool:
        return {e["call_id"] for e in events if e["type"] == "ended"} >= {f"vanish-{i}" for i in range(6)}

    seen = await _until(watcher, all_ended)
    for ws in slow:
        ws.transport.abort()
    await watcher.close()
    events, code = await good
    assert code == 1000 and hz(finals(events)) == ["440", "660", "880"]
    assert all(c == 1000 and hz(finals(e)) == ["440"] * 3 for e, c in results)
    assert all_ended(seen)
    for i in range(6):  # the open utterance of each vanished client was finished
        assert hz(finals([e for e in seen if e["call_id"] == f"vanish-{i}"])) == ["440", "660"]


async def _until(ws: websockets.ClientConnection, done: Any, timeout: float = 20) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done(events) and loop.time() < deadline:
        try:
            events.append(json.loads(await asyncio.wait_for(ws.recv(), deadline - loop.time())))
        except (TimeoutError, websockets.ConnectionClosed):
            break
    return events
