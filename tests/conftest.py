"""Shared fixtures: a loopback server speaking Ollama's protocol and a temporary DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.config import Settings
from chatcore.services import Services, open_services
from testkit.fake_ollama import FakeModel, FakeOllama


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel("llama3.2:latest", reply="Hello there, I am a small model."),
            FakeModel("qwen3:4b", reply="Bonjour from Qwen.", family="qwen3"),
        ]
    ).start()
    yield server
    server.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chat.duckdb"


@pytest.fixture
def services(fake_ollama: FakeOllama, db_path: Path) -> Iterator[Services]:
    opened = open_services(Settings(ollama_host=fake_ollama.url, db_path=db_path, port=8501))
    yield opened
    opened.close()


@pytest.fixture
def app_env(monkeypatch, fake_ollama: FakeOllama, db_path: Path) -> Iterator[None]:
    """The dashboard's environment for AppTest: the loopback Ollama and a fresh database."""
    from testkit.apptest import ROOT, release_cached_services

    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    monkeypatch.setenv("CHAT_DB", str(db_path))
    monkeypatch.chdir(ROOT)
    yield
    release_cached_services()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium driven by Playwright (its own browser download can't work here)."""
    from testkit.browser import CHROMIUM, CHROMIUM_ARGS

    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: apt-get install chromium", pytrace=False)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
