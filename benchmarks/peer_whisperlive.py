"""Side-by-side streaming latency: speechsvc vs WhisperLive (collabora/whisper-live 0.10.0, faster-whisper
backend), same machine, model directory, threads, compute type (int8), audio and frame size, alternating
level by level so the ratio is fair on a noisy machine.

    python benchmarks/peer_whisperlive.py --peer-python /work/peers/wl/bin/python --calls 1 2 4

WhisperLive runs in its own virtual environment (its pins clash with ours; see shared/PEERS.md):
``pip install --no-deps whisper-live==0.10.0`` plus faster-whisper 1.2.0, torch 2.13.0 (CPU), fastapi,
uvicorn, websockets, websocket-client. It is started with ``single_model=True`` (one model shared by all
clients, like speechsvc) and its VAD off (``use_vad: false``): its VAD fetches a model with wget at start,
which an offline machine cannot do. Its protocol: a JSON options frame, float32 16 kHz frames,
``END_OF_AUDIO``; it answers ``SERVER_READY`` and then ``{uid, segments: [{start, end, text, completed}]}``.

Per utterance (eval/long segment times): end of speech → the first message whose *completed* segments
reach the utterance's end (WhisperLive's final), start of speech → first segment covering it (its partial),
and the CER of the completed text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.clients.ws import StreamAudio
from speechsvc.config import Settings
from speechsvc.evaluation.bench_stream import (
    CallResult,
    ServerProcess,
    Utterance,
    load_reference,
    percentiles,
    run_level,
)
from speechsvc.evaluation.bench_stream import (
    parse_args as parse_stream_args,
)
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_rate
from speechsvc.models import whisper_dir

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE_S = 0.5  # WhisperLive's segment ends are rounded to its own chunking


class PeerServer:
    def __init__(self, python: str, port: int, threads: int) -> None:
        code = (
            "from whisper_live.server import TranscriptionServer\n"
            f"TranscriptionServer().run('127.0.0.1', port={port}, backend='faster_whisper', "
            f"faster_whisper_custom_model_path={str(whisper_dir(Settings()))!r}, single_model=True, "
            "max_clients=256, max_connection_time=3600)\n"
        )
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CUDA_VISIBLE_DEVICES": ""}
        self.proc = subprocess.Popen([python, "-c", code], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.port = port
        time.sleep(8)  # it binds before loading the model; the first client waits for SERVER_READY anyway

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def peer_call(port: int, audio: StreamAudio, utterances: list[Utterance], frame_ms: int, delay: float,
                    language: str = "zh") -> CallResult:
    import websockets

    await asyncio.sleep(delay)
    result = CallResult(0)
    float_audio = audio.pcm[:, 0].astype(np.float32) / 32768.0
    messages: list[tuple[float, list[dict[str, Any]]]] = []
    async with websockets.connect(f"ws://127.0.0.1:{port}", max_size=None, open_timeout=120) as ws:
        uid = uuid.uuid4().hex
        await ws.send(json.dumps({"uid": uid, "language": language, "task": "transcribe", "model": "base",
                                  "use_vad": False, "send_last_n_segments": 50}))
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 300))
            if reply.get("message") == "SERVER_READY":
                break
            if reply.get("status") in ("WAIT", "ERROR"):
                result.refused = str(reply)
                return result

        async def receive() -> None:
            async for raw in ws:
                data = json.loads(raw)
                if "segments" in data:
                    messages.append((time.time(), data["segments"]))

        receiver = asyncio.get_running_loop().create_task(receive())
        step = 16000 * frame_ms // 1000
        t0 = time.time()
        start = time.perf_counter()
        for i in range(0, float_audio.size, step):
            await ws.send(float_audio[i : i + step].tobytes())
            wait = start + (i + step) / 16000 - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        await asyncio.sleep(3.0)  # let it finish the tail
        await ws.send(b"END_OF_AUDIO")
        await asyncio.sleep(1.0)
        receiver.cancel()
    completed: dict[float, str] = {}
    for u in utterances:
        final_at = next((at for at, segs in messages
                         if any(s.get("completed") and float(s["end"]) >= u.end_s - TOLERANCE_S for s in segs)), None)
        if final_at is None:
            result.missed += 1
        else:
            result.final_latency_s.append(final_at - (t0 + u.end_s))
        first = next((at for at, segs in messages if any(float(s["end"]) >= u.start_s + 0.3 for s in segs)), None)
        if first is not None:
            result.first_partial_s.append(first - (t0 + u.start_s))
    for _, segs in messages:
        for s in segs:
            if s.get("completed"):
                completed[float(s["start"])] = s["text"]
    text = "".join(completed[k] for k in sorted(completed))
    reference = "".join(u.text for u in utterances)
    result.edits_chars.append((error_rate(reference, text, "zh"), len(reference)))
    return result


async def peer_level(n: int, args: argparse.Namespace, audio: StreamAudio, utterances: list[Utterance]
                     ) -> dict[str, Any]:
    results = await asyncio.gather(*(peer_call(args.peer_port, audio, utterances, args.frame_ms, i * args.stagger)
                                     for i in range(n)))
    held = [r for r in results if not r.refused]
    finals = [x for r in held for x in r.final_latency_s]
    edits = sum(e * c for r in held for e, c in r.edits_chars)
    chars = sum(c for r in held for _, c in r.edits_chars)
    return {"calls": n, "held": len(held), "refused": n - len(held), "missed_utterances": sum(r.missed for r in held),
            "utterances": len(finals), "final_latency_s": percentiles(finals),
            "first_partial_s": percentiles([x for r in held for x in r.first_partial_s]),
            "cer": round(edits / chars, 4) if chars else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default="/work/peers/wl/bin/python")
    parser.add_argument("--peer-port", type=int, default=19090)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "peer_whisperlive.json")
    own, rest = parser.parse_known_args()
    args = parse_stream_args(rest)  # the stream harness's options: --calls, --seconds, --threads, ...
    args.peer_python, args.peer_port, args.out = own.peer_python, own.peer_port, own.out
    audio, utterances = load_reference(args.eval, args.file, args.seconds, args.telephone)
    env = {"machine": describe(), "device": "cpu", "compute_type": "int8", "threads": args.threads, "beam": 1,
           "frame_ms": args.frame_ms, "audio": f"{args.file}, first {args.seconds} s",
           "peer": "whisper-live 0.10.0 (faster-whisper 1.2.0 backend, single_model, use_vad false)"}
    sys.stdout.write(json.dumps(env, indent=2) + "\n")
    ours = ServerProcess(args)
    args.url = f"ws://127.0.0.1:{args.port}/v1/stream"
    peer = PeerServer(args.peer_python, args.peer_port, args.threads)
    rows = []
    try:
        for n in args.calls:  # alternate: speechsvc then WhisperLive at each level
            a = asyncio.run(run_level(n, args, audio, utterances, ours))
            b = asyncio.run(peer_level(n, args, audio, utterances))
            rows.append({"calls": n, "speechsvc": a, "whisperlive": b})
            for name, r in (("speechsvc", a), ("whisperlive", b)):
                f = r["final_latency_s"]
                sys.stdout.write(f"calls={n} {name:12s} held={r['held']} missed={r['missed_utterances']} "
                                 f"final p50/p95={f['p50']}/{f['p95']} s first-partial p50="
                                 f"{r['first_partial_s']['p50']} s CER={r['cer']}\n")
                sys.stdout.flush()
    finally:
        ours.stop()
        peer.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": env, "levels": rows}, indent=2))
    sys.stdout.write(f"wrote {args.out}\n")


if __name__ == "__main__":
    main()
