"""What the /ollama and /v1 proxies ask of the core beside chats (those go through the one send
path, ChatService.relay): the merged model listing, a model's card, what is loaded, embeddings.

Any model on any host, whichever protocol the host speaks: the proxies route as the pages do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatcore.backends.ollama import OllamaBackend
from chatcore.backends.registry import ModelListing, Registry, stream_ended
from chatcore.errors import BackendUnavailable, DashboardError, InvalidInput
from chatcore.types import ModelInfo

PROXY_VERSION = "0.12.0"  # the Ollama version the proxy reports when no host says its own


@dataclass(frozen=True)
class Embeddings:
    model: str
    vectors: list[list[float]]
    prompt_tokens: int | None


class Gateway:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def listing(self) -> ModelListing:
        return self._registry.list_models()

    def model(self, name: str) -> ModelInfo:
        """The model's entry (raises ModelNotFound / BackendUnavailable as a send would)."""
        backend, info = self._registry.resolve(name)
        stream_ended(backend)  # only asked where it is, no request in flight
        return info

    def show(self, name: str) -> dict[str, Any]:
        """Ollama's /api/show answer: from the host's own when it is an Ollama host."""
        backend, info = self._registry.resolve(name)
        try:
            if isinstance(getattr(backend, "backend", backend), OllamaBackend):
                shown = backend.show(name)  # type: ignore[attr-defined]
                return shown.model_dump(mode="json", by_alias=True, exclude_none=True)
        finally:
            stream_ended(backend)
        return {
            "details": details_of(info),
            "model_info": {},
            "capabilities": ["completion"],
            "modified_at": info.modified_at.isoformat() if info.modified_at else None,
        }

    def running(self) -> list[dict[str, Any]]:
        """Ollama's /api/ps over every Ollama host that answers."""
        loaded: list[dict[str, Any]] = []
        for backend in list(self._registry.backends):
            if not isinstance(backend, OllamaBackend):
                continue
            try:
                loaded += [m.model_dump(mode="json") for m in backend.running()]
            except DashboardError:
                continue  # a host that is down has nothing loaded that anyone can reach
        return loaded

    def version(self) -> str:
        for backend in list(self._registry.backends):
            if isinstance(backend, OllamaBackend):
                try:
                    return backend.version()
                except DashboardError:
                    continue
        return PROXY_VERSION

    def embed(self, name: str, inputs: list[str]) -> Embeddings:
        if not inputs or not all(isinstance(text, str) for text in inputs):
            raise InvalidInput("`input` is a text or a list of texts.")
        backend, _ = self._registry.resolve(name)
        failure: BaseException | None = None
        try:
            embed = getattr(backend, "embed", None)
            if embed is None:
                raise InvalidInput(f"'{name}' runs where embeddings are not offered.")
            vectors, tokens = embed(name, inputs)
        except BackendUnavailable as error:
            failure = error
            raise
        finally:
            stream_ended(backend, failure)
        return Embeddings(name, vectors, tokens)


def details_of(info: ModelInfo) -> dict[str, Any]:
    return {
        "format": "gguf",
        "family": info.family or "",
        "families": [info.family] if info.family else None,
        "parameter_size": info.parameter_size or "",
        "quantization_level": info.quantization or "",
    }
