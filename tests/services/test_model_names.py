"""One name per model on the send path and in every reader: "llama3.2" is "llama3.2:latest"."""

from __future__ import annotations

from chatcore.history import Filters
from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.stats import StatsFilter


def test_an_untagged_name_is_stored_counted_and_filtered_as_latest(services: Services) -> None:
    services.chat.send("one", "Hi", "llama3.2", GenerationParams()).consume()
    services.chat.send("two", "Hi", "llama3.2:latest", GenerationParams()).consume()
    reply = services.chat.regenerate("two", "llama3.2", GenerationParams()).consume()
    assert reply.model == "llama3.2:latest"

    assert services.stats.choices().models == ["llama3.2:latest"]
    per_model = services.stats.report(StatsFilter(), services.stats.choices()).per_model
    assert list(per_model["model"]) == ["llama3.2:latest"]
    assert int(per_model["runs"].iloc[0]) == 3
    for asked in ("llama3.2", "llama3.2:latest"):
        narrowed = StatsFilter(models=(asked,))
        report = services.stats.report(narrowed, services.stats.choices())
        assert int(report.per_model["runs"].iloc[0]) == 3

    assert services.history.model_names() == ["llama3.2:latest"]
    for asked in ("llama3.2", "llama3.2:latest"):
        listed = services.history.list_conversations(Filters(models=(asked,)))
        assert listed.total == 2
    assert services.chat.conversation("one").models == ["llama3.2:latest"]
