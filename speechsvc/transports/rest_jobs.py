"""REST job API: ``POST /v1/jobs`` (uploaded files, or server-side paths under the allowed roots),
``GET /v1/jobs`` (the caller's jobs), ``GET /v1/jobs/{id}`` (state, progress), ``GET /v1/jobs/{id}/results?
offset=&limit=`` (per-call reports, a page at a time: a quality-inspection job may hold 10,000 calls),
``GET /v1/jobs/{id}/outputs/{index}/{fmt}`` (one input's JSON/SRT/VTT/TXT).

Every route needs the ``jobs`` scope; a job belongs to the submitting key's tenant, and another tenant's job is
a 404 (its existence is not revealed); ``admin`` sees every job. Server-side inputs are checked against the
allowed roots and URL schemes before anything is read (:class:`~speechsvc.batch.files.InputPolicy`), in a
thread. Uploads stream to disk (0600) under a per-tenant byte cap enforced while the body arrives. Bad fields are
422, never 500.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.types import Message

from speechsvc.batch.files import InputPolicy, TooManyInputs, expand_inputs
from speechsvc.batch.jobs import Job, JobRunner
from speechsvc.batch.outputs import OutputDir, output_name, read_report
from speechsvc.errors import Forbidden
from speechsvc.security.asgi import require
from speechsvc.security.principal import Principal
from speechsvc.types import fixed_language

router = APIRouter()
Format = Literal["json", "srt", "vtt", "txt"]
FORMATS = ("json", "srt", "vtt", "txt")
JOBS = Depends(require("jobs"))


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[str] = Field(min_length=1, max_length=10000)
    language: Literal["zh", "en", "auto"] = "zh"
    formats: list[Format] = Field(default_factory=lambda: list[Format](["json"]))


class UploadTooLarge(Exception):
    """The request body passed the tenant's upload cap while it was arriving."""


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
        "id": job.id, "state": job.state, "tenant": job.tenant, "created_at": job.created,
        "updated_at": job.updated, "inputs": len(job.request["inputs"]),
        "formats": job.request.get("formats", ["json"]), "done": p.get("done", 0),
        "skipped": p.get("skipped", 0), "failed": p.get("failed", 0), "audio_s": round(p.get("audio_s", 0.0), 1),
        "progress": round(finished / total, 4) if total else 0.0, "errors": p.get("errors", {}), "error": job.error,
    }


def _quota(runner: JobRunner, principal: Principal) -> None:
    """Raises HTTPException 429 when the tenant already has its maximum of unfinished jobs."""
    guard = runner.engine.guard
    limit = guard.policy.bounds(principal.tenant).max_jobs
    if limit and runner.store.active(principal.tenant) >= limit:
        runner.engine.metrics.tenant_rejections.labels(principal.tenant, "jobs").inc()
        runner.engine.metrics.rejections.labels("tenant_jobs").inc()
        raise HTTPException(429, f"tenant {principal.tenant} has {limit} unfinished jobs; retry when one ends",
                            headers={"Retry-After": "10"})


@router.post("/v1/jobs", status_code=201)
async def create_job(request: Request, principal: Principal = JOBS) -> JSONResponse:
    runner = _runner(request)
    settings = runner.engine.settings
    _quota(runner, principal)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _create_from_upload(request, runner, principal)
    body_limit = 4 << 20  # a JSON request names paths; it is never large
    body = await _read_capped(request, body_limit)
    try:
        job_request = JobRequest.model_validate_json(body)
    except ValidationError as e:
        raise HTTPException(422, f"invalid job request: {_errors(e)}") from None
    policy = InputPolicy.of(settings.batch_roots, settings.batch_url_schemes, settings.max_job_inputs)
    try:
        inputs = await asyncio.to_thread(expand_inputs, job_request.inputs, policy)
    except Forbidden as e:
        runner.engine.guard.audit.record("job.submit", principal=principal, surface="rest", outcome="forbidden",
                                         detail=str(e))
        raise HTTPException(403, str(e)) from None
    except (FileNotFoundError, TooManyInputs) as e:
        raise HTTPException(422, str(e)) from None
    except (ValueError, OSError) as e:  # a manifest that cannot be read or parsed
        raise HTTPException(422, f"cannot read the inputs: {type(e).__name__}") from None
    if not inputs:
        raise HTTPException(422, "no audio files found in the inputs")
    job = runner.submit({"inputs": inputs, "language": fixed_language(job_request.language),
                         "formats": sorted({"json", *job_request.formats}), "uploaded": False},
                        tenant=principal.tenant)
    runner.engine.guard.audit.record("job.submit", principal=principal, surface="rest", target=job.id,
                                     detail=f"{len(inputs)} server-side inputs")
    return JSONResponse(_view(job), status_code=201)


def _errors(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors())[:500]


async def _read_capped(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, f"request body exceeds {limit} bytes")
    return bytes(body)


def _formats(values: list[str]) -> list[str]:
    """``-F formats=srt -F formats=vtt``, ``formats=srt,vtt`` or ``formats=["srt"]``; raises 422 otherwise."""
    found: list[str] = []
    for value in values:
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise HTTPException(422, "formats is not a valid JSON list") from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise HTTPException(422, "formats must be a list of strings")
            found.extend(items)
        else:
            found.extend(p for p in re.split(r"[,\s]+", text) if p)
    unknown = sorted(set(found) - set(FORMATS))
    if unknown:
        raise HTTPException(422, f"unknown formats {unknown[:5]}; use json, srt, vtt, txt")
    return sorted({"json", *found})


