"""Random sequences of send, edit, regenerate, switch, fork and delete keep every conversation a
consistent tree: parents are earlier messages of the same conversation, the open branch is a
path from a first message to a leaf, each reply has its run (a fork's through its original), the
model is sent exactly the branch it answers, and a delete leaves nothing behind. Hypothesis drives
the real send path against the loopback server, on a real DuckDB file."""

from __future__ import annotations

import uuid
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcore.branches import TOP
from chatcore.errors import InvalidInput
from chatcore.params import GenerationParams
from chatcore.services import Services
from testkit.fake_ollama import FakeOllama

PARAMS = GenerationParams()
MODEL = "llama3.2"
# (operation, a number picking which message or conversation it acts on)
steps = st.lists(
    st.tuples(
        st.sampled_from(["send", "edit", "regenerate", "switch", "fork", "delete"]),
        st.integers(min_value=0, max_value=50),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_random_operations_keep_the_tree_consistent(
    services: Services, fake_ollama: FakeOllama, steps: list[tuple[str, int]]
) -> None:
    chat = services.chat
    alive = [f"p-{uuid.uuid4().hex[:8]}"]
    chat.send(alive[0], "start", MODEL, PARAMS).consume()
    for number, (operation, pick) in enumerate(steps):
        if not alive:
            break
        conversation = alive[pick % len(alive)]
        tree = chat.branches.tree(conversation)
        if operation == "send":
            sent_after = chat.messages(conversation)[-1].id
            reply = chat.send(conversation, f"m{number}", MODEL, PARAMS).consume()
            check_sent(services, fake_ollama, conversation, reply.message_id, sent_after)
        elif operation == "edit":
            users = [m for m in tree if m.role == "user"]
            edited = users[pick % len(users)]
            parent = TOP if edited.parent_id is None else edited.parent_id
            reply = chat.send(conversation, f"e{number}", MODEL, PARAMS, parent_id=parent).consume()
            check_sent(services, fake_ollama, conversation, reply.message_id, edited.parent_id)
        elif operation == "regenerate":
            try:
                chat.regenerate(conversation, MODEL, PARAMS).consume()
            except InvalidInput:  # the open branch ends in no reply: nothing was written
                assert chat.branches.tree(conversation) == tree
        elif operation == "switch":
            chat.branches.switch(conversation, tree[pick % len(tree)].id)
            assert tree[pick % len(tree)].id in [m.id for m in chat.messages(conversation)]
        elif operation == "fork":
            forked = chat.branches.fork(conversation, tree[pick % len(tree)].id, uuid.uuid4().hex)
            alive.append(forked)
        else:
            services.history.delete([conversation])
            alive.remove(conversation)
        for each in alive:
            check_tree(services, each)
    check_nothing_orphaned(services)


def check_sent(
    services: Services,
    fake_ollama: FakeOllama,
    conversation: str,
    reply_id: int,
    parent: int | None,
) -> None:
    """The new reply ends the open branch, its question follows `parent`, and the model was sent
    exactly that branch (the replies that carry text)."""
    branch = services.chat.messages(conversation)
    assert branch[-1].id == reply_id and branch[-2].parent_id == parent
    sent = fake_ollama.chat_requests()[-1]["body"]["messages"]
    expected = [(m.role, m.content) for m in branch[:-1] if m.role == "user" or m.content]
    assert [(m["role"], m["content"]) for m in sent] == expected


def check_tree(services: Services, conversation: str) -> None:
    tree = services.chat.branches.tree(conversation)
    ids = {m.id for m in tree}
    for message in tree:
        assert message.parent_id is None or (
            message.parent_id in ids and message.parent_id < message.id
        )
        assert message.id in message.siblings
        assert message.siblings == tuple(m.id for m in tree if m.parent_id == message.parent_id)
        assert (message.run is not None) == (message.role == "assistant")
    branch = services.chat.messages(conversation)
    assert branch and branch[0].parent_id is None
    assert all(b.parent_id == a.id for a, b in pairwise(branch))
    assert not any(m.parent_id == branch[-1].id for m in tree)  # it runs to a leaf


def check_nothing_orphaned(services: Services) -> None:
    with services.db.cursor() as cur:
        orphans = cur.execute(
            """
            SELECT
                (SELECT count(*) FROM messages m WHERE NOT EXISTS
                    (SELECT 1 FROM conversations c WHERE c.id = m.conversation_id)),
                (SELECT count(*) FROM runs r WHERE NOT EXISTS
                    (SELECT 1 FROM messages m WHERE m.id = r.message_id)),
                (SELECT count(*) FROM open_branches o WHERE NOT EXISTS
                    (SELECT 1 FROM messages m
                     WHERE m.id = o.message_id AND m.conversation_id = o.conversation_id))
            """
        ).fetchone()
    assert orphans == (0, 0, 0)
