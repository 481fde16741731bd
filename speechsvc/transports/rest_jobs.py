"""REST job API: ``POST /v1/jobs`` (uploaded files, or server-side paths under the allowed roots),
``GET /v1/jobs`` (the caller's jobs), ``GET /v1/jobs/{id}`` (state, progress), ``GET /v1/jobs/{id}/results?
offset=&limit=`` (per-call reports, a page at a time: a quality-inspection job may hold 10,000 calls),
``GET /v1/jobs/{id}/outputs/{index}/{fmt}`` (one input's JSON/SRT/VTT/TXT), ``DELETE /v1/jobs/{id}`` (cancel: items
running on any replica stop at their item boundary; then the job and its files are deleted).

A job may name a ``webhook_url``: its completion is POSTed there, signed (:mod:`.job_webhook`). With a shared store
(PostgreSQL) any replica answers for any job; a store that cannot be reached is 503.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from speechsvc.batch.files import InputPolicy, TooManyInputs, expand_inputs
from speechsvc.batch.jobs import Job, JobRunner, StoreUnavailable
from speechsvc.batch.outputs import OutputDir, output_name, read_report
from speechsvc.errors import Forbidden, InvalidAudio, MessageTooLarge
from speechsvc.security.access import access
from speechsvc.security.asgi import require
from speechsvc.security.network import check_webhook_url
from speechsvc.security.principal import Principal
from speechsvc.transports.uploads import read_form
from speechsvc.types import fixed_language

router = APIRouter()
Format = Literal["json", "srt", "vtt", "txt"]
FORMATS = ("json", "srt", "vtt", "txt")
JOBS = Depends(require("jobs"))
MAX_OFFSET = 1 << 40  # a page offset past any store (a larger integer overflowed the database's)


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[str] = Field(min_length=1, max_length=10000)
    language: Literal["zh", "en", "auto"] = "zh"
    formats: list[Format] = Field(default_factory=lambda: list[Format](["json"]))
    # Speakers in each mono recording when known (diarization; default: the server's SPEECHSVC_DIARIZE_SPEAKERS).
    speakers: int | None = Field(None, ge=1, le=8)
    # Where the signed completion callback goes.
    webhook_url: str | None = Field(None, max_length=2000)


def _documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error statuses a jobs route answers, for the OpenAPI document."""
    what = {400: "malformed request", 403: "an input outside BATCH_ROOTS or of a scheme not allowed",
            404: "no such job (another tenant's job is a 404 too)",
            413: "upload over the tenant's byte limit", 422: "invalid request body or parameters",
            429: "the tenant's unfinished-job limit or request rate", 503: "the job store is unreachable"}
    return {code: {"description": what[code]} for code in codes}


# POST /v1/jobs takes JSON (server-side inputs) or multipart uploads; the body is parsed by hand (uploads under the
# tenant's byte cap), so the schema is declared here.
CREATE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": JobRequest.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "language": {"type": "string", "enum": ["zh", "en", "auto"]},
        "formats": {"type": "string", "description": "json, srt, vtt, txt (comma-separated or repeated)"},
        "speakers": {"type": "integer", "minimum": 1, "maximum": 8,
                     "description": "speakers in each mono recording, when known (default 2)"},
        "webhook_url": {"type": "string"}}}},
}}}


def _runner(request: Request) -> JobRunner:
    runner: JobRunner | None = getattr(request.app.state, "jobs", None)
    if runner is None:
        raise HTTPException(503, "the job runner is not started")
    return runner


T = TypeVar("T")


async def _db(fn: Callable[..., T], *args: Any) -> T:
    """A store call, in a thread; a store that cannot be reached is 503."""
    try:
        return await asyncio.to_thread(fn, *args)
    except StoreUnavailable as e:
        raise HTTPException(503, f"the job store is unavailable ({e}); retry", headers={"Retry-After": "5"}) from None


