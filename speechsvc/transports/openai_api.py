"""The OpenAI-compatible audio API: ``POST /v1/audio/transcriptions``, ``POST /v1/audio/translations`` and
``GET /v1/models``, so tools and SDKs that speak OpenAI's audio API (the ``openai`` SDK, speaches /
faster-whisper-server clients) work unchanged.

A recording goes through the same path as gRPC ``Transcribe`` (decode → VAD → ASR at batch priority, so live calls
keep theirs → PII redaction). Fields: ``file`` (any container FFmpeg reads), ``model`` (any of ``GET /v1/models``,
or ``whisper-1``), ``language`` (a configured language code or ``auto``; transcriptions only; none given: detected,
as OpenAI's API does, not the server's default language, which would make Whisper write English speech as Chinese),
``prompt``, ``response_format`` (``json``, ``text``, ``srt``, ``vtt``, ``verbose_json``), ``temperature``,
``timestamp_granularities[]`` (``segment``, ``word``; with ``verbose_json`` only, as OpenAI's API: refused with
any other format). Translations decode with Whisper's own translate task (English text, whatever was spoken).

Every error on these paths (unknown ``/v1/audio/*`` paths, wrong methods, missing fields, authentication) is
OpenAI's error body ``{"error": {"message", "type", "param", "code"}}``, never FastAPI's ``{"detail"}``.

``verbose_json`` segments carry what the decoder measured: ``avg_logprob`` (the log of the utterance's confidence:
exp of the mean token log-prob, or the mean word probability of an utterance split out of a merged chunk),
``no_speech_prob`` (the decoder's, for the window the utterance was decoded in), ``compression_ratio`` (of the
segment's text, as Whisper computes it). ``tokens`` is omitted (the merged-chunk decode has no per-utterance token
ids), never an invented empty list. ``usage`` is OpenAI's duration usage (whole seconds, rounded up).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException  # FastAPI's is a subclass; Starlette's form parser raises this

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallInfo, Mode
from speechsvc.batch.speakers import for_engine
from speechsvc.batch.transcribe import FileSegment, FileTranscript, rewrite_segments, transcribe_audio_async
from speechsvc.batch.writers import WRITERS
from speechsvc.errors import MessageTooLarge, Overloaded, ShuttingDown, SpeechsvcError, Unauthorized
from speechsvc.runtime.engine import Engine
from speechsvc.security.access import access
from speechsvc.speech.asr import compression_ratio
from speechsvc.speech.text import word_separator
from speechsvc.transports.uploads import decode_upload, read_form
from speechsvc.types import PIPELINE_RATE, Float32Array, fixed_language
from speechsvc.wordtext import wire_words

# Names OpenAI's clients send; every one is served by the loaded Whisper model.
MODEL_ALIASES = ("whisper-1",)
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
LANGUAGE_NAMES = {"zh": "chinese", "en": "english"}
MAX_PROMPT_CHARS = 2000
# When this process started serving: the ``created`` of its models (the loaded weights' files may be older).
STARTED = int(time.time())

Task = Literal["transcribe", "translate"]


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


def error_type(status: int) -> str:
    return {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
            }.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_response(e: OpenAIError, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": str(e), "type": error_type(e.status), "param": e.param, "code": e.code}}
    return JSONResponse(body, status_code=e.status, headers=headers)


def _validation_error(e: RequestValidationError) -> OpenAIError:
    first = e.errors()[0] if e.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
    param = loc[0] if loc else None
    message = f"{param}: {first.get('msg', 'invalid')}" if param else str(first.get("msg", "invalid request"))
    return OpenAIError(400, message, param, "invalid_value" if first.get("type") != "missing" else "missing")


class OpenAIRoute(APIRoute):
    """A route whose every error is OpenAI's error body: validation (400, as OpenAI answers), HTTP errors raised
    by dependencies (authentication's 401/403, its ``WWW-Authenticate`` kept)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                return error_response(_validation_error(e))
            except HTTPException as e:
                detail = e.detail if isinstance(e.detail, str) else str(e.detail)
                return error_response(OpenAIError(e.status_code, detail), headers=dict(e.headers or {}))

        return route


router = APIRouter(route_class=OpenAIRoute)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid request (a missing or invalid field, audio that cannot be "
                                            "decoded)"},
    401: {"model": ErrorBody, "description": "No valid credentials (where they are required)"},
    403: {"model": ErrorBody, "description": "The key lacks the stream scope"},
    404: {"model": ErrorBody, "description": "No such path"},
    413: {"model": ErrorBody, "description": "The file is larger than the server's upload limit"},
    429: {"model": ErrorBody, "description": "Rate limited (per tenant); retry later"},
    503: {"model": ErrorBody, "description": "Overloaded or shutting down; retry later"},
}
# What the transcription endpoints answer, by response_format.
AUDIO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The transcript: JSON for json/verbose_json, text for text/srt/vtt",
          "content": {"application/json": {"schema": {"type": "object"}},
                      "text/plain": {"schema": {"type": "string"}}}},
    **ERRORS,
}


