"""The start-up warm-up does the first visits' work: summaries fresh, the default Stats report
kept until a run changes the data."""

from __future__ import annotations

import time

from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.storage.history import stale_conversations
from chatcore.warmup import (
    FIRST_PAGE,
    SENDS_PAUSE,
    after_the_first_page,
    first_page_drawn,
    start_warm_up,
    warm_up,
)
from testkit.fake_ollama import FakeOllama
from testkit.history_data import varied_history


def test_warm_up_leaves_summaries_fresh_and_the_default_report_made(
    services: Services, fake_ollama: FakeOllama
) -> None:
    varied_history(services, fake_ollama)
    assert warm_up(services) >= 0
    assert services.history.refresh_summaries() == 0  # nothing left for History's first visit
    choices = services.stats.choices()
    default = services.stats.default_filter(choices)
    first = services.stats.report(default, choices)
    assert services.stats.report(default, choices) is first  # read, not made again


def test_a_finished_reply_makes_the_report_anew(services: Services, fake_ollama) -> None:
    varied_history(services, fake_ollama)
    warm_up(services)
    choices = services.stats.choices()
    before = services.stats.report(services.stats.default_filter(choices), choices)
    services.chat.send("alpha", "One more", "llama3.2", GenerationParams()).consume()
    choices = services.stats.choices()
    after = services.stats.report(services.stats.default_filter(choices), choices)
    assert after is not before
    assert after.headline["replies"].iloc[0] == before.headline["replies"].iloc[0] + 1


def test_the_background_warm_up_finishes(services: Services, fake_ollama) -> None:
    varied_history(services, fake_ollama)
    thread = start_warm_up(lambda: services)
    thread.join(60)
    assert not thread.is_alive()
    assert services.history.refresh_summaries() == 0


def test_the_warm_up_starts_once_the_first_page_has_settled_in_its_browser() -> None:
    FIRST_PAGE.clear()
    try:
        started = time.perf_counter()
        after_the_first_page(wait=0.05, settle=5.0)  # no page asked for: the wait alone
        assert time.perf_counter() - started < 2.0
        first_page_drawn()
        started = time.perf_counter()
        after_the_first_page(wait=5.0, settle=0.3)  # drawn: its browser's time, then at once
        assert 0.3 <= time.perf_counter() - started < 2.0
    finally:
        FIRST_PAGE.clear()


def test_the_warm_up_waits_for_a_pause_in_the_sends(services: Services, fake_ollama) -> None:
    varied_history(services, fake_ollama)
    services.db.turns.enter()  # a send in flight (a tool's burst through the proxy, say)
    try:
        thread = start_warm_up(lambda: services)
        thread.join(SENDS_PAUSE * 2)
        with services.db.cursor() as cur:
            assert stale_conversations(cur), "it waits while the sends go on"
    finally:
        services.db.turns.leave()
    thread.join(60)
    assert not thread.is_alive()
    assert services.history.refresh_summaries() == 0
