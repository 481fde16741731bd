"""The security services of one process, built once from the settings: authentication, per-tenant policy
and rate limits, connection gates, and the audit log. The engine owns one (``engine.guard``) so every
transport and the job API share it."""

from __future__ import annotations

from speechsvc.config import Settings
from speechsvc.errors import Forbidden, RateLimited, SpeechsvcError, Unauthorized
from speechsvc.metrics import Metrics
from speechsvc.security.audit import AuditLog
from speechsvc.security.auth import Authenticator, credential_from
from speechsvc.security.auth import proxied as via_proxy
from speechsvc.security.limits import ConnectionGate, FailureThrottle, RateLimiter, TenantPolicy
from speechsvc.security.network import SourceAllowlist
from speechsvc.security.principal import Principal, Scope, principal_var

NOBODY = Principal("-", "-", frozenset(), via="none")


class Guard:
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.auth = Authenticator(settings)
        self.policy = TenantPolicy(settings)
        self.rates = RateLimiter(self.policy, self.metrics)
        self.audit = AuditLog(settings.audit_path)
        self.streams = ConnectionGate("stream", settings.max_connections or 2 * settings.max_calls + 64, self.metrics)
        self.subscriptions = ConnectionGate("subscription", settings.max_subscribers, self.metrics)
        self.audiosocket_sources = SourceAllowlist(settings.audiosocket_allow)
        self.failures = FailureThrottle(settings.auth_fail_burst, settings.auth_fail_per_s)

    def authenticate(self, credential: str | None, scope: Scope, surface: str, source: str = "",
                     proxied: bool = False) -> Principal:
        """Credentials → principal with ``scope``, within its tenant's rate; sets :data:`principal_var`.
        ``proxied``: the request came through a proxy (never served anonymously).

        Raises:
            Unauthorized, Forbidden, RateLimited: counted, and written to the audit log (RateLimited also when the
                source failed authentication too often: then nothing is checked).
        """
        try:
            self.failures.check(source)
        except RateLimited as e:
            self.metrics.auth_failures.labels("source_throttled").inc()
            self.metrics.auth_audit_suppressed.inc()
            raise e from None
        try:
            principal = self.auth.authenticate(credential, proxied)
        except Unauthorized as e:
            self.refused(e, surface, source, credential)
            raise
        try:
            principal.require(scope)
            self.rates.check(principal.tenant, "handshake")
        except (Forbidden, RateLimited) as e:
            self.refused(e, surface, source, principal=principal)
            raise
        principal_var.set(principal)
        return principal

    def authenticate_headers(self, headers: dict[str, str], query: dict[str, str] | None, scope: Scope,
                             surface: str, source: str = "") -> Principal:
        """As :meth:`authenticate`, reading the credential from headers (and ``access_token`` in ``query``)."""
        try:
            credential = credential_from(headers, query)
        except Unauthorized as e:
            self.refused(e, surface, source, None)
            raise
        return self.authenticate(credential, scope, surface, source, via_proxy(headers))

    def still_valid(self, credential: str, principal: Principal) -> str | None:
        """Why an open connection's credential no longer holds (revoked, expired, changed), or None."""
        try:
            current = self.auth.authenticate(credential)
        except Unauthorized as e:
            return str(e)
        if current.tenant != principal.tenant or not principal.scopes <= current.scopes:
            return "the key's tenant or scopes changed"
        return None

    def refused(self, error: SpeechsvcError, surface: str, source: str, credential: str | None = None,
                principal: Principal | None = None) -> None:
        """Count and audit a refused handshake or request (the key id, never the key). Authentication failures
        count against the source's failure rate; past it they are counted, not audited line by line."""
        self.metrics.auth_failures.labels(error.code).inc()
        if isinstance(error, Unauthorized) and not self.failures.failed(source):
            self.metrics.auth_audit_suppressed.inc()
            return
        who = principal or NOBODY
        if principal is None and credential and credential.startswith("ssk_"):
            who = Principal(credential[4:16], "-", frozenset(), via="none")
        self.audit.record("auth.denied", principal=who, surface=surface, outcome=error.code, source=source,
                          detail=str(error))
