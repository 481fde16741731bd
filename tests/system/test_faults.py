"""The faults issue 21 found on loopback, each reproduced through the service's public surfaces on a real server
(fake engine, fast tier). Each test failed on the code before the fix (see the README's Security section)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import stat
import struct
import time
import uuid
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import websockets

from speechsvc.v1 import pb, pb_grpc
from tests.support.clients import bearer, finals, frames, hz, read_until_closed, utterance, ws_call
from tests.support.fakes import pcm16, silence, tone
from tests.support.fakeserver import FakeServer

# ---- call-id squatting ------------------------------------------------------------------------------------


async def test_call_id_squatting_is_impossible_across_tenants() -> None:
    """Tenant B claims the operator's call id and sends forged audio: the operator's subscription never sees it,
    and the operator's real stream with that id is admitted (not refused with 1013)."""
    from speechsvc.security.keys import KeyStore

    with FakeServer(auth="required") as s:
        store = KeyStore(s.settings.keys_path)
        operator, _ = store.create("bank", "stream,subscribe")
        attacker, _ = store.create("mallory", "stream")
        async with websockets.connect(s.ws("/v1/calls/CA42/events"), additional_headers=bearer(operator)) as sub:
            await asyncio.sleep(0.1)
            async with websockets.connect(s.ws("/v1/stream"), additional_headers=bearer(attacker)) as squat:
                await squat.send(json.dumps({"type": "start", "call_id": "CA42"}))
                assert json.loads(await squat.recv())["type"] == "ready"
                for frame in frames(utterance(660)):
                    await squat.send(frame)
                await asyncio.sleep(0.3)  # the squatter's call is live while the real one starts
                real, code = await ws_call(s.ws("/v1/stream"), utterance(440), operator, call_id="CA42")
                await squat.send(json.dumps({"type": "stop"}))
                await read_until_closed(squat)
            seen = await read_until_closed(sub, until="ended")
    assert code == 1000 and real[0]["type"] == "ready" and hz(finals(real)) == ["440"]
    assert hz(finals(seen)) == ["440"], "the subscription saw another tenant's events"


# ---- decompression bomb -----------------------------------------------------------------------------------


def _silent_flac(path: Path, seconds: float) -> bytes:
    from speechsvc.speech.audio import encode_file

    encode_file(path, np.zeros((1, int(16000 * seconds)), np.float32), 16000)
    return path.read_bytes()


