"""The Ollama servers the app talks to: from the environment, and added on the Models page.

Each host becomes one OllamaBackend in the registry. Hosts from OLLAMA_HOST / OLLAMA_HOSTS are
configuration and stay; hosts added on the page are stored in DuckDB and can be removed there.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from chatcore.backends.ollama import OllamaBackend
from chatcore.backends.registry import Registry
from chatcore.config import Settings, normalise_host
from chatcore.errors import DashboardError, InvalidInput
from chatcore.storage import hosts as store
from chatcore.storage.db import Database

FROM_ENVIRONMENT = "environment"
ADDED_HERE = "added here"


class InvalidHost(InvalidInput):
    """A host address that can't be an Ollama server; nothing was stored."""


@dataclass(frozen=True)
class Host:
    url: str
    source: str  # FROM_ENVIRONMENT or ADDED_HERE

    @property
    def removable(self) -> bool:
        return self.source == ADDED_HERE


@dataclass(frozen=True)
class HostStatus:
    host: Host
    reachable: bool
    version: str | None
    latency_ms: float | None
    error: str | None
    in_flight: int


class Hosts:
    def __init__(self, db: Database, registry: Registry, settings: Settings) -> None:
        self._db = db
        self._registry = registry
        self._configured = settings.all_ollama_hosts()

    def register_added(self) -> None:
        """Give the registry a backend for every host stored from an earlier session."""
        for host in self.all():
            self._registry.add(OllamaBackend(host.url))

    def all(self) -> list[Host]:
        with self._db.cursor() as cur:
            added = store.added_hosts(cur)
        hosts = [Host(url, FROM_ENVIRONMENT) for url in self._configured]
        return hosts + [Host(url, ADDED_HERE) for url in added if url not in self._configured]

    def add(self, address: str) -> Host:
        url = valid_host(address)
        if url not in {h.url for h in self.all()}:
            with self._db.transaction() as cur:
                store.add_host(cur, url)
        self._registry.add(OllamaBackend(url))
        return next(h for h in self.all() if h.url == url)

    def remove(self, url: str) -> None:
        if url in self._configured:
            raise InvalidHost(f"{url} comes from OLLAMA_HOST / OLLAMA_HOSTS; change it there.")
        with self._db.transaction() as cur:
            store.remove_host(cur, url)
        self._registry.remove(url)

    def statuses(self) -> list[HostStatus]:
        """Every host's reachability, version and latency, asked in parallel."""
        hosts = self.all()
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            return list(pool.map(self.status, hosts))

    def status(self, host: Host) -> HostStatus:
        backend = self._registry.backend_for(host.url)
        probe = backend if isinstance(backend, OllamaBackend) else OllamaBackend(host.url)
        started = time.perf_counter()
        try:
            version = probe.version()
        except DashboardError as error:
            return HostStatus(host, False, None, None, str(error), self._in_flight(host))
        latency = (time.perf_counter() - started) * 1000
        return HostStatus(host, True, version, latency, None, self._in_flight(host))

    def _in_flight(self, host: Host) -> int:
        return self._registry.in_flight(host.url)


def valid_host(address: str) -> str:
    """Spelled as OLLAMA_HOST may be: `host`, `host:port` or an http(s) URL."""
    if not address.strip():
        raise InvalidHost("Type the address of an Ollama server, e.g. 192.168.1.20:11434.")
    url = normalise_host(address)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise InvalidHost(f"'{address}' is not an address Ollama listens on (host:port or URL).")
    if any(c.isspace() for c in url) or parts.query or parts.fragment:
        raise InvalidHost(f"'{address}' is not an address Ollama listens on (host:port or URL).")
    return url
