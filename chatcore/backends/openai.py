"""OpenAI-compatible servers (vLLM, SGLang, llama.cpp's server, LM Studio, LiteLLM) as a backend.

They all speak the chat-completions protocol: models from `GET /v1/models`, replies streamed as
server-sent events from `POST /v1/chat/completions`. The metrics come from the `usage` object the
server sends when asked (`stream_options.include_usage`) and from llama.cpp's `timings` when it
sends them; a figure the server does not report stays None (shown as unknown, never as zero).
Reasoning streamed as `delta.reasoning_content` becomes the reply's thinking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx

from chatcore.backends.http_lines import (
    CONNECT_SECONDS,
    ConnectionLostError,
    HostUnreachableError,
    HttpStatusError,
    LinePoster,
)
from chatcore.backends.tool_calls import OpenAIToolDeltas, openai_messages
from chatcore.errors import BackendFailed, BackendUnavailable, Busy, DashboardError, ModelNotFound
from chatcore.params import GenerationParams
from chatcore.types import ChatMessage, Metrics, ModelInfo, Piece, Thinking

CLIENT_TIMEOUT = httpx.Timeout(None, connect=CONNECT_SECONDS)  # as the chats' (http_lines)
ADMIN_TIMEOUT = httpx.Timeout(15.0, connect=2.0)
NS_PER_MS = 1_000_000
DATA = "data:"
NO_DELTA: dict[str, Any] = {}
# The request fields the dashboard sets itself, whatever a relayed request carried.
OWN_FIELDS = frozenset({"model", "messages", "stream", "stream_options", "n"})
DONE = "[DONE]"


def api_base(url: str) -> str:
    """The base URL as the openai client takes it: `http://host:8000` means `.../v1`."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url if urlsplit(url).path else f"{url}/v1"


def masked(api_key: str | None) -> str:
    """An API key as it may be shown: its last four characters at most."""
    if not api_key:
        return ""
    return "…" + api_key[-4:] if len(api_key) >= 12 else "…"