async def _webhook(url: str | None, runner: JobRunner) -> str | None:
    """The job's callback URL, checked like every webhook (http(s); no link-local or metadata address); 422."""
    if not url:
        return None
    try:
        return await asyncio.to_thread(check_webhook_url, url, runner.engine.settings.webhook_allow_link_local)
    except (Forbidden, ValueError) as e:
        raise HTTPException(422, f"webhook_url: {e}") from None


def _named(value: T, item: str, name: str) -> T:
    """``value`` (a message, a report) with an uploaded input's path inside the job folder replaced by the name the
    client gave it."""
    if item == name:
        return value
    text = json.dumps(value, ensure_ascii=False)
    found, named = (json.dumps(v, ensure_ascii=False)[1:-1] for v in (item, name))
    return json.loads(text.replace(found, named))  # type: ignore[no-any-return]


def job_view(job: Job) -> dict[str, Any]:
    """A job as the API shows it: inputs by the client's names (an upload's file name), never internal paths."""
    p = job.progress
    names = {item: job.name(i) for i, item in enumerate(job.request["inputs"])} if job.request.get("names") else {}
    total = p.get("total") or 0
    finished = (p.get("done", 0) + p.get("skipped", 0) + p.get("failed", 0))
    return {
        "id": job.id, "state": job.state, "tenant": job.tenant, "created_at": job.created,
        "updated_at": job.updated, "inputs": len(job.request["inputs"]),
        "formats": job.request.get("formats", ["json"]),
        **({"speakers": job.request["speakers"]} if job.request.get("speakers") else {}), "done": p.get("done", 0),
        "skipped": p.get("skipped", 0), "failed": p.get("failed", 0), "audio_s": round(p.get("audio_s", 0.0), 1),
        "progress": round(finished / total, 4) if total else 0.0,
        "errors": {names.get(item, item): _named(message, item, names.get(item, item))
                   for item, message in p.get("errors", {}).items()},
        "error": job.error, "webhook": job.webhook_url is not None,
    }


async def _quota(runner: JobRunner, principal: Principal) -> None:
    """Raises HTTPException 429 when the tenant already has its maximum of unfinished jobs."""
    guard = runner.engine.guard
    limit = guard.policy.bounds(principal.tenant).max_jobs
    if limit and await _db(runner.store.active, principal.tenant) >= limit:
        runner.engine.metrics.tenant_rejections.labels(principal.tenant, "jobs").inc()
        runner.engine.metrics.rejections.labels("tenant_jobs").inc()
        raise HTTPException(429, f"tenant {principal.tenant} has {limit} unfinished jobs; retry when one ends",
                            headers={"Retry-After": "10"})


@router.post("/v1/jobs", status_code=201, responses=_documented(400, 403, 413, 422, 429, 503),
             openapi_extra=CREATE_BODY)