async def _create_from_upload(request: Request, runner: JobRunner, principal: Principal) -> JSONResponse:
    limit = runner.engine.guard.policy.bounds(principal.tenant).max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes exceeds this tenant's {limit}-byte limit")
    capped = Request(request.scope, _capped_receive(request, limit))
    try:
        form = await capped.form(max_files=1000, max_fields=100)
    except UploadTooLarge:
        raise HTTPException(413, f"upload exceeds this tenant's {limit}-byte limit") from None
    except MultiPartException as e:
        raise HTTPException(422, f"invalid multipart body: {e.message}") from None
    try:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise HTTPException(422, "multipart job needs one or more 'files' parts")
        language = str(form.get("language") or "zh")
        if language not in ("zh", "en", "auto"):
            raise HTTPException(422, "language must be zh, en or auto")
        formats = _formats([str(v) for v in form.getlist("formats")] or ["json"])
        job = runner.store.create({"inputs": [], "language": None, "formats": formats, "uploaded": True},
                                  state="uploading", tenant=principal.tenant)
        folder = runner.store.job_dir(job.id) / "input"
        folder.mkdir(mode=0o700, exist_ok=True)
        inputs = []
        for i, upload in enumerate(files):
            name = re.sub(r"[^\w.\-]+", "_", Path(upload.filename or f"upload{i}").name)[-100:]
            target = folder / f"{i:04d}_{name}"
            await asyncio.to_thread(_save, upload, target)
            inputs.append(str(target))
    finally:
        await form.close()
    request_body = {"inputs": inputs, "language": fixed_language(language), "formats": formats,
                    "uploaded": True}
    runner.store.set_request(job.id, request_body)  # the job becomes runnable only now
    runner.wake()
    runner.engine.guard.audit.record("job.submit", principal=principal, surface="rest", target=job.id,
                                     detail=f"{len(inputs)} uploaded files")
    return JSONResponse(_view(runner.store.get(job.id) or job), status_code=201)


def _save(upload: UploadFile, target: Path) -> None:
    """Copy a spooled upload to the job's folder, 0600."""
    upload.file.seek(0)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            out.write(chunk)


def _capped_receive(request: Request, limit: int):  # type: ignore[no-untyped-def]
    """The request's ASGI ``receive``, raising :class:`UploadTooLarge` once the body passes ``limit`` bytes: the
    multipart parser never sees (nor spools to disk) more than the cap, whatever Content-Length said."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise UploadTooLarge
        return message

    return receive


def _own(runner: JobRunner, job_id: str, principal: Principal) -> Job:
    """The job, if the caller may see it; another tenant's job is a 404 like a missing one."""
    job = runner.store.get(job_id)
    if job is None or not principal.sees(job.tenant):
        raise HTTPException(404, f"no job {job_id[:64]}")
    return job


@router.get("/v1/jobs")
async def list_jobs(
    request: Request,
    principal: Principal = JOBS,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    runner = _runner(request)
    tenant = (request.query_params.get("tenant") or None) if principal.is_admin else principal.tenant
    jobs = await asyncio.to_thread(runner.store.list, tenant, limit, offset)
    total = await asyncio.to_thread(runner.store.count, tenant)
    return {"jobs": [_view(job) for job in jobs], **_page(offset, limit, total)}


def _page(offset: int, limit: int, total: int) -> dict[str, int | None]:
    """Where a page of ``limit`` items from ``offset`` sits among ``total``; ``next_offset`` None on the last."""
    return {"total": total, "offset": offset, "next_offset": offset + limit if offset + limit < total else None}


OUTPUT_TYPES = {"json": "application/json", "srt": "application/x-subrip", "vtt": "text/vtt",
                "txt": "text/plain; charset=utf-8"}


@router.get("/v1/jobs/{job_id}/outputs/{index}/{fmt}")
async def job_output(job_id: str, index: int, fmt: str, request: Request, principal: Principal = JOBS) -> Response:
    """One input's output file (``json``, ``srt``, ``vtt``, ``txt``: what the job was asked for), by the input's
    position in the job."""
    runner = _runner(request)
    job = _own(runner, job_id, principal)
    inputs = job.request["inputs"]
    if fmt not in OUTPUT_TYPES or not 0 <= index < len(inputs):
        raise HTTPException(404, f"no {fmt[:8]} output for input {index} of job {job_id}")
    runner.engine.guard.audit.record("job.read", principal=principal, surface="rest", target=job_id)
    out = OutputDir(runner.store.job_dir(job_id) / "out")
    text = await asyncio.to_thread(out.read_text, f"{output_name(inputs[index])}.{fmt}")
    if text is None:
        raise HTTPException(404, f"no {fmt} output for input {index} of job {job_id} (yet)")
    return Response(text, media_type=OUTPUT_TYPES[fmt])


@router.get("/v1/jobs/{job_id}")
async def get_job(job_id: str, request: Request, principal: Principal = JOBS) -> dict[str, Any]:
    return _view(_own(_runner(request), job_id, principal))


@router.get("/v1/jobs/{job_id}/results")
async def job_results(
    job_id: str,
    request: Request,
    principal: Principal = JOBS,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    runner = _runner(request)
    job = _own(runner, job_id, principal)
    runner.engine.guard.audit.record("job.read", principal=principal, surface="rest", target=job_id)
    out = OutputDir(runner.store.job_dir(job_id) / "out")
    errors = job.progress.get("errors", {})
    inputs = job.request["inputs"]

    def page() -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for item in inputs[offset : offset + limit]:
            if item in errors:
                results.append({"input": item, "status": "failed", "error": errors[item]})
            elif (report := read_report(out, item)) is not None:
                results.append({"input": item, "status": "done", "report": report})
            else:
                results.append({"input": item, "status": "pending"})
        return results

    results = await asyncio.to_thread(page)
    return {"id": job_id, "state": job.state, **_page(offset, limit, len(inputs)), "results": results}
