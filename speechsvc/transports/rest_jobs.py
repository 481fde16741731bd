"""REST job API: ``POST /v1/jobs`` (uploaded files, or server-side paths under the allowed roots),
``GET /v1/jobs/{id}`` (state, progress), ``GET /v1/jobs/{id}/results?offset=&limit=`` (per-call reports, a
page at a time: a quality-inspection job may hold 10,000 calls)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from speechsvc.batch.files import expand_inputs
from speechsvc.batch.jobs import Job, JobRunner
from speechsvc.batch.outputs import OutputDir, output_name, read_report

router = APIRouter()
Format = Literal["json", "srt", "vtt", "txt"]


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[str] = Field(min_length=1, max_length=10000)
    language: Literal["zh", "en", "auto"] = "zh"
    formats: list[Format] = Field(default_factory=lambda: list[Format](["json"]))


def _runner(request: Request) -> JobRunner:
    runner: JobRunner | None = getattr(request.app.state, "jobs", None)
    if runner is None:
        raise HTTPException(503, "the job runner is not started")
    return runner


def _view(job: Job) -> dict[str, Any]:
    p = job.progress
    total = p.get("total") or 0
    finished = (p.get("done", 0) + p.get("skipped", 0) + p.get("failed", 0))
    return {
        "id": job.id, "state": job.state, "created_at": job.created, "updated_at": job.updated,
        "inputs": len(job.request["inputs"]), "formats": job.request.get("formats", ["json"]),
        "done": p.get("done", 0), "skipped": p.get("skipped", 0),
        "failed": p.get("failed", 0), "audio_s": round(p.get("audio_s", 0.0), 1),
        "progress": round(finished / total, 4) if total else 0.0, "errors": p.get("errors", {}), "error": job.error,
    }


@router.post("/v1/jobs", status_code=201)
async def create_job(request: Request) -> JSONResponse:
    runner = _runner(request)
    settings = runner.engine.settings
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _create_from_upload(request, runner)
    try:
        body = JobRequest.model_validate_json(await request.body())
    except ValueError as e:
        raise HTTPException(422, f"invalid job request: {e}") from None
    roots = [Path(r).resolve() for r in settings.batch_roots]
    inputs = expand_inputs(body.inputs)
    for item in inputs:
        if "://" in item:
            continue
        resolved = Path(item).resolve()
        if not any(resolved.is_relative_to(root) for root in roots):
            raise HTTPException(403, f"{item} is outside the allowed roots (SPEECHSVC_BATCH_ROOTS)")
        if not resolved.is_file():
            raise HTTPException(422, f"{item} does not exist on the server")
    if not inputs:
        raise HTTPException(422, "no audio files found in the inputs")
    job = runner.submit({"inputs": inputs, "language": None if body.language == "auto" else body.language,
                         "formats": sorted({"json", *body.formats}), "uploaded": False})
    return JSONResponse(_view(job), status_code=201)


async def _create_from_upload(request: Request, runner: JobRunner) -> JSONResponse:
    limit = runner.engine.settings.max_upload_bytes
    form = await request.form(max_files=1000)
    files = [f for f in form.getlist("files") if not isinstance(f, str)]
    if not files:
        raise HTTPException(422, "multipart job needs one or more 'files' parts")
    language = str(form.get("language") or "zh")
    formats = sorted({"json", *json.loads(str(form.get("formats") or '["json"]'))})
    if language not in ("zh", "en", "auto") or not set(formats) <= {"json", "srt", "vtt", "txt"}:
        raise HTTPException(422, "language must be zh, en or auto; formats from json, srt, vtt, txt")
    job = runner.store.create({"inputs": [], "language": None, "formats": formats, "uploaded": True},
                              state="uploading")
    folder = runner.store.job_dir(job.id) / "input"
    folder.mkdir(parents=True, exist_ok=True)
    inputs = []
    for i, upload in enumerate(files):
        name = re.sub(r"[^\w.\-]+", "_", Path(upload.filename or f"upload{i}").name)
        target = folder / f"{i:04d}_{name}"
        size = 0
        with target.open("wb") as out:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    runner.store.update(job.id, state="failed", error="upload too large")
                    raise HTTPException(413, f"{upload.filename} exceeds {limit} bytes")
                out.write(chunk)
        inputs.append(str(target))
    request_body = {"inputs": inputs, "language": None if language == "auto" else language, "formats": formats,
                    "uploaded": True}
    runner.store.set_request(job.id, request_body)  # the job becomes runnable only now
    runner.wake()
    return JSONResponse(_view(runner.store.get(job.id) or job), status_code=201)


@router.get("/v1/jobs")
async def list_jobs(
    request: Request, offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)
) -> dict[str, Any]:
    jobs, total = _runner(request).store.list(offset, limit)
    return {"jobs": [_view(j) for j in jobs], "total": total, "offset": offset,
            "next_offset": offset + limit if offset + limit < total else None}


OUTPUT_TYPES = {"json": "application/json", "srt": "application/x-subrip", "vtt": "text/vtt",
                "txt": "text/plain; charset=utf-8"}


@router.get("/v1/jobs/{job_id}/outputs/{index}/{fmt}")
async def job_output(job_id: str, index: int, fmt: str, request: Request) -> Response:
    """One input's output file (``json``, ``srt``, ``vtt``, ``txt``; what the job was asked for), by the input's
    position in the job."""
    runner = _runner(request)
    job = runner.store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    inputs = job.request["inputs"]
    if fmt not in OUTPUT_TYPES or not 0 <= index < len(inputs):
        raise HTTPException(404, f"no {fmt} output for input {index} of job {job_id}")
    out = OutputDir(runner.store.job_dir(job_id) / "out")
    text = await asyncio.to_thread(out.read_text, f"{output_name(inputs[index])}.{fmt}")
    if text is None:
        raise HTTPException(404, f"no {fmt} output for input {index} of job {job_id} (yet)")
    return Response(text, media_type=OUTPUT_TYPES[fmt])


@router.get("/v1/jobs/{job_id}")
async def get_job(job_id: str, request: Request) -> dict[str, Any]:
    job = _runner(request).store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return _view(job)


@router.get("/v1/jobs/{job_id}/results")
async def job_results(
    job_id: str,
    request: Request,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    runner = _runner(request)
    job = runner.store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    out = OutputDir(runner.store.job_dir(job_id) / "out")
    errors = job.progress.get("errors", {})
    inputs = job.request["inputs"]
    results = []
    for item in inputs[offset : offset + limit]:
        if item in errors:
            results.append({"input": item, "status": "failed", "error": errors[item]})
        elif (report := read_report(out, item)) is not None:
            results.append({"input": item, "status": "done", "report": report})
        else:
            results.append({"input": item, "status": "pending"})
    next_offset = offset + limit if offset + limit < len(inputs) else None
    return {"id": job_id, "state": job.state, "total": len(inputs), "offset": offset, "next_offset": next_offset,
            "results": results}

