"""The chat streams' reader (chatcore/backends/http_lines.py) against a real loopback HTTP server
whose answers are written byte for byte: whole, cut mid-answer, refused, failed; connections kept
for the next request and replaced when the host closed them."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from itertools import pairwise

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
        # bytes written at once, or a list of parts written a few milliseconds apart
        self.script: list[tuple[bytes | list[bytes], bool]] = []
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
            for part in answer if isinstance(answer, list) else [answer]:
                self.wfile.write(part)
                self.wfile.flush()
                if isinstance(answer, list):
                    time.sleep(0.005)  # its own packet: the reader meets a part at a time
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


def framed_anyhow(body: bytes, cuts: list[int], trailer: bytes = b"") -> bytes:
    """`body` in chunks cut at `cuts` (so lines split across chunks and share them), with a
    chunk extension on the first and `trailer` after the last: all HTTP/1.1 allows."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(body)}), len(body)]
    pieces = [body[a:b] for a, b in pairwise(bounds)]
    chunks = b"".join(
        b"%x%s\r\n%s\r\n" % (len(piece), b";ext=1" if i == 0 else b"", piece)
        for i, piece in enumerate(pieces)
    )
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + chunks + b"0\r\n" + trailer + b"\r\n"


SSE = b'data: {"n": 1}\n\ndata: {"n": 2}\n\ndata: [DONE]\n\n'


@pytest.mark.parametrize(
    "cuts", [[], [3], [7, 8, 9, 10], list(range(1, len(SSE))), [16, 17, 30]], ids=str
)
def test_lines_come_whole_however_the_chunks_cut_them(server: Scripted, cuts: list[int]) -> None:
    server.script = [
        (framed_anyhow(SSE, cuts, b"X-Checksum: 1\r\n"), False),
        (chunked(LINES), False),
    ]
    chats = poster(server)
    assert list(chats.lines("/v1/chat/completions", {})) == [
        b'data: {"n": 1}\n',
        b"\n",
        b'data: {"n": 2}\n',
        b"\n",
        b"data: [DONE]\n",
        b"\n",
    ]
    assert list(chats.post("/api/chat", {})) == LINES  # the same connection, read to its end
    assert server.connections == 1
    chats.close()


def test_a_last_line_without_its_newline_still_comes(server: Scripted) -> None:
    server.script = [(framed_anyhow(b'{"n": 1}\n{"done": true}', [5]), False)]
    assert list(poster(server).post("/api/chat", {})) == [{"n": 1}, {"done": True}]


def test_a_malformed_chunk_size_is_a_lost_connection(server: Scripted) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    server.script = [(head + b'9\r\n{"n": 1}\n\r\nzz\r\n', True)]
    received: list[dict[str, object]] = []
    with pytest.raises(ConnectionLostError, match="chunk size"):
        for line in poster(server).post("/api/chat", {}):
            received.append(line)
    assert received == [{"n": 1}]


def test_a_line_that_is_not_json_is_refused(server: Scripted) -> None:
    server.script = [(chunked([])[:-5] + b'9\r\n{"n": 1}x\r\n0\r\n\r\n', False)]
    with pytest.raises(json.JSONDecodeError):
        list(poster(server).post("/api/chat", {}))


def test_lines_come_whole_when_the_answer_arrives_a_few_bytes_at_a_time(server: Scripted) -> None:
    answer = framed_anyhow(SSE, [10, 20, 21, 40])
    head = answer.index(b"\r\n\r\n") + 4
    parts = [answer[:head]] + [answer[i : i + 3] for i in range(head, len(answer), 3)]
    server.script = [(parts, False), (chunked(LINES), False)]
    chats = poster(server)
    assert b"".join(chats.lines("/v1/chat/completions", {})) == SSE
    assert list(chats.post("/api/chat", {})) == LINES
    assert server.connections == 1
    chats.close()
