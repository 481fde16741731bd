"""Who is calling: a :class:`Principal` (key id, tenant, scopes), and the context variable that carries it
through one connection's handler (the audit log and call admission read it there)."""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass
from typing import Literal

from speechsvc.errors import Forbidden

Scope = Literal["stream", "subscribe", "jobs", "admin"]
SCOPES: tuple[Scope, ...] = ("stream", "subscribe", "jobs", "admin")
DEFAULT_TENANT = "default"
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``admin`` implies every other scope and sees every tenant."""

    # The API key's public id, the JWT's subject, or "anonymous" when authentication is off.
    key_id: str
    tenant: str
    scopes: frozenset[str]
    # How it was established: "key", "jwt", "platform" (a platform's own signature/allowlist), "none".
    via: str = "key"

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def allows(self, scope: Scope) -> bool:
        return self.is_admin or scope in self.scopes

    def require(self, scope: Scope) -> Principal:
        """Raises:
        Forbidden: the credentials do not carry ``scope``.
        """
        if not self.allows(scope):
            raise Forbidden(f"key {self.key_id} lacks the {scope!r} scope")
        return self

    def sees(self, tenant: str) -> bool:
        """May this caller see a call or job of ``tenant``?"""
        return self.is_admin or tenant == self.tenant


# Authentication off (or not required and no credentials sent): the admin of the default tenant, which is what
# every client was before authentication existed.
ANONYMOUS = Principal("anonymous", DEFAULT_TENANT, frozenset(SCOPES), via="none")

principal_var: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal", default=ANONYMOUS)


def platform_principal(tenant: str, platform: str) -> Principal:
    """A platform connection authenticated by its own mechanism (Twilio's signature, AudioSocket's source
    allowlist): it may stream calls of ``tenant`` and nothing else."""
    return Principal(platform, tenant, frozenset({"stream"}), via="platform")


def check_tenant(tenant: str) -> str:
    """Raises ValueError for a tenant name that is not 1-64 of ``[A-Za-z0-9._-]``."""
    if not TENANT_PATTERN.match(tenant):
        raise ValueError(f"tenant {tenant!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    return tenant


def parse_scopes(text: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """``"stream,subscribe"`` or a list; raises ValueError for an unknown scope."""
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown}; use {', '.join(SCOPES)}")
    return frozenset(items)