async def create_job(request: Request, principal: Principal = JOBS) -> JSONResponse:
    runner = _runner(request)
    settings = runner.engine.settings
    await _quota(runner, principal)
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
    webhook_url = await _webhook(job_request.webhook_url, runner)
    job = await _db(runner.submit, {"inputs": inputs, "language": fixed_language(job_request.language),
                                    "formats": sorted({"json", *job_request.formats}), "uploaded": False,
                                    **({"speakers": job_request.speakers} if job_request.speakers else {})},
                    principal.tenant, webhook_url)
    runner.engine.guard.audit.record("job.submit", principal=principal, surface="rest", target=job.id,
                                     detail=f"{len(inputs)} server-side inputs")
    return JSONResponse(job_view(job), status_code=201)


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
    try:
        form = await read_form(request, limit, max_files=1000, max_fields=100)
    except MessageTooLarge as e:
        raise HTTPException(413, f"{e} (this tenant's upload limit)") from None
    except InvalidAudio as e:
        raise HTTPException(422, str(e)) from None
    try:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise HTTPException(422, "multipart job needs one or more 'files' parts")
        language = str(form.get("language") or "zh")
        if language not in ("zh", "en", "auto"):
            raise HTTPException(422, "language must be zh, en or auto")
        formats = _formats([str(v) for v in form.getlist("formats")] or ["json"])
        speakers = _speakers(form.get("speakers"))
        webhook_url = await _webhook(str(form.get("webhook_url") or "") or None, runner)
        job = await _db(runner.store.create, {"inputs": [], "language": None, "formats": formats, "uploaded": True},
                        "uploading", principal.tenant, webhook_url)
        folder = runner.store.job_dir(job.id) / "input"
        folder.mkdir(mode=0o700, exist_ok=True)
        inputs, names = [], []
        for i, upload in enumerate(files):
            given = Path(upload.filename or f"upload{i}").name[-200:] or f"upload{i}"
            safe = re.sub(r"[^\w.\-]+", "_", given)[-100:]
            target = folder / f"{i:04d}_{safe}"
            await asyncio.to_thread(_save, upload, target)
            inputs.append(str(target))
            names.append(given)
    finally:
        await form.close()
    request_body = {"inputs": inputs, "names": names, "language": fixed_language(language), "formats": formats,
                    "uploaded": True, **({"speakers": speakers} if speakers else {})}
    await _db(runner.store.set_request, job.id, request_body)  # the job becomes runnable only now
    runner.wake()
    runner.engine.guard.audit.record("job.submit", principal=principal, surface="rest", target=job.id,
                                     detail=f"{len(inputs)} uploaded files")
    queued: Job | None = await _db(runner.store.get, job.id)
    return JSONResponse(job_view(queued or job), status_code=201)


def _speakers(value: object) -> int | None:
    """A multipart job's ``speakers`` field (1..8; absent or empty: the server's default)."""
    if value is None or value == "":
        return None
    try:
        n = int(str(value))
    except ValueError:
        raise HTTPException(422, "speakers must be a whole number from 1 to 8") from None
    if not 1 <= n <= 8:
        raise HTTPException(422, "speakers must be a whole number from 1 to 8")
    return n


def _save(upload: UploadFile, target: Path) -> None:
    """Copy a spooled upload to the job's folder, 0600."""
    upload.file.seek(0)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            out.write(chunk)


async def _own(runner: JobRunner, job_id: str, principal: Principal) -> Job:
    """The job, if the caller may see it; another tenant's job is a 404 like a missing one."""
    job = await _db(runner.store.get, job_id)
    if job is None or not principal.sees(job.tenant):
        raise HTTPException(404, f"no job {job_id[:64]}")
    return job


