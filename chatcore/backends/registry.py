"""All backends' models in one list, and which backend answers a given model.

Several Ollama hosts (and the embedded engine) sit side by side. Listings are cached per host
for a few seconds so the send path does not wait on the network: `resolve` routes from the cache,
refreshes stale hosts in the background, and asks every host again only when the model is not in
the cache. A request goes to the host with the model that has the fewest streams in flight.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from chatcore.backends.base import Backend
from chatcore.errors import BackendUnavailable, ModelNotFound
from chatcore.params import GenerationParams
from chatcore.types import ChatMessage, ModelInfo, Piece

FRESH_SECONDS = 10.0  # a host's listing is routed on without asking again
STALE_SECONDS = 300.0  # older than fresh: still routed on while a refresh runs in the background


class ModelListing:
    """The models every backend offers right now, and the backends that did not answer."""

    def __init__(
        self,
        models: list[ModelInfo],
        unreachable: dict[str, str],
        by_host: dict[str, list[ModelInfo]] | None = None,
    ) -> None:
        self.models = models  # one per name, merged over hosts; `available` False when all are down
        self.unreachable = unreachable  # host -> message for the user
        self.by_host = by_host or {}  # host -> its own models (last known when it is down)


@dataclass
class HostListing:
    """What one backend answered last, and when."""

    models: list[ModelInfo] = field(default_factory=list)
    error: str | None = None  # set while the backend does not answer
    fetched_at: float = float("-inf")
    refreshing: bool = False

    def age(self) -> float:
        return time.monotonic() - self.fetched_at


class Registry:
    def __init__(self, backends: Sequence[Backend]) -> None:
        self.backends = list(backends)
        self._lock = threading.Lock()
        self._listings: dict[str, HostListing] = {}
        self._in_flight: Counter[str] = Counter()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="model-listing")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for backend in list(self.backends):
            close_backend(backend)

    # --- which backends there are ---

    def add(self, backend: Backend) -> None:
        with self._lock:
            if all(b.host != backend.host for b in self.backends):
                self.backends.append(backend)

    def remove(self, host: str) -> None:
        """Stop routing to `host`, and close its backend's connections (a reply it is still
        streaming goes on to its end)."""
        with self._lock:
            gone = [b for b in self.backends if b.host == host]
            self.backends = [b for b in self.backends if b.host != host]
            self._listings.pop(host, None)
        for backend in gone:
            close_backend(backend)

    def backend_for(self, host: str) -> Backend | None:
        return next((b for b in self.backends if b.host == host), None)

    # --- listing ---

    def list_models(self) -> ModelListing:
        """Ask every backend now, in parallel; a backend that does not answer is reported."""
        self._refresh(list(self.backends))
        return self._listing()

    def forget(self, host: str) -> None:
        """Drop a host's cached listing, e.g. after a model was pulled onto it or deleted."""
        with self._lock:
            self._listings.pop(host, None)

    def mark_unreachable(self, host: str, message: str) -> None:
        with self._lock:
            listing = self._listings.setdefault(host, HostListing())
            listing.error, listing.fetched_at = message, time.monotonic()

    # --- routing ---

    def resolve(self, model: str, exclude: Collection[str] = ()) -> tuple[Backend, ModelInfo]:
        """The backend that serves `model`; raises ModelNotFound or BackendUnavailable.

        `exclude`: hosts not to choose (those a retry already tried). The choice counts as a
        request in flight until the returned backend's stream ends (or `stream_ended` is called
        for a stream that never started).
        """
        backends = [b for b in self.backends if b.host not in exclude]
        self._refresh([b for b in backends if self._needs_waiting(b.host)])
        self._refresh_in_background([b for b in backends if self._is_stale(b.host)])
        chosen = self._lease(model, backends)
        if chosen is None:  # maybe pulled a moment ago, or a host came back: ask everyone
            self._refresh(backends)
            chosen = self._lease(model, backends)
        if chosen is None:
            self._raise_not_found(model, backends)
        assert chosen is not None
        return chosen

    def in_flight(self, host: str) -> int:
        with self._lock:
            return self._in_flight[host]

    def _lease(self, model: str, backends: list[Backend]) -> tuple[Backend, ModelInfo] | None:
        with self._lock:  # choose and count at once, so concurrent sends spread over hosts
            candidates = [
                (backend, info)
                for backend in backends
                if (listing := self._listings.get(backend.host)) and listing.error is None
                for info in listing.models
                if same_model(info.name, model)
            ]
            if not candidates:
                return None
            backend, info = min(candidates, key=lambda c: self._in_flight[c[0].host])
            self._in_flight[backend.host] += 1
        return Lease(backend, self), info

    def _release(self, host: str) -> None:
        with self._lock:
            self._in_flight[host] -= 1

    def _raise_not_found(self, model: str, backends: list[Backend]) -> None:
        with self._lock:
            errors = [
                listing.error
                for b in backends
                if (listing := self._listings.get(b.host)) and listing.error
            ]
        if errors:
            raise BackendUnavailable(errors[0])
        raise ModelNotFound(model)

    # --- the cache ---

    def _needs_waiting(self, host: str) -> bool:
        listing = self._listings.get(host)
        return listing is None or listing.age() > STALE_SECONDS

    def _is_stale(self, host: str) -> bool:
        listing = self._listings.get(host)
        return listing is not None and listing.age() > FRESH_SECONDS and not listing.refreshing

    def _refresh(self, backends: list[Backend]) -> None:
        if len(backends) == 1:  # no thread hop for the common single-host case
            self._fetch(backends[0])
        elif backends:
            list(self._pool.map(self._fetch, backends))

    def _refresh_in_background(self, backends: list[Backend]) -> None:
        for backend in backends:
            with self._lock:
                listing = self._listings.get(backend.host)
                if listing is None or listing.refreshing:
                    continue
                listing.refreshing = True
            self._pool.submit(self._fetch, backend)

    def _fetch(self, backend: Backend) -> None:
        try:
            models, error = backend.list_models(), None
        except BackendUnavailable as unavailable:
            models, error = [], str(unavailable)
        with self._lock:
            listing = self._listings.setdefault(backend.host, HostListing())
            if error is None:
                listing.models = models  # when down, the last known models stay, as unavailable
            listing.error, listing.fetched_at, listing.refreshing = error, time.monotonic(), False

    def _listing(self) -> ModelListing:
        with self._lock:
            hosts = [(b.host, self._listings.get(b.host) or HostListing()) for b in self.backends]
        unreachable = {host: listing.error for host, listing in hosts if listing.error}
        by_host = {
            host: [replace(m, available=listing.error is None) for m in listing.models]
            for host, listing in hosts
        }
        return ModelListing(merged(by_host), unreachable, by_host)


