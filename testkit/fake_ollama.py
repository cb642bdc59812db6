"""An HTTP server on loopback that speaks Ollama's wire protocol, for tests and benchmarks.

Real HTTP, real NDJSON streams with chunked transfer, real status codes: the official client
talks to it exactly as it talks to Ollama (shapes from shared/reference/ollama-api.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import math
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NS = 1_000_000_000


@dataclass
class FakeModel:
    name: str
    reply: str = "Hello! How can I help you today?"
    token_delay: float = 0.0  # seconds between tokens
    load_delay: float = 0.0  # seconds before the first token (a cold load)
    fail_after: int | None = None  # send an error line after this many tokens
    family: str = "llama"
    parameter_size: str = "3.2B"
    quantization: str = "Q4_K_M"
    size: int = 2_019_393_189
    echo: bool = False  # answer "You said: <last user message>", to tell concurrent chats apart
    capabilities: tuple[str, ...] = ("completion",)
    context_length: int = 131072
    parameters: str = 'temperature 0.6\ntop_p 0.95\nstop "<|eot_id|>"'
    system: str = ""
    layers: tuple[int, ...] = (2_000_000, 4_000)  # layer sizes in bytes, for /api/pull
    # Reasoning streamed as `message.thinking` before the answer, when the model has the
    # "thinking" capability and `think` is not false (absent: the model's default, which thinks).
    thinking: str = ""
    think_values: tuple[bool | str, ...] = ()  # /api/show's `thinking.values` (e.g. levels)
    think_default: bool | str | None = None

    def thinking_tokens(self, think: Any) -> list[str]:
        if not self.thinking or think is False:
            return []
        words = self.thinking.split(" ")
        if isinstance(think, str):  # a level: say which one it reasoned at
            words = [f"[{think}]", *words]
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    embedding_dims: int | None = None  # an embedding model: /api/embed answers vectors this long
    refuses_embeddings: bool = False  # some chat models: /api/embed answers 400

    def tokens(self, messages: list[dict[str, Any]] | None = None) -> list[str]:
        text = self.reply
        if messages and messages[-1].get("role") == "tool":  # a tool's result: answer from it
            text = f"The tool said: {messages[-1].get('content', '')}"
        elif self.echo and messages:
            asked = [m.get("content", "") for m in messages if m.get("role") == "user"]
            text = f"You said: {asked[-1] if asked else ''}"
        words = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client dropping a kept-alive connection (a cancelled pull) is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class FakeOllama:
    models: list[FakeModel] = field(default_factory=lambda: [FakeModel("llama3.2:latest")])
    version: str = "0.33.0"
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0
    port: int = 0
    serial: bool = False  # serve one chat at a time, as Ollama with OLLAMA_NUM_PARALLEL=1 does
    # Models /api/pull can fetch, by name; others get the registry's error line.
    library: list[FakeModel] = field(default_factory=list)
    pull_delay: float = 0.0  # seconds between pull progress lines
    pull_steps: int = 4  # progress lines per layer
    pull_error: str | None = None  # an error line sent mid-pull (e.g. no space left)
    loaded: dict[str, float] = field(default_factory=dict)  # model -> unload time (epoch s)
    # Messages each chat request lost to the window, as Ollama drops them without a word when a
    # prompt is longer than num_ctx (one entry per chat; 0: it fitted).
    truncated: list[int] = field(default_factory=list)
    _connections: set[socket.socket] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._server = QuietServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.one_at_a_time = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeOllama:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop kept-alive connections, as a server that exits does."""
        self._server.shutdown()
        self._server.server_close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    @property
    def open_connections(self) -> int:
        """Connections a client holds open to it now (kept alive between requests too)."""
        return len(self._connections)

    def model(self, name: str) -> FakeModel | None:
        bare = name if ":" in name else f"{name}:latest"
        return next((m for m in self.models if m.name in (name, bare)), None)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/api/chat"]

    def library_model(self, name: str) -> FakeModel | None:
        bare = name if ":" in name else f"{name}:latest"
        return next((m for m in self.library if m.name in (name, bare)), None)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(OllamaHandler):
            server_state = fake

        return Handler


class OllamaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: FakeOllama

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # --- plumbing ---

    def setup(self) -> None:
        super().setup()
        # As Go's net/http does: small NDJSON lines must not wait for Nagle's algorithm.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server_state._connections.add(self.connection)

    def finish(self) -> None:
        self.server_state._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        body = json.loads(raw or b"{}")
        self.server_state.requests.append({"path": self.path, "body": body})
        return body

    def _json(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _line(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- endpoints ---

    def do_GET(self) -> None:
        self.server_state.requests.append({"path": self.path, "body": {}})
        if self.path == "/":
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/api/version":
            self._json({"version": self.server_state.version})
        elif self.path == "/api/tags":
            self._json({"models": [tag(m) for m in self.server_state.models]})
        elif self.path == "/api/ps":
            self._json({"models": self._running()})
        else:
            self._json({"error": "not found"}, 404)

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/api/chat":
            self._chat(body)
        elif self.path == "/api/show":
            self._show(body)
        elif self.path == "/api/pull":
            self._pull(body)
        elif self.path == "/api/embed":
            self._embed(body)
        else:
            self._json({"error": "not found"}, 404)

    def do_DELETE(self) -> None:
        body = self._body()
        if self.path != "/api/delete":
            self._json({"error": "not found"}, 404)
            return
        state = self.server_state
        model = state.model(str(body.get("model", "")))
        if model is None:
            self._json({"error": f"model '{body.get('model')}' not found"}, 404)
            return
        state.models.remove(model)
        state.loaded.pop(model.name, None)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _running(self) -> list[dict[str, Any]]:
        state = self.server_state
        now = time.time()
        running = []
        for name, until in list(state.loaded.items()):
            model = state.model(name)
            if model is None or until <= now:
                state.loaded.pop(name, None)
                continue
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))
            running.append(
                {
                    **tag(model),
                    "size_vram": model.size // 2,
                    "size": model.size + 500_000_000,
                    "expires_at": expires,
                    "context_length": 4096,
                }
            )
        return running

    def _show(self, body: dict[str, Any]) -> None:
        name = str(body.get("model", ""))
        model = self.server_state.model(name)
        if model is None:
            self._json({"error": f"model '{name}' not found"}, 404)
            return
        arch = model.family
        extra: dict[str, Any] = {}
        if model.think_values:
            extra["thinking"] = {"values": list(model.think_values), "default": model.think_default}
        self._json(
            {
                **extra,
                "modelfile": modelfile(model),
                "parameters": model.parameters,
                "template": "{{ .Prompt }}",
                "system": model.system,
                "details": tag(model)["details"],
                "model_info": {
                    "general.architecture": arch,
                    f"{arch}.context_length": model.context_length,
                },
                "capabilities": list(model.capabilities),
                "modified_at": "2026-11-01T10:00:00.000000Z",
            }
        )

    def _pull(self, body: dict[str, Any]) -> None:
        try:
            self._stream_pull(str(body.get("model", "")))
        except (BrokenPipeError, ConnectionResetError):
            self.server_state.cancelled += 1
            self.close_connection = True

    def _stream_pull(self, name: str) -> None:
        state = self.server_state
        self._start_stream()
        self._line({"status": "pulling manifest"})
        wanted = state.library_model(name)
        if wanted is None:
            self._line({"error": "pull model manifest: file does not exist"})
            self._end_stream()
            return
        digests = [
            "sha256:" + hashlib.sha256(f"{wanted.name}/{i}".encode()).hexdigest()
            for i in range(len(wanted.layers))
        ]
        for digest, total in zip(digests, wanted.layers, strict=True):
            # Ollama starts every layer at once: each shows up before any finishes.
            self._line({"status": f"pulling {digest[7:19]}", "digest": digest, "total": total})
        for index, total in enumerate(wanted.layers):
            digest = digests[index]
            for step in range(1, state.pull_steps + 1):
                time.sleep(state.pull_delay)
                if state.pull_error and index == len(wanted.layers) - 1 and step == 1:
                    self._line({"error": state.pull_error})
                    self._end_stream()
                    return
                completed = total * step // state.pull_steps
                status = f"pulling {digest[7:19]}"
                self._line(
                    {"status": status, "digest": digest, "total": total, "completed": completed}
                )
        for status in ("verifying sha256 digest", "writing manifest"):
            self._line({"status": status})
        if state.model(wanted.name) is None:
            state.models.append(wanted)
        self._line({"status": "success"})
        self._end_stream()

    def _embed(self, body: dict[str, Any]) -> None:
        name = str(body.get("model", ""))
        model = self.server_state.model(name)
        if model is None:
            self._json({"error": f"model '{name}' not found"}, 404)
            return
        if model.refuses_embeddings:
            self._json({"error": f'"{name}" does not support embeddings'}, 400)
            return
        texts = body.get("input", "")
        texts = [texts] if isinstance(texts, str) else list(texts)
        if model.embedding_dims:  # an embedding model: vectors whose neighbours share words
            vectors = [hashed_vector(str(t), model.embedding_dims) for t in texts]
        else:  # any other model embeds too, as Ollama's do: a vector per text, nothing more
            vectors = [embedding(str(t)) for t in texts]
        count = sum(len(str(t).split()) for t in texts)
        self._json(
            {
                "model": name,
                "embeddings": vectors,
                "total_duration": 1_000_000,
                "load_duration": 100_000,
                "prompt_eval_count": count,
            }
        )

    def _chat(self, body: dict[str, Any]) -> None:
        name = body.get("model", "")
        model = self.server_state.model(name)
        if model is None:
            self._json({"error": f"model '{name}' not found"}, 404)
            return
        if not body.get("messages"):  # an empty chat loads or, with keep_alive 0, unloads
            self._load_or_unload(name, model, body)
            return
        if body.get("stream", True) is False:
            self._json({"error": "the fake speaks streams only"}, 400)
            return
        if refusal := refused_request(model, body):
            self._json({"error": refusal}, 400)
            return
        state = self.server_state
        try:
            if state.serial:
                with state.one_at_a_time:
                    self._stream_reply(name, model, body)
            else:
                self._stream_reply(name, model, body)
        except (BrokenPipeError, ConnectionResetError):
            state.cancelled += 1
            self.close_connection = True
        state.loaded[model.name] = time.time() + keep_alive_seconds(body)

    def _load_or_unload(self, name: str, model: FakeModel, body: dict[str, Any]) -> None:
        try:
            seconds = keep_alive_seconds(body)
        except ValueError as error:
            self._json({"error": str(error)}, 400)
            return
        if seconds == 0:
            self.server_state.loaded.pop(model.name, None)
            reason = "unload"
        else:
            self.server_state.loaded[model.name] = time.time() + seconds
            reason = "load"
        final = chunk(name, "", done=True)
        final["done_reason"] = reason
        self._json(final)

    def _stream_reply(self, name: str, model: FakeModel, body: dict[str, Any]) -> None:
        started = time.perf_counter_ns()
        options = body.get("options") or {}
        limit = int(options.get("num_predict", -1))
        thoughts = model.thinking_tokens(body.get("think", model.think_default))
        tokens = model.tokens(body.get("messages"))
        calls = tool_calls_for(body.get("tools"), body.get("messages"))
        if calls:  # a model given tools calls the first one instead of answering in text
            tokens = []
        done_reason = "stop"
        if 0 <= limit < len(thoughts) + len(tokens):  # thinking counts against num_predict
            thoughts = thoughts[:limit]
            tokens, done_reason = tokens[: max(0, limit - len(thoughts))], "length"
        self._start_stream()
        time.sleep(model.load_delay)
        loaded = time.perf_counter_ns()
        write, flush = self.wfile.write, self.wfile.flush
        for index, thought in enumerate(thoughts):
            if index and model.token_delay:
                time.sleep(model.token_delay)
            write(piece_frame(name, "", thought))
            flush()
        if thoughts and tokens and model.token_delay:
            time.sleep(model.token_delay)
        for index, token in enumerate(tokens):
            if model.fail_after is not None and index == model.fail_after:
                self._line({"error": "an error was encountered while running the model"})
                self._end_stream()
                return
            if index and model.token_delay:
                time.sleep(model.token_delay)
            write(piece_frame(name, token, ""))
            flush()
        if calls:  # as Ollama sends them: whole, in a line of their own before the last
            line = chunk(name, "")
            line["message"]["tool_calls"] = calls
            self._line(line)
        finished = time.perf_counter_ns()
        prompt_tokens = self._fitted_prompt_tokens(model, body)
        final = chunk(name, "", done=True)
        final.update(
            done_reason=done_reason,
            total_duration=finished - started,
            load_duration=loaded - started,
            prompt_eval_count=prompt_tokens,
            prompt_eval_duration=max(1, prompt_tokens) * 1_000_000,
            eval_count=len(thoughts) + len(tokens),  # Ollama counts both
            eval_duration=max(1, finished - loaded),
        )
        self._line(final)
        self._end_stream()

    def _fitted_prompt_tokens(self, model: FakeModel, body: dict[str, Any]) -> int:
        """The prompt's tokens after Ollama's own cut: with a prompt longer than the window
        (num_ctx, else Ollama's default, never more than the model was trained for) the oldest
        messages go, the system messages and the newest stay; prompt_eval_count is what is left."""
        options = body.get("options") or {}
        window = min(int(options.get("num_ctx") or DEFAULT_NUM_CTX), model.context_length)
        messages = list(body["messages"])
        counts = [prompt_tokens_of(m) for m in messages]
        dropped = 0
        while sum(counts) > window:
            oldest = next(
                (i for i, m in enumerate(messages[:-1]) if m.get("role") != "system"), None
            )
            if oldest is None:  # the runner cuts the prompt itself: it counts the window
                counts = [window]
                break
            messages.pop(oldest)
            counts.pop(oldest)
            dropped += 1
        self.server_state.truncated.append(dropped)
        return sum(counts)


