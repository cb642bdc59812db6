"""The dashboard's server: the Streamlit pages (streamlit_app.py), the REST API at /api, and the
proxies at /ollama (Ollama-compatible) and /v1 (OpenAI-compatible).

`make run` starts it with `streamlit run server.py`, which finds `app` below and serves it with
uvicorn. Both live in one process because only one process can open the DuckDB file; they share
its one Services object (chatcore.services.shared_services).
"""

from __future__ import annotations

import gc
import importlib
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Mount
from streamlit import config, delta_generator
from streamlit.runtime.pages_manager import PagesManager
from streamlit.string_util import is_emoji

from chatcore.api.proxy import create_ollama_proxy, create_openai_proxy
from chatcore.api.rest import create_api
from chatcore.api.security import exposure_problem, own_origins
from chatcore.api.transport import Uncompressed, accept_without_delay
from chatcore.config import load_settings
from chatcore.errors import DashboardError
from chatcore.logs import event
from chatcore.services import Services, close_shared_services, shared_services
from chatcore.warmup import after_the_first_page, start_warm_up
from ui.page_icon import PAGE_ICON


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


def prepare_the_first_page() -> None:
    """What the first page's run would do itself, done before the server takes requests (start
    is a second or so later): the pages' imports, Streamlit's emoji pattern (the page icon is
    checked against it), the database opened and the sidebar's conversations read. Done in the
    background instead, it ran while the first page's browser fetched Streamlit's sixty scripts
    from this process, and slowed them."""
    started = time.perf_counter()
    is_emoji(PAGE_ICON)
    # Streamlit asks once per process, as the first element of any page is sent, whether it runs
    # in a REPL: inspect.stack() resolves the file of every loaded module, 0.2-0.8 s of the
    # first page load. Asked here (not a REPL, a server), the flag it sets spares the page.
    delta_generator._maybe_print_use_warning()
    for module in ("ui", "ui.formatting", "ui.conversation_view", "ui.branches"):
        importlib.import_module(module)
    services = open_for_the_first_page()
    keep_out_of_collections()
    event("first_page_prepared", seconds=round(time.perf_counter() - started, 2))
    threading.Thread(target=after_start, args=(services,), name="warm-imports", daemon=True).start()


def after_start(services: Services | None) -> None:
    """The models listed once (the clients' first requests do first-use work: 0.2 s of the
    sidebar's model picker otherwise; the page still asks the hosts itself, which may be down),
    then, once a page is drawn, the charts' altair for Stats."""
    if services is not None:
        services.registry.list_models()
    after_the_first_page()
    importlib.import_module("ui.charts")
    keep_out_of_collections()


def keep_out_of_collections() -> None:
    """A full collection walks every object, holding the GIL: with the imports' millions that
    took 0.3-0.4 s (Streamlit's after every run, runner.postScriptGC, now off in
    .streamlit/config.toml, or Python's own). What exists now lives as long as the process:
    frozen, a collection walks only what the runs make."""
    gc.collect()
    gc.freeze()


def open_for_the_first_page() -> Services | None:
    """The database opened (the hosts' clients made) and the sidebar's conversations read once:
    the first page's run did both, 0.3-0.5 s on a big history. A database another process
    holds (or one that can't be read) is left for the page to report."""
    from ui.sidebar import RECENT_CONVERSATIONS

    try:
        services = shared_services()
        services.chat.sidebar_entries(RECENT_CONVERSATIONS + 1)
    except DashboardError:
        return None
    except Exception as error:  # never keeps the server from starting: the page meets it too
        event("first_page_unprepared", reason=type(error).__name__)
        return None
    return services


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    accept_without_delay(int(config.get_option("server.port")))
    prepare_the_first_page()
    # History's and Stats' first visits find their work done (chatcore/warmup.py).
    start_warm_up(shared_services, before=after_the_first_page)
    yield
    close_shared_services()  # flush DuckDB's log to the file on a clean shutdown


# pages/ holds st.navigation's pages, not Streamlit's older page folder. Streamlit assumes the older
# kind until a run calls st.navigation, so the very first request after start to a page's URL
# (say /compare) would run that page alone, without the router and its sidebar.
PagesManager.uses_pages_directory = False

routes = api_routes()
app = st.App(
    "streamlit_app.py",
    routes=routes,
    lifespan=lifespan,
    # the API's and the proxies' replies stream as they come
    middleware=[Middleware(Uncompressed, prefixes=[mount.path for mount in routes])],
)