def merged(by_host: dict[str, list[ModelInfo]]) -> list[ModelInfo]:
    """One entry per model name, listing every host that has it, reachable hosts first."""
    seen: dict[str, list[ModelInfo]] = {}
    for models in by_host.values():
        for info in models:
            seen.setdefault(info.name, []).append(info)
    result = []
    for copies in seen.values():
        copies.sort(key=lambda m: not m.available)
        first = copies[0]
        hosts = tuple(dict.fromkeys(m.host for m in copies))
        result.append(replace(first, hosts=hosts, available=first.available))
    return result


class Lease:
    """A backend chosen for one request: counted in flight until its stream ends or is closed."""

    def __init__(self, backend: Backend, registry: Registry) -> None:
        self.backend = backend
        self.name = backend.name
        self.host = backend.host
        self._registry = registry
        self._released = False
        self._lock = threading.Lock()

    def __getattr__(self, attribute: str) -> Any:  # anything else a backend offers
        if attribute == "backend":  # not set yet (copying, unpickling)
            raise AttributeError(attribute)
        return getattr(self.backend, attribute)

    def list_models(self) -> list[ModelInfo]:
        return self.backend.list_models()

    def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> Iterator[Piece]:
        # The backend's own stream, not a generator around it: a layer more per token costs a
        # few percent of the fastest streams. The chat service reports the end: `stream_ended`.
        return self.backend.stream_chat(model, messages, params)

    def ended(self, error: BaseException | None) -> None:
        if isinstance(error, BackendUnavailable):  # route the next requests elsewhere
            self._registry.mark_unreachable(self.host, str(error))
        elif isinstance(error, ModelNotFound):  # deleted behind our back: list this host again
            self._registry.forget(self.host)
        with self._lock:
            if self._released:
                return
            self._released = True
        self._registry._release(self.host)


def stream_ended(backend: Backend, error: BaseException | None = None) -> None:
    """A resolved backend's stream ended (or never ran): no longer in flight. Safe to repeat."""
    if isinstance(backend, Lease):
        backend.ended(error)


def same_model(listed: str, asked: str) -> bool:
    """Ollama treats `llama3.2` and `llama3.2:latest` as the same model."""
    return listed == asked or (":" not in asked and listed == f"{asked}:latest")


def close_backend(backend: Backend) -> None:
    """Its connections closed, for a backend that keeps any (the embedded engine keeps none)."""
    if (close := getattr(backend, "close", None)) is not None:
        close()
