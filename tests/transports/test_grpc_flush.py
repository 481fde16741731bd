"""gRPC ``Control.FLUSH`` (end the open utterance now, as the WebSocket ``flush``, Deepgram's ``Finalize`` and
AssemblyAI's ``ForceEndpoint``), driven by @grpc/grpc-js with the service loaded from the proto by
@grpc/proto-loader (third-party; tests/node), and by grpcio. Fake engine:
a tone's transcript names its pitch. The speech has no pause after it, so only the flush can finish it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from speechsvc.v1 import pb, pb_grpc
from tests.support.datasets import NODE_DIR, REPO
from tests.support.platforms import FakeServer, tone


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer() as s:
        from speechsvc.transports.grpc_server import start_grpc_server

        s.grpc = s.run(start_grpc_server(s.engine, s.settings.model_copy(update={"grpc_port": 0})))
        yield s
        s.run(s.grpc.stop(0.5))


def grpc_port(fake: FakeServer) -> int:
    return int(fake.grpc.port)


def test_grpc_js_flush_brings_the_final_and_the_call_goes_on(fake: FakeServer, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs npm): the client is @grpc/grpc-js")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js" / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: cannot install @grpc/grpc-js")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            pytest.skip(f"npm could not install @grpc/grpc-js: {done.stderr.strip()[-300:]}")
    (tmp_path / "a.s16le").write_bytes(tone(440, 1.0).astype("<i2").tobytes())
    (tmp_path / "b.s16le").write_bytes(tone(660, 1.0).astype("<i2").tobytes())
    out = subprocess.run([node, str(NODE_DIR / "grpc_flush_client.mjs"), "--port", str(grpc_port(fake)), "--proto",
                          str(REPO / "speechsvc" / "v1" / "speechsvc.proto"), "--pcm1", str(tmp_path / "a.s16le"),
                          "--pcm2", str(tmp_path / "b.s16le")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["flushed"] and result["status"]["code"] == 0
    kinds = [e["kind"] for e in result["events"]]
    texts = [e["text"][:5] for e in result["events"] if e["kind"] == "final"]
    assert texts == ["440hz", "660hz"] and kinds[0] == "ready" and kinds[-1] == "ended" and "error" not in kinds


async def test_grpcio_flush_then_stop(fake: FakeServer) -> None:
    """The same with grpcio: the first final arrives before any more audio is sent."""
    sent_second = asyncio.Event()

    async def requests() -> AsyncIterator[pb.ClientMessage]:
        yield pb.ClientMessage(config=pb.CallConfig(call_id="grpcio-flush", sample_rate=8000))
        yield pb.ClientMessage(audio=tone(440, 1.0).astype("<i2").tobytes())
        yield pb.ClientMessage(control=pb.Control(action=pb.Control.FLUSH))
        await first_final.wait()
        sent_second.set()
        yield pb.ClientMessage(audio=tone(660, 1.0).astype("<i2").tobytes())
        yield pb.ClientMessage(control=pb.Control(action=pb.Control.STOP))

    first_final = asyncio.Event()
    finals: list[tuple[str, bool]] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port(fake)}") as channel:
        async for message in pb_grpc.SpeechStub(channel).StreamCall(requests()):
            if message.WhichOneof("event") == "final":
                finals.append((message.final.text[:5], sent_second.is_set()))
                first_final.set()
    assert finals == [("440hz", False), ("660hz", True)]
