"""Bad files at scale: random bytes, random JSON and random mutations of a real export thrown at
the importer. Every file is either imported whole or refused with a message; a refusal writes
nothing, and nothing else (no crash, no other exception) ever comes out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.transfer import ImportRefused

PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def counts(services: Services) -> tuple[int, int]:
    """Conversations and messages stored, superseded replies included (the export has all)."""
    conversations = json.loads(services.transfer.export_json())["conversations"]
    return len(conversations), sum(len(c["messages"]) for c in conversations)


def import_outcome(services: Services, data: bytes) -> str:
    """'imported' or 'refused'; a refusal must leave the database as it was."""
    before = counts(services)
    try:
        report = services.transfer.import_json(data)
    except ImportRefused as refused:
        assert str(refused)  # a message a person can act on
        assert counts(services) == before
        return "refused"
    after = counts(services)
    assert after == (before[0] + len(report.imported), before[1] + report.messages)  # whole
    return "imported"


@pytest.fixture
def real_export(services: Services) -> dict[str, Any]:
    """A real export of one conversation, which is then deleted so the file imports again."""
    services.chat.send("source", "Hello", "llama3.2", GenerationParams()).consume()
    document = json.loads(services.transfer.export_json(["source"]))
    services.history.delete(["source"])
    return document


def paths_in(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the document a value could be swapped."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths_in(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths_in(value, (*prefix, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=2000))
def test_random_bytes_are_refused_and_write_nothing(services: Services, data: bytes) -> None:
    assert import_outcome(services, data) in ("refused", "imported")


@PROPERTY_SETTINGS
@given(document=json_values)
def test_random_json_is_refused_and_writes_nothing(services: Services, document: Any) -> None:
    assert import_outcome(services, json.dumps(document).encode()) == "refused"


@PROPERTY_SETTINGS
@given(data=st.data())
def test_one_value_changed_anywhere_in_a_real_export_imports_whole_or_not_at_all(
    services: Services, real_export: dict[str, Any], data: st.DataObject
) -> None:
    document = real_export
    path = data.draw(st.sampled_from(paths_in(document)))
    value = data.draw(json_values | st.text(max_size=120))
    mutated = replaced(document, path, value)
    outcome = import_outcome(services, json.dumps(mutated, ensure_ascii=False).encode())
    if outcome == "imported":  # back to empty for the next example
        services.history.delete([c["id"] for c in mutated["conversations"]])


def test_a_number_where_an_image_belongs_is_refused(
    services: Services, real_export: dict[str, Any]
) -> None:
    """Found by the test above: ijson reads a decimal number as a Decimal, which the image's
    check could not turn back into JSON (a TypeError, not a refusal)."""
    mutated = replaced(real_export, ("images",), {"": 0.0})
    assert import_outcome(services, json.dumps(mutated).encode()) == "refused"
