"""Streaming latency and capacity, measured from the outside.

N simulated callers stream real audio (eval/long, whose segments/*.json give each utterance's true
start and end) at real-time pace in fixed-size frames over WebSocket or gRPC, each with a separate
receive task. Per utterance: end of speech → final transcript, start of speech → first partial, and the
final's CER. Reports p50/p95/p99, calls held and refused, server CPU and peak RSS; writes JSON and a PNG.

    speechsvc bench stream --calls 1 2 4            # fixed concurrency levels
    speechsvc bench stream --sweep --target 1.5     # largest N with p95 final latency <= target
    python benchmarks/stream_latency.py ...         # the same

The server is started as a subprocess (`speechsvc serve`) with the given device, threads and compute type,
so its CPU time and peak RSS are its own. Use --url to measure a server that is already running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.clients.ws import StreamAudio, load_stream_audio, stream_ws
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_rate

ROOT = Path(__file__).resolve().parents[2]  # the repository (../shared/eval beside it)


def say(text: str, flush: bool = True) -> None:
    """The benchmark's report goes to stdout (this is a program, not library code)."""
    sys.stdout.write(text + "\n")
    if flush:
        sys.stdout.flush()
DEFAULT_FILE = "aishellsample_S0150_S0252_concat_read"


@dataclass
class Utterance:
    index: int
    start_s: float
    end_s: float
    text: str


@dataclass
class CallResult:
    call: int
    final_latency_s: list[float] = field(default_factory=list)
    first_partial_s: list[float] = field(default_factory=list)
    edits_chars: list[tuple[float, int]] = field(default_factory=list)
    missed: int = 0
    refused: str = ""
    partials: int = 0  # partial events received
    speech_s: float = 0.0  # reference speech streamed


def load_reference(
    eval_dir: Path, name: str, seconds: float | None, telephone: bool
) -> tuple[StreamAudio, list[Utterance]]:
    folder = eval_dir / "long"
    path = folder / ("telephone_sim_8k" if telephone else "audio") / f"{name}.wav"
    segments = json.loads((folder / "segments" / f"{name}.json").read_text())
    audio = load_stream_audio(path)
    utterances = [Utterance(i, s["start"], s["end"], s["text"]) for i, s in enumerate(segments)]
    if seconds:
        audio = StreamAudio(audio.pcm[: int(seconds * audio.sample_rate)], audio.sample_rate, audio.channels)
        utterances = [u for u in utterances if u.end_s <= seconds]
    return audio, utterances


def score_call(call: int, events: list[dict[str, Any]], utterances: list[Utterance], t0: float) -> CallResult:
    """Match finals to reference utterances by time overlap; latencies against the wall-clock time at which
    the audio of the utterance's end had been sent (t0 + end)."""
    result = CallResult(call)
    finals = [e for e in events if e["type"] == "transcript.final"]
    partials = [e for e in events if e["type"] == "transcript.partial"]
    result.partials = len(partials)
    result.speech_s = sum(u.end_s - u.start_s for u in utterances)
    for u in utterances:
        overlapping = [f for f in finals if f["start_ms"] / 1000 < u.end_s and f["end_ms"] / 1000 > u.start_s]
        if not overlapping:
            result.missed += 1
            continue
        last = max(overlapping, key=lambda f: f["received_at"])
        result.final_latency_s.append(last["received_at"] - (t0 + u.end_s))
        text = "".join(f["text"] for f in sorted(overlapping, key=lambda f: f["start_ms"]))
        result.edits_chars.append((error_rate(u.text, text, "zh"), len(u.text)))
        firsts = [p["received_at"] for p in partials
                  if p["start_ms"] / 1000 < u.end_s and p["end_ms"] / 1000 > u.start_s]
        if firsts:
            result.first_partial_s.append(min(firsts) - (t0 + u.start_s))
    return result


