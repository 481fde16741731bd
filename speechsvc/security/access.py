"""Which door needs which key: the one list of public routes, the access each other route declares, and the gate
(ASGI middleware) that authenticates every HTTP request and WebSocket upgrade of the app before a router sees it.

- :data:`PUBLIC_ROUTES` is the only list of routes anyone may call: health, readiness, the OpenAPI document and the
  console's static files (the console holds no data; every request it makes for data carries the user's key).
- Every other route is authenticated here. It declares the scope its callers need with :func:`access` on its
  endpoint, or with a :func:`speechsvc.security.asgi.require` dependency; **a route that declares nothing needs
  ``admin``**, so a route added without thinking is refused to every tenant key by default.
- WebSocket upgrades may carry the key as ``?access_token=`` (for clients that cannot set headers); HTTP requests
  only in headers. A platform with a signature scheme of its own (Twilio) registers a verifier for its path.
- An upgraded WebSocket's credential is checked again every ``auth_recheck_s``: a key revoked (or a token that
  expired) mid-call closes the connection with 1008 within seconds; what was heard is finished by the handler as for
  any hang-up.

The principal reaches handlers in ``scope["state"]["principal"]`` and :data:`principal_var`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute, Match

from speechsvc.errors import Forbidden, RateLimited, Unauthorized
from speechsvc.security.auth import credential_from, proxied
from speechsvc.security.denial import deny_http, deny_upgrade
from speechsvc.security.guard import Guard
from speechsvc.security.principal import Principal, Scope, principal_var

log = logging.getLogger(__name__)

# The only routes served without credentials.
PUBLIC_ROUTES: frozenset[str] = frozenset({
    "/healthz", "/readyz", "/openapi.json", "/console", "/console/", "/console/assets/{name}",
})

ACCESS_ATTRIBUTE = "__speechsvc_access__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
# A platform's own check of an upgrade (ASGI scope → its principal, or None to use the ordinary credentials).
# Raises Unauthorized/Forbidden to refuse.
Verifier = Callable[[dict[str, Any]], Principal | None]


@dataclass(frozen=True)
class Access:
    """What a route needs: a scope, and the surface name its audit lines and metrics carry."""

    scope: Scope
    surface: str


def access(scope: Scope, surface: str = "rest") -> Callable[[Endpoint], Endpoint]:
    """Declare the scope an endpoint's callers need (the gate enforces it before the endpoint runs)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, ACCESS_ATTRIBUTE, Access(scope, surface))
        return endpoint

    return mark


ADMIN = Access("admin", "rest")


def flat_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Every route the app serves: routers included with ``include_router`` (FastAPI keeps them as one entry that
    holds the included router) are opened up, in order. No router here is included with a prefix."""
    out: list[BaseRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            out.extend(flat_routes(list(included.routes)))
        else:
            out.append(route)
    return out


def route_access(route: BaseRoute) -> Access | None:
    """The access a route needs; None for a public route. Undeclared → ``admin``."""
    path = getattr(route, "path", "")
    if path in PUBLIC_ROUTES:
        return None
    declared: Access | None = getattr(getattr(route, "endpoint", None), ACCESS_ATTRIBUTE, None)
    if declared is not None:
        return declared
    dependant = getattr(route, "dependant", None)
    pending = list(getattr(dependant, "dependencies", ()))
    while pending:
        dependency = pending.pop()
        marked: Access | None = getattr(dependency.call, ACCESS_ATTRIBUTE, None)
        if marked is not None:
            return marked
        pending.extend(dependency.dependencies)
    return ADMIN


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


class AccessGate:
    """ASGI middleware: every request of the app is authenticated against its route's declared access."""

    def __init__(self, app: Any, routes: Callable[[], list[BaseRoute]], guard: Callable[[], Guard],
                 verifiers: dict[str, Verifier] | None = None, recheck_s: float = 2.0) -> None:
        self.app = app
        self.routes = routes
        self.guard = guard
        self.verifiers = verifiers if verifiers is not None else {}
        self.recheck_s = recheck_s
        self._access: dict[int, Access | None] = {}
        self._routes: list[BaseRoute] | None = None

    def _route_access(self, scope: dict[str, Any]) -> tuple[bool, Access | None]:
        """(matched, access) for the request: the first route that matches fully, else one that matches its path
        (a wrong method: the app answers 405 to callers who may see the route)."""
        partial: BaseRoute | None = None
        if self._routes is None:
            self._routes = flat_routes(self.routes())
        for route in self._routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return True, self._cached(route)
            if match == Match.PARTIAL and partial is None:
                partial = route
        if partial is not None:
            return True, self._cached(partial)
        return False, None

    def _cached(self, route: BaseRoute) -> Access | None:
        key = id(route)
        if key not in self._access:
            self._access[key] = route_access(route)
        return self._access[key]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        matched, needed = self._route_access(scope)
        if not matched or needed is None:
            await self.app(scope, receive, send)  # public, or no such route (the app answers 404)
            return
        websocket = kind == "websocket"
        guard = self.guard()
        headers = _headers(scope)
        source = (scope.get("client") or ("",))[0]
        credential: str | None = None
        try:
            verifier = self.verifiers.get(scope.get("path", ""))
            principal = verifier(scope) if verifier is not None else None
            if principal is None:
                query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))) if websocket else None
                try:
                    credential = credential_from(headers, query)
                except Unauthorized as e:
                    guard.refused(e, needed.surface, source, None)
                    raise
                principal = guard.authenticate(credential, needed.scope, needed.surface, source,
                                               proxied=proxied(headers))
            else:
                principal.require(needed.scope)
                principal_var.set(principal)
        except (Unauthorized, Forbidden, RateLimited) as e:
            if websocket:
                await deny_upgrade(scope, receive, send, e)
            else:
                await deny_http(send, e)
            return
        scope.setdefault("state", {})["principal"] = principal
        if websocket and credential is not None and self.recheck_s > 0:
            await self._watched(scope, receive, send, guard, credential, principal, needed)
        else:
            await self.app(scope, receive, send)

    async def _watched(self, scope: dict[str, Any], receive: Any, send: Any, guard: Guard, credential: str,
                       principal: Principal, needed: Access) -> None:
        """Run a WebSocket with its credential checked again every ``recheck_s``: once it no longer holds
        (revoked, expired), the socket is closed with 1008 and the handler's sends are dropped."""
        lock = asyncio.Lock()
        state = {"accepted": False, "closed": False}

        async def guarded_send(message: dict[str, Any]) -> None:
            async with lock:
                if state["closed"]:
                    return  # the gate closed the socket: the handler finishes what was heard, for nobody here
                if message["type"] == "websocket.accept":
                    state["accepted"] = True
                elif message["type"] == "websocket.close":
                    state["closed"] = True
                await send(message)

        async def watch() -> None:
            while True:
                await asyncio.sleep(self.recheck_s)
                reason = guard.still_valid(credential, principal)
                if reason is None:
                    continue
                guard.audit.record("auth.revoked", principal=principal, surface=needed.surface,
                                   outcome="closed", detail=reason)
                log.warning("closing a %s connection of key %s: %s", needed.surface, principal.key_id, reason)
                async with lock:
                    if state["closed"]:
                        return
                    state["closed"] = True
                    with contextlib.suppress(OSError, RuntimeError):
                        if state["accepted"]:
                            await send({"type": "websocket.close", "code": 1008, "reason": "credentials revoked"})
                        else:
                            await send({"type": "websocket.close", "code": 1008})
                return

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await self.app(scope, receive, guarded_send)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
