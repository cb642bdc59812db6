"""How the dashboard's server sends what the API and the proxies answer: uncompressed, and
without Nagle's delay. Both cost a relayed reply time before its first token and CPU for every
batch; both come from Streamlit's server defaults, which suit its pages, not a stream of pieces.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send


class Uncompressed:
    """Streamlit's server gzips what it serves (level 9), a streamed response chunk by chunk:
    for a reply relayed at thousands of tokens a second that is CPU on both ends for every
    batch, to save bytes on loopback. Its gzip layer leaves alone a request that accepts no
    encoding, so this middleware (run before Streamlit's own) takes the `Accept-Encoding` header
    off the requests to the mounted paths."""

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


def accept_without_delay(port: int) -> int:
    """Turn Nagle's algorithm off (TCP_NODELAY) for the connections the server accepts on
    `port`; returns how many listening sockets it changed.

    asyncio does it only for a socket made with protocol IPPROTO_TCP, and Streamlit binds its
    listening socket with protocol 0, so every connection kept it on: a response's first line,
    written just after its headers, waited for the client's delayed ACK of them (40 ms) whenever
    the client was not in quick-ACK mode (a tool's request just after another, say). Streamlit
    binds before it imports the app, so its socket is found among the open files; Linux passes
    the option on from a listening socket to each connection it accepts."""
    changed = 0
    for fd in open_descriptors():
        if (probe := socket_of(fd)) is None:
            continue
        with probe:
            if is_listening_on(probe, port):
                probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                changed += 1
    return changed


def socket_of(fd: int) -> socket.socket | None:
    """A socket object on a copy of `fd` (closing it leaves `fd` open); None for a file that is
    not a socket, or is closed already."""
    try:
        copy = os.dup(fd)
    except OSError:
        return None
    try:
        return socket.socket(fileno=copy)
    except OSError:
        os.close(copy)
        return None


def open_descriptors() -> Iterator[int]:
    if os.path.isdir("/proc/self/fd"):
        yield from (int(name) for name in os.listdir("/proc/self/fd"))
    else:
        yield from range(3, 256)


def is_listening_on(sock: socket.socket, port: int) -> bool:
    return (
        sock.family in (socket.AF_INET, socket.AF_INET6)
        and sock.type == socket.SOCK_STREAM
        and bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        and sock.getsockname()[1] == port
    )
