"""Batch throughput: speechsvc's batch path vs plain faster-whisper ``BatchedInferencePipeline``, same model
directory, files, threads, compute type, beam and language; audio seconds per wall second, with CER.

    python benchmarks/batch_throughput.py [--threads 2] [--batch-size 8] [--repeat 1]

Files: eval/long's 290 s Mandarin recording plus the gold/silver eval/asr_zh utterances (16 kHz), i.e. one
long call and many short ones. speechsvc runs ASR only (text, emotion, assist, QA and diarization off; PII redaction
off, so the CER sees the digits) for the like-for-like row, once more without the recorded-audio fallbacks
(sampling for doubt, the full-window hypothesis) for what they cost, and the full pipeline (VAD, ASR, intent,
sentiment, emotion, escalation, assist, QA, diarization of mono files) for a last row. Model loading is outside the
timed region for all; decoding the files is inside for all.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from speechsvc.batch.recording import analyze_recording
from speechsvc.config import Settings
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_counts
from speechsvc.models import whisper_dir
from speechsvc.runtime.engine import Engine
from speechsvc.speech.audio import decode_file

ROOT = Path(__file__).resolve().parent.parent


def load_set(eval_dir: Path) -> list[tuple[Path, str]]:
    long_dir = eval_dir / "long"
    rows = [r for r in csv.DictReader((long_dir / "manifest.csv").open()) if r["id"].startswith("aishellsample")]
    files = [(long_dir / r["file"], r["reference_text"]) for r in rows]
    zh = eval_dir / "asr_zh"
    files += [(zh / r["file"], r["reference_text"]) for r in csv.DictReader((zh / "manifest.csv").open())
              if r["transcript_quality"] in ("gold", "silver")]
    return files


def cer(hyps: list[str], refs: list[str]) -> float:
    edits = total = 0
    for h, r in zip(hyps, refs, strict=True):
        e, n = error_counts(r, h, "zh")
        edits += e
        total += n
    return round(edits / max(1, total), 4)


def run_faster_whisper(files: list[tuple[Path, str]], args: argparse.Namespace) -> dict[str, Any]:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    model = WhisperModel(str(whisper_dir(Settings())), device="cpu", compute_type=args.compute_type,
                         cpu_threads=args.threads, local_files_only=True)
    pipe = BatchedInferencePipeline(model)
    started = time.perf_counter()
    hyps, audio_s = [], 0.0
    for path, _ in files:
        audio, _ = decode_file(path)
        audio_s += audio.shape[1] / 16000
        segments, _ = pipe.transcribe(audio[0], language="zh", beam_size=1, batch_size=args.batch_size,
                                      vad_filter=True)
        hyps.append("".join(s.text for s in segments))  # consume the generator inside the timed region
    wall = time.perf_counter() - started
    return {"system": f"faster-whisper BatchedInferencePipeline (batch_size={args.batch_size}, vad_filter)",
            "audio_s": round(audio_s, 1), "wall_s": round(wall, 2), "audio_s_per_s": round(audio_s / wall, 2),
            "cer": cer(hyps, [r for _, r in files])}


# Recorded chunks are neither sampled for doubt nor given the full-window hypothesis (issue 27's third and fourth
# passes turned both on): what those accuracy choices cost a batch job.
NO_RECORDED_FALLBACK = {"asr_fallback_logprob": 0.0, "asr_fallback_window_s": 0.0}


def run_speechsvc(files: list[tuple[Path, str]], args: argparse.Namespace, full: bool,
                  tuned: dict[str, Any] | None = None) -> dict[str, Any]:
    settings = Settings(cpu_threads=args.threads, compute_type=args.compute_type, device="cpu",
                        asr_max_batch=args.batch_size, text_analysis=full, emotion=full, assist=full, qa=full,
                        diarize=full,
                        pii_redaction=False,  # the CER needs the spoken digits, not [PHONE]
                        grpc_port=-1,
                        **(tuned or {}))

    async def main() -> tuple[list[str], float, float]:
        engine = await asyncio.to_thread(Engine.load, settings)
        await engine.start()
        gate = asyncio.Semaphore(args.concurrency)

        async def one(path: Path) -> tuple[str, float]:
            async with gate:
                audio, _ = await asyncio.to_thread(decode_file, path)
                report = await analyze_recording(engine, audio, str(path), "zh")
                return "".join(s.text for s in report.segments), report.duration_s

        started = time.perf_counter()
        results = await asyncio.gather(*(one(p) for p, _ in files))
        wall = time.perf_counter() - started
        await engine.stop()
        return [h for h, _ in results], sum(d for _, d in results), wall

    hyps, audio_s, wall = asyncio.run(main())
    stages = "intent, sentiment, emotion, escalation, assist, QA, diarization"
    name = "speechsvc batch, " + (f"full pipeline (+{stages})" if full else "ASR only")
    if tuned:
        name += ", recorded chunks never sampled for doubt nor given the 30 s window"
    return {"system": f"{name} (max batch {args.batch_size}, {args.concurrency} files in flight)",
            "audio_s": round(audio_s, 1), "wall_s": round(wall, 2), "audio_s_per_s": round(audio_s / wall, 2),
            "cer": cer(hyps, [r for _, r in files])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batch_throughput.json")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import ctranslate2
    import faster_whisper

    env = {"machine": describe(), "device": "cpu", "compute_type": args.compute_type,
           "threads": args.threads, "beam_size": 1, "language": "zh", "faster_whisper": faster_whisper.__version__,
           "ctranslate2": ctranslate2.__version__, "model": str(whisper_dir(Settings()))}
    print(json.dumps(env, indent=2))
    files = load_set(args.eval)
    rows = []
    runs: list[Callable[[], dict[str, Any]]] = [
        lambda: run_faster_whisper(files, args), lambda: run_speechsvc(files, args, False),
        lambda: run_speechsvc(files, args, False, NO_RECORDED_FALLBACK), lambda: run_speechsvc(files, args, True)]
    for run in runs:
        row = run()
        rows.append(row)
        print(f"{row['system']}: {row['audio_s_per_s']} audio s / s (wall {row['wall_s']} s for {row['audio_s']} s), "
              f"CER {row['cer']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": env, "files": len(files), "results": rows}, ensure_ascii=False,
                                   indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
