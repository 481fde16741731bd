"""gRPC authentication: a server interceptor that reads metadata ``authorization: Bearer <key or JWT>``, checks
the method's scope and refuses with ``UNAUTHENTICATED`` / ``PERMISSION_DENIED`` / ``RESOURCE_EXHAUSTED``
before the handler runs. The principal reaches the handler in :data:`principal_var`. A call carrying a proxy's
metadata (``x-forwarded-for``, ``forwarded``, ``x-real-ip``) is never anonymous. A streaming call's credential is
checked again every ``auth_recheck_s``: a revoked key or an expired token ends it with ``UNAUTHENTICATED``.

Method scopes: ``speechsvc.v1.Speech`` needs ``stream``; the standard health service is public (load
balancers probe it); server reflection and anything else needs ``admin``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from speechsvc.errors import Forbidden, RateLimited, SpeechsvcError, Unauthorized
from speechsvc.security.auth import PROXY_HEADERS, credential_from
from speechsvc.security.guard import Guard
from speechsvc.security.principal import Principal, Scope, principal_var

STATUS: dict[type[SpeechsvcError], grpc.StatusCode] = {
    Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/",)
SCOPES: dict[str, Scope] = {"/speechsvc.v1.Speech/": "stream"}


def method_scope(method: str) -> Scope | None:
    if method.startswith(PUBLIC_PREFIXES):
        return None
    for prefix, scope in SCOPES.items():
        if method.startswith(prefix):
            return scope
    return "admin"


def _kind(handler: grpc.RpcMethodHandler) -> str:
    return ("stream" if handler.request_streaming else "unary") + "_" + (
        "stream" if handler.response_streaming else "unary")


def _rebuild(handler: grpc.RpcMethodHandler, behaviour: Callable[..., Any]) -> grpc.RpcMethodHandler:
    make = getattr(grpc, f"{_kind(handler)}_rpc_method_handler")
    return make(behaviour, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


def _original(handler: grpc.RpcMethodHandler) -> Callable[..., Any]:
    return getattr(handler, _kind(handler))  # type: ignore[no-any-return]


# A refused client-streaming RPC reads (and drops) what the client already sent, for at most this long and this
# many messages, before the status goes out: a client still writing when the call ends would otherwise see its own
# write fail (INTERNAL) instead of UNAUTHENTICATED.
DRAIN_S = 1.0
DRAIN_MESSAGES = 1000


async def _drain(request: Any) -> None:
    iterator = aiter(request)
    for _ in range(DRAIN_MESSAGES):
        try:
            await anext(iterator)
        except StopAsyncIteration:
            return
        except DecodeError:
            continue  # a corrupt message is dropped like the others


async def settle(request: Any) -> None:
    """Read and drop what a client-streaming RPC's client is still sending (bounded), before a status."""
    with contextlib.suppress(TimeoutError, grpc.RpcError, asyncio.InvalidStateError):
        await asyncio.wait_for(_drain(request), DRAIN_S)


async def _refuse(request: Any, context: grpc.aio.ServicerContext, streaming: bool, code: grpc.StatusCode,
                  details: str) -> None:
    if streaming:
        await settle(request)
    await context.abort(code, details)


def refusing(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, details: str) -> grpc.RpcMethodHandler:
    streaming = bool(handler.request_streaming)
    if handler.response_streaming:
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await _refuse(request, context, streaming, code, details)
            yield  # pragma: no cover - abort raises

        return _rebuild(handler, stream)

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await _refuse(request, context, streaming, code, details)

    return _rebuild(handler, unary)


@dataclasses.dataclass(frozen=True)
class Recheck:
    """An open stream's credential, checked again every ``every_s`` (a revoked key or expired token ends it)."""

    guard: Guard
    credential: str
    every_s: float


async def _revoked(recheck: Recheck, principal: Principal) -> str:
    """Returns (the reason) once the credential no longer holds."""
    while True:
        await asyncio.sleep(recheck.every_s)
        reason = recheck.guard.still_valid(recheck.credential, principal)
        if reason is not None:
            recheck.guard.audit.record("auth.revoked", principal=principal, surface="grpc", outcome="closed",
                                       detail=reason)
            return reason


async def _watched(stream: AsyncIterator[Any], recheck: Recheck, principal: Principal,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    """``stream``'s items until the credential is revoked; then the stream is closed (the handler finishes what it
    heard) and the RPC ends with UNAUTHENTICATED."""
    watcher = asyncio.ensure_future(_revoked(recheck, principal))
    try:
        while True:
            item = asyncio.ensure_future(anext(stream))
            await asyncio.wait({item, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if item.done():
                try:
                    yield item.result()
                except StopAsyncIteration:
                    return
                continue
            item.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await item
            with contextlib.suppress(RuntimeError):
                await stream.aclose()  # type: ignore[attr-defined]
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"credentials no longer valid: {watcher.result()}")
    finally:
        watcher.cancel()


def with_principal(handler: grpc.RpcMethodHandler, principal: Principal,
                   recheck: Recheck | None = None) -> grpc.RpcMethodHandler:
    original = _original(handler)
    if handler.response_streaming:
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            principal_var.set(principal)
            result = original(request, context)
            if inspect.isasyncgen(result) and recheck is not None:
                async for item in _watched(result, recheck, principal, context):
                    yield item
            elif inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:
                for item in await result if inspect.isawaitable(result) else result:
                    yield item

        return _rebuild(handler, stream)

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        principal_var.set(principal)
        result = original(request, context)
        return await result if inspect.isawaitable(result) else result

    return _rebuild(handler, unary)


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        scope = method_scope(details.method)
        if handler is None or scope is None:
            return handler
        metadata = {str(k).lower(): v for k, v in (details.invocation_metadata or ())}
        # The credential, and the headers a proxy adds (a proxied call is never served anonymously).
        headers = {k: str(metadata[k]) for k in ("authorization", *PROXY_HEADERS) if k in metadata}
        try:
            principal = self.guard.authenticate_headers(headers, None, scope, "grpc")
            credential = credential_from(headers)
        except (Unauthorized, Forbidden, RateLimited) as e:
            return refusing(handler, STATUS[type(e)], str(e))
        every_s = self.guard.settings.auth_recheck_s
        recheck = Recheck(self.guard, credential, every_s) if credential is not None and every_s > 0 else None
        return with_principal(handler, principal, recheck)
