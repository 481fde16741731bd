"""The OpenAI-compatible transcription API: ``POST /v1/audio/transcriptions`` and ``GET /v1/models``, so tools and
SDKs that speak OpenAI's audio API (the ``openai`` SDK, speaches / faster-whisper-server clients) work unchanged.

A recording goes through the same path as gRPC ``Transcribe`` (decode → VAD → ASR at batch priority, so live calls
keep theirs → PII redaction). Fields: ``file`` (any container FFmpeg reads), ``model`` (any of ``GET /v1/models``,
or ``whisper-1``), ``language`` (a configured language code; default the server's), ``prompt``, ``response_format``
(``json``, ``text``, ``srt``, ``vtt``, ``verbose_json`` with segments, and words when asked),
``temperature``, ``timestamp_granularities[]`` (``segment``, ``word``). Errors use OpenAI's error body.
"""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import FormData, UploadFile

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallInfo, Mode
from speechsvc.batch.speakers import for_engine
from speechsvc.batch.transcribe import FileSegment, FileTranscript, rewrite_segments, transcribe_audio_async
from speechsvc.batch.writers import WRITERS
from speechsvc.errors import MessageTooLarge, SpeechsvcError
from speechsvc.runtime.engine import Engine
from speechsvc.security.access import access
from speechsvc.transports.uploads import decode_upload, read_form
from speechsvc.types import PIPELINE_RATE, fixed_language

router = APIRouter()

# Names OpenAI's clients send; every one is served by the loaded Whisper model.
MODEL_ALIASES = ("whisper-1",)
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
LANGUAGE_NAMES = {"zh": "chinese", "en": "english"}
MAX_PROMPT_CHARS = 2000


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param = status, param


def error_response(e: OpenAIError) -> JSONResponse:
    body = {"error": {"message": str(e), "type": "invalid_request_error", "param": e.param, "code": None}}
    return JSONResponse(body, status_code=e.status)


def model_id(engine: Engine) -> str:
    """The loaded ASR model's name: its directory's name (e.g. ``whisper-base-ct2``)."""
    return engine.recognizer.info().path.rstrip("/").rsplit("/", 1)[-1]


@router.get("/v1/models")
@access("stream", "openai")
async def list_models(request: Request) -> dict[str, Any]:
    engine: Engine = request.app.state.engine
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "speechsvc"}
                                       for name in (model_id(engine), *MODEL_ALIASES)]}