def rotated(audio: StreamAudio, utterances: list[Utterance], offset_s: float) -> tuple[StreamAudio, list[Utterance]]:
    """The recording started ``offset_s`` in and wrapped around, so concurrent calls speak different stretches
    and their utterance ends do not line up; utterances cut by the wrap point are left out of the scoring."""
    duration = audio.pcm.shape[0] / audio.sample_rate
    offset_s %= duration
    if not offset_s:
        return audio, utterances
    cut = int(offset_s * audio.sample_rate)
    pcm = np.concatenate([audio.pcm[cut:], audio.pcm[:cut]])
    moved = []
    for u in utterances:
        if u.start_s >= offset_s:
            moved.append(Utterance(u.index, u.start_s - offset_s, u.end_s - offset_s, u.text))
        elif u.end_s <= offset_s:
            moved.append(Utterance(u.index, u.start_s + duration - offset_s, u.end_s + duration - offset_s, u.text))
    return StreamAudio(pcm, audio.sample_rate, audio.channels), sorted(moved, key=lambda u: u.start_s)


async def one_call(call: int, args: argparse.Namespace, audio: StreamAudio, utterances: list[Utterance]) -> CallResult:
    audio, utterances = rotated(audio, utterances, call * args.rotate)
    # Arrivals: every --stagger seconds on average, with a seeded random jitter (Poisson-like, reproducible).
    await asyncio.sleep(call * args.stagger * (1 + args.jitter * (random.Random(call).random() - 0.5)))
    t0 = time.time()
    try:
        if args.transport == "grpc":
            from speechsvc.clients.grpc_client import stream_grpc

            events = await stream_grpc(args.grpc_target, audio, frame_ms=args.frame_ms, speed=1.0)
        else:
            events = await stream_ws(args.url, audio, frame_ms=args.frame_ms, speed=1.0)
    except Exception as e:  # noqa: BLE001 - a refused call is a result of the benchmark, recorded per call
        return CallResult(call, refused=f"{type(e).__name__}: {e}")
    if not events or events[0]["type"] != "ready":
        return CallResult(call, refused=json.dumps(events[:1]))
    # t0 = when the first frame was sent; the ready round trip is not part of the media clock.
    t0 = events[0]["received_at"]
    return score_call(call, events, utterances, t0)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "mean": None}
    arr = np.array(values)
    return {
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
        "p99": round(float(np.percentile(arr, 99)), 3),
        "mean": round(float(arr.mean()), 3),
    }


