"""Fixtures of the services' tests: the compare arena and the services on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.config import Settings
from chatcore.services import Services, open_services
from testkit.compare_data import arena_server
from testkit.fake_ollama import FakeOllama


@pytest.fixture
def arena() -> Iterator[FakeOllama]:
    server = arena_server().start()
    yield server
    server.stop()


@pytest.fixture
def compare_services(arena: FakeOllama, db_path: Path) -> Iterator[Services]:
    opened = open_services(Settings(ollama_host=arena.url, db_path=db_path, port=8501))
    yield opened
    opened.close()
