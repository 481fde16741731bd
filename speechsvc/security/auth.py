"""Authentication: credentials → :class:`Principal`, whichever surface carried them.

Credentials, in order: ``Authorization: Bearer <key or JWT>``; ``Authorization: Basic`` with the key as the
password (mod_audio_fork's ``MOD_AUDIO_FORK_HTTP_AUTH_USER``/``_PASSWORD``); ``X-API-KEY: <key>`` (Genesys
AudioHook); gRPC metadata ``authorization``; and ``?access_token=<key>`` only where a surface allows it (WebSocket
endpoints, for clients that cannot set headers; never REST or gRPC).

Modes (``SPEECHSVC_AUTH``): ``required``; ``off`` (every client is :data:`ANONYMOUS`, the admin of the default
tenant, as before authentication existed); ``auto`` = required unless the service is bound to loopback. When
credentials are not required, valid ones are still honoured (their tenant and scopes apply) and invalid ones are
still refused: a wrong key never silently becomes the anonymous admin.

A request that came through a proxy (it carries ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP``) is never
local: under ``auto`` it needs credentials like any remote client, so a reverse proxy in front of a loopback bind
does not make the internet an admin. (A TCP proxy that adds no header cannot be told apart: behind one, set
``SPEECHSVC_AUTH=required``; ``auto`` says so loudly at start.)
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping

from speechsvc.config import Settings
from speechsvc.errors import Unauthorized
from speechsvc.security.keys import KeyStore, looks_like_key
from speechsvc.security.network import is_loopback_host
from speechsvc.security.principal import ANONYMOUS, Principal
from speechsvc.security.tokens import JwtVerifier, looks_like_jwt

log = logging.getLogger(__name__)

MAX_CREDENTIAL_CHARS = 8192
# Headers (and gRPC metadata keys) a proxy adds: their presence means the peer is not the client.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def proxied(headers: Mapping[str, object]) -> bool:
    """Did this request come through a proxy? (Header names lower-case.)"""
    return any(name in headers for name in PROXY_HEADERS)


def credential_from(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> str | None:
    """The credential a request carries, or None. ``query`` is given only where ``access_token`` is allowed."""
    value = headers.get("authorization") or ""
    scheme, _, rest = value.strip().partition(" ")
    token: str | None = None
    if scheme.lower() == "bearer" and rest.strip():
        token = rest.strip()
    elif scheme.lower() == "basic" and rest.strip():
        try:
            _, _, password = base64.b64decode(rest.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            raise Unauthorized("malformed Basic credentials") from None
        token = password or None
    elif value.strip():
        raise Unauthorized("Authorization must be 'Bearer <key>'")
    if token is None:
        token = headers.get("x-api-key") or None
    if token is None and query is not None:
        token = query.get("access_token") or None
    if token is not None and len(token) > MAX_CREDENTIAL_CHARS:
        raise Unauthorized("credential too long")
    return token


class Authenticator:
    def __init__(self, settings: Settings, keys: KeyStore | None = None) -> None:
        self.settings = settings
        self.keys = keys or KeyStore(settings.keys_path)
        self.jwt: JwtVerifier | None = None
        if settings.jwt_key_file is not None:
            self.jwt = JwtVerifier(settings.jwt_key_file, settings.jwt_algorithms, settings.jwt_issuer,
                                   settings.jwt_audience, settings.jwt_tenant_claim, settings.jwt_scope_claim)

    @property
    def mode(self) -> str:
        return self.settings.auth

    @property
    def required(self) -> bool:
        """Credentials are needed (``required``, or ``auto`` on a non-loopback address)."""
        if self.settings.auth == "auto":
            return not is_loopback_host(self.settings.host)
        return self.settings.auth == "required"

    @property
    def enabled(self) -> bool:
        return self.settings.auth != "off"

    def authenticate(self, credential: str | None, proxied: bool = False) -> Principal:
        """``proxied``: the request came through a proxy, so it is never served anonymously (except with ``off``).

        Raises:
        Unauthorized: credentials missing where required, or not valid.
        """
        if not self.enabled:
            return ANONYMOUS
        if credential is None:
            if self.required:
                raise Unauthorized("credentials required: send 'Authorization: Bearer <API key>'")
            if proxied:
                raise Unauthorized("credentials required for requests through a proxy: send 'Authorization: "
                                   "Bearer <API key>'")
            return ANONYMOUS
        if looks_like_key(credential):
            return self.keys.verify(credential)
        if looks_like_jwt(credential):
            if self.jwt is None:
                raise Unauthorized("JWT bearer tokens are not configured on this server")
            return self.jwt.verify(credential)
        raise Unauthorized("not an API key or a JWT")

    def startup_check(self) -> None:
        """Refuse to serve a non-loopback address without authentication unless ``insecure`` is set; warn about
        a server nobody can use.

        Raises:
            ValueError: open to the network without authentication, and not ``insecure``.
        """
        s = self.settings
        if not self.required and not is_loopback_host(s.host):
            if not s.insecure:
                raise ValueError(
                    f"refusing to serve {s.host} without authentication (SPEECHSVC_AUTH={s.auth}); create keys "
                    "(`speechsvc keys create`) and use SPEECHSVC_AUTH=auto, or pass --insecure"
                )
            log.critical("!!! INSECURE: serving %s WITHOUT AUTHENTICATION: anyone who can reach it can stream "
                         "calls and read every transcript !!!", s.host)
        if self.required and not self.keys.configured and self.jwt is None:
            log.warning("authentication is required but no API key exists (%s) and no JWT key is set: every "
                        "client will be refused; create one with `speechsvc keys create --tenant T --scopes ...`",
                        s.keys_path)
        if self.enabled and not self.required:
            log.warning("!!! authentication is OFF for direct clients: SPEECHSVC_AUTH=auto on the loopback address "
                        "%s serves every client without a key as the ADMIN of every tenant. Requests that carry "
                        "Forwarded/X-Forwarded-For/X-Real-IP still need a key, but a proxy that adds none of them "
                        "(a TCP proxy, a tunnel, a port forward) makes everyone behind it an admin: set "
                        "SPEECHSVC_AUTH=required there !!!", s.host)
        log.info("authentication: %s (%s)", "required" if self.required else "optional" if self.enabled else "off",
                 s.auth)