class ServerProcess:
    """`speechsvc serve` as a subprocess; reports its CPU seconds and peak RSS."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        cmd = [sys.executable, "-m", "speechsvc.cli", "--log-level", "WARNING", "serve", "--port", str(args.port),
               "--grpc-port", str(args.port + 1), "--device", args.device, "--threads", str(args.threads),
               "--max-calls", str(args.max_calls)]
        if args.compute_type:
            cmd += ["--compute-type", args.compute_type]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        self.proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("server did not become ready")

    def cpu_seconds(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return float(t.user + t.system)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def run_level(n: int, args: argparse.Namespace, audio: StreamAudio, utterances: list[Utterance],
                    server: ServerProcess | None) -> dict[str, Any]:
    cpu0 = server.cpu_seconds() if server else 0.0
    wall0 = time.time()
    results = await asyncio.gather(*(one_call(i, args, audio, utterances) for i in range(n)))
    wall = time.time() - wall0
    held = [r for r in results if not r.refused]
    finals = [x for r in held for x in r.final_latency_s]
    partials = [x for r in held for x in r.first_partial_s]
    edits = sum(e * c for r in held for e, c in r.edits_chars)
    chars = sum(c for r in held for _, c in r.edits_chars)
    level = {
        "calls": n,
        "held": len(held),
        "refused": len(results) - len(held),
        "refusals": sorted({r.refused for r in results if r.refused})[:3],
        "utterances": len(finals),
        "missed_utterances": sum(r.missed for r in held),
        "final_latency_s": percentiles(finals),
        "first_partial_s": percentiles(partials),
        "cer": round(edits / chars, 4) if chars else None,
        # Partials actually delivered per second of speech (the cadence asks for about one).
        "partials_per_speech_s": round(sum(r.partials for r in held) / max(1e-9, sum(r.speech_s for r in held)), 2),
        "wall_s": round(wall, 1),
    }
    if server:
        level["server_cpu_percent"] = round(100 * (server.cpu_seconds() - cpu0) / wall, 1)
        level["server_peak_rss_mb"] = round(server.peak_rss_mb(), 1)
    return level


def environment(args: argparse.Namespace) -> dict[str, Any]:
    import ctranslate2
    import faster_whisper

    return {
        "machine": describe(),
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
        "device": args.device,
        "compute_type": args.compute_type or "default (int8 on CPU, float16 on CUDA)",
        "beam_size": 1,
        "threads": args.threads,
        "transport": args.transport,
        "frame_ms": args.frame_ms,
        "audio": f"{args.file}{' (telephone 8 kHz)' if args.telephone else ''}, first {args.seconds} s",
        "arrivals": f"every {args.stagger} s, jitter {args.jitter}, call k starts {args.rotate} x k s into the audio",
        "server_settings": {k: v for k, v in os.environ.items() if k.startswith("SPEECHSVC_")},
    }


def plot(levels: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [lv["calls"] for lv in levels]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, style in (("p50", "o-"), ("p95", "s-"), ("p99", "^--")):
        ax.plot(xs, [lv["final_latency_s"][key] for lv in levels], style, label=f"end of speech → final, {key}")
    ax.plot(xs, [lv["first_partial_s"]["p50"] for lv in levels], "x:", label="start of speech → first partial, p50")
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel("seconds")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    p.add_argument("--file", default=DEFAULT_FILE)
    p.add_argument("--telephone", action="store_true", help="stream the 8 kHz telephone copy")
    p.add_argument("--seconds", type=float, default=60.0, help="stream this much of the file per call")
    p.add_argument("--calls", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--sweep", action="store_true", help="double N until p95 final latency exceeds --target")
    p.add_argument("--target", type=float, default=1.5)
    p.add_argument("--max-sweep", type=int, default=64)
    p.add_argument("--transport", choices=["ws", "grpc"], default="ws")
    p.add_argument("--frame-ms", type=int, default=100)
    p.add_argument("--stagger", type=float, default=0.37, help="mean seconds between call starts")
    p.add_argument("--jitter", type=float, default=0.0,
                   help="spread of each start around its slot, as a fraction of --stagger (e.g. 1 = ±50 %%)")
    p.add_argument("--rotate", type=float, default=0.0,
                   help="call k streams the recording from k x ROTATE seconds in (wrapping), so utterance ends "
                        "do not line up across calls")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compute-type", default=None)
    p.add_argument("--max-calls", type=int, default=256)
    p.add_argument("--port", type=int, default=18300)
    p.add_argument("--url", help="measure a running server instead of starting one")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stream_latency.json")
    args = p.parse_args(argv)
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    audio, utterances = load_reference(args.eval, args.file, args.seconds, args.telephone)
    server = None
    if not args.url:
        server = ServerProcess(args)
        args.url = f"ws://127.0.0.1:{args.port}/v1/stream"
        args.grpc_target = f"127.0.0.1:{args.port + 1}"
    env = environment(args)
    say(json.dumps(env, indent=2))
    levels = []
    try:
        counts = args.calls
        if args.sweep:
            counts = []
            n = 1
            while n <= args.max_sweep:
                counts.append(n)
                n *= 2
        for n in counts:
            level = await run_level(n, args, audio, utterances, server)
            levels.append(level)
            f, pp = level["final_latency_s"], level["first_partial_s"]
            say(f"calls={n:3d} held={level['held']:3d} refused={level['refused']} utts={level['utterances']} "
                  f"missed={level['missed_utterances']} final p50/p95/p99={f['p50']}/{f['p95']}/{f['p99']} s "
                  f"first-partial p50/p95={pp['p50']}/{pp['p95']} s partials/s={level['partials_per_speech_s']} "
                  f"CER={level['cer']} "
                  f"cpu={level.get('server_cpu_percent')}% rss={level.get('server_peak_rss_mb')} MB")
            if args.sweep and (f["p95"] is None or f["p95"] > args.target or level["refused"]):
                break
    finally:
        if server:
            server.stop()
    ok = [lv["calls"] for lv in levels if lv["final_latency_s"]["p95"] is not None
          and lv["final_latency_s"]["p95"] <= args.target and not lv["refused"]]
    report = {"environment": env, "target_p95_s": args.target, "max_calls_within_target": max(ok, default=0),
              "levels": levels}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    plot(levels, args.out.with_suffix(".png"), f"speechsvc {env['transport']} on {env['machine']} ({env['device']})")
    say(f"max calls with p95 final latency <= {args.target} s: {report['max_calls_within_target']}")
    say(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return report


def main(argv: list[str] | None = None) -> None:
    asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    main()

