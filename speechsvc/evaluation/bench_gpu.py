"""The GPU capacity run, prepared: one command that a machine with an NVIDIA GPU finishes in under 8 minutes.

    speechsvc bench gpu                      # on the GPU machine; writes benchmarks/results/gpu.json (+ .png)
    speechsvc bench gpu --device cpu --tiny  # the same code path in seconds on a CPU (the test suite runs it)

Two parts, one JSON:

1. **Batch throughput** (``bench batch``): ASR items per second and seconds per batch against batch size
   (1 to 32), finals and partials, on the device: where batching pays.
2. **Calls held** (``bench stream --sweep``): realistic arrivals (each call its own stretch of the recording, all
   started within ``--spread`` seconds), partials on, from 16 calls doubling until a level misses final p95 <=
   0.8 s or partials >= 0.5 per second of speech, or the time budget is spent. The ASR batch is not bounded in
   cost on a GPU (``SPEECHSVC_ASR_MAX_BATCH_COST_S=0`` unless set): batches fill the device.

The report holds both parts, the machine, and ``max_calls_within_target``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from speechsvc.evaluation import bench_batch, bench_stream

ROOT = bench_stream.ROOT


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=4, help="CPU threads for the CPU side of the server")
    p.add_argument("--start", type=int, default=16, help="first number of calls of the sweep")
    p.add_argument("--max-calls", type=int, default=1024)
    p.add_argument("--seconds", type=float, default=45.0, help="audio streamed per call")
    p.add_argument("--spread", type=float, default=10.0, help="all calls of a level start within this many s")
    p.add_argument("--budget-s", type=float, default=330.0, help="no new sweep level after this many seconds")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--utterances", type=int, default=64)
    p.add_argument("--tiny", action="store_true",
                   help="a seconds-long configuration (1 call, 2 utterances) that checks the path, not the device")
    p.add_argument("--port", type=int, default=18400)
    p.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu.json")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    os.environ.setdefault("SPEECHSVC_ASR_MAX_BATCH_COST_S", "0")  # the server inherits it: batches fill the GPU
    batch_out = args.out.with_name(args.out.stem + "_batch.json")
    batch_argv = ["--device", args.device, "--threads", str(args.threads), "--eval", str(args.eval),
                  "--out", str(batch_out)]
    if args.tiny:
        batch_argv += ["--batch", "1", "2", "--utterances", "2"]
    else:
        batch_argv += ["--batch", *map(str, args.batch), "--utterances", str(args.utterances)]
    batch = bench_batch.measure(bench_batch.parse_args(batch_argv))
    stream_argv = ["--device", args.device, "--threads", str(args.threads), "--eval", str(args.eval),
                   "--rotate", "7.3", "--jitter", "1", "--port", str(args.port), "--max-calls", str(args.max_calls),
                   "--out", str(args.out.with_name(args.out.stem + "_stream.json"))]
    if args.tiny:
        stream_argv += ["--calls", "1", "--seconds", "8"]
    else:
        budget = max(60.0, args.budget_s - (time.time() - started))
        stream_argv += ["--sweep", "--calls", str(args.start), "--max-sweep", str(args.max_calls),
                        "--seconds", str(args.seconds), "--spread", str(args.spread), "--budget-s", str(budget)]
    stream = asyncio.run(bench_stream.main_async(bench_stream.parse_args(stream_argv)))
    report = {"machine": stream["environment"]["machine"], "device": args.device, "tiny": args.tiny,
              "wall_s": round(time.time() - started, 1), "max_calls_within_target": stream["max_calls_within_target"],
              "target_p95_s": stream["target_p95_s"], "min_partials_per_speech_s": stream["min_partials_per_speech_s"],
              "batch_throughput": batch, "stream": stream}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    bench_stream.say(f"calls held (final p95 <= {report['target_p95_s']} s, partials on): "
                     f"{report['max_calls_within_target']}; {report['wall_s']} s; wrote {args.out}")
    return report


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
