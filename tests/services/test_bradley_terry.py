"""The Bradley-Terry fit: hand-worked cases, known strengths recovered from simulated votes, and
intervals that cover the truth about 95% of the time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chatcore.bradley_terry import (
    A_WINS,
    B_WINS,
    SCALE,
    TIE,
    Game,
    bradley_terry,
    elo,
    fit_strengths,
    length_feature,
    rank_ranges,
)


def by_model(games: list[Game], **options: object) -> dict[str, object]:
    return {r.model: r for r in bradley_terry(games, **options)}  # type: ignore[arg-type]


def test_two_models_two_wins_in_three_is_odds_of_two() -> None:
    # P(A beats B) = 2/3 maximises the likelihood, so θA − θB = ln 2: 400·log10(2) ≈ 120.4 points
    games = [Game("A", "B", A_WINS), Game("A", "B", A_WINS), Game("B", "A", A_WINS)]
    ratings = by_model(games, rounds=50)
    gap = ratings["A"].rating - ratings["B"].rating  # type: ignore[attr-defined]
    assert gap == pytest.approx(400 * math.log10(2), abs=1e-3)
    assert ratings["A"].rating + ratings["B"].rating == pytest.approx(2000)  # type: ignore[attr-defined]
    assert ratings["A"].votes == ratings["B"].votes == 3  # type: ignore[attr-defined]


def test_a_tie_counts_half_a_win_to_each() -> None:
    # one win and two ties for A: a score of 2 in 3 games, the same odds as two wins in three
    games = [Game("A", "B", A_WINS), Game("A", "B", TIE), Game("B", "A", TIE)]
    ratings = by_model(games, rounds=10)
    gap = ratings["A"].rating - ratings["B"].rating  # type: ignore[attr-defined]
    assert gap == pytest.approx(400 * math.log10(2), abs=1e-3)
    only_ties = by_model([Game("A", "B", TIE)] * 4, rounds=10)
    assert only_ties["A"].rating == pytest.approx(1000)  # type: ignore[attr-defined]


def test_a_chain_of_three_hand_worked() -> None:
    # A beats B 3:1, B beats C 3:1, never A against C. The likelihood equations give
    # θA − θB = θB − θC = ln 3, so A is 2·ln 3 above C though they never met.
    games = [Game("A", "B", A_WINS)] * 3 + [Game("A", "B", B_WINS)]
    games += [Game("B", "C", A_WINS)] * 3 + [Game("C", "B", A_WINS)]
    ratings = by_model(games, rounds=10)
    a, b, c = (ratings[m].rating for m in "ABC")  # type: ignore[attr-defined]
    assert a - b == pytest.approx(SCALE * math.log(3), abs=1e-3)
    assert b - c == pytest.approx(SCALE * math.log(3), abs=1e-3)
    assert b == pytest.approx(1000)


def test_the_order_of_votes_does_not_matter_unlike_elo() -> None:
    games = [Game("A", "B", A_WINS)] * 5 + [Game("A", "B", B_WINS)] * 5
    flipped = list(reversed(games))
    assert by_model(games, rounds=20)["A"].rating == pytest.approx(  # type: ignore[attr-defined]
        by_model(flipped, rounds=20)["A"].rating  # type: ignore[attr-defined]
    )
    assert elo(games)["A"] != pytest.approx(elo(flipped)["A"])  # Elo remembers the order


def test_an_unbeaten_model_stays_finite_and_first() -> None:
    games = [Game("A", "B", A_WINS)] * 3 + [Game("B", "C", TIE)]
    ranked = bradley_terry(games, rounds=50)
    assert ranked[0].model == "A"
    assert all(math.isfinite(r.rating) and math.isfinite(r.ci_high) for r in ranked)


def test_no_games_no_ratings() -> None:
    assert bradley_terry([]) == []


def simulate(
    strengths: np.ndarray, votes: int, rng: np.random.Generator, tie_share: float = 0.1
) -> list[Game]:
    n = len(strengths)
    a = rng.integers(0, n, votes)
    b = (a + rng.integers(1, n, votes)) % n
    # ties: with probability tie_share a vote is a tie, otherwise a BT draw (a tie then still
    # has expected score p for a: fine, the MLE with half-ties stays unbiased only at p = 1/2,
    # so the coverage test below uses no ties)
    p = 1.0 / (1.0 + np.exp(strengths[b] - strengths[a]))
    u = rng.random(votes)
    scores = np.where(u < p, A_WINS, B_WINS)
    ties = rng.random(votes) < tie_share
    scores = np.where(ties, TIE, scores)
    return [Game(f"m{x}", f"m{y}", float(s)) for x, y, s in zip(a, b, scores, strict=True)]


def test_known_strengths_are_recovered_from_many_votes() -> None:
    rng = np.random.default_rng(7)
    strengths = np.array([-1.0, -0.3, 0.0, 0.4, 0.9])
    ratings = by_model(simulate(strengths, 20_000, rng, tie_share=0.0), rounds=100)
    truth = SCALE * (strengths - strengths.mean())
    for i, expected in enumerate(truth):
        assert ratings[f"m{i}"].rating - 1000 == pytest.approx(expected, abs=15)  # type: ignore[attr-defined]
    assert [r.model for r in bradley_terry(simulate(strengths, 5000, rng, 0.0), rounds=50)] == [
        "m4",
        "m3",
        "m2",
        "m1",
        "m0",
    ]


def test_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    strengths = np.array([-0.8, -0.2, 0.1, 0.9])
    truth = 1000 + SCALE * (strengths - strengths.mean())
    covered = total = 0
    for trial in range(120):
        ratings = by_model(simulate(strengths, 400, rng, tie_share=0.0), rounds=200, seed=trial)
        for i, expected in enumerate(truth):
            rating = ratings[f"m{i}"]
            covered += rating.ci_low <= expected <= rating.ci_high  # type: ignore[attr-defined]
            total += 1
    assert 0.90 <= covered / total <= 0.99, covered / total


def test_the_batched_fit_matches_one_fit_at_a_time() -> None:
    totals = np.array([[[0, 4, 2], [4, 0, 6], [2, 6, 0]], [[0, 3, 3], [3, 0, 3], [3, 3, 0]]])
    scores = np.array([[[0, 3, 1], [1, 0, 4], [1, 2, 0]], [[0, 2, 1], [1, 0, 2], [2, 1, 0]]])
    together = fit_strengths(totals, scores)
    for k in range(2):
        assert fit_strengths(totals[k], scores[k]) == pytest.approx(together[k], abs=1e-9)
    assert together.sum(axis=-1) == pytest.approx([0, 0], abs=1e-9)


def test_rank_ranges_share_ranks_where_intervals_overlap() -> None:
    low, high = [1100, 1050, 900], [1200, 1150, 1000]
    assert rank_ranges(low, high) == [(1, 2), (1, 2), (3, 3)]


def test_length_control_removes_a_win_bought_with_length() -> None:
    # Two equal models, but judges prefer the longer answer, and "verbose" mostly answers longer
    rng = np.random.default_rng(3)
    games = []
    for _ in range(1500):
        verbose_first = rng.random() < 0.5
        verbose_len, terse_len = int(rng.integers(200, 1200)), int(rng.integers(100, 700))
        lengths = (verbose_len, terse_len) if verbose_first else (terse_len, verbose_len)
        feature = length_feature([Game("x", "y", 0.5, *lengths)])[0]
        p_first = 1.0 / (1.0 + math.exp(-2.0 * feature))  # preference for length only
        score = A_WINS if rng.random() < p_first else B_WINS
        names = ("verbose", "terse") if verbose_first else ("terse", "verbose")
        games.append(Game(*names, score, *lengths))
    plain = by_model(games, rounds=20)
    controlled = by_model(games, rounds=50, length_controlled=True)
    assert plain["verbose"].rating - plain["terse"].rating > 50  # type: ignore[attr-defined]
    gap = controlled["verbose"].rating - controlled["terse"].rating  # type: ignore[attr-defined]
    assert abs(gap) < 40


def test_length_feature_is_zero_for_empty_answers() -> None:
    assert list(length_feature([Game("a", "b", TIE, 0, 0), Game("a", "b", TIE, 3, 1)])) == [
        0.0,
        0.5,
    ]


def test_with_equal_lengths_the_length_control_changes_nothing() -> None:
    rng = np.random.default_rng(5)
    games = simulate(np.array([-0.5, 0.0, 0.2, 0.7]), 800, rng, tie_share=0.1)
    plain = by_model(games, rounds=5)
    controlled = by_model(games, rounds=5, length_controlled=True)
    for model, rating in plain.items():
        assert controlled[model].rating == pytest.approx(rating.rating, abs=1e-4)  # type: ignore[attr-defined]
