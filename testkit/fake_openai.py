"""An HTTP server on loopback that speaks the OpenAI chat-completions protocol, for fast tests and
benchmarks: real HTTP, real server-sent events, real status codes. The models are fake_ollama's
FakeModel, so one description serves both protocols.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from testkit.fake_ollama import (
    FakeModel,
    QuietServer,
    answers_a_tool,
    embedding,
    example_arguments,
)


@dataclass
class FakeOpenAI:
    models: list[FakeModel] = field(default_factory=lambda: [FakeModel("served-model")])
    api_key: str | None = None  # when set, every request must carry it as a Bearer token
    usage: bool = True  # answer stream_options.include_usage with a usage chunk
    timings: bool = False  # add llama.cpp's `timings` to the last chunk
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0
    port: int = 0
    _connections: set[socket.socket] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._server = QuietServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open connections, as a server that dies does."""
        self._server.shutdown()
        self._server.server_close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def model(self, name: str) -> FakeModel | None:
        return next((m for m in self.models if m.name == name), None)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(OpenAIHandler):
            state = fake

        return Handler


class OpenAIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.state._connections.add(self.connection)

    def finish(self) -> None:
        self.state._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _json(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.state.api_key is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {self.state.api_key}":
            return True
        self._json({"error": {"message": "Incorrect API key provided", "code": 401}}, 401)
        return False

    def do_GET(self) -> None:
        self.state.requests.append({"path": self.path, "body": {}, "headers": dict(self.headers)})
        if not self._authorised():
            return
        if self.path == "/v1/models":
            data = [
                {"id": m.name, "object": "model", "owned_by": "fake"} for m in self.state.models
            ]
            self._json({"object": "list", "data": data})
        else:
            self._json({"error": {"message": "not found"}}, 404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.state.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        if not self._authorised():
            return
        if self.path == "/v1/embeddings":
            raw = body.get("input", [])
            inputs = [raw] if isinstance(raw, str) else list(raw)
            data = [
                {"object": "embedding", "index": i, "embedding": embedding(text)}
                for i, text in enumerate(inputs)
            ]
            tokens = sum(len(text.split()) for text in inputs)
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            self._json({"object": "list", "data": data, "model": body.get("model"), "usage": usage})
            return
        if self.path != "/v1/chat/completions":
            self._json({"error": {"message": "not found"}}, 404)
            return
        model = self.state.model(str(body.get("model", "")))
        if model is None:
            message = f"The model `{body.get('model')}` does not exist"
            self._json({"error": {"message": message, "code": "model_not_found"}}, 404)
            return
        tokens = model.tokens(body.get("messages"))
        limit = body.get("max_tokens")
        finish = "stop"
        if (call := tool_call_for(body)) is not None:
            self._tool_call(model, body, call)
            return
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            tokens, finish = tokens[:limit], "length"
        try:
            if body.get("stream"):
                self._stream(model, body, tokens, finish)
            else:
                self._whole(model, body, tokens, finish)
        except (BrokenPipeError, ConnectionResetError):
            self.state.cancelled += 1
            self.close_connection = True

    def _whole(
        self, model: FakeModel, body: dict[str, Any], tokens: list[str], finish: str
    ) -> None:
        time.sleep(model.load_delay + model.token_delay * max(0, len(tokens) - 1))
        self._json(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": model.name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(tokens)},
                        "finish_reason": finish,
                    }
                ],
                "usage": usage(body, tokens),
            }
        )

    def _stream(
        self, model: FakeModel, body: dict[str, Any], tokens: list[str], finish: str
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        time.sleep(model.load_delay)
        started = time.perf_counter()
        self._event(delta_chunk(model.name, {"role": "assistant"}))
        # A reasoning model's thoughts first, as vLLM and llama.cpp stream them.
        thoughts = model.thinking_tokens(None)
        for thought in thoughts:
            self._event(delta_chunk(model.name, {"reasoning_content": thought}))
        for index, token in enumerate(tokens):
            if model.fail_after is not None and index == model.fail_after:
                self._event({"error": {"message": "the model crashed"}})
                self._end()
                return
            if index and model.token_delay:
                time.sleep(model.token_delay)
            self._event(delta_chunk(model.name, {"content": token}))
        last = delta_chunk(model.name, {}, finish)
        if self.state.timings:
            predicted_ms = (time.perf_counter() - started) * 1000
            last["timings"] = {
                "prompt_n": prompt_tokens(body),
                "prompt_ms": 1.5,
                "predicted_n": len(tokens),
                "predicted_ms": predicted_ms,
            }
        self._event(last)
        if self.state.usage and (body.get("stream_options") or {}).get("include_usage"):
            counted = [*thoughts, *tokens]  # completion tokens count the reasoning too
            self._event({"id": "chatcmpl-fake", "choices": [], "usage": usage(body, counted)})
        self._data(b"[DONE]")
        self._end()

    def _tool_call(self, model: FakeModel, body: dict[str, Any], call: dict[str, Any]) -> None:
        """A call of the first tool instead of text: whole in `message`, or streamed as vLLM
        does: the id and name first, then the arguments' JSON text in fragments."""
        if not body.get("stream"):
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
            self._json({"id": "chatcmpl-fake", "object": "chat.completion", "choices": [choice]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._event(delta_chunk(model.name, {"role": "assistant"}))
        function, text = call["function"], call["function"]["arguments"]
        start = {**call, "index": 0, "function": {"name": function["name"], "arguments": ""}}
        self._event(delta_chunk(model.name, {"tool_calls": [start]}))
        middle = len(text) // 2
        for part in (text[:middle], text[middle:]):
            fragment = {"index": 0, "function": {"arguments": part}}
            self._event(delta_chunk(model.name, {"tool_calls": [fragment]}))
        self._event(delta_chunk(model.name, {}, "tool_calls"))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({"id": "chatcmpl-fake", "choices": [], "usage": usage(body, ["call"])})
        self._data(b"[DONE]")
        self._end()

    def _event(self, payload: dict[str, Any]) -> None:
        self._data(json.dumps(payload).encode())

    def _data(self, data: bytes) -> None:
        event = b"data: " + data + b"\n\n"
        self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.wfile.flush()

    def _end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def delta_chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def tool_call_for(body: dict[str, Any]) -> dict[str, Any] | None:
    """A call of the request's first tool, unless it has none or says tool_choice "none"."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools or body.get("tool_choice") == "none":
        return None
    if answers_a_tool(body.get("messages")):  # a tool's result is answered in text
        return None
    function = tools[0].get("function") or {}
    arguments = json.dumps(example_arguments(function))
    return {
        "id": "call_fake_1",
        "type": "function",
        "function": {"name": function.get("name", ""), "arguments": arguments},
    }


def prompt_tokens(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or ())


def usage(body: dict[str, Any], tokens: list[str]) -> dict[str, int]:
    prompt = prompt_tokens(body)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": len(tokens),
        "total_tokens": prompt + len(tokens),
    }
