"""Who may call the REST API: clients on this machine or the dashboard's own pages, and, when
CHAT_API_TOKEN is set, only those that present it."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Collection, Sequence

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from chatcore.logs import current_request_id, note

TOKEN_HINT = (
    "Set CHAT_API_TOKEN to a long random secret, e.g. "
    "`export CHAT_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')`"
)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; an empty address means every interface."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_problem(address: str, token: str | None) -> str | None:
    """Why the dashboard must not listen on `address`, or None when it may."""
    if token or is_loopback(address):
        return None
    shown = address or "every network interface"
    return (
        f"Refusing to listen on {shown} without CHAT_API_TOKEN: anyone who can reach this "
        "machine could read your conversations and chat through the REST API. "
        f"{TOKEN_HINT}, or listen on 127.0.0.1 (the default)."
    )


def own_origins(port: int) -> list[str]:
    """The dashboard's own origins: the only ones a browser may call the API from."""
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]


def host_name(host_header: str) -> str:
    """`127.0.0.1:8501` -> `127.0.0.1`, `[::1]:8501` -> `::1`."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def token_matches(authorization: str, token: str) -> bool:
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())  # constant time


class AccessGuard:
    """ASGI middleware in front of the API, outside CORS, refusing:

    - a browser request from any origin but the dashboard's own (403): a page on another site
      must not chat or read history through the user's browser;
    - without a token, a Host header that is not this machine (403): a DNS-rebinding page
      sends no foreign Origin on a same-origin GET, but its Host gives it away;
    - with a token, a request that does not present it (401), except the open paths (the docs)
      and CORS preflights, which carry no credentials by design.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Sequence[str],
        token: str | None,
        open_paths: Collection[str] = (),
        more_tokens: Collection[str] = (),
        open_prefixes: Collection[str] = (),
    ) -> None:
        self.app = app
        self.origins = set(origins)
        self.token = token
        self.open_paths = set(open_paths)
        self.open_prefixes = tuple(open_prefixes)  # paths whose last part is their own key
        # Also accepted where a token is required: the proxies' per-client tokens.
        self.tokens = [t for t in (token, *more_tokens) if t]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refusal := self.refusal(scope)) is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> JSONResponse | None:
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return refuse(403, f"Requests from the web origin {origin} are not allowed.")
        if self.token is None:
            host = headers.get("host", "")
            if not is_loopback(host_name(host)):
                return refuse(403, f"The API answers only on this machine, not as host {host!r}.")
            return None
        if self.is_open(scope) or is_preflight(scope, headers):
            return None
        authorization = headers.get("authorization", "")
        if not any(token_matches(authorization, token) for token in self.tokens):
            return refuse(
                401,
                "This API needs the header `Authorization: Bearer <token>` with the "
                "CHAT_API_TOKEN the dashboard was started with.",
                {"WWW-Authenticate": "Bearer"},
            )
        return None

    def is_open(self, scope: Scope) -> bool:
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # mounted at /api: match paths inside the mount
            path = path[len(root) :]
        return path in self.open_paths or path.startswith(self.open_prefixes)


def is_preflight(scope: Scope, headers: Headers) -> bool:
    return scope["method"] == "OPTIONS" and "access-control-request-method" in headers


def refuse(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    note(error=detail)
    return JSONResponse(
        {"detail": detail, "request_id": current_request_id()}, status_code=status, headers=headers
    )


def main() -> None:
    """`python -m chatcore.api.security HOST`: exit 1, saying why, if HOST must not be served."""
    import os
    import sys

    address = sys.argv[1] if len(sys.argv) > 1 else ""
    if problem := exposure_problem(address, os.environ.get("CHAT_API_TOKEN") or None):
        sys.exit(problem)


if __name__ == "__main__":
    main()
