"""Bad input at scale: random JSON bodies, ids and parameters thrown at the REST API.

Whatever comes in, the answer is never a 500 and a refused request writes nothing; an accepted
chat writes exactly one turn (the user's message, the reply and its run).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcore.services import Services
from testkit.asgi import PORT, mounted

OWN = f"http://127.0.0.1:{PORT}"
PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# Near misses: the real field names with values of any type, so validation is reached deeply.
param_fields = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["llama3.2", "qwen3:4b", "", "nope"]) | json_values,
        "temperature": st.floats(allow_nan=True) | json_values,
        "top_p": st.floats(-1, 2) | json_values,
        "max_tokens": st.integers(-5, 40000) | json_values,
        "system_prompt": st.text(max_size=50) | json_values,
        "seed": st.integers() | json_values,
        "stop": st.lists(st.text(max_size=5), max_size=3) | json_values,
    },
)
chat_bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "message": st.text(max_size=200) | json_values,
            "conversation_id": st.text(max_size=120) | json_values,
            "model_params": param_fields | json_values,
            "stream": st.booleans() | json_values,
        },
    )
    | json_values
)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    app = mounted(services)
    with TestClient(app, base_url=OWN, raise_server_exceptions=False) as test_client:
        yield test_client


def counts(services: Services) -> tuple[int, int, int]:
    conversations = services.chat.recent_conversations(10_000)
    messages = sum(c.message_count for c in conversations)
    runs = sum(1 for c in conversations for m in services.chat.messages(c.id) if m.run)
    return len(conversations), messages, runs


def post_json(client: TestClient, url: str, body: Any) -> Any:
    """The body as Python's json writes it: NaN and Infinity included, which JSON forbids."""
    content = json.dumps(body).encode()
    return client.post(url, content=content, headers={"Content-Type": "application/json"})


def body_text(answer: Any) -> str:
    return answer.text[:300]


@PROPERTY_SETTINGS
@given(body=chat_bodies)
def test_random_chat_bodies_never_500_and_a_refusal_writes_nothing(
    client: TestClient, services: Services, body: Any
) -> None:
    before = counts(services)
    answer = post_json(client, "/api/chat", body)
    assert answer.status_code != 500, body_text(answer)
    assert answer.status_code in (200, 404, 413, 422, 503), body_text(answer)
    after = counts(services)
    if answer.status_code == 200:
        grew = (after[1] - before[1], after[2] - before[2])
        assert grew == (2, 1)  # one user message, one reply, one run: a whole turn
    else:
        assert after == before
        assert answer.json()["request_id"]


@PROPERTY_SETTINGS
@given(conversation_id=st.text(max_size=150), limit=st.text(max_size=12) | st.integers())
def test_random_ids_and_parameters_never_500(
    client: TestClient, conversation_id: str, limit: object
) -> None:
    history = client.get(f"/api/history/{quote(conversation_id, safe='')}")
    assert history.status_code in (404, 200, 307, 405), body_text(history)
    listing = client.get("/api/conversations", params={"limit": str(limit)})
    assert listing.status_code in (200, 422), body_text(listing)
    restore = client.post(
        f"/api/backups/{quote(conversation_id, safe='')}/restore", json={"confirm": True}
    )
    assert restore.status_code in (404, 405, 422), body_text(restore)


@PROPERTY_SETTINGS
@given(body=json_values)
def test_random_restore_bodies_are_refused_without_a_change(
    client: TestClient, services: Services, body: Any
) -> None:
    before = counts(services)
    answer = post_json(client, "/api/backups/none.duckdb/restore", body)
    assert answer.status_code in (404, 422), body_text(answer)
    assert counts(services) == before
