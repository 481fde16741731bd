"""Streaming latency and capacity, measured from the outside.

N simulated callers stream real audio (eval/long, whose segments/*.json give each utterance's true
start and end) at real-time pace in fixed-size frames over WebSocket or gRPC, each with a separate
receive task. Per utterance: end of speech → final transcript, start of speech → first partial, and the
final's CER. Reports p50/p95/p99, partials delivered per second of speech, calls held and refused, server CPU
(per named thread, and the benchmark client's own beside it), the ASR worker's batches and peak RSS; writes
JSON and a PNG.

    speechsvc bench stream --calls 1 2 4            # fixed concurrency levels
    speechsvc bench stream --calls 8 16 --rotate 7.3 --jitter 1 --partials both --repeat 3
                                                    # partials on and off alternating on one server: the ratio
    speechsvc bench stream --sweep --calls 8        # largest N with final p95 <= --target and partials >= 0.5/s
    python benchmarks/stream_latency.py ...         # the same

``--partials both`` runs every level with partials on, then off (per call, the ``partials`` flag of the start
message), on the same server, ``--repeat`` times alternating, and reports the medians and the on/off ratio of
the final p95 measured pair by pair: runs vary with what else the machine does, so on and off are compared
side by side rather than across runs.

The server is started as a subprocess (`speechsvc serve`) with the given device, threads and compute type,
so its CPU time and peak RSS are its own. Use --url to measure a server that is already running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.clients.ws import StreamAudio, load_stream_audio, stream_ws
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_counts, error_rate

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
    stable_changed: int = 0  # partials whose stable_text does not extend the previous one's (must stay 0)
    # (edits, chars) of each utterance's last partial against its final: how near the last caption came.
    partial_edits: list[tuple[int, int]] = field(default_factory=list)
    speech_s: float = 0.0  # reference speech streamed
    # Per analysis event type (intent, emotion): seconds from each final to its utterance's event, and finals
    # whose event never came (skipped under load, or too short to judge).
    analysis_lag_s: dict[str, list[float]] = field(default_factory=dict)
    analysis_missing: dict[str, int] = field(default_factory=dict)


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


ANALYSIS_EVENTS = ("intent", "emotion")  # per-utterance analysis whose lag behind the final is reported


def score_call(call: int, events: list[dict[str, Any]], utterances: list[Utterance], t0: float) -> CallResult:
    """Match finals to reference utterances by time overlap; latencies against the wall-clock time at which
    the audio of the utterance's end had been sent (t0 + end)."""
    result = CallResult(call)
    finals = [e for e in events if e["type"] == "transcript.final"]
    partials = [e for e in events if e["type"] == "transcript.partial"]
    result.partials = len(partials)
    result.stable_changed = stable_violations(partials)
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
    for f in finals:
        mine = [p for p in partials if p.get("leg") == f.get("leg") and p.get("utterance") == f.get("utterance")]
        if mine and f["text"]:
            result.partial_edits.append(error_counts(f["text"], mine[-1]["text"], "zh"))
    for kind in ANALYSIS_EVENTS:
        arrived = {(e.get("leg"), e.get("utterance")): e["received_at"] for e in events if e["type"] == kind}
        if not arrived:
            continue  # the stage is off
        for f in finals:
            at = arrived.get((f.get("leg"), f.get("utterance")))
            if at is None:
                result.analysis_missing[kind] = result.analysis_missing.get(kind, 0) + 1
            else:
                result.analysis_lag_s.setdefault(kind, []).append(at - f["received_at"])
    return result


def stable_violations(partials: list[dict[str, Any]]) -> int:
    """Partials of an utterance whose committed ``stable_text`` does not start with the previous one's (by
    contract a committed prefix never changes)."""
    last: dict[tuple[str, int], str] = {}
    bad = 0
    for p in partials:
        key = (str(p.get("leg", "")), int(p.get("utterance", -1)))
        stable = str(p.get("stable_text", ""))
        if not stable.startswith(last.get(key, "")):
            bad += 1
        last[key] = stable
    return bad


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


