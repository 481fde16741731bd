"""The GPU capacity run (`speechsvc bench gpu`) in its tiny CPU configuration, so the command a GPU machine runs
cannot rot: batch throughput and a one-call stream level through a real server subprocess, one JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.datasets import EVAL
from tests.support.net import free_port

pytestmark = pytest.mark.model



@pytest.mark.skipif(not (EVAL / "long" / "segments").exists(), reason="../shared/eval/long is not here")
def test_tiny_gpu_run_on_cpu_writes_the_report(tmp_path: Path) -> None:
    from speechsvc.evaluation.bench_gpu import parse_args, run

    out = tmp_path / "gpu.json"
    run(parse_args(["--device", "cpu", "--threads", "2", "--tiny", "--port", str(free_port()), "--out", str(out)]))
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["tiny"]
    rows = report["batch_throughput"]["rows"]
    assert {(r["kind"], r["batch"]) for r in rows} == {(k, b) for k in ("final", "partial") for b in (1, 2)}
    assert all(r["items_per_s"] > 0 for r in rows)
    (level,) = report["stream"]["levels"]
    assert level["calls"] == 1 and level["held"] == 1 and level["utterances"] >= 1
    assert level["final_latency_s"]["p95"] is not None and "asr.items" in level["server_batches"]
    assert (tmp_path / "gpu_stream.png").exists()
