"""Ollama through its official client, with every failure mapped to a message a user can act on."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import ollama

from chatcore.errors import BackendFailed, BackendUnavailable, Busy, DashboardError, ModelNotFound
from chatcore.params import GenerationParams
from chatcore.types import ChatMessage, Metrics, ModelInfo, Piece

# No read timeout: a first model load can take minutes before the first byte arrives.
CLIENT_TIMEOUT = httpx.Timeout(None, connect=5.0)
# Listing, status and model management: a host that hangs must not hang a page.
ADMIN_TIMEOUT = httpx.Timeout(15.0, connect=2.0)


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

    def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> Iterator[Piece]:
        stream = self._client.chat(
            model=model,
            messages=[dict(m) for m in messages],
            stream=True,
            options=params.ollama_options(),
        )
        try:
            with self._mapped_errors(model=model):
                for part in stream:
                    if text := part.message.content:
                        yield text  # the final chunk may carry text too
                    if part.done:
                        yield metrics_of(part)
        finally:
            stream.close()  # closing the HTTP stream cancels generation on the server

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """POST /api/embed: one vector per text, in order."""
        with self._mapped_errors(model=model):
            answer = self._client.embed(model=model, input=list(texts))
        return [list(vector) for vector in answer.embeddings]

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
        # Streaming raises a raw httpx.ConnectError, non-streaming a built-in ConnectionError.
        except (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError) as error:
            raise BackendUnavailable(start_hint(self.host)) from error
        except httpx.HTTPError as error:
            raise BackendFailed(
                f"Lost the connection to Ollama at {self.host} ({type(error).__name__})."
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


def metrics_of(part: ollama.ChatResponse) -> Metrics:
    return Metrics(
        prompt_tokens=part.prompt_eval_count,
        completion_tokens=part.eval_count,
        total_duration_ns=part.total_duration,
        load_duration_ns=part.load_duration,
        prompt_eval_duration_ns=part.prompt_eval_duration,
        eval_duration_ns=part.eval_duration,
        done_reason=part.done_reason,
    )
