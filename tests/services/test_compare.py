"""The compare fan-out, votes and ratings, against the loopback Ollama server and a real DuckDB."""

from __future__ import annotations

import random

import pytest

from chatcore.compare import (
    ALL_BAD,
    BEST,
    TIE,
    elo_ratings,
    standings,
    votable,
)
from chatcore.errors import InvalidInput
from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.storage import votes as vote_store
from chatcore.storage.votes import VoteRecord
from testkit.compare_data import FAST, MID, SLOW, finished_round
from ui.formatting import leaderboard_table

PARAMS = GenerationParams()


def test_parallel_streams_land_in_their_own_columns(compare_services: Services) -> None:
    live = compare_services.compare.start(
        "Race!", ["slow:latest", "fast:latest", "mid:latest"], PARAMS, blind=False
    )
    seen: dict[int, list[str]] = {0: [], 1: [], 2: []}  # each column's text at every update
    order: list[int] = []
    for changed in live.updates():
        for index in sorted(changed):
            seen[index].append(live.columns[index].text)
            order.append(index)
    assert [c.model for c in live.columns] == ["slow:latest", "fast:latest", "mid:latest"]
    assert [c.text for c in live.columns] == [SLOW, FAST, MID]
    assert all(c.status == "complete" for c in live.columns)
    for index, expected in enumerate([SLOW, FAST, MID]):
        assert all(expected.startswith(text) for text in seen[index])  # never another's tokens
    # the tokens really interleaved: the fast column finished while the slow one was streaming
    fast_done = max(i for i, column in enumerate(order) if column == 1)
    assert any(column == 0 for column in order[fast_done + 1 :])

    # each column is its own ordinary conversation, tagged with the round
    stored = compare_services.compare.round(live.id)
    assert stored is not None and stored.prompt == "Race!" and not stored.blind
    assert [(e.label, e.run.model, e.text) for e in stored.entries] == [
        ("A", "slow:latest", SLOW),
        ("B", "fast:latest", FAST),
        ("C", "mid:latest", MID),
    ]
    conversations = {e.conversation_id for e in stored.entries}
    assert len(conversations) == 3
    for entry in stored.entries:
        messages = compare_services.chat.messages(entry.conversation_id)
        assert [(m.role, m.content) for m in messages] == [
            ("user", "Race!"),
            ("assistant", entry.text),
        ]


def test_one_failing_model_does_not_disturb_the_others(compare_services: Services) -> None:
    live = compare_services.compare.start(
        "Hi", ["flaky:latest", "mid:latest", "missing:latest"], PARAMS, blind=False
    )
    flaky, mid, missing = live.wait()
    assert flaky.status == "error" and flaky.text == "one two"
    assert "error was encountered" in (flaky.error_message or "")
    assert mid.status == "complete" and mid.text == MID
    assert missing.status == "error" and "not found" in (missing.error_message or "")
    assert missing.reply is None  # refused before anything was stored

    stored = compare_services.compare.round(live.id)
    assert stored is not None
    assert [(e.label, e.run.status) for e in stored.entries] == [("A", "error"), ("B", "complete")]


def test_stop_stops_every_column_and_keeps_their_text(compare_services: Services) -> None:
    live = compare_services.compare.start("Hi", ["slow:latest", "mid:latest"], PARAMS, blind=False)
    for _ in live.updates():
        if all(column.parts for column in live.columns):
            break
    live.stop()
    assert all(column.done for column in live.columns)
    stored = compare_services.compare.round(live.id)
    assert stored is not None
    for entry, column in zip(stored.entries, live.columns, strict=True):
        assert entry.run.status == "stopped"
        assert entry.text and column.text.startswith(entry.text)
    assert stored.entries[0].text != SLOW


