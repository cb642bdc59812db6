"""The models on each Ollama host: details, what is loaded, pulling and deleting.

The Models page describes its screen and calls this; the HTTP goes through OllamaBackend. Typed
rows only: the page's tables and units are ui/formatting.py's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ollama

from chatcore.backends.ollama import OllamaBackend
from chatcore.backends.registry import ModelListing as ModelListing  # what ui lists
from chatcore.backends.registry import Registry
from chatcore.errors import BackendUnavailable
from chatcore.params import MAX_TOKENS_LIMIT

CAPABILITIES = ("vision", "tools", "thinking")
PRELOAD_KEEP_ALIVE = "30m"
SPEED_WINDOW_SECONDS = 3.0


@dataclass(frozen=True)
class ModelCard:
    """What /api/show says about one installed model."""

    name: str
    host: str
    capabilities: tuple[str, ...]
    context_length: int | None  # trained context length
    parameters: dict[str, list[str]]  # the Modelfile's PARAMETER lines, by name
    system: str

    def has(self, capability: str) -> bool:
        return capability in self.capabilities


@dataclass(frozen=True)
class RunningModel:
    """A model loaded in a host's memory (/api/ps)."""

    name: str
    host: str
    size_bytes: int
    vram_bytes: int
    context_length: int | None  # context actually allocated
    expires_at: datetime | None


@dataclass
class Layer:
    digest: str
    total: int
    completed: int = 0


@dataclass
class PullProgress:
    """Where a pull stands after the latest line of its stream."""

    model: str
    host: str
    status: str = "starting"
    layers: dict[str, Layer] = field(default_factory=dict)
    bytes_per_second: float | None = None
    done: bool = False
    _samples: list[tuple[float, int]] = field(default_factory=list, repr=False)

    @property
    def total(self) -> int:
        return sum(layer.total for layer in self.layers.values())

    @property
    def completed(self) -> int:
        return sum(layer.completed for layer in self.layers.values())

    @property
    def fraction(self) -> float:
        if self.done:
            return 1.0
        return self.completed / self.total if self.total else 0.0

    def update(self, line: ollama.ProgressResponse, now: float | None = None) -> None:
        self.status = line.status or self.status
        if line.digest and line.total:
            layer = self.layers.setdefault(line.digest, Layer(line.digest, line.total))
            layer.total = line.total
            layer.completed = line.completed or layer.completed
        self._measure_speed(time.monotonic() if now is None else now)
        self.done = self.status == "success"

    def _measure_speed(self, now: float) -> None:
        """Bytes per second over the last few seconds of the stream."""
        self._samples.append((now, self.completed))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_SECONDS:
            self._samples.pop(0)
        (start, first), (end, last) = self._samples[0], self._samples[-1]
        if end > start:
            self.bytes_per_second = (last - first) / (end - start)


class ModelManager:
    """Per-host model operations; the registry hears of every change so pickers follow."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def backend(self, host: str) -> OllamaBackend:
        backend = self._registry.backend_for(host)
        if not isinstance(backend, OllamaBackend):
            raise BackendUnavailable(f"{host} is not one of the Ollama hosts.")
        return backend

    def card(self, host: str, model: str) -> ModelCard:
        shown = self.backend(host).show(model)
        return ModelCard(
            name=model,
            host=host,
            capabilities=tuple(shown.capabilities or ()),
            context_length=trained_context(shown.modelinfo or {}),
            parameters=modelfile_parameters(shown.parameters or ""),
            system=modelfile_system(shown.modelfile or ""),
        )

    def running(self, host: str) -> list[RunningModel]:
        return [
            RunningModel(
                name=entry.model or entry.name or "",
                host=host,
                size_bytes=int(entry.size or 0),
                vram_bytes=int(entry.size_vram or 0),
                context_length=entry.context_length,
                expires_at=entry.expires_at,
            )
            for entry in self.backend(host).running()
        ]

    def preload(self, host: str, model: str, keep_alive: str = PRELOAD_KEEP_ALIVE) -> None:
        self.backend(host).keep_loaded(model, keep_alive)

    def unload(self, host: str, model: str) -> None:
        self.backend(host).keep_loaded(model, 0)

    def delete(self, host: str, model: str) -> None:
        try:
            self.backend(host).delete(model)
        finally:
            self._registry.forget(host)

    def pull(self, host: str, model: str) -> Iterator[PullProgress]:
        """The pull's progress after each line; raises PullFailed with the server's error.

        Closing the iterator (a cancel) closes the HTTP stream, which stops the download.
        """
        progress = PullProgress(model=model.strip(), host=host)
        lines = self.backend(host).pull(progress.model)
        try:
            for line in lines:
                progress.update(line)
                yield progress
        finally:
            lines.close()
            self._registry.forget(host)  # the next listing shows the new model


def trained_context(model_info: Any) -> int | None:
    """model_info["<general.architecture>.context_length"]."""
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if arch else None
    return int(value) if isinstance(value, (int, float)) else None


def modelfile_parameters(text: str) -> dict[str, list[str]]:
    """Ollama's `parameters`: one `name value` a line; a name (like stop) may repeat."""
    parameters: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        if not name:
            continue
        parameters.setdefault(name, []).append(value.strip().strip('"'))
    return parameters


def modelfile_system(modelfile: str) -> str:
    """The SYSTEM prompt of a Modelfile (the client drops /api/show's own `system` field)."""
    for index, line in enumerate(modelfile.splitlines()):
        if not line.upper().startswith("SYSTEM "):
            continue
        value = line[len("SYSTEM ") :].strip()
        if value.startswith('"""'):
            rest = "\n".join([value[3:], *modelfile.splitlines()[index + 1 :]])
            return rest.split('"""', 1)[0].strip()
        return value.strip('"')
    return ""


def param_defaults(card: ModelCard) -> dict[str, Any]:
    """The model's own defaults that GenerationParams can hold, by its field names.

    Temperature and top p are clamped to 0 to 1; num_predict becomes max_tokens.
    """
    values: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        if (number := first_number(card.parameters.get(name))) is not None:
            values[name] = min(1.0, max(0.0, number))
    if (tokens := first_number(card.parameters.get("num_predict"))) and tokens > 0:
        values["max_tokens"] = int(min(tokens, MAX_TOKENS_LIMIT))
    if card.system:
        values["system_prompt"] = card.system
    return values


def first_number(values: list[str] | None) -> float | None:
    try:
        return float(values[0]) if values else None
    except ValueError:
        return None
