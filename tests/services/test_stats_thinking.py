"""The Stats page's thinking figures per model, from replies streamed by the loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from chatcore.stats import StatsFilter
from testkit.fake_ollama import FakeModel, FakeOllama


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    server = FakeOllama(
        [
            FakeModel(
                "qwen3:4b",
                reply="a b c d",  # 4 answer tokens
                thinking="t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12",  # 12 thinking tokens
                token_delay=0.005,
                capabilities=("completion", "thinking"),
            ),
            FakeModel("llama3.2:latest", reply="plain words here"),
        ]
    ).start()
    opened = open_services(Settings(server.url, tmp_path / "chat.duckdb", 8501))
    yield opened
    opened.close()
    server.stop()


def test_thinking_share_and_time_to_answer_per_model(services: Services) -> None:
    for model in ("qwen3:4b", "qwen3:4b", "llama3.2"):
        services.chat.send(None, "Hi", model, GenerationParams()).consume()
    choices = services.stats.choices()
    table = services.stats.report(StatsFilter(), choices).per_model.set_index("model")
    qwen = table.loc["qwen3:4b"]
    assert qwen["thinking_token_share"] == pytest.approx(12 / 16)
    assert 0 < qwen["thinking_time_share"] <= 1
    assert qwen["median_answer_ms"] > qwen["median_ttft_ms"]
    plain = table.loc["llama3.2:latest"]
    assert (
        plain["thinking_token_share"] == 0
        and plain["median_answer_ms"] != plain["median_answer_ms"]
    )
