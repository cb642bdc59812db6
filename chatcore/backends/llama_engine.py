"""llama.cpp's own server, running inside this process (the prebuilt `xllamacpp` wheel).

One server per model file. It batches its parallel slots continuously, so several sessions get
replies at once; it applies the chat template itself (the file's own, or the transcript for a
base model); and it speaks the OpenAI-compatible protocol that the openai backend already reads,
so the embedded engine needs no protocol of its own.

It listens on 127.0.0.1 only, on a port the system picks, with CORS closed and a random API key
made per start: a web page can't reach it, and another local user's process can't use it.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from chatcore.backends.openai import OpenAIBackend
from chatcore.errors import BackendFailed
from chatcore.types import ChatMessage, Piece

if TYPE_CHECKING:
    from xllamacpp import Server

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
ADMIN_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


@dataclass(frozen=True)
class EngineSettings:
    path: Path
    window: int  # tokens of context per slot
    parallel: int  # slots: replies generated at once
    chat_template: str | None = None  # None: the file's own template
    threads: int = 0  # 0: one per core


class LocalServer:
    """A started server and the clients that talk to it."""

    def __init__(self, server: Server, url: str, api_key: str) -> None:
        self._server = server  # kept alive: dropping it stops the server
        self.url = url
        self.api_key = api_key
        self.chat = OpenAIBackend(url, api_key)
        self._admin = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=ADMIN_TIMEOUT,
            trust_env=False,  # a proxy setting must never reroute a loopback server
        )

    def __repr__(self) -> str:  # never the key
        return f"LocalServer({self.url!r})"

    def stream(self, body: dict[str, Any]) -> Iterator[Piece]:
        """A chat-completions request streamed: text pieces, then the Metrics."""
        return self.chat.stream_body(str(body["model"]), body)

    def rendered(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt the server builds from these messages with its chat template."""
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        return str(self._post("/apply-template", {"messages": plain})["prompt"])

    def count(self, messages: Sequence[ChatMessage]) -> int:
        """The prompt's size in tokens, as the server will build it (template and BOS)."""
        body = {"content": self.rendered(messages), "add_special": True, "parse_special": True}
        return len(self._post("/tokenize", body)["tokens"])

    def decode_calls(self) -> int:
        """llama_decode() calls so far (its in-process metrics): each advances every busy slot
        by a token, so a cancelled reply stops adding to them."""
        for line in str(self._server.handle_metrics()).splitlines():
            if line.startswith("llamacpp:n_decode_total "):
                return int(float(line.split()[1]))
        raise BackendFailed("The embedded engine's metrics have no n_decode_total.")

    def slots_busy(self) -> int:
        """How many slots are generating right now (from the server's /slots)."""
        answer = self._admin.get("/slots")
        answer.raise_for_status()
        return sum(1 for slot in answer.json() if slot.get("is_processing"))

    def settle(self) -> None:
        """One token, at once: the constructor returns before the server's loop runs, and a
        server dropped in that gap never stops (its destructor waits for a loop that missed the
        stop)."""
        self._post("/v1/completions", {"prompt": "Hi", "max_tokens": 1})

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = self._admin.post(path, json=body)
            answer.raise_for_status()
            return answer.json()
        except httpx.HTTPError as error:
            raise BackendFailed(f"The embedded engine failed at {path}: {error}") from error


def start_server(settings: EngineSettings) -> LocalServer:
    """Load the model and start its server; returns once it has answered a first request."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(settings.path)
    params.n_parallel = settings.parallel
    params.n_ctx = settings.window * settings.parallel  # the slots split the context
    threads = settings.threads or os.cpu_count() or 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.fit_params = False  # it would probe memory to size the context: it is sized here
    params.warmup = False  # settle() below is the warm-up, and a reply the server must give
    params.verbosity = -1
    params.hostnames = [LOOPBACK]
    params.port = 0  # a free port, picked by the system
    params.cors_origins = ""  # no browser origin may call it (the default is "*")
    params.api_keys = [api_key := secrets.token_urlsafe(24)]
    # <think> tags stay in the text: the chat service parses them, as for every backend.
    params.endpoint_metrics = True  # decode counts, behind the API key like everything else
    params.reasoning_format = xllamacpp.common_reasoning_format.COMMON_REASONING_FORMAT_NONE
    if settings.chat_template is not None:
        params.chat_template = settings.chat_template
        params.use_jinja = True
    server = xllamacpp.Server(params)
    local = LocalServer(server, server.listening_address, api_key)
    local.settle()
    return local
