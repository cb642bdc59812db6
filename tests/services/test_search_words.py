"""History's search through the conversations' words (search_words, migration 19): the same
answers as a scan of all the folded text, however the conversations changed since."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chatcore import history as history_module
from chatcore.history import Filters, SearchResult
from chatcore.services import Services
from chatcore.storage.history import write_many_summaries
from testkit.fake_ollama import FakeOllama
from testkit.history_data import PARAMS, otters_old_and_new, varied_history
from testkit.search_scans import recorded_scans

# words, parts of words, phrases, punctuation, other scripts and cases; some match nothing
NEEDLES = [
    "otters", "OTTERS", "otter", "tter", "Quokka", "quok", "hello", "Hello!", "small model",
    "about", "about otters", "50%", "50", "%", "5_%", "ünïcode", "ÜNÏ", "'quotes'", "quotes",
    "\"here\"", "bonjour", "from Qwen", "Bonjour from", "zebra", "zebras", "striped zebra",
    "日本語", "本語", "x_y", "x_", "one two", "w0", "w1 w2", "nothing like this", ":", "-",
]  # fmt: skip


NO_FILTERS = Filters()


def scanned(services: Services, needle: str, filters: Filters = NO_FILTERS) -> SearchResult:
    """The answer of the scan of the folded text alone (no conversation answered from words)."""
    return services.history.search(needle, filters, by_words=False)


def assert_same_answers(services: Services, filters: Filters = NO_FILTERS) -> None:
    for needle in NEEDLES:
        assert services.history.search(needle, filters) == scanned(services, needle, filters), (
            needle
        )


def search_words(services: Services) -> list[tuple[object, ...]]:
    services.history.refresh_summaries()
    with services.db.cursor() as cur:
        return cur.execute("SELECT * FROM search_words ORDER BY ALL").fetchall()


def rebuilt_words(services: Services) -> list[tuple[object, ...]]:
    """search_words made again from scratch, all conversations at once (the bulk path)."""
    with services.db.cursor() as cur:
        cur.execute("BEGIN TRANSACTION")
        ids = [r[0] for r in cur.execute("SELECT id FROM conversations").fetchall()]
        for table in ("conversation_summaries", "message_search", "search_words"):
            cur.execute(f"DELETE FROM {table}")
        write_many_summaries(cur, ids)
        rows = cur.execute("SELECT * FROM search_words ORDER BY ALL").fetchall()
        cur.execute("ROLLBACK")
    return rows


def found(services: Services, needle: str) -> list[str]:
    return [hit.id for hit in services.history.search(needle).hits]


def test_the_words_answer_as_the_scan_does(services: Services, fake_ollama: FakeOllama) -> None:
    varied_history(services, fake_ollama)
    services.chat.send(
        "delta", "Zebras: striped zebra, x_y and 日本語!", "llama3.2", PARAMS
    ).consume()
    assert found(services, "zebra") == ["delta"]
    assert found(services, "本語") == ["delta"]  # inside a word of another script
    assert found(services, "striped zebra") == ["delta"]  # a phrase, checked in the text
    assert found(services, "zebra x_y") == []  # its words are there, the phrase is not
    long_phrase = "Zebras: striped zebra, x_y and 日本語!"
    assert found(services, long_phrase) == ["delta"]  # more words than are looked up
    assert services.history.search(long_phrase) == scanned(services, long_phrase)
    assert_same_answers(services)
    assert_same_answers(services, Filters(models=("qwen3:4b",)))
    assert search_words(services) == rebuilt_words(services)


def test_counts_and_first_messages_where_several_words_hold_the_needle(
    services: Services, fake_ollama: FakeOllama
) -> None:
    services.chat.send("zoo", "a zebra", "llama3.2", PARAMS).consume()
    services.chat.send("zoo", "two zebras and a zebra", "llama3.2", PARAMS).consume()
    services.chat.send("zoo", "no stripes", "llama3.2", PARAMS).consume()
    hit = services.history.search("zebr").hits[0]
    assert hit.matching_messages == 2  # "zebra" and "zebras" share a message: not 3
    with services.db.cursor() as cur:
        first = cur.execute("SELECT min(id) FROM messages WHERE content = 'a zebra'").fetchone()
    assert hit.message_id == first[0]
    assert services.history.search("zebr") == scanned(services, "zebr")


def test_the_words_follow_every_change(services: Services, fake_ollama: FakeOllama) -> None:
    """Added, regenerated, edited (a new branch), renamed, deleted and imported: after each the
    words are what a rebuild makes, and every search answers as the scan does."""
    varied_history(services, fake_ollama)
    chat, history = services.chat, services.history
    assert found(services, "wombat") == []

    chat.send("alpha", "Now a wombat", "llama3.2", PARAMS).consume()  # added
    assert found(services, "wombat") == ["alpha"]
    chat.regenerate("beta", "qwen3:4b", PARAMS).consume()  # regenerated
    first = history.open("alpha")
    assert first is not None
    chat.send("alpha", "An edited aardvark", "llama3.2", PARAMS,
              parent_id=first.messages[0].id).consume()  # fmt: skip
    assert found(services, "aardvark") == ["alpha"]
    assert found(services, "wombat") == ["alpha"]  # still there, on the other branch
    history.rename("gamma", "About a platypus")  # the title, not the words
    assert found(services, "platypus") == ["gamma"]
    assert search_words(services) == rebuilt_words(services)
    assert_same_answers(services)

    exported = services.transfer.export_json(["alpha"])
    history.delete(["alpha"])  # deleted
    assert found(services, "wombat") == [] and found(services, "aardvark") == []
    with services.db.cursor() as cur:
        left = cur.execute("SELECT count(*) FROM search_words WHERE conversation_id = 'alpha'")
        assert left.fetchone()[0] == 0
    assert_same_answers(services)

    document = json.loads(exported)
    report = services.transfer.import_json(json.dumps(document).encode())  # imported
    assert len(report.imported) == 1
    assert found(services, "wombat") == ["alpha"] and found(services, "aardvark") == ["alpha"]
    assert search_words(services) == rebuilt_words(services)
    assert_same_answers(services)


def test_windows_and_completeness_stay_as_the_scan_gives_them(
    services: Services, fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_module, "SEARCH_LIMIT", 2)
    otters_old_and_new(services)
    common = services.history.search("otters")
    assert [h.id for h in common.hits] == ["new-3", "new-2"]
    assert not common.complete and common.total == 3  # the recent window's, as the scan's
    assert common == scanned(services, "otters")
    assert services.history.search("old") == scanned(services, "old")
    assert history_module.SEARCH_WINDOWS[0] == timedelta(days=7)


def test_many_candidates_for_a_phrase_fall_back_to_the_scan(
    services: Services, fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_module, "CHECKED_MOST", 1)
    for name in ("one", "two"):
        services.chat.send(name, "striped zebra here", "llama3.2", PARAMS).consume()
    scans = recorded_scans(monkeypatch)
    assert found(services, "striped zebra") == ["two", "one"]
    assert len(scans) == 2 and scans[-1] is None  # the week, then everything
    scans.clear()
    assert found(services, "zebra") == ["two", "one"]
    assert len(scans) == 1 and scans[0] is not None  # the week, then the words
