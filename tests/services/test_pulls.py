"""Pulls as background jobs, against a loopback Ollama's /api/pull: they run on their own, report
progress from memory, and stop only when cancelled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.config import Settings
from chatcore.errors import BackendUnavailable, InvalidInput, NotFound
from chatcore.pulls import CANCELLED, DONE, FAILED, RUNNING
from chatcore.services import Services, open_services
from testkit.fake_ollama import FakeModel, FakeOllama


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    server = FakeOllama([FakeModel("llama3.2:latest")]).start()
    yield server
    server.stop()


@pytest.fixture
def services(ollama: FakeOllama, db_path: Path) -> Iterator[Services]:
    opened = open_services(Settings(ollama.url, db_path, 0, embedded=False))
    yield opened
    opened.close()


def until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition()


def test_a_pull_runs_in_the_background_and_ends_done(services, ollama) -> None:
    ollama.library.append(FakeModel("phi4:latest", layers=(8_000, 2_000)))
    ollama.pull_delay = 0.02
    job = services.pulls.start(ollama.url, " phi4 ")
    assert job.state == RUNNING and job.model == "phi4"  # returned at once, before it ends
    assert [j.id for j in services.pulls.running()] == [job.id]
    until(lambda: 0 < services.pulls.get(job.id).fraction < 1)  # progress, read from memory
    ended = services.pulls.wait(job.id, timeout=10)
    assert (ended.state, ended.status, ended.fraction, ended.error) == (DONE, "success", 1.0, None)
    assert ended.total == 10_000 and len(ended.layers) == 2 and ended.finished_at is not None
    assert services.pulls.running() == []
    assert ollama.model("phi4:latest") is not None
    models = [m.name for m in services.registry.list_models().models]
    assert "phi4:latest" in models  # the pickers see it: the listing was refreshed


def test_asking_again_joins_the_running_pull(services, ollama) -> None:
    ollama.library.append(FakeModel("phi4:latest"))
    ollama.pull_delay = 0.05
    first = services.pulls.start(ollama.url, "phi4")
    again = services.pulls.start(ollama.url, "phi4")
    assert again.id == first.id
    services.pulls.wait(first.id, timeout=10)


def test_cancel_stops_the_download(services, ollama) -> None:
    ollama.library.append(FakeModel("slowpull:latest"))
    ollama.pull_delay = 0.1
    job = services.pulls.start(ollama.url, "slowpull")
    until(lambda: services.pulls.get(job.id).status != "starting")
    services.pulls.cancel(job.id)
    ended = services.pulls.wait(job.id, timeout=10)
    assert ended.state == CANCELLED
    until(lambda: ollama.cancelled == 1)
    assert ollama.model("slowpull:latest") is None


def test_failures_are_kept_with_the_servers_words(services, ollama) -> None:
    job = services.pulls.start(ollama.url, "no-such-model")
    ended = services.pulls.wait(job.id, timeout=10)
    assert ended.state == FAILED and "file does not exist" in (ended.error or "")
    ollama.library.append(FakeModel("big:latest"))
    ollama.pull_error = "write /models/blobs: no space left on device"
    ended = services.pulls.wait(services.pulls.start(ollama.url, "big").id, timeout=10)
    assert ended.state == FAILED and "no space left on device" in (ended.error or "")


def test_bad_requests_are_refused_before_anything_starts(services, ollama) -> None:
    with pytest.raises(InvalidInput):
        services.pulls.start(ollama.url, "   ")
    with pytest.raises(BackendUnavailable):
        services.pulls.start("http://127.0.0.1:9", "phi4")
    with pytest.raises(NotFound):
        services.pulls.get("nope")
    assert services.pulls.list() == []
