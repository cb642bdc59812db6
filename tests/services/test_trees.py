"""Conversations as message trees: branch by editing, regenerate as a sibling, switch, reload,
fork; against the loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from chatcore.branches import TOP
from chatcore.config import Settings
from chatcore.errors import InvalidInput, NotFound
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from chatcore.storage.migrations import MIGRATIONS
from chatcore.storage.stats import StatsFilter
from testkit.fake_ollama import FakeOllama

PARAMS = GenerationParams()
MODEL = "llama3.2"


def said(services: Services, conversation_id: str) -> list[str]:
    return [m.content for m in services.chat.messages(conversation_id)]


def three_turns(services: Services) -> str:
    for text in ("one", "two", "three"):
        services.chat.send("c", text, MODEL, PARAMS).consume()
    return "c"


def test_every_message_follows_its_parent(services: Services) -> None:
    three_turns(services)
    messages = services.chat.messages("c")
    assert [m.parent_id for m in messages] == [None, *[m.id for m in messages[:-1]]]
    assert all(m.siblings == (m.id,) for m in messages)


def test_editing_an_earlier_message_makes_a_branch_and_keeps_the_old_one(
    services: Services, fake_ollama: FakeOllama
) -> None:
    three_turns(services)
    second = services.chat.messages("c")[2]
    services.chat.send("c", "two, edited", MODEL, PARAMS, parent_id=second.parent_id).consume()

    branch = services.chat.messages("c")
    assert [m.content for m in branch][::2] == ["one", "two, edited"]
    assert len(branch) == 4
    assert branch[2].siblings == (second.id, branch[2].id)
    # the model saw the new branch only: the first turn and the edited message
    sent = fake_ollama.chat_requests()[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == [
        "one",
        "Hello there, I am a small model.",
        "two, edited",
    ]

    services.chat.branches.switch("c", second.id)  # the old branch, all of it, is still there
    assert said(services, "c")[::2] == ["one", "two", "three"]


def test_editing_the_first_message_starts_a_branch_at_the_top(services: Services) -> None:
    three_turns(services)
    services.chat.send("c", "zero", MODEL, PARAMS, parent_id=TOP).consume()
    branch = services.chat.messages("c")
    assert [m.content for m in branch][::2] == ["zero"]
    assert branch[0].parent_id is None and len(branch[0].siblings) == 2


def test_regenerate_adds_a_sibling_reply_and_switching_goes_back(services: Services) -> None:
    services.chat.send("c", "hi", MODEL, PARAMS).consume()
    first = services.chat.messages("c")[1]
    services.chat.regenerate("c", "qwen3:4b", PARAMS).consume()
    branch = services.chat.messages("c")
    assert [m.content for m in branch] == ["hi", "Bonjour from Qwen."]
    assert branch[1].siblings == (first.id, branch[1].id)
    services.chat.branches.switch("c", first.id)
    assert said(services, "c") == ["hi", "Hello there, I am a small model."]
    services.chat.regenerate("c", MODEL, PARAMS).consume()  # a third sibling, now open
    assert len(services.chat.messages("c")[1].siblings) == 3


def test_a_new_message_follows_the_open_branch(services: Services) -> None:
    services.chat.send("c", "hi", MODEL, PARAMS).consume()
    first = services.chat.messages("c")[1]
    services.chat.regenerate("c", "qwen3:4b", PARAMS).consume()
    services.chat.branches.switch("c", first.id)
    services.chat.send("c", "and then?", MODEL, PARAMS).consume()
    branch = services.chat.messages("c")
    assert branch[1].id == first.id and branch[2].content == "and then?"


def test_the_open_branch_survives_a_restart(
    services: Services, fake_ollama: FakeOllama, db_path: Path
) -> None:
    three_turns(services)
    second = services.chat.messages("c")[2]
    services.chat.send("c", "two, edited", MODEL, PARAMS, parent_id=second.parent_id).consume()
    services.chat.branches.switch("c", second.id)
    services.close()
    reopened = open_services(Settings(ollama_host=fake_ollama.url, db_path=db_path, port=8501))
    try:
        assert said(reopened, "c")[::2] == ["one", "two", "three"]
    finally:
        reopened.close()


def test_a_parent_from_another_conversation_is_refused_and_nothing_is_stored(
    services: Services,
) -> None:
    services.chat.send("a", "hi", MODEL, PARAMS).consume()
    foreign = services.chat.messages("a")[0].id
    services.chat.send("b", "hi", MODEL, PARAMS).consume()
    with services.db.cursor() as cur:
        before = cur.execute("SELECT count(*) FROM messages").fetchone()
    for parent in (foreign, 10**9, -1):
        with pytest.raises(InvalidInput):
            services.chat.send("b", "branch", MODEL, PARAMS, parent_id=parent)
        with pytest.raises(InvalidInput):  # nor may a new conversation start after one
            services.chat.send("new", "branch", MODEL, PARAMS, parent_id=parent)
    with services.db.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM messages").fetchone() == before
    assert not services.chat.exists("new")


def test_fork_copies_the_path_into_a_new_conversation(services: Services) -> None:
    three_turns(services)
    branch = services.chat.messages("c")
    services.chat.branches.fork("c", branch[3].id, "forked")
    copied = services.chat.messages("forked")
    assert [m.content for m in copied] == [m.content for m in branch[:4]]
    assert [m.parent_id for m in copied] == [None, *[m.id for m in copied[:-1]]]
    assert copied[1].run is not None and copied[1].run.id == branch[1].run.id  # not copied
    assert services.chat.conversation("forked").title == "one (fork)"
    assert said(services, "c") == [m.content for m in branch]  # the original is untouched
    services.chat.send("forked", "four", MODEL, PARAMS).consume()  # and the fork carries on
    assert said(services, "forked")[4] == "four"
    with services.db.cursor() as cur:  # a run counts once
        assert cur.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    with pytest.raises(NotFound):
        services.chat.branches.fork("c", 10**9, "nowhere")
    with pytest.raises(NotFound):
        services.chat.branches.switch("c", copied[0].id)  # the fork's message is not c's


def test_a_fork_keeps_its_replies_runs_when_the_original_is_deleted(services: Services) -> None:
    three_turns(services)
    last = services.chat.messages("c")[-1].id
    services.chat.branches.fork("c", last, "f1")
    services.chat.branches.fork("f1", services.chat.messages("f1")[-1].id, "f2")
    services.history.delete(["c"])
    for fork in ("f1", "f2"):
        replies = [m for m in services.chat.messages(fork) if m.role == "assistant"]
        assert all(m.run is not None and m.run.status == "complete" for m in replies)
    with services.db.cursor() as cur:  # still one run a reply, now f1's
        assert cur.execute("SELECT count(*), min(conversation_id) FROM runs").fetchone() == (
            3,
            "f1",
        )
    assert services.history.list_conversations().rows[0].tokens > 0
    services.history.delete(["f1"])
    assert all(m.run is not None for m in services.chat.messages("f2") if m.role == "assistant")


def test_stats_count_every_run_once_across_branches_and_forks(services: Services) -> None:
    three_turns(services)
    services.chat.regenerate("c", MODEL, PARAMS).consume()
    services.chat.branches.fork("c", services.chat.messages("c")[-1].id, "forked")
    report = services.stats.report(StatsFilter(), services.stats.choices())
    assert int(report.headline["messages"].iloc[0]) == 3 + 4  # your 3 messages and 4 replies
    assert int(report.headline["replies"].iloc[0]) == 4


def test_migration_11_turns_superseded_replies_into_siblings(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, _title, statements in MIGRATIONS:
        if number < 11:
            for statement in statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?)", [number])
    con.execute("INSERT INTO conversations (id, title) VALUES ('c', 't')")
    rows = [
        (1, "user", "hi", False),
        (2, "assistant", "old", True),
        (3, "assistant", "new", False),
        (4, "user", "more", False),
        (5, "assistant", "reply", False),
    ]
    for row in rows:
        con.execute(
            "INSERT INTO messages (id, conversation_id, role, content, superseded) "
            "VALUES (?, 'c', ?, ?, ?)",
            list(row),
        )
    con.close()
    opened = open_services(Settings(ollama_host="http://127.0.0.1:9", db_path=path, port=8501))
    try:
        branch = opened.chat.messages("c")
        assert [m.content for m in branch] == ["hi", "new", "more", "reply"]
        assert branch[1].siblings == (2, 3)
        tree = opened.chat.branches.tree("c")
        assert [m.parent_id for m in tree] == [None, 1, 1, 3, 4]
    finally:
        opened.close()