DEFAULT_NUM_CTX = 4096  # Ollama's window when a request names none
TEMPLATE_TOKENS = 4  # the chat template's markers around each message
# One token per character of Chinese, Japanese or Korean (as the usual tokenizers come close to).
CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]")


def text_tokens(text: str) -> int:
    """A stand-in tokenizer: a token per word, and one per CJK character."""
    wide = len(CJK.findall(text))
    return wide + len(CJK.sub(" ", text).split())


def prompt_tokens_of(message: dict[str, Any]) -> int:
    return TEMPLATE_TOKENS + text_tokens(str(message.get("content", "")))


def embedding(text: str, size: int = 8) -> list[float]:
    """A made-up vector that depends only on the text: the same text, the same vector."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(byte / 255, 4) for byte in digest[:size]]


def hashed_vector(text: str, dims: int) -> list[float]:
    """A deterministic, normalized bag of words (and CJK characters) hashed into `dims` buckets:
    texts that share words point the same way, as a real embedding's neighbours do."""
    vector = [0.0] * dims
    for word in re.findall(r"[\u4e00-\u9fff]|[^\W_]+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dims
        vector[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


@functools.lru_cache(maxsize=65536)
def piece_frame(model: str, content: str, thinking: str) -> bytes:
    """One streamed piece's line in its chunked-transfer frame, encoded once and kept: the
    benchmarks' unthrottled server must not be what limits the tokens per second."""
    data = json.dumps(chunk(model, content, thinking=thinking)).encode() + b"\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def chunk(model: str, content: str, done: bool = False, thinking: str = "") -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    return {
        "model": model,
        "created_at": "2026-11-25T12:00:00.000000Z",
        "message": message,
        "done": done,
    }


def tool_calls_for(tools: Any, messages: Any) -> list[dict[str, Any]]:
    """Ollama's `message.tool_calls` of a fake model given `tools`: a call of the first one,
    each of its parameters filled with an example of its type (none when no tools, or when the
    last message is a tool's result: that is answered in text)."""
    if not isinstance(tools, list) or not tools or answers_a_tool(messages):
        return []
    function = tools[0].get("function") or {}
    return [
        {"function": {"name": function.get("name", ""), "arguments": example_arguments(function)}}
    ]


def answers_a_tool(messages: Any) -> bool:
    return bool(messages) and isinstance(messages, list) and messages[-1].get("role") == "tool"


def example_arguments(function: dict[str, Any]) -> dict[str, Any]:
    examples = {"string": "Paris", "integer": 3, "number": 2.5, "boolean": True}
    properties = (function.get("parameters") or {}).get("properties") or {}
    return {name: examples.get(str(spec.get("type")), "Paris") for name, spec in properties.items()}


def refused_request(model: FakeModel, body: dict[str, Any]) -> str | None:
    """What Ollama answers 400 to before streaming: thinking asked of a model that can't, images
    for a model without vision, and images that are not base64 of an image."""
    think = body.get("think")
    if think not in (None, False) and "thinking" not in model.capabilities:
        return f'"{model.name}" does not support thinking'
    images = [i for m in body.get("messages") or () for i in m.get("images") or ()]
    if images and "vision" not in model.capabilities:
        return f'"{model.name}" does not support images'  # never ignored silently
    for image in images:
        try:
            data = base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return "illegal base64 data in images"
        if not data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF")):
            return "failed to process inputs: image: unknown format"
    return None


def modelfile(model: FakeModel) -> str:
    lines = [f"FROM {model.name}"]
    if model.system:
        lines.append(f'SYSTEM """{model.system}"""')
    lines += [f"PARAMETER {line}" for line in model.parameters.splitlines()]
    return "\n".join(lines) + "\n"


def keep_alive_seconds(body: dict[str, Any]) -> float:
    """Ollama's keep_alive: seconds, or a duration like "10m"; five minutes when absent."""
    value = body.get("keep_alive", "5m")
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else 10 * 365 * 86400
    units = {"s": 1, "m": 60, "h": 3600}
    if not value or value[-1] not in units:
        raise ValueError(f"time: missing unit in duration {value!r}")  # as Go's ParseDuration
    seconds = float(value[:-1]) * units[value[-1]]
    return seconds if seconds >= 0 else 10 * 365 * 86400


def tag(model: FakeModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "model": model.name,
        "modified_at": "2026-11-01T10:00:00.000000Z",
        "size": model.size,
        "digest": f"{abs(hash(model.name)):064x}"[:64],
        "details": {
            "format": "gguf",
            "family": model.family,
            "families": [model.family],
            "parameter_size": model.parameter_size,
            "quantization_level": model.quantization,
        },
    }


def main() -> None:
    """Serve a fake Ollama until killed: `python -m testkit.fake_ollama --tokens 2000`."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="llama3.2:latest")
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between tokens")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=DELAY",
        help="serve another model with the same reply at its own speed (repeatable)",
    )
    parser.add_argument("--serial", action="store_true", help="serve one chat at a time")
    parser.add_argument(
        "--thinking", type=int, default=0, help="thinking tokens streamed before the reply"
    )
    args = parser.parse_args()
    reply = " ".join(f"w{i}" for i in range(args.tokens))
    thinking = " ".join(f"t{i}" for i in range(args.thinking))
    capabilities = ("completion", "thinking") if args.thinking else ("completion",)
    models = [
        FakeModel(
            args.model,
            reply=reply,
            token_delay=args.delay,
            thinking=thinking,
            capabilities=capabilities,
        )
    ]
    for spec in args.also:
        name, delay = spec.rsplit("=", 1)
        models.append(FakeModel(name, reply=reply, token_delay=float(delay)))
    server = FakeOllama(models, port=args.port, serial=args.serial)
    print(server.start().url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
