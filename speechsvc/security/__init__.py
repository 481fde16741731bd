"""Security: API keys and JWTs → principals (tenant + scopes), per-tenant limits, the audit log, webhook
signatures and URL checks, and the log guard. Surface adapters: :mod:`.asgi` (HTTP/WebSocket) and
:mod:`.grpc_auth` (gRPC), imported by the transports that need them."""

from speechsvc.security.guard import Guard
from speechsvc.security.principal import ANONYMOUS, Principal, platform_principal, principal_var

__all__ = ["ANONYMOUS", "Guard", "Principal", "platform_principal", "principal_var"]
