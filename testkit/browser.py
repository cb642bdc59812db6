"""Running the dashboard with `streamlit run` and driving it with Debian's chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def streamlit_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """`streamlit run server.py` (pages and API) on a free port; yields its URL once it answers."""
    with streamlit_process(env, log) as (url, _):
        yield url


@contextmanager
def streamlit_process(
    env: dict[str, str], log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As `streamlit_server`, yielding the process too (to read its memory, say)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "server.py",
        "--server.headless=true",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none",
    ]
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_health(url, server, log)
            yield url, server
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


def wait_for_health(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit did not answer in time:\n{log.read_text()}")


def wait_until_idle(page) -> None:  # type: ignore[no-untyped-def]
    """Connected, a script run finished and nothing on the page left stale.

    Called right after a click, the rerun it asked for may not have begun: a short pause lets
    it start. The sidebar's conversation list is drawn last by the router, so waiting for it
    keeps a page that has not run yet from passing for an idle one."""
    page.wait_for_timeout(150)
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=30_000
    )
    # by its key, so any interface language will do
    page.get_by_test_id("stSidebar").locator(".st-key-new-chat button").wait_for(timeout=30_000)
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=30_000)
    page.wait_for_function(
        "document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=30_000
    )


def model_picker(page):  # type: ignore[no-untyped-def]
    """The sidebar's model picker, by its key (the language switch is a selectbox too)."""
    return page.get_by_test_id("stSidebar").locator(".st-key-model").get_by_test_id("stSelectbox")


def language_switch(page):  # type: ignore[no-untyped-def]
    return (
        page.get_by_test_id("stSidebar")
        .locator(".st-key-language-switch")
        .get_by_test_id("stSelectbox")
    )


def open_history(browser, url: str):  # type: ignore[no-untyped-def]
    """A new page at the dashboard, gone to History from the sidebar once it is idle; returns
    the page and its main area."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    wait_until_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="History").click()
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="History")).to_be_visible()
    wait_until_idle(page)
    return page, main
