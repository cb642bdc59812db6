"""The model servers the app talks to: from the environment, and added on the Models page.

Each Ollama host becomes one OllamaBackend in the registry, each OpenAI-compatible server (vLLM,
SGLang, llama.cpp's server, LM Studio, LiteLLM) one OpenAIBackend. Hosts from OLLAMA_HOST /
OLLAMA_HOSTS are configuration and stay; hosts added on the page are stored in DuckDB and can be
removed there. An OpenAI-compatible server's API key is stored as typed, or, typed as `$NAME`,
read from the environment variable NAME (then only the name is stored); it is never shown whole.
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from chatcore.backends.ollama import OllamaBackend
from chatcore.backends.openai import OpenAIBackend, api_base, masked
from chatcore.backends.registry import Registry
from chatcore.config import Settings, normalise_host
from chatcore.errors import DashboardError, InvalidInput, NotFound
from chatcore.storage import hosts as store
from chatcore.storage.db import Database

FROM_ENVIRONMENT = "environment"
ADDED_HERE = "added here"
OLLAMA = "ollama"
OPENAI = "openai"  # OpenAI-compatible: /v1/models and /v1/chat/completions
ENV_NAME = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


class InvalidHost(InvalidInput):
    """A host address that can't be an Ollama server; nothing was stored."""


@dataclass(frozen=True)
class Host:
    url: str
    source: str  # FROM_ENVIRONMENT or ADDED_HERE
    kind: str = OLLAMA  # OLLAMA or OPENAI
    key_shown: str = ""  # the API key as it may be shown: `…abcd`, `$NAME`, or empty

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
            if host.kind == OLLAMA:
                self._registry.add(OllamaBackend(host.url))
        with self._db.cursor() as cur:
            for url, api_key, api_key_env in store.added_openai_hosts(cur):
                self._registry.add(OpenAIBackend(url, key_from(api_key, api_key_env)))

    def all(self) -> list[Host]:
        with self._db.cursor() as cur:
            added = store.added_hosts(cur)
            openai_hosts = store.added_openai_hosts(cur)
        hosts = [Host(url, FROM_ENVIRONMENT) for url in self._configured]
        hosts += [Host(url, ADDED_HERE) for url in added if url not in self._configured]
        return hosts + [
            Host(url, ADDED_HERE, OPENAI, f"${env}" if env else masked(key))
            for url, key, env in openai_hosts
        ]

    def add(self, address: str, kind: str = OLLAMA, api_key: str | None = None) -> Host:
        """Store a host and route to it from now on. `api_key` (OpenAI-compatible servers only):
        the key itself, or `$NAME` to read it from the environment variable NAME."""
        if kind == OPENAI:
            return self._add_openai(address, api_key)
        url = valid_host(address)
        if url not in {h.url for h in self.all()}:
            with self._db.transaction() as cur:
                store.add_host(cur, url)
        self._registry.add(OllamaBackend(url))
        return next(h for h in self.all() if h.url == url)

    def _add_openai(self, address: str, api_key: str | None) -> Host:
        url = valid_openai_url(address)
        key, env = key_or_env(api_key)
        with self._db.transaction() as cur:
            store.add_openai_host(cur, url, key, env)
        self._registry.remove(url)  # a changed key replaces the backend
        self._registry.add(OpenAIBackend(url, key_from(key, env)))
        return next(h for h in self.all() if h.url == url)

    def remove(self, url: str) -> None:
        if url in self._configured:
            raise InvalidHost(f"{url} comes from OLLAMA_HOST / OLLAMA_HOSTS; change it there.")
        if url not in {h.url for h in self.all()}:
            raise NotFound(f"No host {url} was added.")
        with self._db.transaction() as cur:
            store.remove_host(cur, url)
            store.remove_openai_host(cur, url)
        self._registry.remove(url)

    def statuses(self) -> list[HostStatus]:
        """Every host's reachability, version and latency, asked in parallel."""
        hosts = self.all()
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            return list(pool.map(self.status, hosts))

    def status(self, host: Host) -> HostStatus:
        if host.kind == OPENAI:
            return self._openai_status(host)
        backend = self._registry.backend_for(host.url)
        probe = backend if isinstance(backend, OllamaBackend) else OllamaBackend(host.url)
        started = time.perf_counter()
        try:
            version = probe.version()
        except DashboardError as error:
            return HostStatus(host, False, None, None, str(error), self._in_flight(host))
        latency = (time.perf_counter() - started) * 1000
        return HostStatus(host, True, version, latency, None, self._in_flight(host))

    def _openai_status(self, host: Host) -> HostStatus:
        """No version to ask an OpenAI-compatible server: its model listing is the probe."""
        backend = self._registry.backend_for(host.url)
        started = time.perf_counter()
        try:
            if backend is None:
                raise InvalidHost(f"{host.url} is not registered.")
            backend.list_models()
        except DashboardError as error:
            return HostStatus(host, False, None, None, str(error), self._in_flight(host))
        latency = (time.perf_counter() - started) * 1000
        return HostStatus(host, True, None, latency, None, self._in_flight(host))

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


def valid_openai_url(address: str) -> str:
    """An OpenAI-compatible server's base URL: `host:port`, or an http(s) URL (with /v1 or not)."""
    if not address.strip():
        raise InvalidHost("Type the address of the server, e.g. http://192.168.1.20:8000/v1.")
    url = api_base(address)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise InvalidHost(f"'{address}' is not a server address (host:port or URL).")
    if any(c.isspace() for c in url) or parts.query or parts.fragment:
        raise InvalidHost(f"'{address}' is not a server address (host:port or URL).")
    return url


def key_or_env(api_key: str | None) -> tuple[str | None, str | None]:
    """(key, None) for a key typed in, (None, NAME) for `$NAME`, (None, None) for none."""
    api_key = (api_key or "").strip()
    if not api_key:
        return None, None
    if api_key.startswith("$"):
        if not (match := ENV_NAME.match(api_key)):
            raise InvalidHost("An environment variable is named like $OPENAI_API_KEY.")
        return None, match.group(1)
    if any(c.isspace() for c in api_key):
        raise InvalidHost("An API key has no spaces in it.")
    return api_key, None


def key_from(api_key: str | None, api_key_env: str | None) -> str | None:
    """The key to send: stored, or read from its environment variable now."""
    if api_key_env:
        return os.environ.get(api_key_env) or None
    return api_key