@router.get("/v1/jobs", responses=_documented(422, 503))
async def list_jobs(
    request: Request,
    principal: Principal = JOBS,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    runner = _runner(request)
    tenant = (request.query_params.get("tenant") or None) if principal.is_admin else principal.tenant
    jobs = await _db(runner.store.list, tenant, limit, offset)
    total = await _db(runner.store.count, tenant)
    return {"jobs": [job_view(job) for job in jobs], **_page(offset, limit, total)}


def _page(offset: int, limit: int, total: int) -> dict[str, int | None]:
    """Where a page of ``limit`` items from ``offset`` sits among ``total``; ``next_offset`` None on the last."""
    return {"total": total, "offset": offset, "next_offset": offset + limit if offset + limit < total else None}


# An item's state as a result's status (an item with a report or an error shows done/failed).
STATUS = {"queued": "pending", "running": "running", "cancelled": "cancelled", "done": "pending", "skipped": "pending"}
OUTPUT_TYPES = {"json": "application/json", "srt": "application/x-subrip", "vtt": "text/vtt",
                "txt": "text/plain; charset=utf-8"}


@router.get("/v1/jobs/{job_id}/outputs/{index}/{fmt}", responses=_documented(404, 422, 503))
async def job_output(job_id: str, index: int, fmt: str, request: Request, principal: Principal = JOBS) -> Response:
    """One input's output file (``json``, ``srt``, ``vtt``, ``txt``: what the job was asked for), by the input's
    position in the job."""
    runner = _runner(request)
    job = await _own(runner, job_id, principal)
    inputs = job.request["inputs"]
    if fmt not in OUTPUT_TYPES or not 0 <= index < len(inputs):
        raise HTTPException(404, f"no {fmt[:8]} output for input {index} of job {job_id}")
    runner.engine.guard.audit.record("job.read", principal=principal, surface="rest", target=job_id)
    out = OutputDir(runner.store.job_dir(job_id) / "out")
    text = await asyncio.to_thread(out.read_text, f"{output_name(inputs[index])}.{fmt}")
    if text is None:
        raise HTTPException(404, f"no {fmt} output for input {index} of job {job_id} (yet)")
    if (name := job.name(index)) != inputs[index]:  # an upload: its name, never its path in the job folder
        found, named = ((json.dumps(v, ensure_ascii=False)[1:-1] if fmt == "json" else v)
                        for v in (inputs[index], name))
        text = text.replace(found, named)
    return Response(text, media_type=OUTPUT_TYPES[fmt])


@router.get("/v1/jobs/{job_id}", responses=_documented(404, 503))
async def get_job(job_id: str, request: Request, principal: Principal = JOBS) -> dict[str, Any]:
    return job_view(await _own(_runner(request), job_id, principal))


@router.delete("/v1/jobs/{job_id}", status_code=204, responses=_documented(404, 503))
async def delete_job(job_id: str, request: Request, principal: Principal = JOBS) -> Response:
    """Cancel and delete: queued items never start, running ones (on any replica) stop at their item boundary,
    then the job's rows and files are removed. A job already gone is 404."""
    runner = _runner(request)
    job = await _own(runner, job_id, principal)
    if not await _db(runner.store.cancel, job.id):
        raise HTTPException(404, f"no job {job_id[:64]}")
    runner.engine.guard.audit.record("job.delete", principal=principal, surface="rest", target=job.id)
    runner.wake()
    return Response(status_code=204)


@router.get("/v1/jobs/{job_id}/results", responses=_documented(404, 422, 503))
async def job_results(
    job_id: str,
    request: Request,
    principal: Principal = JOBS,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    runner = _runner(request)
    job = await _own(runner, job_id, principal)
    runner.engine.guard.audit.record("job.read", principal=principal, surface="rest", target=job_id)
    out = OutputDir(runner.store.job_dir(job_id) / "out")
    errors = job.progress.get("errors", {})
    inputs = job.request["inputs"]
    items = {item.index: item for item in await _db(runner.store.items, job_id, offset, limit)}

    def page() -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for index in range(offset, min(offset + limit, len(inputs))):
            item, known, name = inputs[index], items.get(index), job.name(index)
            result: dict[str, Any] = {"index": index, "input": name}
            if known is not None:
                result.update(replica=known.replica, attempts=known.attempts)
            if item in errors:
                result.update(status="failed", error=_named(errors[item], item, name))
            elif (report := read_report(out, item)) is not None:
                result.update(status="done", report=_named(report, item, name))
            else:
                result.update(status=STATUS.get(known.state, known.state) if known else "pending")
            results.append(result)
        return results

    results = await asyncio.to_thread(page)
    return {"id": job_id, "state": job.state, **_page(offset, limit, len(inputs)), "results": results}


# A method a jobs path does not serve is 405 with every method the path does serve (FastAPI would name only the
# first route's): GET and POST on /v1/jobs, GET and DELETE on /v1/jobs/{id}.
@router.api_route("/v1/jobs", methods=["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"], include_in_schema=False)
@router.api_route("/v1/jobs/{job_id}", methods=["POST", "PUT", "PATCH", "OPTIONS", "TRACE"], include_in_schema=False)
@access("jobs")
async def method_not_allowed(request: Request) -> Response:
    allow = "GET, POST" if request.url.path.rstrip("/") == "/v1/jobs" else "GET, DELETE"
    return JSONResponse({"detail": f"{request.method} is not allowed here; use {allow}"}, status_code=405,
                        headers={"Allow": allow})
