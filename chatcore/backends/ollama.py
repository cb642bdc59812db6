"""Ollama through its official client, with every failure mapped to a message a user can act on."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import ollama

from chatcore.backends.http_lines import (
    CONNECT_SECONDS,
    ConnectionLostError,
    HttpStatusError,
    LinePoster,
)
from chatcore.backends.tool_calls import from_ollama
from chatcore.errors import BackendFailed, BackendUnavailable, Busy, DashboardError, ModelNotFound
from chatcore.params import GenerationParams
from chatcore.types import Abilities, ChatMessage, Metrics, ModelInfo, Piece, Thinking

CLIENT_TIMEOUT = httpx.Timeout(None, connect=CONNECT_SECONDS)  # as the chats' (http_lines)
# Listing, status and model management: a host that hangs must not hang a page.
ADMIN_TIMEOUT = httpx.Timeout(15.0, connect=2.0)
ABILITIES_SECONDS = 60.0  # a model's capabilities, asked again after this (it may be re-pulled)


class PullFailed(BackendFailed):
    """The server refused or aborted a pull; the message is the server's own."""


def start_hint(host: str) -> str:
    return (
        f"Ollama is not running at {host}. Start it with `ollama serve` "
        "(or set OLLAMA_HOST to where it runs), then try again."
    )


class OllamaBackend:
    name = "ollama"

    def __init__(self, host: str) -> None:
        self.host = host
        # trust_env=False: a proxy setting must never reroute a loopback server.
        self._client = ollama.Client(host=host, timeout=CLIENT_TIMEOUT, trust_env=False)
        self._admin = ollama.Client(host=host, timeout=ADMIN_TIMEOUT, trust_env=False)
        # Chats stream through http.client (chatcore/backends/http_lines.py), to the URL and
        # with the headers the official client would use.
        wire = self._client._client
        self._chats = LinePoster(str(wire.base_url), wire.headers, CONNECT_SECONDS)
        self._abilities: dict[str, tuple[float, dict[str, Any]]] = {}  # /api/show's answers
        self._abilities_lock = threading.Lock()

    def close(self) -> None:
        """Close its connections to the host (it was removed, or the app stops)."""
        self._client.close()
        self._admin.close()
        self._chats.close()

    def list_models(self) -> list[ModelInfo]:
        with self._mapped_errors(model=None):
            listing = self._admin.list()
        return [self._model_info(entry) for entry in listing.models]

    # --- the server and its models (the Models page) ---

    def version(self) -> str:
        """GET /api/version; the official client has no method for it, so its raw request."""
        with self._mapped_errors(model=None):
            answer = self._admin._request_raw("GET", "/api/version")
        return str(answer.json().get("version", ""))

    def abilities(self, model: str) -> Abilities:
        """/api/show's `capabilities` and `thinking` (the levels a model takes), cached a minute."""
        return abilities_of(self._shown(model))

    def context_length(self, model: str) -> int | None:
        """The context length the model was trained for: /api/show's
        model_info["<general.architecture>.context_length"], cached with the abilities."""
        return trained_context_length(self._shown(model).get("model_info") or {})

    def _shown(self, model: str) -> dict[str, Any]:
        """/api/show's raw answer, cached a minute (the client's ShowResponse drops the
        `thinking` object)."""
        with self._abilities_lock:
            cached = self._abilities.get(model)
        if cached and time.monotonic() - cached[0] < ABILITIES_SECONDS:
            return cached[1]
        with self._mapped_errors(model=model):
            answer = self._admin._request_raw("POST", "/api/show", json={"model": model}).json()
        shown = answer if isinstance(answer, dict) else {}
        with self._abilities_lock:
            self._abilities[model] = (time.monotonic(), shown)
        return shown

    def show(self, model: str) -> ollama.ShowResponse:
        with self._mapped_errors(model=model):
            return self._admin.show(model)

    def running(self) -> list[ollama.ProcessResponse.Model]:
        with self._mapped_errors(model=None):
            return list(self._admin.ps().models)

    def keep_loaded(self, model: str, keep_alive: str | int) -> None:
        """An empty chat: loads `model` for `keep_alive`, or unloads it now when that is 0."""
        with self._mapped_errors(model=model):
            self._admin.chat(model=model, messages=[], stream=False, keep_alive=keep_alive)

    def delete(self, model: str) -> None:
        try:
            with self._mapped_errors(model=model):
                self._admin.delete(model)
        except ModelNotFound as error:
            raise ModelNotFound(model, f"'{model}' is not installed on {self.host}.") from error

    def pull(self, model: str) -> Iterator[ollama.ProgressResponse]:
        """The pull's progress lines as they come; closing the iterator cancels the download."""
        stream = self._client.pull(model, stream=True)
        try:
            with self._mapped_errors(model=None):
                try:
                    yield from stream
                except ollama.ResponseError as error:
                    raise PullFailed(pull_error(self.host, model, error)) from error
        finally:
            stream.close()

    def embed(self, model: str, inputs: list[str]) -> tuple[list[list[float]], int | None]:
        """POST /api/embed: one vector per input, and the prompt tokens when reported."""
        with self._mapped_errors(model=model):
            answer = self._client.embed(model=model, input=inputs)
        return [list(vector) for vector in answer.embeddings], answer.prompt_eval_count

    def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> Iterator[Piece]:
        # Lines as plain dicts: a pydantic ChatResponse a line, then httpx's reading of each
        # token's chunk, were the largest costs of relaying thousands of tokens a second.
        stream = self._chats.post("/api/chat", chat_request(model, messages, params))
        try:
            with self._mapped_errors(model=model):
                for part in stream:
                    if failure := part.get("error"):  # the server failed mid-answer
                        raise ollama.ResponseError(str(failure))
                    message = part.get("message") or NO_MESSAGE
                    if thinking := message.get("thinking"):  # reasoning first, in its own pieces
                        yield Thinking(thinking)
                    if text := message.get("content"):
                        yield text  # the final chunk may carry text too
                    if calls := message.get("tool_calls"):  # a request with `tools`
                        yield from_ollama(calls)
                    if part.get("done"):
                        yield metrics_of(part)
        finally:
            stream.close()  # closing the HTTP stream cancels generation on the server

    def _model_info(self, entry: ollama.ListResponse.Model) -> ModelInfo:
        details = entry.details
        return ModelInfo(
            name=entry.model or "",
            backend=self.name,
            host=self.host,
            family=details.family if details else None,
            parameter_size=details.parameter_size if details else None,
            quantization=details.quantization_level if details else None,
            size_bytes=entry.size,
            modified_at=entry.modified_at,
        )

    @contextmanager
    def _mapped_errors(self, model: str | None) -> Iterator[None]:
        try:
            yield
        except DashboardError:
            raise
        except ollama.ResponseError as error:
            raise self._response_error(error, model) from error
        except HttpStatusError as error:  # the body read for its message, as the client does
            answer = ollama.ResponseError(error.text, error.status)
            raise self._response_error(answer, model) from error
        # httpx raises ConnectError; the official client's non-streaming calls and the chats
        # (http_lines' HostUnreachableError) a built-in ConnectionError.
        except (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError) as error:
            raise BackendUnavailable(start_hint(self.host)) from error
        except (httpx.HTTPError, ConnectionLostError) as error:
            # Plain words for the page; the exception's class and text stay in the log (the cause).
            raise BackendFailed(
                f"Lost the connection to Ollama at {self.host}: it stopped answering "
                "in the middle of the reply. Try again."
            ) from error

    def _response_error(self, error: ollama.ResponseError, model: str | None) -> DashboardError:
        text = error.error or "unknown error"
        if error.status_code == 404 and model is not None:
            return ModelNotFound(model)
        if error.status_code == 503:
            return Busy(f"Ollama at {self.host} is busy: {text}. Try again in a moment.")
        if error.status_code == -1:
            return BackendFailed(f"Ollama stopped with an error while answering: {text}")
        return BackendFailed(f"Ollama answered with an error ({error.status_code}): {text}")


