"""Fixtures of the proxies' tests: an OpenAI-compatible host (a vLLM stand-in) and the proxies
served over real HTTP in front of it and the loopback Ollama."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatcore.services import Services
from testkit.asgi import mounted, served
from testkit.fake_ollama import FakeModel
from testkit.fake_openai import FakeOpenAI


@pytest.fixture
def vllm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI([FakeModel("qwen3-32b", reply="Served by vLLM.")]).start()
    yield server
    server.stop()


@pytest.fixture
def proxy(services: Services, vllm: FakeOpenAI) -> Iterator[str]:
    services.hosts.add(vllm.url, kind="openai")
    with served(mounted(services)) as url:
        yield url
