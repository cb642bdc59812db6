"""The API's and the proxies' responses go out uncompressed.

Streamlit's server gzips what it serves (level 9), a streamed response chunk by chunk: for a
reply relayed at thousands of tokens a second that is CPU on both ends for every batch, and a
delay before the first token, all to save bytes on loopback. Its gzip layer leaves alone a
request that accepts no encoding, so this middleware (run before Streamlit's own) takes the
`Accept-Encoding` header off the requests to the mounted paths.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send


class Uncompressed:
    def __init__(self, app: ASGIApp, prefixes: Sequence[str]) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.is_mounted(scope["path"]):
            headers = [(k, v) for k, v in scope["headers"] if k != b"accept-encoding"]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)

    def is_mounted(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.prefixes)
