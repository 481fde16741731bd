"""JWT bearer tokens from an identity provider (PyJWT): signature with the configured key and algorithms,
expiry, issuer and audience checked; the tenant and scopes come from configurable claims.

HS* algorithms read the shared secret from ``jwt_key_file``; RS*/ES*/PS* read a PEM public key from it.
Mixing the two families is refused at start-up (an RS256 public key used as an HS256 secret is the classic
algorithm-confusion attack).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt

from speechsvc.errors import Unauthorized
from speechsvc.security.principal import SCOPES, TENANT_PATTERN, Principal, parse_scopes


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class JwtVerifier:
    def __init__(self, key_file: Path, algorithms: tuple[str, ...], issuer: str | None, audience: str | None,
                 tenant_claim: str = "tenant", scope_claim: str = "scope") -> None:
        symmetric = {a.startswith("HS") for a in algorithms}
        if len(symmetric) != 1:
            raise ValueError(f"jwt_algorithms {algorithms} mix shared-secret (HS*) and public-key algorithms")
        raw = key_file.read_bytes()
        self._key: Any = raw.strip() if symmetric == {True} else raw
        self.algorithms = list(algorithms)
        self.issuer = issuer
        self.audience = audience
        self.tenant_claim = tenant_claim
        self.scope_claim = scope_claim

    def verify(self, token: str) -> Principal:
        """Raises:
        Unauthorized: a bad signature, an expired token, a wrong issuer or audience, or missing claims.
        """
        required = ["exp", "sub"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        try:
            claims = jwt.decode(token, self._key, algorithms=self.algorithms, issuer=self.issuer,
                                audience=self.audience, options={"require": required})
        except jwt.PyJWTError as e:
            raise Unauthorized(f"invalid token: {type(e).__name__}") from None
        tenant = claims.get(self.tenant_claim)
        if not isinstance(tenant, str) or not TENANT_PATTERN.match(tenant):
            raise Unauthorized(f"token has no valid {self.tenant_claim!r} claim")
        raw = claims.get(self.scope_claim, claims.get("scopes", ""))
        items = raw.replace(",", " ").split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        # An identity provider's tokens carry other scopes too (openid, profile, ...): keep only ours.
        scopes = parse_scopes([s for s in items if s in SCOPES])
        return Principal(f"jwt:{str(claims['sub'])[:64]}", tenant, scopes, via="jwt")