def model_id(engine: Engine) -> str:
    """The loaded ASR model's name: its directory's name (e.g. ``whisper-base-ct2``)."""
    return engine.recognizer.info().path.rstrip("/").rsplit("/", 1)[-1]


@router.get("/v1/models", responses=ERRORS)
@access("stream", "openai")
async def list_models(request: Request) -> dict[str, Any]:
    engine: Engine = request.app.state.engine
    return {"object": "list", "data": [{"id": name, "object": "model", "created": STARTED, "owned_by": "speechsvc"}
                                       for name in (model_id(engine), *MODEL_ALIASES)]}


@router.get("/v1/models/{model}", responses=ERRORS)
@access("stream", "openai")
async def get_model(request: Request, model: str) -> JSONResponse:
    engine: Engine = request.app.state.engine
    if model not in (model_id(engine), *MODEL_ALIASES):
        return error_response(OpenAIError(404, f"The model '{model}' does not exist", "model", "model_not_found"))
    return JSONResponse({"id": model, "object": "model", "created": STARTED, "owned_by": "speechsvc"})


def request_body(task: Task) -> dict[str, Any]:
    """The multipart body as OpenAPI declares it. The form itself is parsed by :func:`read_form`, under the upload
    byte cap (FastAPI's ``File()``/``Form()`` parameters would parse, and spool, the whole body before any cap),
    and checked by :func:`_form` with the same rules as this schema."""
    fields: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": "The audio: any container FFmpeg reads"},
        "model": {"type": "string", "minLength": 1, "description": "A model of GET /v1/models, or whisper-1"},
        "prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS, "description": "Previous text biasing the decoder"},
        "response_format": {"type": "string", "enum": list(FORMATS), "default": "json"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
    }
    if task == "transcribe":
        fields["language"] = {"type": "string",
                              "description": "A configured language code, or auto (the default: detected)"}
        fields["timestamp_granularities[]"] = {"type": "array", "items": {"type": "string",
                                                                          "enum": ["segment", "word"]}}
        fields["diarize"] = {"type": "boolean", "default": False,
                             "description": "speechsvc: split a mono recording by speaker (verbose_json segments "
                                            "say who spoke)"}
        fields["speakers"] = {"type": "integer", "minimum": 0, "maximum": 8, "default": 0,
                              "description": "speechsvc: the number of speakers when known (0: 2)"}
    schema = {"type": "object", "required": ["file", "model"], "properties": fields}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


@router.post("/v1/audio/transcriptions", response_model=None, responses=AUDIO_RESPONSES,
             openapi_extra=request_body("transcribe"))
@access("stream", "openai")
async def transcriptions(request: Request) -> Response:
    return await _answer(request.app.state.engine, request, "transcribe")


@router.post("/v1/audio/translations", response_model=None, responses=AUDIO_RESPONSES,
             openapi_extra=request_body("translate"))
@access("stream", "openai")
async def translations(request: Request) -> Response:
    return await _answer(request.app.state.engine, request, "translate")


