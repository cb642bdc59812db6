"""A small, varied history made through the real send path, for History and transfer tests."""

from __future__ import annotations

from typing import Any

from chatcore.params import GenerationParams
from chatcore.services import Services
from testkit.fake_ollama import FakeModel, FakeOllama

PARAMS = GenerationParams()


def varied_history(services: Services, fake_ollama: FakeOllama) -> list[str]:
    """Conversations with two models, a regenerated reply, a stopped one and a failed one."""
    fake_ollama.models.append(FakeModel("flaky:latest", reply="one two three", fail_after=1))
    chat = services.chat
    first = chat.send("alpha", "Tell me about otters", "llama3.2", PARAMS).consume()
    chat.send("alpha", "And about 50% of beavers?", "qwen3:4b", PARAMS).consume()
    chat.regenerate("alpha", "llama3.2", PARAMS).consume()  # the earlier reply is a sibling
    stream = chat.send("beta", "A story about a Quokka please", "llama3.2", PARAMS)
    next(iter(stream))
    stream.close()  # stopped after its first piece
    chat.send("gamma", "Ünïcode and 'quotes' \"here\"", "flaky", PARAMS).consume()  # an error
    return [first.conversation_id, "beta", "gamma"]


PLACED = """placed AS (
    SELECT id, conversation_id,
        row_number() OVER (PARTITION BY conversation_id ORDER BY id) AS place
    FROM messages
)"""


def table_rows(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the three tables, with surrogate ids replaced by each row's place in its
    conversation, so two databases holding the same history compare equal."""
    with services.db.cursor() as cur:
        return {
            "conversations": cur.execute("SELECT * FROM conversations ORDER BY id").fetchall(),
            # a parent, a fork's original and the open message by their places too; the
            # superseded flag is history (migration 11 made trees of it; exports leave it out)
            "messages": cur.execute(
                f"""
                WITH {PLACED}
                SELECT m.* EXCLUDE (id, parent_id, forked_from, superseded), p.place,
                    parent.place, original.conversation_id, original.place
                FROM messages m JOIN placed p ON p.id = m.id
                LEFT JOIN placed parent ON parent.id = m.parent_id
                LEFT JOIN placed original ON original.id = m.forked_from
                ORDER BY m.conversation_id, m.id
                """
            ).fetchall(),
            "open_branches": cur.execute(
                f"""
                WITH {PLACED}
                SELECT o.conversation_id, p.place FROM open_branches o
                JOIN placed p ON p.id = o.message_id ORDER BY 1
                """
            ).fetchall(),
            "runs": cur.execute(
                """
                WITH placed AS (
                    SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY id) AS place
                    FROM messages
                )
                SELECT r.* EXCLUDE (id, message_id, options), r.options::JSON::VARCHAR, p.place
                FROM runs r JOIN placed p ON p.id = r.message_id
                ORDER BY r.conversation_id, p.place, r.id
                """
            ).fetchall(),
        }


def otters_old_and_new(services: Services, *more: tuple[str, str]) -> None:
    """Five conversations saying "otters": old-1 and old-2 a hundred days old, new-1 to new-3
    recent; `more` (id, text) are sent before the old ones are aged (ids old-*: aged too)."""
    sent = [(name, f"otters in {name}") for name in ("old-1", "old-2", "new-1", "new-2", "new-3")]
    for name, text in [*sent, *more]:
        services.chat.send(name, text, "llama3.2", PARAMS).consume()
    with services.db.transaction() as cur:
        cur.execute(
            "UPDATE conversations SET updated_at = updated_at - INTERVAL 100 DAY "
            "WHERE id LIKE 'old-%'"
        )