def test_blind_rounds_shuffle_the_models_over_the_letters(compare_services: Services) -> None:
    models = ["slow:latest", "fast:latest", "mid:latest", "flaky:latest"]
    orders = set()
    for seed in range(6):
        live = compare_services.compare.start(
            "Hi", models, GenerationParams(max_tokens=1), blind=True, rng=random.Random(seed)
        )
        live.wait()
        orders.add(tuple(c.model for c in live.columns))
        assert [c.label for c in live.columns] == ["A", "B", "C", "D"]
    assert len(orders) > 1
    assert all(sorted(order) == sorted(models) for order in orders)


def test_bad_rounds_are_refused_and_write_nothing(compare_services: Services) -> None:
    from chatcore.errors import InvalidInput

    with pytest.raises(InvalidInput, match="2 to 4"):
        compare_services.compare.start("Hi", ["slow:latest"], PARAMS, blind=False)
    with pytest.raises(InvalidInput, match="2 to 4"):
        compare_services.compare.start("Hi", ["a", "b", "c", "d", "e"], PARAMS, blind=False)
    with pytest.raises(InvalidInput, match="empty"):
        compare_services.compare.start("  ", ["slow:latest", "mid:latest"], PARAMS, blind=False)
    with compare_services.db.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM compare_rounds").fetchone() == (0,)
        assert cur.execute("SELECT count(*) FROM conversations").fetchone() == (0,)


def test_votes_are_stored_with_the_runs_they_judge(compare_services: Services) -> None:
    from chatcore.errors import InvalidInput

    round_id = finished_round(compare_services, ["fast:latest", "mid:latest"])
    stored = compare_services.compare.round(round_id)
    assert stored is not None and stored.vote is None
    winner = next(e for e in stored.entries if e.run.model == "mid:latest")

    with pytest.raises(InvalidInput, match="best"):
        compare_services.compare.vote(round_id, BEST, "Z")
    compare_services.compare.vote(round_id, BEST, winner.label)
    with pytest.raises(InvalidInput, match="already"):
        compare_services.compare.vote(round_id, TIE)

    with compare_services.db.cursor() as cur:
        rows = cur.execute(
            """
            SELECT v.outcome, r.model, e.label = v.winner_label FROM votes v
            JOIN compare_entries e ON e.round_id = v.round_id JOIN runs r ON r.id = e.run_id
            ORDER BY r.model
            """
        ).fetchall()
    assert rows == [("best", "fast:latest", False), ("best", "mid:latest", True)]
    assert compare_services.compare.round(round_id).vote == vote_store.StoredVote(  # type: ignore[union-attr]
        BEST, winner.label
    )
    board = leaderboard_table(compare_services.compare.standings())
    assert board.to_dict("records") == [
        {"Model": "mid:latest", "Rating": 1016, "Win rate": 1.0, "Wins": 1, "Votes": 1},
        {"Model": "fast:latest", "Rating": 984, "Win rate": 0.0, "Wins": 0, "Votes": 1},
    ]


def test_a_vote_waits_for_every_answer(compare_services: Services) -> None:
    from chatcore.errors import InvalidInput

    live = compare_services.compare.start("Hi", ["slow:latest", "fast:latest"], PARAMS, blind=True)
    try:
        for _ in live.updates():  # both columns stored and streaming; the slow one is far from done
            if all(column.parts for column in live.columns):
                break
        with pytest.raises(InvalidInput, match="finished"):
            compare_services.compare.vote(live.id, TIE)
    finally:
        live.stop()


def test_blind_only_leaderboard_leaves_open_votes_out(compare_services: Services) -> None:
    open_round = finished_round(compare_services, ["fast:latest", "mid:latest"], blind=False)
    compare_services.compare.vote(open_round, TIE)
    assert leaderboard_table(compare_services.compare.standings(blind_only=True)).empty
    assert list(leaderboard_table(compare_services.compare.standings())["Votes"]) == [1, 1]