async def one_call(call: int, args: argparse.Namespace, audio: StreamAudio, utterances: list[Utterance],
                   partials: bool = True) -> CallResult:
    audio, utterances = rotated(audio, utterances, call * args.rotate)
    # Arrivals: every --stagger seconds on average (or all within --spread seconds), with a seeded random jitter
    # (Poisson-like, reproducible).
    stagger = args.spread / max(1, args.level_calls) if args.spread else args.stagger
    await asyncio.sleep(call * stagger * (1 + args.jitter * (random.Random(call).random() - 0.5)))
    t0 = time.time()
    try:
        if args.transport == "grpc":
            from speechsvc.clients.grpc_client import stream_grpc

            events = await stream_grpc(args.grpc_target, audio, frame_ms=args.frame_ms, speed=1.0, partials=partials)
        else:
            events = await stream_ws(args.url, audio, frame_ms=args.frame_ms, speed=1.0, partials=partials)
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


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of process ``pid`` (threads sharing a name are summed; a trailing number is
    dropped so a pool counts as one; the main thread, which runs the event loop, is ``loop``): /proc/PID/task/*/stat,
    utime + stime."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        key = "loop" if task.name == str(pid) else re.sub(r"[_-]?\d+$", "", name) or name
        out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_share(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """Percent of one core per thread name over ``wall`` seconds (threads under 0.5 % left out)."""
    shares = {k: 100 * (v - before.get(k, 0.0)) / wall for k, v in after.items()}
    return dict(sorted(((k, round(v, 1)) for k, v in shares.items() if v >= 0.5), key=lambda kv: -kv[1]))


def scrape_batches(url: str) -> dict[str, float]:
    """The server's inference-worker counters from /metrics: items, batches and model seconds per worker."""
    out: dict[str, float] = {}
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return out
    wanted = {"speechsvc_inference_batch_size_sum": "items", "speechsvc_inference_batch_size_count": "batches",
              "speechsvc_inference_batch_seconds_sum": "model_s"}
    for line in text.splitlines():
        m = re.match(r'(\w+)\{worker="([^"]+)"\} ([0-9.e+-]+)$', line)
        if m and m.group(1) in wanted:
            out[f"{m.group(2)}.{wanted[m.group(1)]}"] = float(m.group(3))
        m = re.match(r'speechsvc_rejections_total\{reason="([^"]+)"\} ([0-9.e+-]+)$', line)
        if m:
            out[f"rejected.{m.group(1)}"] = float(m.group(2))
        m = re.match(r'speechsvc_asr_fallbacks_total\{kind="([^"]+)"\} ([0-9.e+-]+)$', line)
        if m:
            out[f"asr.fallbacks_{m.group(1)}"] = float(m.group(2))
    return out


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
        if args.server_cwd:  # another checkout's server (before/after comparisons with one client)
            env["PYTHONPATH"] = str(args.server_cwd)
        # The server's log goes to a file: a pipe nobody reads fills up and blocks the server mid-run.
        self.log = tempfile.NamedTemporaryFile("w", prefix="speechsvc-bench-server-", suffix=".log", delete=False)
        say(f"server log: {self.log.name}")
        self.proc = subprocess.Popen(cmd, env=env, stderr=self.log, text=True, cwd=args.server_cwd)
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
                    server: ServerProcess | None, partials: bool = True) -> dict[str, Any]:
    cpu0 = server.cpu_seconds() if server else 0.0
    threads0 = thread_cpu(server.proc.pid) if server else {}
    client0 = thread_cpu(os.getpid())
    metrics_url = args.url.replace("ws://", "http://").split("/v1/")[0] + "/metrics"
    batches0 = scrape_batches(metrics_url)
    wall0 = time.time()
    args.level_calls = n
    results = await asyncio.gather(*(one_call(i, args, audio, utterances, partials) for i in range(n)))
    wall = time.time() - wall0
    batches = {k: round(v - batches0.get(k, 0.0), 2) for k, v in scrape_batches(metrics_url).items()
               if v - batches0.get(k, 0.0) or k.startswith("asr.fallbacks")}  # no fallback is a finding too
    held = [r for r in results if not r.refused]
    finals = [x for r in held for x in r.final_latency_s]
    firsts = [x for r in held for x in r.first_partial_s]
    edits = sum(e * c for r in held for e, c in r.edits_chars)
    chars = sum(c for r in held for _, c in r.edits_chars)
    speech_s = sum(r.speech_s for r in held)
    level: dict[str, Any] = {
        "calls": n,
        "partials": partials,
        "held": len(held),
        "refused": len(results) - len(held),
        "refusals": sorted({r.refused for r in results if r.refused})[:3],
        "utterances": len(finals),
        "missed_utterances": sum(r.missed for r in held),
        "final_latency_s": percentiles(finals),
        "first_partial_s": percentiles(firsts),
        "cer": round(edits / chars, 4) if chars else None,
        # Partials actually delivered per second of speech (the cadence asks for about one).
        "partials_per_speech_s": round(sum(r.partials for r in held) / max(1e-9, speech_s), 2),
        "stable_text_changed": sum(r.stable_changed for r in held),
        # CER of each utterance's last partial against its final (partial accuracy; lower is nearer).
        "last_partial_cer": round(sum(e for r in held for e, _ in r.partial_edits)
                                  / max(1, sum(c for r in held for _, c in r.partial_edits)), 4),
        # How long after its final each utterance's analysis came (niced analysis threads yield to ASR), and
        # finals whose analysis never came.
        "analysis_lag_s": {k: percentiles([x for r in held for x in r.analysis_lag_s.get(k, [])])
                           for k in ANALYSIS_EVENTS if any(k in r.analysis_lag_s for r in held)},
        "analysis_missing": {k: sum(r.analysis_missing.get(k, 0) for r in held) for k in ANALYSIS_EVENTS
                             if any(k in r.analysis_lag_s or k in r.analysis_missing for r in held)},
        "wall_s": round(wall, 1),
        "server_batches": batches,
        # The benchmark's own process shares the machine: its CPU is reported beside the server's.
        "client_cpu_percent": cpu_share(client0, thread_cpu(os.getpid()), wall),
    }
    if server:
        level["server_cpu_percent"] = round(100 * (server.cpu_seconds() - cpu0) / wall, 1)
        level["server_thread_cpu_percent"] = cpu_share(threads0, thread_cpu(server.proc.pid), wall)
        level["server_peak_rss_mb"] = round(server.peak_rss_mb(), 1)
    return level


def passes(level: dict[str, Any], args: argparse.Namespace) -> bool:
    """Within target: every call held, final p95 <= --target and, with partials on, partials >= --min-partials
    per second of speech."""
    p95 = level["final_latency_s"]["p95"]
    ok = p95 is not None and p95 <= args.target and not level["refused"]
    return bool(ok and (not level["partials"] or level["partials_per_speech_s"] >= args.min_partials))


def summarize(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per number of calls: medians over the repeats, partials on and off, and the on/off ratio of the final
    p95 measured pair by pair (an on run and the off run right after it)."""
    rows = []
    for n in dict.fromkeys(lv["calls"] for lv in levels):
        row: dict[str, Any] = {"calls": n}
        for mode, key in ((True, "on"), (False, "off")):
            runs = [lv for lv in levels if lv["calls"] == n and lv["partials"] is mode]
            if not runs:
                continue

            def median(get: Any, of: list[dict[str, Any]] = runs) -> float | None:
                values = [v for v in (get(lv) for lv in of) if v is not None]
                return round(statistics.median(values), 3) if values else None

            row[key] = {
                "runs": len(runs),
                "final_p95_s": median(lambda lv: lv["final_latency_s"]["p95"]),
                "final_p50_s": median(lambda lv: lv["final_latency_s"]["p50"]),
                "first_partial_p95_s": median(lambda lv: lv["first_partial_s"]["p95"]),
                "partials_per_speech_s": median(lambda lv: lv["partials_per_speech_s"]),
                "cer": median(lambda lv: lv["cer"]),
                "last_partial_cer": median(lambda lv: lv.get("last_partial_cer") if lv["partials"] else None),
                "server_cpu_percent": median(lambda lv: lv.get("server_cpu_percent")),
                "missed_utterances": sum(lv["missed_utterances"] for lv in runs),
                "refused": sum(lv["refused"] for lv in runs),
            }
        on = [lv for lv in levels if lv["calls"] == n and lv["partials"]]
        off = [lv for lv in levels if lv["calls"] == n and not lv["partials"]]
        ratios = [a["final_latency_s"]["p95"] / b["final_latency_s"]["p95"] for a, b in zip(on, off, strict=False)
                  if a["final_latency_s"]["p95"] and b["final_latency_s"]["p95"]]
        if ratios:
            row["final_p95_on_off_ratio"] = round(statistics.median(ratios), 3)
        rows.append(row)
    return rows


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
        "server_checkout": str(args.server_cwd or ROOT),
        "note": args.note,
    }


def plot(levels: list[dict[str, Any]], path: Path, title: str) -> None:
    """Latency against calls: medians over the repeats, partials on (solid) and off (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summarize(levels)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, style, label in (("on", "s-", "final p95, partials on"), ("off", "o--", "final p95, partials off")):
        pts = [(r["calls"], r[key]["final_p95_s"]) for r in rows if key in r and r[key]["final_p95_s"] is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=label)
    pts = [(r["calls"], r["on"]["first_partial_p95_s"]) for r in rows
           if "on" in r and r["on"]["first_partial_p95_s"] is not None]
    if pts:
        ax.plot(*zip(*pts, strict=True), "x:", label="start of speech → first partial, p95")
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
    p.add_argument("--sweep", action="store_true",
                   help="from the first --calls, double N until a level misses the target (final p95 > --target, "
                        "partials < --min-partials/s or a call refused)")
    p.add_argument("--target", type=float, default=0.8, help="final p95 target in seconds")
    p.add_argument("--min-partials", type=float, default=0.5, help="partials per second of speech to count as held")
    p.add_argument("--partials", choices=["on", "off", "both"], default="on",
                   help="both: every level with partials on, then off, on the same server (the on/off ratio)")
    p.add_argument("--repeat", type=int, default=1, help="run every level this many times (alternating on/off)")
    p.add_argument("--max-sweep", type=int, default=64)
    p.add_argument("--transport", choices=["ws", "grpc"], default="ws")
    p.add_argument("--frame-ms", type=int, default=100)
    p.add_argument("--stagger", type=float, default=0.37, help="mean seconds between call starts")
    p.add_argument("--spread", type=float, default=0.0,
                   help="start the N calls of a level within this many seconds (stagger = SPREAD / N) instead of "
                        "every --stagger seconds: large N on a GPU")
    p.add_argument("--budget-s", type=float, default=0.0,
                   help="stop a sweep before a level that would start after this many seconds (0: no limit)")
    p.add_argument("--jitter", type=float, default=0.0,
                   help="spread of each start around its slot, as a fraction of --stagger (e.g. 1 = ±50 %%)")
    p.add_argument("--rotate", type=float, default=0.0,
                   help="call k streams the recording from k x ROTATE seconds in (wrapping), so utterance ends "
                        "do not line up across calls")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="ASR threads per lane (the server's ASR_INTER_THREADS "
                   "lanes, 2 by default, run side by side)")
    p.add_argument("--compute-type", default=None)
    p.add_argument("--max-calls", type=int, default=256)
    p.add_argument("--port", type=int, default=18300)
    p.add_argument("--url", help="measure a running server instead of starting one")
    p.add_argument("--server-cwd", type=Path, help="start the server from this checkout (before/after runs)")
    p.add_argument("--note", default="", help="recorded in the results (e.g. what else ran on the machine)")
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
    levels: list[dict[str, Any]] = []
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.partials]
    try:
        counts = list(args.calls)
        if args.sweep:
            counts = []
            n = args.calls[0]
            while n <= args.max_sweep:
                counts.append(n)
                n *= 2
        started = time.time()
        for n in counts:
            if args.budget_s and levels and time.time() - started > args.budget_s:
                say(f"time budget of {args.budget_s:.0f} s spent: stopping before {n} calls")
                break
            for _ in range(args.repeat):
                for mode in modes:
                    level = await run_level(n, args, audio, utterances, server, mode)
                    levels.append(level)
                    say(describe_level(level))
            if args.sweep and not any(passes(lv, args) for lv in levels if lv["calls"] == n and lv["partials"]
                                      is modes[0]):
                break
    finally:
        if server:
            server.stop()
    ok = [lv["calls"] for lv in levels if lv["partials"] is modes[0] and passes(lv, args)]
    summary = summarize(levels)
    report = {"environment": env, "target_p95_s": args.target, "min_partials_per_speech_s": args.min_partials,
              "max_calls_within_target": max(ok, default=0), "summary": summary, "levels": levels}
    for row in summary:
        say(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    plot(levels, args.out.with_suffix(".png"), f"speechsvc {env['transport']} on {env['machine']} ({env['device']})")
    say(f"max calls with final p95 <= {args.target} s (and partials >= {args.min_partials}/s when on): "
        f"{report['max_calls_within_target']}")
    say(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return report


def describe_level(level: dict[str, Any]) -> str:
    f, pp = level["final_latency_s"], level["first_partial_s"]
    return (f"calls={level['calls']:3d} partials={'on ' if level['partials'] else 'off'} held={level['held']:3d} "
            f"refused={level['refused']} utts={level['utterances']} missed={level['missed_utterances']} "
            f"final p50/p95/p99={f['p50']}/{f['p95']}/{f['p99']} s first-partial p50/p95={pp['p50']}/{pp['p95']} s "
            f"partials/s={level['partials_per_speech_s']} CER={level['cer']} cpu={level.get('server_cpu_percent')}% "
            f"threads={level.get('server_thread_cpu_percent')} client={level['client_cpu_percent']} "
            f"batches={level['server_batches']}")


def main(argv: list[str] | None = None) -> None:
    asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    main()

