"""The chat streams' reader (chatcore/backends/http_lines.py) against a real loopback HTTP server
whose answers are written byte for byte: whole, cut mid-answer, refused, failed; connections kept
for the next request and replaced when the host closed them."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from chatcore.backends.http_lines import (
    ConnectionLostError,
    HostUnreachableError,
    HttpStatusError,
    LinePoster,
)

LINES = [{"n": 1}, {"n": 2}, {"done": True}]


def chunked(lines: list[dict[str, object]], whole: bool = True) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(data), data)
        for data in (json.dumps(x).encode() + b"\n" for x in lines)
    )
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + body + (b"0\r\n\r\n" if whole else b"")


def sized(status: int, text: bytes, length: int | None = None) -> bytes:
    length = len(text) if length is None else length
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, length, text)


class Scripted(socketserver.ThreadingTCPServer):
    """Answers each request with the next scripted bytes; `close_after` closes the connection
    once they are written (as a host that goes away does)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: list[tuple[bytes, bool]] = []
        self.connections = 0
        self.bodies: list[bytes] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/prefix/"


class Handler(socketserver.StreamRequestHandler):
    server: Scripted

    def handle(self) -> None:
        self.server.connections += 1
        while self.server.script:
            request = self.rfile.readline()
            if not request:
                return
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            self.server.bodies.append(request + self.rfile.read(length))
            answer, close_after = self.server.script.pop(0)
            self.wfile.write(answer)
            self.wfile.flush()
            if close_after:
                self.request.shutdown(socket.SHUT_RDWR)
                return


@pytest.fixture
def server() -> Iterator[Scripted]:
    scripted = Scripted()
    thread = threading.Thread(target=scripted.serve_forever, daemon=True)
    thread.start()
    yield scripted
    scripted.shutdown()
    scripted.server_close()


def poster(server: Scripted) -> LinePoster:
    return LinePoster(server.url, {"User-Agent": "test", "Accept-Encoding": "gzip"}, 2.0)


def test_lines_come_parsed_and_the_connection_is_kept(server: Scripted) -> None:
    server.script = [(chunked(LINES), False), (sized(200, b'{"n": 3}\n'), False)]
    chats = poster(server)
    assert list(chats.post("/api/chat", {"model": "m"})) == LINES
    assert list(chats.post("/api/chat", {"model": "m"})) == [{"n": 3}]
    assert server.connections == 1  # the second request went on the first connection
    first = server.bodies[0]
    assert first.startswith(b"POST /prefix/api/chat HTTP/1.1") and b'{"model": "m"}' in first
    assert b"gzip" not in first  # never asked compressed: http.client would not unpack it
    chats.close()


@pytest.mark.parametrize(
    "answer",
    [chunked(LINES, whole=False), sized(200, b'{"n": 1}\n', length=100)],
    ids=["chunked", "sized"],
)
def test_an_answer_cut_mid_way_is_lost_not_ended(server: Scripted, answer: bytes) -> None:
    server.script = [(answer, True)]
    received: list[dict[str, object]] = []
    with pytest.raises(ConnectionLostError):
        for line in poster(server).post("/api/chat", {}):
            received.append(line)
    assert received[0] == {"n": 1}


def test_a_kept_connection_the_host_closed_is_replaced(server: Scripted) -> None:
    server.script = [(chunked(LINES), True), (chunked(LINES), False)]
    chats = poster(server)
    assert list(chats.post("/api/chat", {})) == LINES
    assert list(chats.post("/api/chat", {})) == LINES
    assert server.connections == 2
    chats.close()


def test_an_error_status_gives_its_body(server: Scripted) -> None:
    server.script = [(sized(404, b'{"error": "model not found"}'), False)]
    with pytest.raises(HttpStatusError) as raised:
        list(poster(server).post("/api/chat", {}))
    assert (raised.value.status, raised.value.text) == (404, '{"error": "model not found"}')


def test_a_host_that_is_not_listening_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(HostUnreachableError):
        list(LinePoster(f"http://127.0.0.1:{port}", {}, 2.0).post("/api/chat", {}))


def test_an_answer_left_early_closes_its_connection(server: Scripted) -> None:
    server.script = [(chunked(LINES), False), (chunked(LINES), False)]
    chats = poster(server)
    lines = chats.post("/api/chat", {})
    assert next(lines) == {"n": 1}
    lines.close()  # a stopped reply: the host must see the connection go
    assert list(chats.post("/api/chat", {})) == LINES
    assert server.connections == 2
    chats.close()