class OpenAIBackend:
    """One OpenAI-compatible server; `host` is its API base URL (ending in /v1 unless given)."""

    name = "openai"

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.host = api_base(base_url)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # trust_env=False: a proxy setting must never reroute a loopback server.
        self._client = httpx.Client(headers=headers, timeout=CLIENT_TIMEOUT, trust_env=False)
        self._admin = httpx.Client(headers=headers, timeout=ADMIN_TIMEOUT, trust_env=False)
        # Chats stream through http.client: httpx cost 3-4 times the CPU a token
        # (chatcore/backends/http_lines.py).
        self._chats = LinePoster(self.host, headers, CONNECT_SECONDS)

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend({self.host!r})"

    def close(self) -> None:
        self._client.close()
        self._admin.close()
        self._chats.close()

    def list_models(self) -> list[ModelInfo]:
        """GET /models; any failure to list is BackendUnavailable: the registry routes around it."""
        try:
            with self._mapped_errors(model=None):
                answer = self._admin.get(f"{self.host}/models")
                self._raise_for_status(answer, model=None)
                entries = answer.json().get("data") or []
        except DashboardError as error:
            if isinstance(error, BackendUnavailable):
                raise
            raise BackendUnavailable(str(error)) from error
        except ValueError as error:  # not JSON: not an OpenAI-compatible server
            raise BackendUnavailable(
                f"{self.host} did not answer /models as an OpenAI-compatible server does."
            ) from error
        return [self._model_info(entry) for entry in entries if isinstance(entry, dict)]

    def embed(self, model: str, inputs: list[str]) -> tuple[list[list[float]], int | None]:
        """POST /embeddings: one vector per input, and the prompt tokens when reported."""
        with self._mapped_errors(model=model):
            answer = self._client.post(
                f"{self.host}/embeddings", json={"model": model, "input": inputs}
            )
            self._raise_for_status(answer, model)
            payload = answer.json()
        data = sorted(payload.get("data") or [], key=lambda d: d.get("index", 0))
        usage = payload.get("usage") or {}
        return [list(d["embedding"]) for d in data], whole(usage.get("prompt_tokens"))

    def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> Iterator[Piece]:
        return self.stream_body(model, chat_body(model, messages, params))

    def stream_body(self, model: str, body: dict[str, Any]) -> Iterator[Piece]:
        """A chat-completions request as given (the embedded engine adds llama.cpp's sampler
        fields), streamed: text pieces, then the Metrics."""
        lines = self._chats.lines("/chat/completions", body)
        try:
            with self._mapped_errors(model=model):
                yield from self._pieces(line.decode() for line in lines)
        finally:
            lines.close()  # closing the HTTP stream cancels generation on the server

    def _pieces(self, lines: Iterator[str]) -> Iterator[Piece]:
        finish: str | None = None
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        tools = OpenAIToolDeltas()
        for line in lines:
            if not line.startswith(DATA):
                continue  # blank separators, comments (": ping"), event names
            data = line[len(DATA) :].strip()
            if data == DONE:
                break
            event = json.loads(data)
            if "error" in event:
                raise BackendFailed(f"{self.host} stopped with an error: {error_text(event)}")
            for choice in event.get("choices") or ():
                delta = choice.get("delta") or NO_DELTA
                # Reasoning: vLLM, SGLang, llama.cpp and DeepSeek send `reasoning_content`;
                # some newer servers name it `reasoning`.
                if reasoning := delta.get("reasoning_content") or delta.get("reasoning"):
                    yield Thinking(reasoning)
                if text := delta.get("content"):
                    yield text
                if calls := delta.get("tool_calls"):  # a request with `tools`
                    tools.add(calls)
                finish = choice.get("finish_reason") or finish
            usage = event.get("usage") or usage
            timings = event.get("timings") or timings
        if (called := tools.calls()) is not None:
            yield called
        yield metrics_from(usage, timings, finish)

    def _model_info(self, entry: dict[str, Any]) -> ModelInfo:
        return ModelInfo(
            name=str(entry.get("id", "")),
            backend=self.name,
            host=self.host,
            details={"owned_by": str(entry["owned_by"])} if entry.get("owned_by") else {},
        )

    def _raise_for_status(self, response: httpx.Response, model: str | None) -> None:
        if response.status_code >= 400:
            text = error_text(json_or_text(response.text)) or response.reason_phrase
            self._raise_for(response.status_code, text, model)

    def _raise_for(self, status: int, text: str, model: str | None) -> NoReturn:
        if status in (401, 403):
            raise BackendFailed(f"{self.host} refused the API key ({status}): {text}")
        if status == 404 and model is not None:
            raise ModelNotFound(model, f"Model '{model}' is not served by {self.host}: {text}")
        if status in (429, 503):
            raise Busy(f"{self.host} is busy ({status}): {text}. Try again in a moment.")
        if status >= 500:
            raise BackendUnavailable(f"{self.host} failed ({status}): {text}")
        raise BackendFailed(f"{self.host} answered with an error ({status}): {text}")

    @contextmanager
    def _mapped_errors(self, model: str | None) -> Iterator[None]:
        try:
            yield
        except DashboardError:
            raise
        except HttpStatusError as error:
            text = error_text(json_or_text(error.text)) or f"HTTP {error.status}"
            self._raise_for(error.status, text, model)
        except (httpx.ConnectError, httpx.ConnectTimeout, HostUnreachableError) as error:
            raise BackendUnavailable(
                f"The OpenAI-compatible server at {self.host} can't be reached. "
                "Check that it is running, then try again."
            ) from error
        except (httpx.HTTPError, ConnectionLostError) as error:
            raise BackendFailed(  # the exception's class stays in the log (the cause)
                f"Lost the connection to {self.host}: it stopped answering "
                "in the middle of the reply. Try again."
            ) from error
        except json.JSONDecodeError as error:
            raise BackendFailed(f"{self.host} sent a line that is not JSON: {error}") from error


def chat_body(
    model: str, messages: Sequence[ChatMessage], params: GenerationParams
) -> dict[str, Any]:
    """The chat-completions request: the sidebar's parameters under OpenAI's names."""
    body: dict[str, Any] = {
        "model": model,
        "messages": openai_messages(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
    }
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    for name, value in params.openai_fields().items():  # a relayed request's own, as sent
        if name not in OWN_FIELDS:
            body[name] = value
    return body


def metrics_from(usage: dict[str, Any], timings: dict[str, Any], finish: str | None) -> Metrics:
    """`usage` for the token counts, llama.cpp's `timings` for durations (and counts it lacks)."""
    return Metrics(
        prompt_tokens=whole(usage.get("prompt_tokens"), timings.get("prompt_n")),
        completion_tokens=whole(usage.get("completion_tokens"), timings.get("predicted_n")),
        prompt_eval_duration_ns=nanoseconds(timings.get("prompt_ms")),
        eval_duration_ns=nanoseconds(timings.get("predicted_ms")),
        done_reason=finish,
    )


def whole(*candidates: Any) -> int | None:
    return next((int(c) for c in candidates if isinstance(c, (int, float))), None)


def nanoseconds(milliseconds: Any) -> int | None:
    if not isinstance(milliseconds, (int, float)):
        return None
    return round(milliseconds * NS_PER_MS)


def json_or_text(text: str) -> Any:
    """An error body's JSON, or its first characters when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text[:200]


def error_text(payload: Any) -> str:
    """OpenAI's `{"error": {"message": ...}}`, a bare `{"error": "..."}`, or FastAPI's detail."""
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail"))
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error is not None:
            return str(error)
    return str(payload or "")
