"""Asterisk AudioSocket conformance, driven by the npm package ``asterisk-audiosocket`` (third-party; node from
Debian) playing Asterisk's side: UUID frame, 20 ms slin frames paced by the package itself, DTMF and other kinds
through its frame encoder, then a plain close (what Asterisk does) or a hangup frame. Asterisk itself is not
packaged for Debian 12 and the Go reference library cannot be fetched by CI, so this is the independent client.
Skipped, with the reason, when node or npm is missing. Fake engine: a tone's transcript names its pitch."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.datasets import NODE_DIR
from tests.support.platforms import FakeServer, finals, quiet, subscribe, tone, until_ended

CLIENT = NODE_DIR / "audiosocket_client.mjs"


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the npm package installed under tests/node (``make install`` does it; else now)."""
    binary = shutil.which("node")
    if binary is None:
        pytest.skip("node is not installed (apt-get install nodejs npm): the AudioSocket client is an npm package")
    if not (NODE_DIR / "node_modules" / "asterisk-audiosocket" / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed (apt-get install npm): cannot install asterisk-audiosocket")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            pytest.skip(f"npm could not install asterisk-audiosocket: {done.stderr.strip()[-300:]}")
    return binary


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    """Customer and agent listeners, as the README's recipes use them."""
    with FakeServer(agent_port=True, platform_rate_probe_s=0.5, audiosocket_pair_grace_s=0.5,
                    pii_dtmf="clear") as s:
        yield s


@pytest.fixture(scope="module")
def one_port() -> Iterator[FakeServer]:
    with FakeServer(audiosocket=True, platform_rate_probe_s=1.0, max_calls=2) as s:
        yield s


async def asterisk(node: str, port: int, pcm: np.ndarray, tmp: Path, *, call: str, **options: Any) -> dict[str, Any]:
    """One connection of the npm client; options become its flags (burst=True -> --burst)."""
    path = tmp / f"{uuid.uuid4().hex}.s16le"
    path.write_bytes(pcm.astype("<i2").tobytes())
    args = [node, str(CLIENT), "--port", str(port), "--pcm", str(path), "--uuid", call]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


def port(server: FakeServer, leg: str = "customer") -> int:
    return int(server.listeners[leg].port)


async def test_two_connections_with_one_uuid_are_the_two_legs_of_one_call(node: str, fake: FakeServer,
                                                                          tmp_path: Path) -> None:
    """ARI snoop + externalMedia per direction, same UUID, customer and agent ports: one call with both legs.
    The second connection used to be refused as a duplicate call (with an 0xff "overloaded" frame)."""
    call = str(uuid.uuid4())
    events_ws = await subscribe(fake, call)
    customer = np.concatenate([quiet(0.2), tone(440, 0.8), quiet(0.6)])
    agent = np.concatenate([quiet(0.2), tone(660, 0.8), quiet(0.6)])
    sent = await asyncio.gather(asterisk(node, port(fake), customer, tmp_path, call=call),
                                asterisk(node, port(fake, "agent"), agent, tmp_path, call=call))
    events = await until_ended(events_ws)
    assert all(s["paced_by_package"] and s["frames_from_server"] == [] for s in sent)  # nothing sent back
    assert events[0]["legs"] == ["customer", "agent"] and events[0]["metadata"]["uuid"] == call
    assert {f["leg"]: f["text"][:5] for f in finals(events)} == {"customer": "440hz", "agent": "660hz"}
    c, a = (next(f for f in finals(events) if f["leg"] == leg) for leg in ("customer", "agent"))
    assert abs(c["start_ms"] - a["start_ms"]) <= 100  # connected together: one clock
    assert not any(e["type"] == "error" for e in events)


async def test_a_late_leg_is_placed_by_when_it_connected(node: str, fake: FakeServer, tmp_path: Path) -> None:
    """The agent answers later (ChanSpy on the answered agent channel): its leg joins the open call, aligned by
    the wall-clock offset of its first frame (no timestamps exist in AudioSocket)."""
    call = str(uuid.uuid4())
    events_ws = await subscribe(fake, call)
    speech = np.concatenate([quiet(0.2), tone(440, 0.6), quiet(0.7)])
    await asyncio.gather(asterisk(node, port(fake), np.concatenate([speech, quiet(1.0)]), tmp_path, call=call),
                         asterisk(node, port(fake, "agent"), speech, tmp_path, call=call, delay_ms=1000))
    events = await until_ended(events_ws)
    c, a = (next(f for f in finals(events) if f["leg"] == leg) for leg in ("customer", "agent"))
    assert 800 <= a["start_ms"] - c["start_ms"] <= 1300


async def test_one_port_pairs_by_arrival_order(node: str, one_port: FakeServer, tmp_path: Path) -> None:
    """Both directions on one port (within the call's first second): the first to connect is the customer."""
    call = str(uuid.uuid4())
    events_ws = await subscribe(one_port, call)
    await asyncio.gather(*(asterisk(node, port(one_port), np.concatenate([tone(hz, 0.6), quiet(0.6)]), tmp_path,
                                    call=call) for hz in (440, 660)))
    events = await until_ended(events_ws)
    assert events[0]["legs"] == ["customer", "agent"]
    got = sorted((f["leg"], f["text"][:5]) for f in finals(events))
    assert [leg for leg, _ in got] == ["agent", "customer"] and {text for _, text in got} == {"440hz", "660hz"}


async def test_16khz_sent_as_0x10_is_detected_against_the_wall_clock(node: str, one_port: FakeServer,
                                                                     tmp_path: Path) -> None:
    """Asterisk before 20.17 sends slin16 under kind 0x10: twice the bytes per second of 8 kHz. It used to be
    read as 8 kHz (garbage, no warning); now it is reported and taken as 16 kHz. (Measured against the wall
    clock over the first second: the sender must keep real time, as Asterisk does.)"""
    call = str(uuid.uuid4())
    events_ws = await subscribe(one_port, call)
    pcm = np.concatenate([quiet(0.2, 16000), tone(440, 0.8, 16000), quiet(0.6, 16000)])
    await asterisk(node, port(one_port), pcm, tmp_path, call=call, frame_bytes=640)  # 20 ms of 16 kHz a frame
    events = await until_ended(events_ws)
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["format_mismatch"] and "16000 Hz" in errors[0]["message"]
    assert [f["text"][:5] for f in finals(events)] == ["440hz"]
    assert events[-1]["legs"][0]["audio_ms"] == 1600


async def test_dtmf_unknown_kinds_and_new_rates(node: str, fake: FakeServer, tmp_path: Path) -> None:
    """0x03 becomes ``dtmf`` events; unknown kinds (the Go library's 0x02 before the first audio, 0x42 later)
    are skipped and reported once, never fatal (0x02 first used to end the call); 0x13 (24 kHz) is taken."""
    call = str(uuid.uuid4())
    events_ws = await subscribe(fake, call)
    pcm = np.concatenate([tone(500, 0.6, 24000), quiet(0.6, 24000)])
    await asterisk(node, port(fake), pcm, tmp_path, call=call, kind="0x13", frame_bytes=960, burst=True,
                   dtmf="5#", dtmf_after=10, extra="0x02:0000,0x42:3f3f", extra_after=0)
    events = await until_ended(events_ws)
    assert [(d["digit"], d["leg"]) for d in events if d["type"] == "dtmf"] == [("5", "customer"), ("#", "customer")]
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["protocol_error", "protocol_error"] and not any(e["fatal"] for e in errors)
    assert "0x02" in errors[0]["message"] and "0x42" in errors[1]["message"]
    assert [f["text"][:5] for f in finals(events)] == ["500hz"] and abs(events[-1]["legs"][0]["audio_ms"] - 1200) <= 2


async def test_bad_frames_are_reported_and_a_cut_stream_keeps_what_was_heard(node: str, fake: FakeServer,
                                                                             tmp_path: Path) -> None:
    call = str(uuid.uuid4())
    events_ws = await subscribe(fake, call)
    result = await asterisk(node, port(fake), np.concatenate([tone(440, 1.0), quiet(0.1)]), tmp_path, call=call,
                            burst=True, extra="0x10:010203,0x12:" + "00" * 640, extra_after=3, end="cut")
    events = await until_ended(events_ws)
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["invalid_audio", "invalid_audio"]
    assert "not whole 16-bit samples" in errors[0]["message"] and "0x12" in errors[1]["message"]
    assert [f["text"][:5] for f in finals(events)] == ["440hz"] and result["frames_from_server"] == []


async def test_refusals_send_only_a_hangup_never_an_error_frame(node: str, one_port: FakeServer,
                                                               tmp_path: Path) -> None:
    """Asterisk ≥ 20.14 hangs up the channel on any frame but audio or hangup, and reads one-byte error codes
    where the old server sent 14-byte text: a refused connection gets ``00 00 00`` and a close, nothing else."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port(one_port))
    writer.write(bytes([0x10, 0x01, 0x40]) + b"\x00" * 320)  # audio before the UUID
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b"\x00\x00\x00"
    writer.close()
    held = []  # two calls that stay open: the server takes 2 at once
    for _ in range(2):
        r, w = await asyncio.open_connection("127.0.0.1", port(one_port))
        w.write(bytes([0x01, 0x00, 0x10]) + uuid.uuid4().bytes + (bytes([0x10, 0x01, 0x40]) + b"\x00" * 320) * 5)
        await w.drain()
        held.append((r, w))
    for _ in range(100):
        if one_port.engine.active_calls == 2:
            break
        await asyncio.sleep(0.05)
    assert one_port.engine.active_calls == 2
    result = await asterisk(node, port(one_port), np.concatenate([tone(440, 0.6), quiet(1.6)]), tmp_path,
                            call=str(uuid.uuid4()))  # still streaming when refused, after its first second
    assert result["frames_from_server"] == [{"type": 0, "len": 0}]  # capacity: a hangup, no 0xff "overloaded"
    for _, w in held:
        w.close()


async def _stream_split(server_port: int, call: str, pcm: np.ndarray, split: dict[int, float]) -> None:
    """Asterisk's side over a raw socket, 20 ms frames in real time; frame i of ``split`` goes as its header, a
    pause of ``split[i]`` seconds, then its payload (what TCP does to a frame on a retransmission)."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
    writer.write(bytes([0x01, 0x00, 0x10]) + uuid.UUID(call).bytes)
    data = pcm.astype("<i2").tobytes()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i, offset in enumerate(range(0, len(data), 320)):
        await asyncio.sleep(max(0.0, t0 + i * 0.02 - loop.time()))
        payload = data[offset:offset + 320]
        header = bytes([0x10]) + len(payload).to_bytes(2, "big")
        if i in split:
            writer.write(header)
            await writer.drain()
            await asyncio.sleep(split[i])
            writer.write(payload)
        else:
            writer.write(header + payload)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_a_frame_split_across_tcp_segments_is_read_whole(fake: FakeServer) -> None:
    """A header, a 300 ms pause, then its payload, straddling the end of the rate-probe window (0.5 s here): the
    read used to be cancelled after the header was consumed, and every later byte was read out of frame (garbage
    kinds, a false peer error, the leg ended: 900 ms heard of 6 s). Now the frame is read whole and all is heard."""
    call = str(uuid.uuid4())
    events_ws = await subscribe(fake, call)
    pcm = np.concatenate([quiet(0.2), tone(440, 0.8), quiet(0.6), tone(660, 0.8), quiet(0.6)])  # 3 s
    await _stream_split(port(fake), call, pcm, {20: 0.3, 60: 0.3})
    events = await until_ended(events_ws)
    assert not [e for e in events if e["type"] == "error"]
    assert [f["text"][:5] for f in finals(events)] == ["440hz", "660hz"]
    assert events[-1]["legs"][0]["audio_ms"] == 3000


async def test_the_npm_client_writing_each_frame_in_two_writes(node: str, fake: FakeServer, tmp_path: Path) -> None:
    """The npm client writes every frame as two writes 15 ms apart (header, then payload), on both legs: both
    legs of a call used to end after about 1 s; now every frame of both is heard."""
    call = str(uuid.uuid4())
    events_ws = await subscribe(fake, call)
    customer = np.concatenate([quiet(0.2), tone(440, 0.8), quiet(0.6), tone(550, 0.6), quiet(0.6)])
    agent = np.concatenate([quiet(0.4), tone(660, 0.8), quiet(1.6)])
    sent = await asyncio.gather(asterisk(node, port(fake), customer, tmp_path, call=call, split_ms=15),
                                asterisk(node, port(fake, "agent"), agent, tmp_path, call=call, split_ms=15))
    events = await until_ended(events_ws)
    assert all(s["frames_from_server"] == [] for s in sent)
    assert not [e for e in events if e["type"] == "error"]
    assert sorted((f["leg"], f["text"][:5]) for f in finals(events)) == [
        ("agent", "660hz"), ("customer", "440hz"), ("customer", "550hz")]
    heard = {leg["leg"]: leg["audio_ms"] for leg in events[-1]["legs"]}  # all 2.8 s of each; the leg that
    assert set(heard) == {"customer", "agent"} and all(2800 <= ms <= 3300 for ms in heard.values())  # connected
    # second also has the silence that places it on the call's clock


async def test_a_peer_that_sends_its_uuid_and_vanishes_logs_no_traceback(fake: FakeServer,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """UUID, then the socket closes before any audio: no call, no CancelledError traceback in the log."""
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", port(fake))
        writer.write(bytes([0x01, 0x00, 0x10]) + uuid.uuid4().bytes)
        await writer.drain()
        writer.close()
        await asyncio.wait_for(reader.read(), 10)
    await asyncio.sleep(0.3)
    assert not [r for r in caplog.records if r.exc_info or "CancelledError" in r.getMessage()
                or "exception" in r.getMessage().lower()]