def test_deleting_a_compared_conversation_forgets_its_votes(compare_services: Services) -> None:
    round_id = finished_round(compare_services, ["fast:latest", "mid:latest"])
    compare_services.compare.vote(round_id, ALL_BAD)
    stored = compare_services.compare.round(round_id)
    assert stored is not None
    compare_services.history.delete([stored.entries[0].conversation_id])
    after = compare_services.compare.round(round_id)
    assert after is not None and after.vote is None and len(after.entries) == 1
    compare_services.history.delete([stored.entries[1].conversation_id])
    assert compare_services.compare.round(round_id) is None


# --- rating math, checked against numbers worked out by hand ---


def vote(outcome: str, winner: str | None, *models: str) -> VoteRecord:
    return VoteRecord(id=0, outcome=outcome, winner_model=winner, models=list(models))


def test_elo_matches_a_hand_computed_case() -> None:
    # 1. x beats y from 1000 each: expected 0.5, so x = 1000 + 32 * 0.5 = 1016, y = 984.
    # 2. x and y tie: y expected 1 / (1 + 10 ** (32 / 400)) = 0.454078, so y gains
    #    32 * (0.5 - 0.454078) = 1.46950 -> y = 985.46950, x = 1014.53050.
    # 3. three columns, z best: k per game is 32 / 2 = 16, from the ratings before the vote:
    #    z vs x: expected 1 / (1 + 10 ** (14.53050 / 400)) = 0.479101, z +16 * 0.520899 = +8.33438
    #    z vs y: expected 1 / (1 + 10 ** (-14.5305 / 400)) = 0.520899, z +16 * 0.479101 = +7.66562
    #    z = 1016.0, x = 1014.53050 - 8.33438 = 1006.19612, y = 985.46950 - 7.66562 = 977.80388
    ratings = elo_ratings(
        [vote(BEST, "x", "x", "y"), vote(TIE, None, "x", "y"), vote(BEST, "z", "x", "y", "z")]
    )
    assert ratings["x"] == pytest.approx(1006.19612, abs=1e-4)
    assert ratings["y"] == pytest.approx(977.80388, abs=1e-4)
    assert ratings["z"] == pytest.approx(1016.0, abs=1e-4)

    table = standings(
        [vote(BEST, "x", "x", "y"), vote(TIE, None, "x", "y"), vote(BEST, "z", "x", "y", "z")]
    )
    assert [(s.model, s.wins, s.votes) for s in table] == [
        ("z", 1, 1),
        ("x", 1, 3),
        ("y", 0, 3),
    ]
    assert table[1].win_rate == pytest.approx(1 / 3)


def test_all_bad_is_a_draw_between_every_pair() -> None:
    ratings = elo_ratings([vote(BEST, "x", "x", "y"), vote(ALL_BAD, None, "x", "y")])
    # the same as a tie: y gains 1.46950 back
    assert ratings["y"] == pytest.approx(985.46950, abs=1e-4)


def test_answers_that_name_a_model_are_flagged() -> None:
    from chatcore.compare import model_stem, names_a_model

    assert [model_stem(m) for m in ["llama3.2:latest", "qwen3:4b", "hf.co/x/gemma-3-270m"]] == [
        "llama",
        "qwen",
        "gemma",
    ]
    models = ["llama3.2:latest", "qwen3:4b"]
    assert names_a_model("I am Qwen, made by Alibaba.", models) == "qwen"
    assert names_a_model("As a LLaMA model...", models) == "llama"
    assert names_a_model("I am a helpful assistant.", models) is None


def test_a_failed_answer_takes_no_part_in_the_vote(compare_services: Services) -> None:
    def failing_round(models: list[str]) -> int:
        live = compare_services.compare.start("Go", models, PARAMS, blind=False)
        live.wait()
        return live.id

    round_id = failing_round(["flaky:latest", "fast:latest", "mid:latest"])
    stored = compare_services.compare.round(round_id)
    assert stored is not None
    failed = next(e.label for e in stored.entries if e.run.model == "flaky:latest")
    with pytest.raises(InvalidInput, match="best"):
        compare_services.compare.vote(round_id, BEST, failed)  # it can't win
    compare_services.compare.vote(round_id, TIE)  # nor tie: a draw between the two others
    table = {s.model: s for s in compare_services.compare.standings()}
    assert set(table) == {"fast:latest", "mid:latest"}
    assert table["fast:latest"].votes == 1

    alone = failing_round(["flaky:latest", "fast:latest"])
    with pytest.raises(InvalidInput, match="two answers"):
        compare_services.compare.vote(alone, TIE)