@router.post("/v1/audio/transcriptions", response_model=None)
@access("stream", "openai")
async def transcriptions(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    try:
        return await _transcribe(engine, request)
    except OpenAIError as e:
        return error_response(e)
    except SpeechsvcError as e:
        return error_response(OpenAIError(400, f"{e.code}: {e}", "file"))


async def _transcribe(engine: Engine, request: Request) -> Response:
    settings = engine.settings
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise OpenAIError(400, "send multipart/form-data with a 'file' part")
    try:
        form = await read_form(request, settings.max_upload_bytes)
    except MessageTooLarge as e:
        raise OpenAIError(413, str(e), "file") from None
    try:
        return await _transcribe_form(engine, form)
    finally:
        await form.close()


async def _transcribe_form(engine: Engine, form: FormData) -> Response:
    settings = engine.settings
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise OpenAIError(400, "'file' is required (the audio to transcribe)", "file")
    model = str(form.get("model") or "")
    if model not in (model_id(engine), *MODEL_ALIASES):
        raise OpenAIError(400, f"model {model!r} is not served here; GET /v1/models lists them", "model")
    response_format = str(form.get("response_format") or "json")
    if response_format not in FORMATS:
        raise OpenAIError(400, f"response_format must be one of {list(FORMATS)}", "response_format")
    language = str(form.get("language") or settings.default_language)
    if language != "auto" and language not in settings.languages:
        raise OpenAIError(400, f"language {language!r} is not supported; use one of {list(settings.languages)}",
                          "language")
    prompt = str(form.get("prompt") or "")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise OpenAIError(400, f"prompt is longer than {MAX_PROMPT_CHARS} characters", "prompt")
    try:
        temperature = float(str(form.get("temperature") or 0))
    except ValueError:
        raise OpenAIError(400, "temperature must be a number", "temperature") from None
    if not 0 <= temperature <= 1:
        raise OpenAIError(400, "temperature must be between 0 and 1", "temperature")
    granularities = {str(g) for g in form.getlist("timestamp_granularities[]")}
    if granularities - {"segment", "word"}:
        raise OpenAIError(400, "timestamp_granularities[] takes segment and word", "timestamp_granularities")
    # Not an OpenAI parameter: diarize=true splits a mono upload by speaker (speakers=N, default 2); each
    # verbose_json segment then says who spoke (agent / customer, or speaker_N when the roles are unclear).
    diarize = str(form.get("diarize") or "false").lower() in ("true", "1", "yes")
    try:
        speakers = int(str(form.get("speakers") or 0))
    except ValueError:
        raise OpenAIError(400, "speakers must be a whole number", "speakers") from None
    if not 0 <= speakers <= 8:
        raise OpenAIError(400, "speakers must be between 1 and 8", "speakers")
    split = for_engine(engine, speakers or None) if diarize else None
    if diarize and split is None:
        raise OpenAIError(400, "diarization is off on this server (SPEECHSVC_DIARIZE)", "diarize")
    try:
        audio = await decode_upload(upload, settings.transcribe_max_s)
    except MessageTooLarge as e:
        raise OpenAIError(413, str(e), "file") from None
    wants_words = response_format == "verbose_json" and "word" in granularities
    # The prompt biases the decoder as OpenAI's does: as previous text (with the deployment's hotwords).
    legs, segments = await transcribe_audio_async(audio, engine.asr, engine.vad_model, engine.vad_options,
                                                  fixed_language(language), words=wants_words,
                                                  hotwords=(prompt,) if prompt.strip() else (),
                                                  punctuation=settings.punctuation, speaker_split=split)
    analyzer = CallAnalyzer(engine.stages, CallInfo(f"openai-{time.time_ns()}", legs, Mode.BATCH), engine.metrics)
    segments = rewrite_segments(segments, analyzer)  # PII redaction
    duration_s = round(audio.shape[1] / PIPELINE_RATE, 3)
    transcript = FileTranscript(upload.filename or "audio", duration_s, legs, tuple(segments))
    if response_format in ("srt", "vtt"):
        return PlainTextResponse(WRITERS[response_format](transcript), media_type="text/plain; charset=utf-8")
    text = joined(segments)
    if response_format == "text":
        return PlainTextResponse(text, media_type="text/plain; charset=utf-8")
    if response_format == "json":
        return JSONResponse({"text": text})
    spoken = segments[0].language if segments else language
    body: dict[str, Any] = {
        "task": "transcribe", "language": LANGUAGE_NAMES.get(spoken, spoken), "duration": transcript.duration_s,
        "text": text,
    }
    if not granularities or "segment" in granularities:
        body["segments"] = [_segment(i, s, temperature) for i, s in enumerate(segments)]
    if wants_words:
        body["words"] = [{"word": w.text.strip(), "start": w.start_ms / 1000, "end": w.end_ms / 1000}
                         for s in segments for w in s.words if w.text.strip()]
    return JSONResponse(body)


def joined(segments: list[FileSegment]) -> str:
    """The segments' texts in time order: Chinese without spaces between them, other languages with."""
    text = ""
    for s in segments:
        sep = "" if not text or s.language == "zh" else " "
        text += sep + s.text
    return text


def _segment(i: int, s: FileSegment, temperature: float) -> dict[str, Any]:
    out = {"id": i, "seek": s.start_ms // 10, "start": s.start_ms / 1000, "end": s.end_ms / 1000, "text": s.text,
           "tokens": [], "temperature": temperature, "avg_logprob": _logprob(s.confidence),
           "compression_ratio": 0.0, "no_speech_prob": 0.0}
    if s.speaker is not None:  # diarized: the role when known, else the speaker's number
        out["speaker"] = s.leg if s.leg in ("agent", "customer") else s.speaker
    return out


def _logprob(confidence: float) -> float:
    return round(math.log(max(confidence, 1e-6)), 4)
