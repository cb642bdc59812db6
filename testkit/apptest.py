"""Running the dashboard under Streamlit's AppTest with its own environment and database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.testing.v1 import AppTest

from chatcore.services import close_shared_services

ROOT = Path(__file__).resolve().parents[1]


class DashboardAppTest(AppTest):
    """AppTest 1.67 reruns an st.navigation app by running the page it finished on alone, skipping
    the entry script and so the shared sidebar (which `streamlit run` always draws). Requesting no
    page makes every rerun start from the entry script, as the real server does. A page switch
    (`switch_page`) still asks for its page."""

    def _run(self, *args: Any, **kwargs: Any) -> AppTest:
        if not self._page_hash:
            self._finished_page_script_hash = ""
        return super()._run(*args, **kwargs)


def new_app() -> AppTest:
    return DashboardAppTest(ROOT / "streamlit_app.py", default_timeout=30)


def release_cached_services() -> None:
    """The shared services outlive an AppTest: close the database so the next test opens its own."""
    close_shared_services()
    st.cache_resource.clear()
    st.cache_data.clear()


def sidebar_conversations(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button if b.key and b.key.startswith("conv-")]
