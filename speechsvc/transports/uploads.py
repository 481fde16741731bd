"""Recorded audio uploaded over HTTP (the OpenAI-compatible API, REST jobs): the multipart body is parsed under a
byte cap (the parser never sees, nor spools to disk, more than the cap, whatever Content-Length said; a declared
length over it is refused before reading), and a file part is decoded from its spool with the duration bound
(:func:`speechsvc.speech.audio.decode_file`: a small file holding hours of audio stops at the bound). The same
decoder and bounds serve gRPC ``Transcribe`` and jobs, so the entry points cannot drift."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Message

from speechsvc.errors import InvalidAudio, MessageTooLarge
from speechsvc.speech.audio import decode_with_source_rate
from speechsvc.types import Float32Array


class _TooLarge(Exception):
    """The body passed the cap while the multipart parser was reading it."""


def _capped(request: Request, limit: int) -> Any:
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLarge
        return message

    return receive


async def read_form(request: Request, limit: int, max_files: int = 1, max_fields: int = 32) -> FormData:
    """The request's multipart form, at most ``limit`` bytes of body.

    Raises:
        MessageTooLarge: the body (declared or read) is over ``limit``.
        InvalidAudio: not a multipart body, or a malformed one.
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidAudio("send multipart/form-data")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise MessageTooLarge(f"upload of {declared} bytes exceeds the {limit}-byte limit")
    capped = Request(request.scope, _capped(request, limit))
    try:
        return await capped.form(max_files=max_files, max_fields=max_fields)
    except _TooLarge:
        raise MessageTooLarge(f"upload exceeds the {limit}-byte limit") from None
    except MultiPartException as e:
        raise InvalidAudio(f"invalid multipart body: {e.message}") from None


async def decode_upload(upload: UploadFile, max_seconds: float) -> tuple[Float32Array, int]:
    """A file part decoded (in a thread, from its spool) to 16 kHz float32 (channels, n), at most ``max_seconds``,
    and the rate it was recorded at.

    Raises:
        InvalidAudio: not audio FFmpeg reads.
        MessageTooLarge: longer than ``max_seconds``.
    """
    await upload.seek(0)
    return await asyncio.to_thread(decode_with_source_rate, upload.file, max_seconds)
