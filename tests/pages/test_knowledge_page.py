"""The Knowledge page and the chat's citations under AppTest, over the loopback Ollama (whose
/api/embed gives deterministic vectors) and a real DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from chatcore.services import Services, shared_services
from testkit.apptest import ROOT, new_app, release_cached_services
from testkit.fake_ollama import FakeModel, FakeOllama

EMBEDDER = "ollama:nomic-embed-text:latest"


@pytest.fixture
def dashboard(monkeypatch, db_path: Path) -> Iterator[Services]:
    server = FakeOllama(
        [
            FakeModel("llama3.2:latest", reply="The gate code is 4711 [1]."),
            FakeModel("nomic-embed-text:latest", embedding_dims=256),
        ]
    ).start()
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    monkeypatch.setenv("CHAT_DB", str(db_path))
    monkeypatch.setenv("EMBEDDED", "0")
    monkeypatch.chdir(ROOT)
    yield shared_services()
    release_cached_services()
    server.stop()


def knowledge_page() -> AppTest:
    at = new_app().run()
    at.switch_page("pages/knowledge.py").run()
    assert not at.exception, at.exception
    return at


def column(at: AppTest, header: str) -> list:  # type: ignore[type-arg]
    frame = next(d.value for d in at.dataframe if header in d.value.columns)
    return list(frame[header])


def test_a_collection_is_made_on_the_page(dashboard: Services) -> None:
    at = knowledge_page()
    at.text_input(key="new-collection-name").input("manuals")
    at.selectbox(key="new-collection-model").select(EMBEDDER)
    next(b for b in at.button if b.label == "Create").click()
    at = at.run()
    assert not at.exception
    assert [c.name for c in dashboard.knowledge.collections()] == ["manuals"]


def test_documents_are_listed_with_size_chunks_model_and_state(dashboard: Services) -> None:
    k = dashboard.knowledge
    k.create_collection("manuals", EMBEDDER)
    k.add_text("Gate notes", "# Gate\n\nThe gate code is 4711.", "manuals")
    at = knowledge_page()
    assert column(at, "Document") == ["Gate notes"]
    assert column(at, "Chunks") == [1]
    assert column(at, "Embedding model") == [EMBEDDER]
    assert column(at, "State") == ["ready"]
    assert column(at, "Collection")[0] == "manuals"


def test_the_chat_quotes_the_chosen_collection_and_shows_its_sources(
    dashboard: Services,
) -> None:
    k = dashboard.knowledge
    k.create_collection("manuals", EMBEDDER)
    k.add_text("Gate notes", "The gate code is 4711.", "manuals")
    at = new_app().run()
    at.sidebar.multiselect(key="collections").select("manuals")
    at.run()
    at.chat_input[0].set_value("What is the gate code?").run()
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert any(label.startswith("[1] Gate notes") for label in labels), labels
    assert any("4711" in m.value for m in at.markdown)
    # A reload shows the stored sources again
    at = new_app()
    at.query_params["c"] = dashboard.chat.recent_titles(1)[0][0]
    at.run()
    assert any(e.label.startswith("[1] Gate notes") for e in at.expander)


def test_stats_show_how_often_replies_searched_and_what_it_cost(dashboard: Services) -> None:
    from chatcore.params import GenerationParams

    k = dashboard.knowledge
    k.create_collection("manuals", EMBEDDER)
    k.add_text("Gate notes", "The gate code is 4711.", "manuals")
    dashboard.chat.send(None, "plain", "llama3.2", GenerationParams()).consume()
    params = GenerationParams(collections=("manuals",))
    dashboard.chat.send(None, "What is the gate code?", "llama3.2", params).consume()
    at = new_app().run()
    at.switch_page("pages/stats.py").run()
    assert not at.exception
    metrics = {m.label: m for m in at.metric}
    assert metrics["Replies that searched it"].value == "1"
    assert "50%" in str(metrics["Replies that searched it"].delta)
    assert metrics["Median retrieval"].value.endswith(" ms")


def test_the_picker_follows_the_open_conversation(dashboard: Services) -> None:
    from chatcore.params import GenerationParams

    k = dashboard.knowledge
    k.create_collection("manuals", EMBEDDER)
    k.add_text("Gate notes", "The gate code is 4711.", "manuals")
    with_knowledge = dashboard.chat.send(
        None, "What is the gate code?", "llama3.2", GenerationParams(collections=("manuals",))
    )
    with_knowledge.consume()
    without = dashboard.chat.send(None, "plain", "llama3.2", GenerationParams())
    without.consume()

    def picked_when_opening(conversation_id: str, at: AppTest) -> list[str]:
        at.query_params["c"] = conversation_id
        at.run()
        assert not at.exception, at.exception
        return list(at.sidebar.multiselect(key="collections").value)

    at = new_app()  # one session opening one conversation, then the other, then the first
    assert picked_when_opening(with_knowledge.reply.conversation_id, at) == ["manuals"]
    assert picked_when_opening(without.reply.conversation_id, at) == []
    assert picked_when_opening(with_knowledge.reply.conversation_id, at) == ["manuals"]
    # The next message in it, from a new session, searches the remembered collection.
    at = new_app()
    picked_when_opening(with_knowledge.reply.conversation_id, at)
    at.chat_input[0].set_value("And the gate code again?").run()
    assert not at.exception
    last = dashboard.chat.last_run(with_knowledge.reply.conversation_id)
    assert last is not None and last.options["collections"] == ["manuals"]


def test_a_passage_loads_no_image_from_another_host(dashboard: Services) -> None:
    k = dashboard.knowledge
    k.create_collection("manuals", EMBEDDER)
    tracker = "![pixel](http://tracker.example/p.png)"
    k.add_text(f"Gate {tracker}", f"The gate code is 4711. {tracker}", "manuals")
    at = new_app().run()
    at.sidebar.multiselect(key="collections").select("manuals")
    at.run()
    at.chat_input[0].set_value("What is the gate code?").run()
    assert not at.exception
    [label] = [e.label for e in at.expander if e.label.startswith("[1] ")]
    shown = [m.value for m in at.markdown if "4711" in m.value and m.value.startswith(">")]
    assert shown and all("![" not in text for text in [label, *shown])
    assert "image not loaded: pixel (tracker.example)" in shown[0]
