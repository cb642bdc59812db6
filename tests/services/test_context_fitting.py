"""Context that fits: long conversations in English and Chinese against the loopback Ollama,
which cuts a prompt longer than its window the way Ollama does (and counts how often)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.config import Settings
from chatcore.errors import PromptTooLong
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from chatcore.storage.stats import StatsFilter
from testkit.fake_ollama import FakeModel, FakeOllama

SMALL = "small4k:latest"  # trained for a 4k context
BIG = "big128k:latest"
SYSTEM = "You are a patient tutor. Answer briefly."
PARAMS = GenerationParams(system_prompt=SYSTEM, max_tokens=200)
ENGLISH_TURN = (
    "Turn {n}: tell me more about the history of the river towns along the old trade route, "
    "how the merchants lived, what they carried upstream in spring and downstream in autumn, "
    "and why the ferries mattered so much to the villages on both banks of the water."
)
CHINESE_TURN = (
    "第{n}轮：请再给我讲讲古代商路沿线河边小镇的历史，商人们怎样生活，春天往上游运什么货物，"
    "秋天又往下游运什么，为什么渡船对两岸的村庄那么重要，村民们又是如何在集市上交换粮食和布匹的。"
)


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel(SMALL, reply="The towns grew around the ferries.", context_length=4096),
            FakeModel(BIG, reply="A short answer.", context_length=131072),
        ]
    ).start()
    yield server
    server.stop()


def opened(ollama: FakeOllama, db_path: Path, **settings: object) -> Services:
    return open_services(
        Settings(ollama_host=ollama.url, db_path=db_path, port=8501, **settings)  # type: ignore[arg-type]
    )


@pytest.fixture
def services(ollama: FakeOllama, db_path: Path) -> Iterator[Services]:
    services = opened(ollama, db_path)
    yield services
    services.close()


def chat_for(services: Services, model: str, turns: int, text: str, conversation: str) -> list:
    replies = []
    for n in range(turns):
        stream = services.chat.send(conversation, text.format(n=n), model, PARAMS)
        replies.append(stream.consume())
    return replies


def test_a_200_turn_english_chat_with_a_4k_model_keeps_answering_and_says_what_was_left_out(
    services: Services, ollama: FakeOllama
) -> None:
    replies = chat_for(services, SMALL, 200, ENGLISH_TURN, "long-english")
    assert {r.status for r in replies} == {"complete"}
    requests = ollama.chat_requests()
    assert len(requests) == 200
    # Never more than the model was trained for, and never a silent cut by the server.
    assert all(r["body"]["options"]["num_ctx"] <= 4096 for r in requests)
    assert ollama.truncated == [0] * 200
    # The system prompt always goes first; the newest message always last.
    assert all(r["body"]["messages"][0]["content"] == SYSTEM for r in requests)
    assert requests[-1]["body"]["messages"][-1]["content"] == ENGLISH_TURN.format(n=199)
    # Early turns fit whole; late ones leave the oldest out, and say so in their metrics.
    assert replies[0].metrics.context_dropped == 0
    assert replies[-1].metrics.context_dropped > 250
    assert replies[-1].metrics.num_ctx == 4096
    stored = services.chat.messages("long-english")[-1].run
    assert (
        stored is not None and stored.metrics.context_dropped == replies[-1].metrics.context_dropped
    )
    # The window is used well: the prompt fills most of what is left after the reply budget.
    assert replies[-1].metrics.prompt_tokens > (4096 - 200) * 0.6


def test_a_long_chinese_chat_is_counted_per_character_and_never_overflows(
    services: Services, ollama: FakeOllama
) -> None:
    replies = chat_for(services, SMALL, 60, CHINESE_TURN, "long-chinese")
    assert {r.status for r in replies} == {"complete"}
    assert ollama.truncated == [0] * 60
    assert replies[-1].metrics.context_dropped > 0
    # About 90 characters a message: a prompt counted like English text (4 characters a
    # token) would have been four times too small and overflowed.
    assert replies[-1].metrics.prompt_tokens > 2000


def test_num_ctx_follows_the_prompt_within_the_cap_and_the_trained_length(
    services: Services, ollama: FakeOllama
) -> None:
    services.chat.send("grow", "Hello", BIG, PARAMS).consume()
    first = ollama.chat_requests()[-1]["body"]["options"]["num_ctx"]
    assert first == 2048  # a short prompt: the smallest step, not Ollama's default
    chat_for(services, BIG, 120, ENGLISH_TURN, "grow")
    windows = [r["body"]["options"]["num_ctx"] for r in ollama.chat_requests()]
    assert windows == sorted(windows)  # it grows with the conversation, in steps
    assert set(windows) <= {2048, 4096, 8192}
    assert windows[-1] == 8192  # the user's cap (CONTEXT_MAX's default), not the 128k trained
    assert ollama.truncated == [0] * len(windows)


def test_a_preset_context_size_caps_the_window(services: Services, ollama: FakeOllama) -> None:
    params = PARAMS.model_copy(update={"context_size": 3000})
    for n in range(80):
        services.chat.send("capped", ENGLISH_TURN.format(n=n), BIG, params).consume()
    windows = [r["body"]["options"]["num_ctx"] for r in ollama.chat_requests()]
    assert max(windows) == 3000
    assert ollama.truncated == [0] * 80


def test_the_estimate_is_corrected_by_what_the_model_counted(
    services: Services, ollama: FakeOllama
) -> None:
    """The fake counts a word a token: English text takes fewer tokens than four characters
    each, so once it has counted, more of the conversation fits."""
    from chatcore.fitting import correction_for

    chat_for(services, SMALL, 3, ENGLISH_TURN, "learn")
    with services.db.cursor() as cur:
        english = correction_for(cur, "learn", SMALL)
    chat_for(services, SMALL, 3, CHINESE_TURN, "learn-zh")
    with services.db.cursor() as cur:
        chinese = correction_for(cur, "learn-zh", SMALL)
        assert correction_for(cur, "nothing yet", SMALL) == 1.0
    assert 0.5 < english < 0.95
    assert chinese > english  # each conversation learns its own


def test_a_message_too_long_for_the_window_is_refused_and_nothing_is_stored(
    services: Services,
) -> None:
    huge = "词" * 5000
    with pytest.raises(PromptTooLong, match="context window"):
        services.chat.send("too-long", huge, SMALL, PARAMS)
    assert not services.chat.exists("too-long")


def test_the_cap_setting_limits_every_model(ollama: FakeOllama, db_path: Path) -> None:
    services = opened(ollama, db_path, context_max=2048)
    try:
        chat_for(services, BIG, 40, ENGLISH_TURN, "small-cap")
    finally:
        services.close()
    windows = {r["body"]["options"]["num_ctx"] for r in ollama.chat_requests()}
    assert windows == {2048}
    assert ollama.truncated == [0] * 40


def test_stats_find_no_overflow_in_conversations_the_app_fitted(
    services: Services, ollama: FakeOllama
) -> None:
    chat_for(services, SMALL, 120, ENGLISH_TURN, "fitted")
    report = services.stats.report(StatsFilter(), services.stats.choices())
    assert len(report.context_hits) == 0


def test_with_summarise_the_turns_left_out_come_back_as_a_note_by_the_same_model(
    ollama: FakeOllama, db_path: Path
) -> None:
    services = opened(ollama, db_path, context_overflow="summarise")
    try:
        replies = []
        for n in range(90):
            stream = services.chat.send("notes", ENGLISH_TURN.format(n=n), SMALL, PARAMS)
            replies.append(stream.consume())
            services.chat.context.wait_for_summaries()
        with services.db.cursor() as cur:
            stored = cur.execute(
                "SELECT count(*), max(covered) FROM context_summaries WHERE conversation_id = ?",
                ["notes"],
            ).fetchone()
            fits = cur.execute(
                "SELECT max(summarised) FROM run_context WHERE conversation_id = ?", ["notes"]
            ).fetchone()
    finally:
        services.close()
    assert stored is not None and stored[0] >= 1 and stored[1] > 0
    assert fits is not None and fits[0] > 0
    assert {r.status for r in replies} == {"complete"}
    assert ollama.truncated.count(0) == len(ollama.truncated)  # the summaries' requests too
    # The summary was asked of the same model, with the turns it stands for.
    asked = [
        r["body"]
        for r in ollama.chat_requests()
        if "keep notes" in r["body"]["messages"][0]["content"]
    ]
    assert asked and all(body["model"] == SMALL for body in asked)
    assert "Turn 0:" in asked[0]["messages"][1]["content"]
    # Later turns send the system prompt, then the note, then the newest turns.
    last = ollama.chat_requests()[-1]["body"]["messages"]
    if "keep notes" in last[0]["content"]:
        last = [r for r in ollama.chat_requests() if r["body"]["messages"][0]["content"] == SYSTEM][
            -1
        ]["body"]["messages"]
    assert last[0]["content"] == SYSTEM
    assert last[1]["role"] == "system" and last[1]["content"].startswith("Summary of the earlier")
    assert "The towns grew around the ferries." in last[1]["content"]  # the fake's summary
    assert replies[-1].metrics.context_dropped > 0
    # The reply says how many turns the note stands for, and that is what its run stores.
    summarised = replies[-1].metrics.context_summarised
    assert 0 < summarised <= replies[-1].metrics.context_dropped
    assert fits[0] >= summarised