# --- models working together, as one column ---

CRITIQUE = "critique(fast:latest -> mid:latest)"
FUSION = "fusion(fast:latest + mid:latest -> slow:latest)"


def test_a_collaboration_is_one_column_with_its_steps_stored_by_role(
    compare_services: Services,
) -> None:
    live = compare_services.compare.start(
        "Together?", ["mid:latest", CRITIQUE, FUSION], PARAMS, blind=False
    )
    steps_seen: set[tuple[str, str]] = set()
    for _ in live.updates():
        for column in live.columns:
            if column.step is not None:
                steps_seen.add(column.step)
    _, critique, fusion = live.columns
    assert critique.model == "critique(fast:latest -> mid:latest -> fast:latest)"
    assert [c.status for c in live.columns] == ["complete"] * 3
    assert critique.text == FAST and fusion.text == SLOW  # the last step's answer
    assert ("critique", "mid:latest") in steps_seen  # each step streamed into its column
    assert ("answer", "fast:latest + mid:latest") in steps_seen

    stored = compare_services.compare.round(live.id)
    assert stored is not None
    assert [e.entry for e in stored.entries] == ["mid:latest", critique.model, FUSION]
    assert stored.entries[1].steps == (
        ("draft", "fast:latest"),
        ("critique", "mid:latest"),
        ("revise", "fast:latest"),
    )
    assert sorted(stored.entries[2].steps) == [
        ("answer", "fast:latest"),
        ("answer", "mid:latest"),
        ("synthesis", "slow:latest"),
    ]
    assert stored.entries[1].run.model == "fast:latest" and stored.entries[1].text == FAST

    # the sidebar lists the round once, naming the collaborations; their workings are not listed
    [entry] = compare_services.chat.sidebar_entries(20)
    assert entry.round_id == live.id
    assert entry.compared_models == ("mid:latest", critique.model, FUSION)

    # ranked like a model, under its own name: on Compare's Elo board and the Bradley-Terry one
    compare_services.compare.vote(live.id, BEST, "C")
    board = compare_services.compare.standings()
    assert board[0].model == FUSION and {s.model for s in board} == {
        "mid:latest",
        critique.model,
        FUSION,
    }
    ranked = compare_services.suites.leaderboard(rounds=10)
    assert ranked.rows[0].model == FUSION
    fused = next(r for r in ranked.rows if r.model == FUSION)
    assert fused.median_seconds is not None  # from its first step's start


def test_a_failed_step_fails_the_column_and_keeps_it_out_of_the_vote(
    compare_services: Services,
) -> None:
    live = compare_services.compare.start(
        "Hi", ["mid:latest", "fast:latest", "critique(flaky:latest -> mid:latest)"], PARAMS, False
    )
    _, _, together = live.wait()
    assert together.status == "error" and "draft step (flaky:latest)" in (together.error or "")
    stored = compare_services.compare.round(live.id)
    assert stored is not None
    failed = stored.entries[2]
    assert failed.entry == "critique(flaky:latest -> mid:latest -> flaky:latest)"
    assert failed.run.status == "error" and failed.steps == (("draft", "flaky:latest"),)
    assert [e.label for e in votable(stored)] == ["A", "B"]


def test_a_misspelt_collaboration_is_refused_before_anything_is_stored(
    compare_services: Services,
) -> None:
    with pytest.raises(InvalidInput, match="fusion"):
        compare_services.compare.start("Hi", ["mid:latest", "fusion(mid)"], PARAMS, False)