def pull_error(host: str, model: str, error: ollama.ResponseError) -> str:
    text = error.error or "unknown error"
    if "file does not exist" in text or "not found" in text:
        return f"{host} could not pull '{model}': {text}. Check the name on ollama.com/library."
    return f"{host} could not pull '{model}': {text}"


def abilities_of(shown: dict[str, Any]) -> Abilities:
    """Capabilities, and the `thinking` object recent servers add: its `values` and `default`."""
    thinking = shown.get("thinking") if isinstance(shown.get("thinking"), dict) else {}
    values = tuple(v for v in thinking.get("values") or () if isinstance(v, (bool, str)))
    default = thinking.get("default")
    return Abilities(
        capabilities=tuple(str(c) for c in shown.get("capabilities") or ()),
        think_values=values,
        think_default=default if isinstance(default, (bool, str)) else None,
    )


def trained_context_length(model_info: dict[str, Any]) -> int | None:
    """model_info["<general.architecture>.context_length"], when the server reports it."""
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if arch else None
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


NO_MESSAGE: dict[str, Any] = {}


def chat_request(
    model: str, messages: Sequence[ChatMessage], params: GenerationParams
) -> dict[str, Any]:
    """POST /api/chat's body as the official client builds it: images as base64, `think` only
    when set; a relayed request's other fields as its client sent them."""
    body: dict[str, Any] = {
        **params.ollama_fields(),  # a relayed request's own fields (format, keep_alive...)
        "model": model,
        "messages": [wire_message(m) for m in messages],
        "stream": True,
        "options": params.ollama_options(),
    }
    if (think := params.ollama_think()) is not None:
        body["think"] = think
    return body


def wire_message(message: ChatMessage) -> dict[str, Any]:
    wired: dict[str, Any] = {"role": message["role"], "content": message["content"]}
    if images := message.get("images"):
        wired["images"] = [base64.b64encode(image).decode() for image in images]
    if calls := message.get("tool_calls"):  # a relayed chat's tool use
        wired["tool_calls"] = [call.as_ollama() for call in calls]
    if name := message.get("tool_name"):
        wired["tool_name"] = name
    return wired


def metrics_of(part: dict[str, Any]) -> Metrics:
    return Metrics(
        prompt_tokens=part.get("prompt_eval_count"),
        completion_tokens=part.get("eval_count"),
        total_duration_ns=part.get("total_duration"),
        load_duration_ns=part.get("load_duration"),
        prompt_eval_duration_ns=part.get("prompt_eval_duration"),
        eval_duration_ns=part.get("eval_duration"),
        done_reason=part.get("done_reason"),
    )
