"""The REST API and the proxies mounted as the dashboard's server mounts them, for in-process
clients, and served over real HTTP on loopback (uvicorn in a thread) for the official clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from chatcore.api.proxy import create_ollama_proxy, create_openai_proxy
from chatcore.api.rest import create_api
from chatcore.api.security import own_origins
from chatcore.services import Services

PORT = 8501  # the dashboard's port the mounted API takes its own origins from


def mounted(services: Services, token: str | None = None) -> Starlette:
    """As server.py mounts them; the proxies take the services' CHAT_API_TOKENS labels."""
    origins = own_origins(PORT)
    labelled = services.settings.client_tokens
    return Starlette(
        routes=[
            Mount("/api", create_api(lambda: services, origins=origins, token=token)),
            Mount(
                "/ollama",
                create_ollama_proxy(
                    lambda: services, origins=origins, token=token, client_tokens=labelled
                ),
            ),
            Mount(
                "/v1",
                create_openai_proxy(
                    lambda: services, origins=origins, token=token, client_tokens=labelled
                ),
            ),
        ]
    )


@contextmanager
def served(app: Starlette) -> Iterator[str]:
    """`app` listening on a free loopback port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
