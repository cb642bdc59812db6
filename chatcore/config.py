"""Settings read from the environment, with the defaults the README documents."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
DEFAULT_PORT = 8501
DEFAULT_EMBEDDED_CTX = 4096
DEFAULT_BACKUPS_KEEP = 7
# The largest context window the app asks a model for: what an ordinary laptop holds.
DEFAULT_CONTEXT_MAX = 8192
OVERFLOW_CHOICES = ("drop", "summarise")  # what happens to turns that do not fit
APP_DIR_NAME = "ollama-chat-dashboard"


@dataclass(frozen=True)
class Settings:
    ollama_host: str
    db_path: Path
    port: int
    # CHAT_API_TOKEN: when set, every REST API request must carry it. Kept out of repr and logs.
    api_token: str | None = field(default=None, repr=False)
    ollama_hosts: tuple[str, ...] = ()  # more Ollama servers, from OLLAMA_HOSTS
    embedded: bool = True  # offer the embedded models (EMBEDDED=0 turns them off)
    embedded_models: tuple[Path, ...] = ()  # more GGUF files or directories of them
    embedded_ctx: int = DEFAULT_EMBEDDED_CTX  # the embedded models' context window, in tokens
    log_level: str = "INFO"  # LOG_LEVEL: debug adds message text to the log; never the token
    backups_keep: int = DEFAULT_BACKUPS_KEEP  # BACKUPS_KEEP: how many database backups to keep

    @property
    def data_dir(self) -> Path:
        """Where the database lives, and its log and backups beside it."""
        return Path(self.db_path).parent

    ollama_num_parallel: int = 1  # replies each Ollama host serves at once (suite runs fill it)
    context_max: int = DEFAULT_CONTEXT_MAX  # CONTEXT_MAX: the user's cap on any model's window
    context_overflow: str = "drop"  # CONTEXT_OVERFLOW: drop the oldest turns, or summarise them
    # CHAT_API_TOKENS: (label, token) pairs; a tool calling the proxies with one of these is
    # stored as that client. Kept out of repr and logs.
    client_tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def secrets(self) -> tuple[str, ...]:
        """Every token, for the log to hide."""
        tokens = (self.api_token, *(token for _, token in self.client_tokens))
        return tuple(token for token in tokens if token)

    def all_ollama_hosts(self) -> list[str]:
        """OLLAMA_HOST first, then OLLAMA_HOSTS, each once."""
        return list(dict.fromkeys((self.ollama_host, *self.ollama_hosts)))


def default_data_dir(env: Mapping[str, str]) -> Path:
    """The user's data directory (XDG on Linux, the usual places elsewhere)."""
    if base := env.get("XDG_DATA_HOME"):
        return Path(base) / APP_DIR_NAME
    home = Path(env.get("HOME") or Path.home())
    if os.name == "nt":
        return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local") / APP_DIR_NAME
    return home / ".local" / "share" / APP_DIR_NAME


def normalise_host(host: str) -> str:
    """Accept Ollama's own OLLAMA_HOST spellings: `host`, `host:port`, or a full URL."""
    host = host.strip().rstrip("/")
    if not host:
        return DEFAULT_OLLAMA_HOST
    if "://" not in host:
        host = f"http://{host}"
    scheme, rest = host.split("://", 1)
    if ":" not in rest.split("/", 1)[0]:
        rest = rest.replace("/", ":11434/", 1) if "/" in rest else f"{rest}:11434"
    return f"{scheme}://{rest}"


def host_list(value: str) -> tuple[str, ...]:
    """OLLAMA_HOSTS: comma-separated, each spelled as OLLAMA_HOST may be."""
    return tuple(dict.fromkeys(normalise_host(h) for h in value.split(",") if h.strip()))


def path_list(value: str) -> tuple[Path, ...]:
    """EMBEDDED_MODELS: paths separated by commas or the OS path separator (`:` or `;`)."""
    parts = value.replace(os.pathsep, ",").split(",")
    return tuple(Path(part.strip()).expanduser() for part in parts if part.strip())


def labelled_tokens(value: str) -> tuple[tuple[str, str], ...]:
    """CHAT_API_TOKENS: `label:token` pairs, comma-separated (a token may contain `:`)."""
    pairs = []
    for index, entry in enumerate(part.strip() for part in value.split(",")):
        if not entry:
            continue
        label, _, token = entry.partition(":")
        if not label.strip() or not token.strip():  # never echo the entry: it holds a token
            raise ValueError(f"CHAT_API_TOKENS entry {index + 1} is not `label:token`.")
        pairs.append((label.strip(), token.strip()))
    return tuple(pairs)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    db = env.get("CHAT_DB") or str(default_data_dir(env) / "chat.duckdb")
    hosts = host_list(env.get("OLLAMA_HOSTS", ""))
    # With only OLLAMA_HOSTS set, its first host is the main one: no phantom local server.
    main = env.get("OLLAMA_HOST", "") or (hosts[0] if hosts else "")
    return Settings(
        ollama_host=normalise_host(main),
        db_path=Path(db).expanduser(),
        port=int(env.get("PORT") or DEFAULT_PORT),
        api_token=env.get("CHAT_API_TOKEN") or None,
        ollama_hosts=hosts,
        embedded=env.get("EMBEDDED", "1").strip() != "0",
        embedded_models=path_list(env.get("EMBEDDED_MODELS", "")),
        embedded_ctx=int(env.get("EMBEDDED_CTX") or DEFAULT_EMBEDDED_CTX),
        log_level=env.get("LOG_LEVEL") or "INFO",
        backups_keep=max(1, int(env.get("BACKUPS_KEEP") or DEFAULT_BACKUPS_KEEP)),
        ollama_num_parallel=max(1, int(env.get("OLLAMA_NUM_PARALLEL") or 1)),
        context_max=max(256, int(env.get("CONTEXT_MAX") or DEFAULT_CONTEXT_MAX)),
        context_overflow=overflow_choice(env.get("CONTEXT_OVERFLOW", "")),
        client_tokens=labelled_tokens(env.get("CHAT_API_TOKENS", "")),
    )


def overflow_choice(value: str) -> str:
    """CONTEXT_OVERFLOW: `summarise` (or `summarize`), else the default `drop`."""
    value = value.strip().lower().replace("summarize", "summarise")
    return value if value in OVERFLOW_CHOICES else OVERFLOW_CHOICES[0]