async def test_decompression_bomb_is_refused_by_grpc_transcribe(tmp_path: Path) -> None:
    """A few KB of FLAC that decodes to 20 minutes: refused once the decoded audio passes the bound."""
    bomb = _silent_flac(tmp_path / "bomb.flac", 1200)
    assert len(bomb) < 300_000
    with FakeServer(grpc=True, transcribe_max_s=60) as s:
        async with grpc.aio.insecure_channel(s.grpc_target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.SpeechStub(channel).Transcribe(pb.TranscribeRequest(audio=bomb))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "longer than the 60 s limit" in (refused.value.details() or "")


async def test_decompression_bomb_fails_one_job_input(tmp_path: Path) -> None:
    from speechsvc.batch.outputs import OutputDir
    from speechsvc.batch.runners import run_local
    from tests.support.fakes import fake_engine, fast_settings

    _silent_flac(tmp_path / "bomb.flac", 600)
    engine = fake_engine(fast_settings(max_recording_s=30))
    await engine.start()
    try:
        progress = await run_local(engine, [str(tmp_path / "bomb.flac")], OutputDir(tmp_path / "out"), ["json"], "zh")
    finally:
        await engine.stop()
    assert progress.failed == 1 and "longer than the 30 s limit" in next(iter(progress.errors.values()))


# ---- SIGTERM drain on the platform adapters ------------------------------------------------------------------


def _tlv(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload


def _open_utterance_8k() -> bytes:
    """8 kHz PCM16: one finished utterance, then a second one still open (no pause after it)."""
    from speechsvc.speech.audio import resample

    audio = np.concatenate([tone(440, 1.0), silence(0.8), tone(660, 1.0)])
    return pcm16(resample(audio, 16000, 8000))


async def _subscribe_all(s: FakeServer) -> websockets.ClientConnection:
    sub = await websockets.connect(s.ws("/v1/events"))
    await asyncio.sleep(0.1)
    return sub


async def _wait_for_calls(s: FakeServer, n: int) -> None:
    for _ in range(200):
        if s.engine.active_calls >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the calls did not start")


async def _shutdown(s: FakeServer) -> None:
    await asyncio.get_running_loop().run_in_executor(None, s.shutdown)


async def test_sigterm_finishes_open_utterances_of_every_platform_adapter() -> None:
    """A shutdown while Twilio, mod_audio_fork and AudioSocket calls each have an open utterance: every call's
    subscribers get both finals and ``ended`` (the platforms kept sending audio while the drain ran)."""
    pcm = _open_utterance_8k()
    with FakeServer(audiosocket=True, asr_delay_s=0.3) as s:
        sub = await _subscribe_all(s)
        twilio = await websockets.connect(s.ws("/v1/twilio"))
        await twilio.send(json.dumps({"event": "start", "start": {
            "callSid": "CAdrain", "streamSid": "MZdrain", "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
        from speechsvc.speech.audio import mulaw_encode

        mulaw = mulaw_encode(np.frombuffer(pcm, "<i2"))
        for i in range(0, len(mulaw), 160):
            await twilio.send(json.dumps({"event": "media", "media": {
                "track": "inbound", "payload": base64.b64encode(mulaw[i : i + 160]).decode()}}))
        fork = await websockets.connect(s.ws("/v1/audio_fork?mix=mono&rate=8k"),
                                        subprotocols=["audio.drachtio.org"])  # type: ignore[list-item]
        await fork.send(json.dumps({"callId": "fork-drain"}))
        for i in range(0, len(pcm), 320):
            await fork.send(pcm[i : i + 320])
        call = uuid.uuid4()
        _, writer = await asyncio.open_connection("127.0.0.1", s.audiosocket.port)
        writer.write(_tlv(0x01, call.bytes))
        for i in range(0, len(pcm), 320):
            writer.write(_tlv(0x10, pcm[i : i + 320]))
        await writer.drain()
        await _wait_for_calls(s, 3)
        await asyncio.sleep(0.5)

        async def keep_sending() -> None:  # the platforms do not know the server is going away
            for _ in range(40):
                await asyncio.sleep(0.05)
                for ws, message in ((twilio, json.dumps({"event": "media", "media": {
                        "track": "inbound", "payload": base64.b64encode(b"\xff" * 160).decode()}})),
                                    (fork, b"\x00\x00" * 160)):
                    try:
                        await ws.send(message)
                    except websockets.ConnectionClosed:
                        pass
                try:
                    writer.write(_tlv(0x10, b"\x00\x00" * 160))
                except (ConnectionError, RuntimeError):
                    pass

        sender = asyncio.ensure_future(keep_sending())
        await _shutdown(s)
        events = await read_until_closed(sub)
        sender.cancel()
        writer.close()
        for ws in (twilio, fork):
            await ws.close()
    per_call: dict[str, list[dict]] = {}
    for e in events:
        per_call.setdefault(e["call_id"], []).append(e)
    assert set(per_call) == {"CAdrain", "fork-drain", str(call)}
    for call_id, mine in per_call.items():
        assert hz(finals(mine)) == ["440", "660"], call_id
        assert mine[-1]["type"] == "ended" and mine[-1]["reason"] == "shutdown", call_id


# ---- uncaught exceptions, deep JSON --------------------------------------------------------------------------


async def test_a_parser_bug_is_an_error_event_and_the_call_keeps_its_finals() -> None:
    """A message shape the Twilio parser did not expect (``media`` a string) used to escape as an ASGI traceback
    (1006) and lose the call's finals; now it is an ``error`` event (on the subscription: Twilio gets nothing back)
    and the call keeps its finals."""
    from speechsvc.speech.audio import mulaw_encode, resample

    mulaw = mulaw_encode(pcm16_array(resample(np.concatenate([tone(440, 1.0), silence(0.8)]), 16000, 8000)))
    with FakeServer() as s:
        async with websockets.connect(s.ws("/v1/calls/CAbug/events")) as sub:
            async with websockets.connect(s.ws("/v1/twilio")) as ws:
                await ws.send(json.dumps({"event": "start", "start": {
                    "callSid": "CAbug", "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
                for i in range(0, len(mulaw), 160):
                    payload = base64.b64encode(mulaw[i : i + 160]).decode()
                    await ws.send(json.dumps({"event": "media", "media": {
                        "track": "inbound", "timestamp": str(i // 8), "payload": payload}}))
                await ws.send(json.dumps({"event": "media", "media": "not an object"}))
                await ws.send(json.dumps({"event": "stop"}))
                assert await read_until_closed(ws) == []  # Twilio is sent nothing
            assert ws.close_code == 1000
            events = await read_until_closed(sub, until="ended", timeout=15)
    assert hz(finals(events)) == ["440"]
    assert any(e["type"] == "error" for e in events) and events[-1]["type"] == "ended"


def pcm16_array(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


async def test_deeply_nested_json_is_a_protocol_error_and_the_call_goes_on() -> None:
    with FakeServer() as s:
        async with websockets.connect(s.ws("/v1/stream"), max_size=None) as ws:
            await ws.send(json.dumps({"type": "start"}))
            await ws.send("[" * 100_000 + "]" * 100_000)
            for frame in frames(utterance()):
                await ws.send(frame)
            await ws.send(json.dumps({"type": "stop"}))
            events = await read_until_closed(ws)
    assert ws.close_code == 1000 and hz(finals(events)) == ["440"]
    assert any(e["type"] == "error" and e["code"] == "protocol_error" and not e["fatal"] for e in events)


# ---- connection limits and start timeouts ------------------------------------------------------------------


async def test_idle_connections_are_bounded() -> None:
    """Connections that never start a call count against a bound (WS frees one at the start timeout)."""
    with FakeServer(max_calls=1, max_connections=3) as s:
        idle = [await websockets.connect(s.ws("/v1/stream")) for _ in range(3)]
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(s.ws("/v1/stream"))
        for ws in idle:
            await ws.close()
    assert refused.value.response.status_code == 503


async def test_subscriptions_are_bounded() -> None:
    with FakeServer(max_subscribers=2) as s:
        subs = [await websockets.connect(s.ws("/v1/events")) for _ in range(2)]
        await asyncio.sleep(0.1)
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(s.ws("/v1/events"))
        for ws in subs:
            await ws.close()
    assert refused.value.response.status_code == 503


# ---- gRPC: corrupt protobuf, vanished client ------------------------------------------------------------------


async def test_grpc_corrupt_protobuf_after_the_config_does_not_hang() -> None:
    config = pb.ClientMessage(config=pb.CallConfig(call_id="corrupt")).SerializeToString()

    async def requests():  # type: ignore[no-untyped-def]
        yield config
        yield b"\x12\xff\xff\xff\xff\x0f garbage that is not a ClientMessage"
        await asyncio.sleep(30)

    with FakeServer(grpc=True) as s:
        async with grpc.aio.insecure_channel(s.grpc_target) as channel:
            method = channel.stream_stream("/speechsvc.v1.Speech/StreamCall", request_serializer=None,
                                           response_deserializer=pb.ServerMessage.FromString)
            call = method(requests())
            seen = []

            async def read() -> None:
                async for message in call:
                    seen.append(message.WhichOneof("event"))

            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(read(), 10)
    assert seen[:1] == ["ready"] and ended.value.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                                             grpc.StatusCode.INTERNAL)


async def test_grpc_vanished_client_keeps_its_open_utterance_and_ended() -> None:
    audio = utterance(440) + pcm16(tone(660, 1.0))  # the second utterance is still open when the client goes

    with FakeServer(grpc=True) as s:
        sub = await _subscribe_all(s)

        async def requests():  # type: ignore[no-untyped-def]
            yield pb.ClientMessage(config=pb.CallConfig(call_id="vanish-grpc"))
            for frame in frames(audio):
                yield pb.ClientMessage(audio=frame)
            await asyncio.sleep(30)

        async with grpc.aio.insecure_channel(s.grpc_target) as channel:
            rpc = pb_grpc.SpeechStub(channel).StreamCall(requests())
            assert (await rpc.read()).WhichOneof("event") == "ready"
            await asyncio.sleep(0.5)
            rpc.cancel()
        events = await read_until_closed(sub, until="ended", timeout=15)
        await sub.close()
    assert hz(finals(events)) == ["440", "660"] and events[-1]["type"] == "ended"


# ---- log injection, log volume -------------------------------------------------------------------------------


async def test_call_ids_with_newlines_are_refused_on_every_transport() -> None:
    with FakeServer() as s:
        async with websockets.connect(s.ws("/v1/twilio")) as ws:
            await ws.send(json.dumps({"event": "start", "start": {
                "callSid": "CA1\n2026-01-01 INFO forged line", "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
            events = await read_until_closed(ws)
        assert s.engine.active_calls == 0
    assert ws.close_code == 1008 and events == []  # Twilio gets a close code, never a message


def test_log_lines_cannot_be_forged_and_floods_are_bounded() -> None:
    from speechsvc.log import CallIdFilter, call_id_var
    from speechsvc.security.logguard import LogGuard

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(CallIdFilter())
    handler.addFilter(LogGuard(max_chars=200, burst=5, every=1000))
    handler.setFormatter(logging.Formatter("%(levelname)s [call=%(call_id)s] %(message)s"))
    logger = logging.getLogger("test.logguard")
    logger.addHandler(handler)
    logger.propagate = False
    token = call_id_var.set("c1\nINFO [call=x] forged")
    try:
        logger.warning("bad frame: %s", "x\r\nERROR forged" + "y" * 5000)
        for _ in range(3000):
            logger.warning("invalid_audio: %s", "odd byte count")
        logger.info("access ?access_token=ssk_0123456789ab_secretsecret and Bearer abc.def.ghi")
    finally:
        call_id_var.reset(token)
        logger.removeHandler(handler)
    assert all("\n" not in r and "\r" not in r for r in records)
    assert len(records[0]) < 400
    assert 5 <= len(records) <= 10  # 3000 warnings of one call: the first few and one per thousand
    assert "secretsecret" not in records[-1] and "abc.def.ghi" not in records[-1]


# ---- the event loop is not blocked by a fast sender ----------------------------------------------------------


async def test_a_fast_sender_is_paced_to_a_bound_of_real_time() -> None:
    audio = pcm16(np.concatenate([tone(440, 1.0), silence(7.0)]))  # 8 s of audio, sent as fast as possible
    with FakeServer(max_realtime_factor=4.0, realtime_burst_s=1.0) as s:
        loop = asyncio.get_running_loop()
        started = loop.time()
        events, code = await ws_call(s.ws("/v1/stream"), audio)
        took = loop.time() - started
    assert code == 1000 and hz(finals(events)) == ["440"]
    assert took >= (8.0 - 1.0) / 4.0 * 0.9  # a lower bound: the server read it no faster than 4x real time


async def test_a_sender_faster_than_asr_is_held_back_and_loses_no_utterance() -> None:
    """ASR slower than the sender, unpaced, 2 utterances of backlog allowed: every utterance still gets its final
    (the server stops reading instead of dropping), and no overload is reported."""
    tones = [440, 520, 600, 680, 760, 840, 1000, 1080, 1160, 1240]
    audio = pcm16(np.concatenate([np.concatenate([tone(f, 0.4), silence(0.7)]) for f in tones]))
    with FakeServer(asr_delay_s=0.3, max_realtime_factor=0, max_pending_utterances=2) as s:
        events, code = await ws_call(s.ws("/v1/stream"), audio)
    assert code == 1000 and hz(finals(events)) == [str(f) for f in tones]
    assert not [e for e in events if e["type"] == "error"]


# ---- jobs: poison jobs, permissions, credentials in logs -------------------------------------------------------


async def test_a_job_interrupted_three_times_is_failed_not_rerun(tmp_path: Path) -> None:
    from speechsvc.batch.jobs import JobRunner, RunnerOptions, SqliteJobStore
    from tests.support.fakes import fake_engine

    store = SqliteJobStore(tmp_path)
    job = store.create({"inputs": ["poison.wav"], "formats": ["json"], "language": "zh"})
    runs = 0
    while runs < 5 and (claims := store.claim(f"replica{runs}", 1, 0.0)):  # the process dies running it: its
        runs += 1  # lease is never renewed
        if claims[0].attempts > store.max_attempts:
            break
        store.close()
        store = SqliteJobStore(tmp_path)  # a restart
    runner = JobRunner(fake_engine(), store, RunnerOptions("survivor", poll_s=0.05))
    result = await runner._work(claims[0])
    assert runs == 4 and result[0] == "failed" and "interrupted 3 times" in (result[1] or "")
    assert store.finish(claims[0], "replica3", *result)  # the fourth claim's owner
    final = store.complete_if_finished(job.id)
    assert final is not None and final.progress["failed"] == 1
    store.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_job_store_outputs_and_uploads_are_private(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    from speechsvc.speech.audio import encode_file

    encode_file(wav, np.concatenate([tone(440, 1.0), silence(0.8)])[None, :], 16000)
    old = os.umask(0o022)
    try:
        with FakeServer(jobs_dir=tmp_path / "jobs") as s:
            async with httpx.AsyncClient(base_url=s.http_url) as client:
                created = await client.post("/v1/jobs", files={"files": ("call.wav", wav.read_bytes())},
                                            data={"formats": "srt", "language": "zh"})
                assert created.status_code == 201, created.text
                job_id = created.json()["id"]
                for _ in range(200):
                    if (await client.get(f"/v1/jobs/{job_id}")).json()["state"] in ("done", "failed"):
                        break
                    await asyncio.sleep(0.05)
                results = (await client.get(f"/v1/jobs/{job_id}/results")).json()
    finally:
        os.umask(old)
    assert results["results"][0]["status"] == "done"
    jobs = tmp_path / "jobs"
    assert _mode(jobs) == 0o700 and _mode(jobs / "jobs.sqlite") == 0o600
    assert _mode(jobs / job_id) == 0o700 and _mode(jobs / job_id / "out") == 0o700
    outputs = list((jobs / job_id / "out").iterdir())
    assert outputs and all(_mode(p) == 0o600 for p in outputs)


async def test_webhook_never_logs_url_credentials(caplog: pytest.LogCaptureFixture) -> None:
    from speechsvc.runtime.bus import EventBus
    from speechsvc.transports.webhook import WebhookPoster
    from speechsvc.types import CallEvent, Ready

    hits = []

    async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.read(65536))
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(receiver, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = EventBus()
    caplog.set_level(logging.DEBUG)
    poster = WebhookPoster(bus, f"http://hook:s3cr3t-pw@127.0.0.1:{port}/in?token=t0p", 3, 2.0)
    poster.start()
    await asyncio.sleep(0.1)
    bus.publish(CallEvent("c1", 0, Ready(("customer",), "pcm16", 16000, "zh", "ws")))
    for _ in range(200):
        if poster.failed:
            break
        await asyncio.sleep(0.05)
    await poster.stop()
    server.close()
    assert poster.failed == 1 and len(hits) == 3
    assert "s3cr3t-pw" not in caplog.text and "t0p" not in caplog.text


# ---- WebSocket messages over the size limit ---------------------------------------------------------------------


async def test_an_oversized_message_still_gets_the_finals_of_what_was_heard() -> None:
    with FakeServer(max_message_bytes=64 * 1024) as s:
        async with websockets.connect(s.ws("/v1/stream"), max_size=None) as ws:
            await ws.send(json.dumps({"type": "start"}))
            for frame in frames(utterance(440, pause_s=0.1)):
                await ws.send(frame)
            await ws.send(b"\x00" * (64 * 1024 + 8 * 1024))
            events = await read_until_closed(ws)
    assert ws.close_code == 1009 and hz(finals(events)) == ["440"]
    assert any(e["type"] == "error" and e["code"] == "message_too_large" for e in events)


# ---- /metrics and gRPC reflection ------------------------------------------------------------------------------


async def test_metrics_and_reflection_need_the_admin_scope() -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    from speechsvc.security.keys import KeyStore

    with FakeServer(grpc=True, auth="required") as s:
        store = KeyStore(s.settings.keys_path)
        user, _ = store.create("t1", "stream")
        admin, _ = store.create("ops", "admin")
        async with httpx.AsyncClient(base_url=s.http_url) as client:
            statuses = [(await client.get("/metrics", headers=bearer(k))).status_code for k in (None, user, admin)]
        async with grpc.aio.insecure_channel(s.grpc_target) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            codes = []
            for key in (None, user, admin):
                request = reflection_pb2.ServerReflectionRequest(list_services="")
                try:
                    metadata = (("authorization", f"Bearer {key}"),) if key else None
                    responses = stub.ServerReflectionInfo(iter([request]), metadata=metadata)
                    _ = [r async for r in responses]
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as e:
                    codes.append(e.code())
    assert statuses == [401, 403, 200]
    assert codes == [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OK]


# ---- a client that stops reading events -----------------------------------------------------------------------


async def test_a_client_that_stops_reading_gets_1013_not_a_keepalive_1006() -> None:
    from tests.support.clients import RawWebSocket

    metadata = {f"k{i}": "x" * 256 for i in range(32)}  # ~9 KB echoed on every event
    with FakeServer(send_timeout_s=1.0, max_pending_events=100_000, metadata_keys=("*",), mask_metadata=False) as s:

        def client() -> tuple[list[dict], int | None]:
            ws = RawWebSocket("127.0.0.1", s.port, "/v1/stream")
            try:
                ws.send(json.dumps({"type": "start", "metadata": metadata}))
                for _ in range(1500):  # each odd-length frame is one error event: 13 MB of events
                    ws.send(b"\x01")
                time.sleep(4)  # not reading: the server's sends block, then it gives up on this client
                return ws.read_all()
            finally:
                ws.close()

        events, code = await asyncio.get_running_loop().run_in_executor(None, client)
    assert code == 1013 and events[0]["type"] == "ready"


# ---- batch: long recordings, output names, blocking work off the loop ---------------------------------------------


async def test_a_long_recording_waits_for_queue_room_instead_of_failing(tmp_path: Path) -> None:
    """More utterances than the ASR queue holds: batch work waits for room (backpressure), it never fails on its
    own queue (the 31-minute call of the issue; here 40 utterances against a queue of 4)."""
    from speechsvc.batch.outputs import OutputDir
    from speechsvc.batch.runners import run_local
    from speechsvc.speech.audio import encode_file
    from tests.support.fakes import fake_engine, fast_settings

    audio = np.concatenate([np.concatenate([tone(440, 0.6), silence(0.7)]) for _ in range(40)])
    encode_file(tmp_path / "long.wav", audio[None, :], 16000)
    engine = fake_engine(fast_settings(asr_max_queue=4, asr_max_batch=2))
    await engine.start()
    try:
        progress = await run_local(engine, [str(tmp_path / "long.wav")], OutputDir(tmp_path / "out"), ["json"], "zh")
    finally:
        await engine.stop()
    report = json.loads(next((tmp_path / "out").glob("*long.wav-*.json")).read_text())
    assert progress.failed == 0 and progress.done == 1 and len(report["segments"]) == 40


def test_output_names_never_collide() -> None:
    from speechsvc.batch.outputs import output_name

    names = {output_name(p) for p in ("/d/x y.wav", "/d/x_y.wav", "/d/x?y.wav", "s3://b/x y.wav", "/d/x y.wav/")}
    assert len(names) == 5


async def test_job_inputs_are_expanded_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from speechsvc.batch import files
    from speechsvc.transports import rest_jobs

    (tmp_path / "a.wav").write_bytes(b"RIFF")
    threads = []
    real = files.expand_inputs

    def spy(*args: object, **kwargs: object) -> list[str]:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rest_jobs, "expand_inputs", spy)
    with FakeServer(batch_roots=(str(tmp_path),)) as s:
        async with httpx.AsyncClient(base_url=s.http_url) as client:
            created = await client.post("/v1/jobs", json={"inputs": [str(tmp_path)]})
    assert created.status_code == 201 and threads and s.thread not in threads  # not on the server's loop