@router.api_route("/v1/audio/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                  include_in_schema=False)
@access("stream", "openai")
async def unknown_audio_path(request: Request, rest: str) -> Response:
    """OpenAI's error body for every other /v1/audio path (and a wrong method on ours)."""
    if rest in ("transcriptions", "translations"):
        return error_response(OpenAIError(405, f"{request.method} is not allowed on /v1/audio/{rest}; use POST"),
                              headers={"Allow": "POST"})
    return error_response(OpenAIError(404, f"Invalid URL ({request.method} /v1/audio/{rest})", None,
                                      "unknown_url"))


class _Form:
    def __init__(self, file: UploadFile, model: str, language: str | None, prompt: str, response_format: str,
                 temperature: float, granularities: tuple[str, ...], diarize: bool = False,
                 speakers: int = 0) -> None:
        self.file, self.model, self.language, self.prompt = file, model, language, prompt
        self.response_format, self.temperature, self.granularities = response_format, temperature, granularities
        # Not OpenAI parameters: diarize=true splits a mono upload by speaker (speakers=N, default 2); each
        # verbose_json segment then says who spoke (agent / customer, or speaker_N when the roles are unclear).
        self.diarize, self.speakers = diarize, speakers


def _form(form: FormData, task: Task) -> _Form:
    """The fields, checked as :func:`request_body` declares them."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise OpenAIError(400, "'file' is required (the audio)", "file", "missing")
    response_format = str(form.get("response_format") or "json")
    if response_format not in FORMATS:
        raise OpenAIError(400, f"response_format must be one of {list(FORMATS)}", "response_format",
                          "invalid_value")
    prompt = str(form.get("prompt") or "")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise OpenAIError(400, f"prompt is longer than {MAX_PROMPT_CHARS} characters", "prompt", "invalid_value")
    try:
        temperature = float(str(form.get("temperature") or 0))
    except ValueError:
        raise OpenAIError(400, "temperature must be a number", "temperature", "invalid_value") from None
    if not 0 <= temperature <= 1:
        raise OpenAIError(400, "temperature must be between 0 and 1", "temperature", "invalid_value")
    granularities = tuple(str(g) for g in form.getlist("timestamp_granularities[]")) if task == "transcribe" else ()
    if set(granularities) - {"segment", "word"}:
        raise OpenAIError(400, "timestamp_granularities[] takes segment and word", "timestamp_granularities",
                          "invalid_value")
    language = (str(form.get("language") or "") or None) if task == "transcribe" else None
    diarize = str(form.get("diarize") or "false").lower() in ("true", "1", "yes")
    try:
        speakers = int(str(form.get("speakers") or 0))
    except ValueError:
        raise OpenAIError(400, "speakers must be a whole number", "speakers", "invalid_value") from None
    if not 0 <= speakers <= 8:
        raise OpenAIError(400, "speakers must be between 1 and 8", "speakers", "invalid_value")
    return _Form(upload, str(form.get("model") or ""), language, prompt, response_format, temperature, granularities,
                 diarize, speakers)


async def _answer(engine: Engine, request: Request, task: Task) -> Response:
    try:
        form = await read_form(request, engine.settings.max_upload_bytes)
    except MessageTooLarge as e:
        return error_response(OpenAIError(413, str(e), "file", "file_too_large"))
    except SpeechsvcError as e:  # not multipart, or a malformed body
        return error_response(OpenAIError(400, f"{e.code}: {e}", "file", e.code))
    try:
        return await _transcribe(engine, _form(form, task), task)
    except OpenAIError as e:
        return error_response(e)
    except (Overloaded, ShuttingDown) as e:
        return error_response(OpenAIError(503, f"{e.code}: {e}", None, e.code), headers={"Retry-After": "1"})
    except MessageTooLarge as e:
        return error_response(OpenAIError(413, f"{e.code}: {e}", "file", e.code))
    except Unauthorized as e:
        return error_response(OpenAIError(401, f"{e.code}: {e}", None, e.code))
    except SpeechsvcError as e:
        return error_response(OpenAIError(400, f"{e.code}: {e}", "file", e.code))
    finally:
        await form.close()


async def read_audio(engine: Engine, upload: UploadFile) -> tuple[Float32Array, int]:
    """The upload decoded to 16 kHz float32 (channels, n), within the recorded-audio duration bound, and the rate
    it was recorded at."""
    return await decode_upload(upload, engine.settings.transcribe_max_s)


async def _transcribe(engine: Engine, form: _Form, task: Task) -> Response:
    settings = engine.settings
    if form.model not in (model_id(engine), *MODEL_ALIASES):
        raise OpenAIError(400, f"model {form.model!r} is not served here; GET /v1/models lists them", "model",
                          "model_not_found")
    # No language: detect it (what OpenAI clients expect), not the server's default for calls.
    language = form.language or "auto"
    if language != "auto" and language not in settings.languages:
        raise OpenAIError(400, f"language {language!r} is not supported; use one of {list(settings.languages)}",
                          "language", "unsupported_language")
    granularities = set(form.granularities)
    if granularities and form.response_format != "verbose_json":
        raise OpenAIError(400, "timestamp_granularities[] needs response_format verbose_json",
                          "timestamp_granularities", "invalid_value")
    split = for_engine(engine, form.speakers or None) if form.diarize else None
    if form.diarize and split is None:
        raise OpenAIError(400, "diarization is off on this server (SPEECHSVC_DIARIZE)", "diarize", "invalid_value")
    audio, rate = await read_audio(engine, form.file)
    wants_words = "word" in granularities and task == "transcribe"
    # The prompt biases the decoder as OpenAI's does: as previous text (with the deployment's hotwords).
    legs, segments = await transcribe_audio_async(audio, engine.asr, engine.vad_model, engine.vad_options,
                                                  fixed_language(language), words=wants_words,
                                                  hotwords=(form.prompt,) if form.prompt.strip() else (),
                                                  punctuation=settings.punctuation, task=task, speaker_split=split,
                                                  source_rate=rate)
    analyzer = CallAnalyzer(engine.stages, CallInfo(f"openai-{time.time_ns()}", legs, Mode.BATCH), engine.metrics)
    segments = rewrite_segments(segments, analyzer)  # PII redaction
    transcript = FileTranscript(form.file.filename or "audio", round(audio.shape[1] / PIPELINE_RATE, 3), legs,
                                tuple(segments))
    if form.response_format in ("srt", "vtt"):
        return PlainTextResponse(WRITERS[form.response_format](transcript), media_type="text/plain; charset=utf-8")
    text = joined(segments)
    if form.response_format == "text":
        return PlainTextResponse(text, media_type="text/plain; charset=utf-8")
    usage = {"type": "duration", "seconds": math.ceil(transcript.duration_s)}
    if form.response_format == "json":
        return JSONResponse({"text": text} if task == "translate" else {"text": text, "usage": usage})
    spoken = "en" if task == "translate" else (segments[0].language if segments else language)
    body: dict[str, Any] = {
        "task": task, "language": LANGUAGE_NAMES.get(spoken, spoken), "duration": transcript.duration_s,
        "text": text,
    }
    if not granularities or "segment" in granularities:
        body["segments"] = [_segment(i, s, form.temperature) for i, s in enumerate(segments)]
    if wants_words:
        body["words"] = openai_words(segments)
    if task == "transcribe":
        body["usage"] = usage
    return JSONResponse(body)


def joined(segments: Sequence[FileSegment]) -> str:
    """The segments' texts in time order, a space between them unless both sides are written without spaces."""
    text, previous = "", ""
    for s in segments:
        text += (word_separator(previous, s.language) if text else "") + s.text
        previous = s.language
    return text


def openai_words(segments: Sequence[FileSegment]) -> list[dict[str, Any]]:
    """OpenAI's words (``word``, ``start``, ``end`` in seconds), the text without punctuation; with
    ``punctuated_word`` and ``confidence`` as on the other surfaces (:mod:`speechsvc.speech.wordtext`)."""
    return [{"word": w["text"], "start": w["start_ms"] / 1000, "end": w["end_ms"] / 1000,
             "punctuated_word": w["punctuated_word"], "confidence": round(w["confidence"], 4)}
            for s in segments for w in wire_words(s.words)]


def _segment(i: int, s: FileSegment, temperature: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": i, "seek": s.start_ms // 10, "start": s.start_ms / 1000, "end": s.end_ms / 1000, "text": s.text,
        "temperature": temperature, "avg_logprob": round(math.log(max(s.confidence, 1e-6)), 4),
        "compression_ratio": round(compression_ratio(s.text), 4),
    }
    if s.no_speech_prob is not None:
        body["no_speech_prob"] = round(s.no_speech_prob, 4)
    if s.speaker is not None:  # diarized: the role when known, else the speaker's number
        body["speaker"] = s.leg if s.leg in ("agent", "customer") else s.speaker
    return body
