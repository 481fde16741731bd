"""Running batch jobs: locally (one engine, several recordings in flight so their segments batch together)
or on a Ray cluster (Ray Data ``map_batches`` over stateful actors, each loading the models once).

Resumable: a recording whose JSON output exists is skipped, and every output is written atomically, so a
crash loses nothing already done. A recording that fails is reported (``errors.jsonl``) and the job goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from speechsvc.batch.audio_redaction import Mode, redact_recording, wav_bytes
from speechsvc.batch.files import load_audio
from speechsvc.batch.outputs import OutputDir, is_done, output_name, write_job_summary, write_outputs
from speechsvc.batch.recording import analyze_recording
from speechsvc.config import Settings
from speechsvc.errors import SpeechsvcError
from speechsvc.runtime.engine import Engine

log = logging.getLogger(__name__)


@dataclass
class JobProgress:
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    audio_s: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)


def _record_error(out: OutputDir, item: str, message: str) -> None:
    out.append_line("errors.jsonl", json.dumps({"input": item, "error": message, "at": time.time()},
                                               ensure_ascii=False))


async def run_local(
    engine: Engine,
    items: list[str],
    out: OutputDir,
    formats: list[str],
    language: str | None,
    concurrency: int = 4,
    on_progress: Callable[[JobProgress, float], None] | None = None,
    words: bool = False,
    redact_audio: Mode | None = None,
    agents: Mapping[str, str] | None = None,
) -> JobProgress:
    """Analyse every item not already done; ``concurrency`` recordings in flight share the workers.

    ``words`` adds word timings to the reports; ``redact_audio`` ("beep" or "silence") also writes each
    recording with its redacted spans covered (it needs the timings, so it implies ``words``); ``agents``
    (input -> agent id, from a manifest) goes into the reports."""
    agents = agents or {}
    progress = JobProgress(total=len(items))
    gate = asyncio.Semaphore(concurrency)

    async def one(item: str) -> None:
        if await asyncio.to_thread(is_done, out, item):
            progress.skipped += 1
            if on_progress:
                on_progress(progress, 0.0)
            return
        async with gate:
            try:
                audio, rate = await asyncio.to_thread(load_audio, item, engine.settings.max_recording_s)
                report = await analyze_recording(engine, audio, item, language, words=words or bool(redact_audio),
                                                 agent_id=agents.get(item), source_rate=rate)
                covered = None
                if redact_audio:
                    covered = await asyncio.to_thread(lambda: wav_bytes(redact_recording(audio, report, redact_audio)))
                await asyncio.to_thread(write_outputs, out, item, report, formats, covered)
            except (SpeechsvcError, OSError, ValueError) as e:
                progress.failed += 1
                progress.errors[item] = f"{type(e).__name__}: {e}"
                _record_error(out, item, progress.errors[item])
                log.error("%s: %s", item, e)
                if on_progress:
                    on_progress(progress, 0.0)
                return
        progress.done += 1
        progress.audio_s += report.duration_s
        if on_progress:
            on_progress(progress, report.duration_s)

    await asyncio.gather(*(one(item) for item in items))
    await asyncio.to_thread(write_job_summary, out, items, progress.errors)
    return progress


class RayAnalyzer:
    """Ray Data stateful UDF: one engine (models loaded once) per actor, on the actor's own event loop."""

    def __init__(self, settings_json: str, language: str | None, formats: list[str], words: bool = False,
                 agents: dict[str, str] | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = Engine.load(Settings.model_validate_json(settings_json))
        self.loop.run_until_complete(self.engine.start())
        self.language = language
        self.formats = formats
        self.words = words
        self.agents = agents or {}

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from speechsvc.batch.writers import WRITERS

        async def one(item: str) -> dict[str, Any]:
            try:
                audio, rate = await asyncio.to_thread(load_audio, item, self.engine.settings.max_recording_s)
                report = await analyze_recording(self.engine, audio, item, self.language, words=self.words,
                                                 agent_id=self.agents.get(item), source_rate=rate)
            except (SpeechsvcError, OSError, ValueError) as e:
                return {"path": item, "ok": False, "error": f"{type(e).__name__}: {e}", "report": "", "extra": "{}"}
            extra = {fmt: WRITERS[fmt](report.transcript()) for fmt in self.formats if fmt != "json"}
            return {"path": item, "ok": True, "error": "", "report": report.to_json(), "extra": json.dumps(extra)}

        async def all_of_batch() -> list[dict[str, Any]]:
            return list(await asyncio.gather(*(one(str(p)) for p in batch["path"])))

        # Ray calls the UDF from its own threads; the engine's workers live on this actor's loop.
        rows = self.loop.run_until_complete(all_of_batch())
        return {key: [row[key] for row in rows] for key in ("path", "ok", "error", "report", "extra")}


def run_ray(
    items: list[str],
    out: OutputDir,
    formats: list[str],
    language: str | None,
    settings: Settings,
    address: str | None = None,
    actors: int = 2,
    num_cpus: int | None = None,
    words: bool = False,
    agents: Mapping[str, str] | None = None,
) -> JobProgress:
    """The same job on a Ray cluster (``address``; None = a local Ray instance). Inputs may be local paths
    (visible to every node) or fsspec URLs; outputs are written by the driver into ``out`` (a folder or an
    fsspec URL)."""
    import ray

    todo = [item for item in items if not is_done(out, item)]
    progress = JobProgress(total=len(items), skipped=len(items) - len(todo))
    if todo:
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True)
        dataset = ray.data.from_items([{"path": item} for item in todo])
        results = dataset.map_batches(
            RayAnalyzer,
            fn_constructor_kwargs={"settings_json": settings.model_dump_json(), "language": language,
                                   "formats": formats, "words": words,
                                   "agents": {k: v for k, v in (agents or {}).items() if k in todo}},
            batch_size=2,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            batch_format="numpy",
        )
        for row in results.iter_rows():
            item = str(row["path"])
            if not row["ok"]:
                progress.failed += 1
                progress.errors[item] = str(row["error"])
                _record_error(out, item, progress.errors[item])
                continue
            _write_ray_outputs(out, item, str(row["report"]), json.loads(str(row["extra"])))
            progress.done += 1
            progress.audio_s += json.loads(str(row["report"]))["duration_s"]
    write_job_summary(out, items, progress.errors)
    return progress


def _write_ray_outputs(out: OutputDir, item: str, report_json: str, extra: dict[str, str]) -> None:
    name = output_name(item)
    for fmt, text in extra.items():
        out.write_text(f"{name}.{fmt}", text)
    out.write_text(f"{name}.json", report_json)
