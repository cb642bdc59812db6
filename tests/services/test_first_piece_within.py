"""A page asks whether a reply's first piece comes soon (it draws what can wait after it only
then): against the loopback Ollama, a model that answers at once and one slow to load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from testkit.fake_ollama import FakeModel, FakeOllama

PARAMS = GenerationParams(max_tokens=8)


@pytest.fixture
def loading(db_path: Path) -> Iterator[Services]:
    server = FakeOllama(
        [FakeModel("quick:latest"), FakeModel("cold:latest", load_delay=1.5)]
    ).start()
    services = open_services(Settings(ollama_host=server.url, db_path=db_path, port=8501))
    yield services
    services.close()
    server.stop()


def test_a_quick_model_answers_within_the_wait_and_a_loading_one_does_not(
    loading: Services,
) -> None:
    quick = loading.chat.send(None, "Hi", "quick:latest", PARAMS)
    assert quick.first_piece_within(1.0)
    assert quick.consume().status == "complete"

    cold = loading.chat.send(None, "Hi", "cold:latest", PARAMS)
    assert not cold.first_piece_within(0.3)  # still loading: the page draws the rest now
    assert cold.first_piece_within(5.0)
    assert cold.consume().text  # waiting took nothing from the stream
