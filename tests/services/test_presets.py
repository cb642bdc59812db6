"""Presets in DuckDB, and the parameters each model last ran with."""

from __future__ import annotations

import pytest

from chatcore.errors import InvalidInput, NotFound
from chatcore.params import GenerationParams
from chatcore.services import Services


def count_presets(services: Services) -> int:
    with services.db.cursor() as cur:
        row = cur.execute("SELECT count(*) FROM presets").fetchone()
    return int(row[0]) if row else 0


def test_a_preset_is_saved_listed_replaced_and_deleted(services: Services) -> None:
    presets = services.presets
    saved = presets.save(
        "  Strict   reviewer ",
        {
            "system_prompt": "Review the code.",
            "temperature": 0.1,
            "top_p": 0.5,
            "max_tokens": 800,
            "think": "high",
            "context_size": 16384,
            "seed": 3,  # not a preset's: left out
        },
    )
    assert saved.name == "Strict reviewer"
    assert saved.params == {
        "system_prompt": "Review the code.",
        "temperature": 0.1,
        "top_p": 0.5,
        "max_tokens": 800,
        "think": "high",
        "context_size": 16384,
    }
    presets.save("creative", {"temperature": 1.0})
    assert [p.name for p in presets.list()] == ["creative", "Strict reviewer"]
    assert presets.get("creative").params["max_tokens"] == 500  # the sidebar's default
    presets.save("creative", {"temperature": 0.9, "think": False})
    assert presets.get("creative").params["temperature"] == 0.9
    assert presets.get("creative").params["think"] is False
    assert presets.get("Strict reviewer").generation().context_size == 16384
    presets.delete("creative")
    assert [p.name for p in presets.list()] == ["Strict reviewer"]
    with pytest.raises(NotFound):
        presets.delete("creative")
    with pytest.raises(NotFound):
        presets.get("creative")


@pytest.mark.parametrize(
    "name, params",
    [
        ("", {}),
        ("x" * 61, {}),
        ("hot", {"temperature": 1.5}),
        ("huge", {"max_tokens": 0}),
        ("tiny window", {"context_size": 10}),
        ("odd think", {"think": "very"}),
    ],
)
def test_a_bad_preset_is_refused_and_nothing_is_stored(
    services: Services, name: str, params: dict
) -> None:
    with pytest.raises(InvalidInput):
        services.presets.save(name, params)
    assert count_presets(services) == 0


def test_the_last_parameters_of_each_model_come_back(services: Services) -> None:
    assert services.presets.last_params("llama3.2") is None
    llama = GenerationParams(temperature=0.2, max_tokens=64, system_prompt="Be brief.")
    qwen = GenerationParams(temperature=0.9, top_p=0.5, think=False)
    services.chat.send(None, "Hi", "llama3.2", llama).consume()
    services.chat.send(None, "Hi", "qwen3:4b", qwen).consume()
    last = services.presets.last_params("llama3.2")  # Ollama's spelling without a tag
    assert last is not None
    assert (last["temperature"], last["max_tokens"], last["system_prompt"]) == (
        0.2,
        64,
        "Be brief.",
    )
    assert services.presets.last_params("qwen3:4b") == {
        "system_prompt": "",
        "temperature": 0.9,
        "top_p": 0.5,
        "max_tokens": 500,
        "think": False,
        "context_size": None,
    }
