"""The Stats page's REST twin, GET /api/stats: chats sent through POST /api/chat and through the
/ollama proxy (with the client's label) are counted overall, per model, and under the page's
filters; a filter matching nothing is zeros and empty tables, a bad one a 422. Against the
loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chatcore.services import Services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeOllama

OWN = f"http://127.0.0.1:{PORT}"
OLLAMA_PYTHON = "ollama-python/0.6.0 (x86_64 linux) Python/3.11.9"
LLAMA, QWEN = "llama3.2:latest", "qwen3:4b"
LLAMA_TOKENS, QWEN_TOKENS = 7, 3  # the loopback models' replies, a token a word
TABLES = ("per_model", "usage_over_time", "activity", "reply_lengths", "context_hits")


@pytest.fixture
def client(services: Services, fake_ollama: FakeOllama) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


def chat(client: TestClient, model: str) -> None:
    sent = client.post("/api/chat", json={"message": "Hi", "model_params": {"model": model}})
    assert sent.status_code == 200, sent.text


def proxied_chat(client: TestClient, model: str) -> None:
    """A chat as the official Ollama client sends it through the dashboard's proxy."""
    sent = client.post(
        "/ollama/api/chat",
        json={"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": False},
        headers={"User-Agent": OLLAMA_PYTHON},
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["done"] is True


@pytest.fixture
def chatted(client: TestClient) -> TestClient:
    """Three replies from the dashboard's API (two of llama3.2, one of qwen3) and one of
    llama3.2 through the /ollama proxy."""
    chat(client, "llama3.2")
    chat(client, "llama3.2")
    chat(client, QWEN)
    proxied_chat(client, "llama3.2")
    return client


def stats(client: TestClient, /, **filters: Any) -> dict[str, Any]:
    answer = client.get("/api/stats", params=filters)
    assert answer.status_code == 200, answer.text
    return answer.json()


def per_model(answer: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(r["model"], r["runs"], r["completion_tokens"]) for r in answer["per_model"]]


def test_every_reply_is_counted_overall_and_per_model(chatted: TestClient) -> None:
    answer = stats(chatted)
    headline = answer["headline"]
    assert headline["replies"] == 4
    assert headline["conversations"] == 4
    assert headline["messages"] == 8  # yours plus the replies
    assert headline["completion_tokens"] == 3 * LLAMA_TOKENS + QWEN_TOKENS
    assert (headline["error_rate"], headline["stop_rate"]) == (0.0, 0.0)
    assert per_model(answer) == [(LLAMA, 3, 3 * LLAMA_TOKENS), (QWEN, 1, QWEN_TOKENS)]
    llama = answer["per_model"][0]
    assert llama["median_tokens_per_second"] > 0
    assert llama["median_answer_ms"] is None  # it never thought: unknown, not 0

    choices = answer["choices"]
    assert choices["models"] == [LLAMA, QWEN]
    assert choices["clients"] == ["dashboard", "ollama-python"]
    assert choices["backends"] == ["ollama"]
    assert choices["first_day"] == choices["last_day"] == answer["filter"]["start"]
    assert answer["filter"]["end"] == choices["last_day"]  # the page's every-day range

    assert answer["grain"] == "hour"  # one day: charted by the hour
    usage = answer["usage_over_time"]
    assert {r["model"]: r["runs"] for r in usage} == {LLAMA: 3, QWEN: 1}
    assert sum(r["tokens"] for r in usage) == headline["prompt_tokens"] + 24
    assert all(datetime.fromisoformat(r["period"]) for r in usage)
    assert sum(r["runs"] for r in answer["activity"]) == 4
    lengths = {r["bin_start"]: r["replies"] for r in answer["reply_lengths"]}
    assert lengths == {QWEN_TOKENS: 1, LLAMA_TOKENS: 3}
    assert answer["knowledge"]["replies"] == 4
    assert answer["knowledge"]["median_ms"] is None  # nothing searched: unknown, not 0


def test_filtered_by_client(chatted: TestClient) -> None:
    proxied = stats(chatted, client="ollama-python")
    assert proxied["headline"]["replies"] == 1
    assert proxied["headline"]["conversations"] == 1
    assert per_model(proxied) == [(LLAMA, 1, LLAMA_TOKENS)]
    assert proxied["filter"]["clients"] == ["ollama-python"]

    dashboard = stats(chatted, client="dashboard")
    assert dashboard["headline"]["replies"] == 3
    assert per_model(dashboard) == [(LLAMA, 2, 2 * LLAMA_TOKENS), (QWEN, 1, QWEN_TOKENS)]

    both = stats(chatted, client=["dashboard", "ollama-python"])
    assert both["headline"]["replies"] == 4


def test_filtered_by_model_and_dates(chatted: TestClient) -> None:
    qwen = stats(chatted, model=QWEN)
    assert qwen["headline"]["replies"] == 1
    assert qwen["headline"]["completion_tokens"] == QWEN_TOKENS
    assert per_model(qwen) == [(QWEN, 1, QWEN_TOKENS)]
    assert {r["model"] for r in qwen["usage_over_time"]} == {QWEN}

    llama = stats(chatted, model="llama3.2")  # as the user spells it: the model's runs
    assert per_model(llama) == [(LLAMA, 3, 3 * LLAMA_TOKENS)]
    assert stats(chatted, model=[LLAMA, QWEN])["headline"]["replies"] == 4
    assert stats(chatted, model=LLAMA, client="ollama-python")["headline"]["replies"] == 1
    assert stats(chatted, backend="ollama")["headline"]["replies"] == 4

    day = stats(chatted)["choices"]["first_day"]
    assert stats(chatted, start=day, end=day)["headline"]["replies"] == 4
    assert stats(chatted, start="2000-01-01")["headline"]["replies"] == 4


@pytest.mark.parametrize(
    "filters",
    [
        {"client": "nobody"},
        {"model": "no-such-model"},
        {"host": "http://10.9.9.9:11434"},
        {"model": QWEN, "client": "ollama-python"},
        {"end": "2000-01-01"},
        {"start": "2999-01-01"},
    ],
)
def test_a_filter_matching_nothing_is_zero_replies_and_empty_tables(
    chatted: TestClient, filters: dict[str, str]
) -> None:
    answer = stats(chatted, **filters)
    headline = answer["headline"]
    assert (headline["replies"], headline["completion_tokens"], headline["conversations"]) == (
        0,
        0,
        0,
    )
    assert (headline["error_rate"], headline["stop_rate"]) == (None, None)  # no replies: unknown
    assert all(answer[table] == [] for table in TABLES)
    assert answer["model_switches"] == []
    assert answer["knowledge"]["replies"] == 0
    assert answer["choices"]["clients"] == ["dashboard", "ollama-python"]  # still offered


def test_an_empty_database_answers_zeros_and_no_choices(client: TestClient) -> None:
    answer = stats(client)
    assert answer["headline"]["replies"] == 0
    assert answer["headline"]["error_rate"] is None
    assert answer["choices"]["first_day"] is None and answer["choices"]["models"] == []
    assert all(answer[table] == [] for table in TABLES)


@pytest.mark.parametrize(
    ("filters", "named"),
    [
        ({"start": "2024-13-01"}, "start"),
        ({"end": "yesterday"}, "end"),
        ({"start": "2024-02-02", "end": "2024-02-01"}, "start"),
        ({"period": "last-week"}, "period"),
        ({"modle": LLAMA}, "modle"),
        ({"model": ""}, "model"),
        ({"client": "  "}, "client"),
    ],
)
def test_a_bad_filter_is_422_and_changes_nothing(
    chatted: TestClient, filters: dict[str, str], named: str
) -> None:
    before = stats(chatted)
    refused = chatted.get("/api/stats", params=filters)
    assert refused.status_code == 422
    assert named in refused.json()["detail"]
    assert stats(chatted) == before


def test_dates_are_iso_and_a_date_filter_is_echoed(chatted: TestClient) -> None:
    today = stats(chatted)["choices"]["last_day"]
    assert date.fromisoformat(today)
    answer = stats(chatted, start=today)
    assert answer["filter"]["start"] == today
    assert answer["filter"]["end"] == today  # omitted: the last day with a run
