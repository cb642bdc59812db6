"""A streamed POST read line by line with the standard library's http.client.

Reading a reply through httpx cost about 53 µs of CPU a token (each token comes in an HTTP chunk
of its own, and each chunk passes through h11's events and httpx's decoders, four generators
deep); http.client's buffered readline costs 8-15 µs (one process reading the same fast loopback
stream both ways in turns; see the README's gateway section). On a 2-core machine that CPU is
the difference between the proxy keeping up with a fast server or not. Only the chat streams
come here; everything else stays with the official client.

Connections are kept for the next reply (a loopback connect is cheap, a remote one is a round
trip): a connection goes back to the pool only after its answer was read to the end; a reply
closed early closes its connection, which is how the server learns to stop generating.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

# Connecting gives up after this; reading never does: a first model load can take minutes
# before the first byte arrives.
CONNECT_SECONDS = 5.0
KEPT_CONNECTIONS = 4  # idle connections kept per host (replies at once beyond that reconnect)
# Headers of the official client that do not apply here: http.client neither decompresses nor
# manages the connection header itself.
DROPPED_HEADERS = {"accept-encoding", "connection", "content-length", "host"}
BLOCK_BYTES = 65536  # read at most this much of a chunked answer at once
DECODER = json.JSONDecoder()


class HostUnreachableError(ConnectionError):
    """The host could not be reached: nothing was sent."""


class ConnectionLostError(Exception):
    """The connection failed after the request went out (mid-answer, or before its status)."""


class HttpStatusError(Exception):
    """The host answered with an error status; `text` is its body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text}")
        self.status = status
        self.text = text


class LinePoster:
    """POSTs JSON to one base URL and yields the answer's lines as parsed JSON."""

    def __init__(self, base_url: str, headers: Mapping[str, str], connect_timeout: float) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._headers = {k: v for k, v in headers.items() if k.lower() not in DROPPED_HEADERS}
        self._connect_timeout = connect_timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False  # a reply still streaming then closes its connection at its end

    def post(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The answer's non-empty lines, parsed (NDJSON); raises as `lines` does."""
        lines = self.lines(path, body)
        try:
            for line in lines:
                if line.strip():
                    yield parsed(line)
        finally:
            lines.close()

    def lines(self, path: str, body: dict[str, Any]) -> Iterator[bytes]:
        """The answer's lines as they come (server-sent events' blank ones too); raises
        HostUnreachableError, ConnectionLostError or HttpStatusError."""
        payload = json.dumps(body).encode()
        connection, response = self._sent(self._prefix + path, payload)
        finished = False
        try:
            if response.status >= 400:
                raise HttpStatusError(response.status, read_text(response))
            if response.chunked:
                yield from chunked_lines(response)
            else:
                readline = response.readline
                while line := readline():
                    yield line
                if not read_to_its_end(response):
                    raise ConnectionLostError("The connection closed before the answer's end.")
            finished = True
        except (OSError, http.client.HTTPException) as error:
            raise ConnectionLostError(str(error) or type(error).__name__) from error
        finally:
            self._done_with(connection, response, finished)

    def close(self) -> None:
        """Close the kept connections; one in use is closed when its answer ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _sent(
        self, url: str, payload: bytes
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """The request sent and its answer's head read; a kept connection the host has since
        closed is replaced by a new one once."""
        headers = {**self._headers, "Content-Length": str(len(payload))}
        kept = self._kept()
        if kept is not None:
            try:
                return kept, request(kept, url, payload, headers)
            except (OSError, http.client.HTTPException):
                kept.close()  # closed by the host while idle: nothing reached it
        connection = self._connected()
        try:
            return connection, request(connection, url, payload, headers)
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise ConnectionLostError(str(error) or type(error).__name__) from error

    def _kept(self) -> http.client.HTTPConnection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _connected(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=self._connect_timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self._connect_timeout
            )
        try:
            connection.connect()
        except OSError as error:
            connection.close()
            raise HostUnreachableError(str(error) or type(error).__name__) from error
        assert connection.sock is not None
        connection.sock.settimeout(None)  # a first model load may take minutes to answer
        return connection

    def _done_with(
        self,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        finished: bool,
    ) -> None:
        """Kept for the next request when its answer was read whole, closed otherwise."""
        if not finished or response.will_close or not response.isclosed():
            connection.close()
            return
        with self._lock:
            if not self._closed and len(self._idle) < KEPT_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.close()


def request(
    connection: http.client.HTTPConnection, url: str, payload: bytes, headers: dict[str, str]
) -> http.client.HTTPResponse:
    connection.request("POST", url, body=payload, headers=headers)
    return connection.getresponse()


def chunked_lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The lines of a chunked answer, each with its newline (the last may have none), read in
    blocks of whatever has arrived. http.client's readline parses the chunk framing a line at a
    time, through five methods: 8.7 µs of the send path's 18 a token (a chunk a token, as
    Ollama flushes them), against about 2.5 here. The answer is closed after its last chunk, so
    its connection can be kept; a cut before it raises ConnectionLostError."""
    read = response.fp.read1
    raw = b""  # received, not yet parsed: chunk sizes and data
    start = 0  # where the next chunk's size line begins in `raw`
    partial = b""  # a line's beginning whose newline is still to come
    while True:
        end = raw.find(b"\r\n", start)
        if end < 0:
            raw = raw[start:] + receive(read)
            start = 0
            continue
        size = chunk_size(raw[start:end])
        if size == 0:
            break
        begins, start = end + 2, end + 4 + size
        while len(raw) < start:  # the chunk's data and its CRLF, not all here yet
            raw += receive(read)
        data = raw[begins : start - 2]
        if partial:
            data, partial = partial + data, b""
        if data[-1:] == b"\n" and data.count(b"\n") == 1:  # a line a chunk: the usual case
            yield data
            continue
        *complete, partial = data.split(b"\n")
        for line in complete:
            yield line + b"\n"
    while raw.find(b"\r\n\r\n", end) < 0:  # the trailer section's end, after the last chunk
        raw += receive(read)
    if partial:
        yield partial
    response.close()  # read whole: its connection may serve the next request


def chunk_size(line: bytes) -> int:
    try:
        return int(line.split(b";", 1)[0], 16)
    except ValueError:
        raise ConnectionLostError(f"A malformed chunk size in the answer: {line[:40]!r}") from None


def receive(read: Callable[[int], bytes]) -> bytes:
    block = read(BLOCK_BYTES)
    if not block:
        raise ConnectionLostError("The connection closed before the answer's end.")
    return block


def parsed(line: bytes) -> Any:
    """One JSON line: the decoder's own scan, without json.loads' detection of the bytes'
    encoding and its whitespace checks around it (1.6 µs a line against 4.4)."""
    text = line.decode().strip()
    value, end = DECODER.raw_decode(text)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def read_to_its_end(response: http.client.HTTPResponse) -> bool:
    """Whether an unchunked answer came whole: readline gives b"" at a connection cut
    mid-answer too; a sized one has nothing of its length left."""
    if response.length:
        return False
    response.read()  # nothing left to read: this closes it, and frees its connection
    return True


def read_text(response: http.client.HTTPResponse) -> str:
    return response.read().decode("utf-8", errors="replace")
