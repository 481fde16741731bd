"""The expected errors. Library code raises these; each transport maps them to its protocol's codes
(WebSocket close code, gRPC status, HTTP status) in one place. Anything else is a bug."""

from __future__ import annotations


class SpeechsvcError(Exception):
    """Base of every expected error. ``code`` is the stable machine-readable name sent to clients."""

    code = "error"


class InvalidAudio(SpeechsvcError):
    """Audio bytes that cannot be what the call declared (odd length, NaN, empty, oversized)."""

    code = "invalid_audio"


class UnsupportedFormat(SpeechsvcError):
    """A declared encoding, sample rate or channel count the service does not accept."""

    code = "unsupported_format"


class ProtocolError(SpeechsvcError):
    """A message that breaks the wire protocol (bad JSON, unknown type, audio before start)."""

    code = "protocol_error"


class MessageTooLarge(SpeechsvcError):
    code = "message_too_large"


class Overloaded(SpeechsvcError):
    """Capacity reached: too many calls, or an inference queue is full."""

    code = "overloaded"


class ModelUnavailable(SpeechsvcError):
    """A model directory is missing, incomplete or corrupt."""

    code = "model_unavailable"


class Unauthorized(SpeechsvcError):
    """No credentials, or credentials that are not valid."""

    code = "unauthorized"


class Forbidden(SpeechsvcError):
    """Valid credentials that do not allow this: a scope the key lacks, or another tenant's call or job."""

    code = "forbidden"


class RateLimited(Overloaded):
    """A tenant over its rate or quota (calls, jobs, upload bytes); refused like any overload, named apart."""

    code = "rate_limited"


class ShuttingDown(SpeechsvcError):
    code = "shutting_down"


class InternalError(SpeechsvcError):
    """A bug or an unexpected failure inside one piece of work (logged with its traceback); reported to the
    client of that work only, never to other calls."""

    code = "internal_error"
