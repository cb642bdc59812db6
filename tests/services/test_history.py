"""The History queries on a real DuckDB file filled through the real send path."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from chatcore import history as history_module
from chatcore.compare import ALL_BAD
from chatcore.errors import InvalidInput
from chatcore.history import Filters, snippet
from chatcore.services import Services
from chatcore.storage import conversations as store
from chatcore.storage.history import write_many_summaries
from testkit.compare_data import finished_round
from testkit.fake_ollama import FakeOllama
from testkit.history_data import PARAMS, otters_old_and_new, varied_history
from testkit.search_scans import recorded_scans


def fresh_summaries(services: Services) -> list[tuple[object, ...]]:
    """The summaries and folded text recomputed from scratch (all at once), to compare with the
    ones kept up to date (one conversation at a time)."""
    with services.db.cursor() as cur:
        cur.execute("BEGIN TRANSACTION")
        ids = [r[0] for r in cur.execute("SELECT id FROM conversations").fetchall()]
        cur.execute("DELETE FROM conversation_summaries")
        cur.execute("DELETE FROM message_search")
        write_many_summaries(cur, ids)  # the bulk path
        rows = derived_rows(cur)
        cur.execute("ROLLBACK")
    return rows


def derived_rows(cur) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    return [
        *cur.execute("SELECT * FROM conversation_summaries ORDER BY 1").fetchall(),
        *cur.execute("SELECT * FROM message_search ORDER BY message_id").fetchall(),
    ]


def kept_summaries(services: Services) -> list[tuple[object, ...]]:
    services.history.refresh_summaries()
    with services.db.cursor() as cur:
        return derived_rows(cur)


def test_the_list_shows_each_conversation_newest_first(
    services: Services, fake_ollama: FakeOllama
) -> None:
    varied_history(services, fake_ollama)
    page = services.history.list_conversations()
    assert page.total == 3
    assert [row.id for row in page.rows] == ["gamma", "beta", "alpha"]
    alpha = page.rows[2]
    assert alpha.title == "Tell me about otters"
    assert alpha.models == [
        "llama3.2:latest",
        "qwen3:4b",
    ]  # the regenerated reply's model counts too
    assert alpha.messages == 5  # on every branch: the regenerated reply's sibling counts too
    with services.db.cursor() as cur:
        tokens = cur.execute(
            "SELECT sum(prompt_tokens + completion_tokens) FROM runs "
            "WHERE conversation_id = 'alpha'"
        ).fetchone()[0]
    assert alpha.tokens == tokens > 0


def test_the_summary_follows_every_kind_of_change(
    services: Services, fake_ollama: FakeOllama
) -> None:
    varied_history(services, fake_ollama)
    assert kept_summaries(services) == fresh_summaries(services)
    services.chat.send("alpha", "One more", "qwen3:4b", PARAMS).consume()
    services.chat.regenerate("beta", "qwen3:4b", PARAMS).consume()
    assert kept_summaries(services) == fresh_summaries(services)
    row = services.history.list_conversations().rows[0]
    assert (row.id, row.messages) == ("beta", 3)  # the stopped reply and its regenerated sibling
    assert services.history.refresh_summaries() == 0  # nothing changed: nothing recomputed


def test_sorting_and_paging(services: Services, fake_ollama: FakeOllama) -> None:
    varied_history(services, fake_ollama)
    history = services.history
    by_title = history.list_conversations(sort="title", descending=False)
    assert [r.title for r in by_title.rows] == sorted(r.title for r in by_title.rows)
    by_messages = history.list_conversations(sort="messages")
    assert [r.messages for r in by_messages.rows] == [5, 2, 2]  # messages on every branch
    pages = [history.list_conversations(page=n, page_size=2) for n in range(3)]
    assert [len(p.rows) for p in pages] == [2, 1, 0]
    assert {p.total for p in pages} == {3}
    assert [r.id for p in pages for r in p.rows] == ["gamma", "beta", "alpha"]


def test_filters_by_model_and_by_date(services: Services, fake_ollama: FakeOllama) -> None:
    varied_history(services, fake_ollama)
    history = services.history
    qwen = history.list_conversations(Filters(models=("qwen3:4b",)))
    assert [r.id for r in qwen.rows] == ["alpha"]
    both = history.list_conversations(Filters(models=("qwen3:4b", "flaky")))
    assert {r.id for r in both.rows} == {"alpha", "gamma"}
    today = date.today()
    assert history.list_conversations(Filters(since=today, until=today)).total == 3
    assert history.list_conversations(Filters(since=today + timedelta(days=1))).total == 0
    assert history.list_conversations(Filters(until=today - timedelta(days=1))).total == 0
    assert history.model_names() == ["flaky:latest", "llama3.2:latest", "qwen3:4b"]


def test_search_finds_text_and_titles_ignoring_case(
    services: Services, fake_ollama: FakeOllama
) -> None:
    varied_history(services, fake_ollama)
    history = services.history
    result = history.search("QUOKKA")
    assert [h.id for h in result.hits] == ["beta"] and result.total == 1
    assert "Quokka" in result.hits[0].snippet
    assert [h.id for h in history.search("50%").hits] == ["alpha"]  # no LIKE wildcards
    assert history.search("5_%").total == 0
    assert [h.id for h in history.search("hello").hits] == ["beta", "alpha"]  # newest first
    replies = history.search("small model")  # beta's stopped reply holds only "Hello"
    assert [h.id for h in replies.hits] == ["alpha"]
    assert replies.hits[0].matching_messages == 2
    # only in the reply regenerate replaced: found, and opening it opens that reply's branch
    bonjour = history.search("Bonjour")
    assert [h.id for h in bonjour.hits] == ["alpha"] and bonjour.hits[0].message_id is not None
    opened = history.open("alpha", bonjour.hits[0].message_id)
    assert opened is not None and opened.messages[-1].content == "Bonjour from Qwen."
    assert history.open("alpha").messages[-1].content != "Bonjour from Qwen."  # not the open one
    assert history.search("ünïcode").hits[0].id == "gamma"
    assert history.search("otters", Filters(models=("flaky",))).total == 0
    assert history.search("   ").total == 0


def test_a_common_word_searches_recent_weeks_first(
    services: Services, fake_ollama: FakeOllama, monkeypatch
) -> None:
    monkeypatch.setattr(history_module, "SEARCH_LIMIT", 2)
    otters_old_and_new(services, ("old-3", "a rare wombat"))
    common = services.history.search("otters")
    assert [h.id for h in common.hits] == ["new-3", "new-2"]
    assert not common.complete and common.total == 3  # the recent window's matches
    rare = services.history.search("WOMBAT")  # nothing recent: the search widens to all
    assert [h.id for h in rare.hits] == ["old-3"] and rare.complete
    monkeypatch.setattr(history_module, "SEARCH_LIMIT", 10)
    everything = services.history.search("otters")
    assert everything.complete and everything.total == 5


def test_a_rare_word_skips_the_windows_it_would_not_fill(
    services: Services, fake_ollama: FakeOllama, monkeypatch
) -> None:
    """A week that finds a tenth of SEARCH_LIMIT won't fill sixty days: the whole history next.

    The scan of the folded text, as a word in more conversations than WORDS_MOST gets it."""
    monkeypatch.setattr(history_module, "SEARCH_LIMIT", 10)
    monkeypatch.setattr(history_module, "WORDS_MOST", 0)
    services.chat.send("recent", "a rare wombat", "llama3.2", PARAMS).consume()
    services.chat.send("older", "another wombat", "llama3.2", PARAMS).consume()
    with services.db.transaction() as cur:
        cur.execute("UPDATE conversations SET updated_at = updated_at - INTERVAL 30 DAY "
                    "WHERE id = 'older'")  # fmt: skip
    searched = recorded_scans(monkeypatch)
    rare = services.history.search("wombat")
    assert [h.id for h in rare.hits] == ["recent", "older"] and rare.complete
    assert len(searched) == 2 and searched[-1] is None  # the week, then everything
    assert history_module.next_window(0, 2) == 1  # 2 a week: 60 days may fill ten
    assert history_module.next_window(0, 1) == 2


def test_snippet_is_a_window_around_the_match() -> None:
    text = "a " * 200 + "the NEEDLE here " + "b " * 200
    cut = snippet(text, "needle", width=40)
    assert "NEEDLE" in cut and cut.startswith("…") and cut.endswith("…")
    assert len(cut) <= 42
    assert snippet("short text", "short") == "short text"


def test_open_returns_the_dialogue_with_metrics(
    services: Services, fake_ollama: FakeOllama
) -> None:
    varied_history(services, fake_ollama)
    opened = services.history.open("alpha")
    assert opened is not None
    assert [m.role for m in opened.messages] == ["user", "assistant", "user", "assistant"]
    reply = opened.messages[-1]
    assert reply.run is not None and reply.run.metrics.completion_tokens == 7
    assert services.history.open("nope") is None


def test_rename_changes_the_title_not_the_activity(
    services: Services, fake_ollama: FakeOllama
) -> None:
    varied_history(services, fake_ollama)
    before = services.history.open("alpha")
    assert services.history.rename("alpha", "  Otters   and beavers ") == "Otters and beavers"
    after = services.history.open("alpha")
    assert after is not None and before is not None
    assert after.summary.title == "Otters and beavers"
    assert after.summary.updated_at == before.summary.updated_at
    with pytest.raises(InvalidInput):
        services.history.rename("alpha", "   ")
    with pytest.raises(InvalidInput):
        services.history.rename("gone", "Title")


def orphan_counts(services: Services) -> dict[str, int]:
    with services.db.cursor() as cur:
        return {
            table: cur.execute(
                f"SELECT count(*) FROM {table} t LEFT JOIN conversations c ON c.id = t.{column} "
                "WHERE c.id IS NULL"
            ).fetchone()[0]
            for table, column in (
                ("messages", "conversation_id"),
                ("runs", "conversation_id"),
                ("conversation_summaries", "conversation_id"),
            )
        }


def test_delete_takes_every_row_of_the_conversation(
    services: Services, fake_ollama: FakeOllama
) -> None:
    varied_history(services, fake_ollama)
    services.history.refresh_summaries()
    assert services.history.delete(["alpha"]) == 1
    assert services.history.open("alpha") is None
    assert orphan_counts(services) == {"messages": 0, "runs": 0, "conversation_summaries": 0}
    assert [r.id for r in services.history.list_conversations().rows] == ["gamma", "beta"]
    # several at once, unknown ids ignored
    assert services.history.delete(["beta", "gamma", "nope"]) == 2
    with services.db.cursor() as cur:
        counts = [
            cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("conversations", "messages", "runs", "conversation_summaries")
        ]
    assert counts == [0, 0, 0, 0]


def test_every_table_with_conversation_rows_is_cleaned_on_delete(services: Services) -> None:
    """A new table keyed to conversations must add its DELETE to CONVERSATION_CLEANUP."""
    with services.db.cursor() as cur:
        tables = {
            r[0]
            for r in cur.execute(
                "SELECT table_name FROM information_schema.columns "
                "WHERE column_name = 'conversation_id'"
            ).fetchall()
        }
    cleaned = " ".join(store.CONVERSATION_CLEANUP)
    assert all(f"DELETE FROM {table} " in cleaned for table in tables), tables


def test_deleting_a_compared_answer_takes_its_votes_and_empty_rounds(
    compare_services: Services,
) -> None:
    round_id = finished_round(compare_services, ["fast:latest", "mid:latest"])
    compare_services.compare.vote(round_id, ALL_BAD)
    stored = compare_services.compare.round(round_id)
    assert stored is not None
    first, second = (entry.conversation_id for entry in stored.entries)
    compare_services.history.delete([first])
    after = compare_services.compare.round(round_id)
    assert after is not None and after.vote is None and len(after.entries) == 1
    compare_services.history.delete([second])
    assert compare_services.compare.round(round_id) is None
    with compare_services.db.cursor() as cur:
        left = [
            cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("votes", "compare_entries", "compare_rounds", "runs", "messages")
        ]
    assert left == [0, 0, 0, 0, 0]


def test_a_failed_delete_leaves_everything(
    services: Services, fake_ollama: FakeOllama, monkeypatch
) -> None:
    varied_history(services, fake_ollama)
    broken = [*store.CONVERSATION_CLEANUP[:-1], "DELETE FROM no_such_table"]
    monkeypatch.setattr(store, "CONVERSATION_CLEANUP", broken)
    with pytest.raises(Exception, match="no_such_table"):
        services.history.delete(["alpha"])
    opened = services.history.open("alpha")
    assert opened is not None and len(opened.messages) == 4


def test_conversations_are_grouped_and_filtered_by_their_client(
    services: Services, fake_ollama: FakeOllama
) -> None:
    from chatcore.history import DASHBOARD
    from chatcore.types import ChatMessage

    def relayed(client: str, text: str) -> None:
        chat = [ChatMessage(role="user", content=text)]
        services.chat.relay(chat, "llama3.2", PARAMS, client).consume()

    services.chat.send(None, "Typed in the dashboard", "llama3.2", PARAMS).consume()
    relayed("zed-editor", "Refactor this")
    relayed("nightly-script", "Summarise the logs")
    relayed("zed-editor", "Explain that")
    assert services.history.client_names() == [DASHBOARD, "nightly-script", "zed-editor"]

    rows = services.history.list_conversations(sort="client", descending=False).rows
    assert [r.client for r in rows] == [None, "nightly-script", "zed-editor", "zed-editor"]
    assert {r.title for r in rows[2:]} == {"Refactor this", "Explain that"}  # grouped
    editor = services.history.list_conversations(Filters(clients=("zed-editor",))).rows
    assert {r.title for r in editor} == {"Refactor this", "Explain that"}
    mine = services.history.list_conversations(Filters(clients=(DASHBOARD,))).rows
    assert [r.title for r in mine] == ["Typed in the dashboard"]
    assert fresh_summaries(services) == derived_rows_now(services)  # kept as computed afresh


def derived_rows_now(services: Services) -> list[tuple[object, ...]]:
    with services.db.cursor() as cur:
        return derived_rows(cur)
