"""API keys: created once (the secret is shown once), stored hashed in a JSON file written 0600, looked up
by their public id, compared in constant time, revocable.

A key reads ``ssk_<id>_<secret>``: ``id`` is 12 hex characters (public: it names the key in ``keys list``
and in the audit log), ``secret`` is 32 random bytes (256 bits, ``secrets.token_urlsafe``). The file keeps
SHA-256 of the whole key, not the key. A slow password hash (bcrypt, argon2) protects *low-entropy* secrets
against guessing; a 256-bit random secret cannot be guessed, so a fast hash is as safe here and keeps
checking a key at every WebSocket handshake in microseconds instead of tens of milliseconds of CPU (which
would itself be a denial-of-service lever).

The file is re-read when it changes (size or mtime), so ``speechsvc keys revoke`` takes effect on a running
service without a restart.

Thread-safety: one store per process; reads and writes are serialised by a lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from speechsvc.errors import Unauthorized
from speechsvc.security.principal import Principal, check_tenant, parse_scopes

PREFIX = "ssk_"
KEY_PATTERN = re.compile(r"^ssk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    """One stored key (never the secret)."""

    id: str
    tenant: str
    scopes: tuple[str, ...]
    created: float
    # SHA-256 (hex) of the whole key string.
    sha256: str
    name: str = ""
    revoked: float | None = None

    def principal(self) -> Principal:
        return Principal(self.id, self.tenant, frozenset(self.scopes), via="key")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


class KeyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None

    # ---- reading ----------------------------------------------------------------------------------------

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._keys, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        keys = {}
        for row in data.get("keys", []):
            row["scopes"] = tuple(row.get("scopes", ()))
            key = ApiKey(**row)
            keys[key.id] = key
        self._keys, self._stamp = keys, stamp

    def keys(self) -> list[ApiKey]:
        with self._lock:
            self._reload()
            return sorted(self._keys.values(), key=lambda k: k.created)

    @property
    def configured(self) -> bool:
        """At least one key that is not revoked."""
        return any(k.revoked is None for k in self.keys())

    def verify(self, token: str) -> Principal:
        """Raises:
        Unauthorized: not a key of this store, or revoked (the message never repeats the token).
        """
        match = KEY_PATTERN.match(token)
        if match is None:
            raise Unauthorized("malformed API key")
        with self._lock:
            self._reload()
            key = self._keys.get(match.group(1))
        # Compare even when the id is unknown, so timing does not tell which ids exist.
        expected = key.sha256 if key is not None else "0" * 64
        if not hmac.compare_digest(_digest(token), expected) or key is None:
            raise Unauthorized("unknown API key")
        if key.revoked is not None:
            raise Unauthorized(f"API key {key.id} was revoked")
        return key.principal()

    # ---- writing ----------------------------------------------------------------------------------------

    def create(self, tenant: str, scopes: str | list[str], name: str = "") -> tuple[str, ApiKey]:
        """A new key; returns the key string (show it once, it is not stored) and its record."""
        check_tenant(tenant)
        parsed = tuple(sorted(parse_scopes(scopes)))
        if not parsed:
            raise ValueError("a key needs at least one scope")
        with self._lock:
            self._reload()
            key_id = secrets.token_hex(6)
            while key_id in self._keys:
                key_id = secrets.token_hex(6)
            token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            record = ApiKey(key_id, tenant, parsed, time.time(), _digest(token), name)
            self._keys[key_id] = record
            self._write()
        return token, record

    def revoke(self, key_id: str) -> ApiKey:
        """Raises KeyError for an unknown id."""
        with self._lock:
            self._reload()
            record = replace(self._keys[key_id], revoked=time.time())
            self._keys[key_id] = record
            self._write()
        return record

    def _write(self) -> None:
        """Atomically, 0600, in a 0700 folder created if needed."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = json.dumps({"version": 1, "keys": [asdict(k) for k in self._keys.values()]}, indent=1)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, self.path)
        st = self.path.stat()
        self._stamp = (st.st_mtime_ns, st.st_size)
