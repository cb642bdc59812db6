"""The dashboard's server: the Streamlit pages (streamlit_app.py), the REST API at /api, and the
proxies at /ollama (Ollama-compatible) and /v1 (OpenAI-compatible).

`make run` starts it with `streamlit run server.py`, which finds `app` below and serves it with
uvicorn. Both live in one process because only one process can open the DuckDB file; they share
its one Services object (chatcore.services.shared_services).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Mount
from streamlit import config
from streamlit.runtime.pages_manager import PagesManager
from streamlit.string_util import is_emoji

from chatcore.api.proxy import create_ollama_proxy, create_openai_proxy
from chatcore.api.rest import create_api
from chatcore.api.security import exposure_problem, own_origins
from chatcore.api.uncompressed import Uncompressed
from chatcore.config import load_settings
from chatcore.services import close_shared_services, shared_services
from chatcore.warmup import after_the_first_page, start_warm_up
from ui.page_icon import PAGE_ICON

API_PATHS = ("/api", "/ollama", "/v1")


def api_routes() -> list[Mount]:
    """The API at /api and the proxies; refuses to serve a non-loopback address without
    CHAT_API_TOKEN (all three need it then)."""
    settings = load_settings()
    token, labelled = settings.api_token, settings.client_tokens
    if problem := exposure_problem(config.get_option("server.address") or "", token):
        raise SystemExit(problem)
    origins = own_origins(int(config.get_option("server.port")))
    return [
        Mount("/api", app=create_api(shared_services, origins=origins, token=token)),
        Mount(
            "/ollama",
            app=create_ollama_proxy(
                shared_services, origins=origins, token=token, client_tokens=labelled
            ),
        ),
        Mount(
            "/v1",
            app=create_openai_proxy(
                shared_services, origins=origins, token=token, client_tokens=labelled
            ),
        ),
    ]


def import_page_modules() -> None:
    """Import what the pages import while nobody waits for it: first what any page needs (and
    Streamlit's emoji pattern, which the page icon is checked against: half a second of the
    first page load otherwise), then, once a page is drawn, the charts' altair for Stats."""
    is_emoji(PAGE_ICON)
    for module in ("ui", "ui.formatting", "ui.conversation_view", "ui.branches"):
        importlib.import_module(module)
    after_the_first_page()
    importlib.import_module("ui.charts")


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    # History's and Stats' first visits find their work done (chatcore/warmup.py).
    start_warm_up(shared_services, before=after_the_first_page)
    threading.Thread(target=import_page_modules, name="warm-imports", daemon=True).start()
    yield
    close_shared_services()  # flush DuckDB's log to the file on a clean shutdown


# pages/ holds st.navigation's pages, not Streamlit's older page folder. Streamlit assumes the older
# kind until a run calls st.navigation, so the very first request after start to a page's URL
# (say /compare) would run that page alone, without the router and its sidebar.
PagesManager.uses_pages_directory = False

app = st.App(
    "streamlit_app.py",
    routes=api_routes(),
    lifespan=lifespan,
    middleware=[Middleware(Uncompressed, prefixes=API_PATHS)],  # replies stream as they come
)
