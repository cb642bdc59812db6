"""Bradley-Terry ratings from pairwise outcomes, with bootstrap intervals: pure functions.

A model's strength θ makes P(a beats b) = 1 / (1 + exp(θb − θa)). The fit is the maximum of the
likelihood over every outcome (a tie counts half a win to each side), found by Newton's method.
Ratings are shown on Chatbot Arena's scale: 1000 + 400·θ/ln 10, centred on the mean model, so
a 400-point gap means 10:1 odds. Unlike Elo, the result does not depend on the order of votes.

Intervals come from a bootstrap over votes: the votes are redrawn with replacement many times,
refitted each time, and the 2.5th and 97.5th percentiles of each model's rating are kept.
Without a covariate, redrawing votes is the same as drawing counts per (pair, outcome) from a
multinomial, so 1,000 rounds are 1,000 fits over a models × models matrix, done all at once.

`length_controlled` adds answer length as a covariate (Chatbot Arena's style control): the
rating is then what a model wins beyond what its longer (or shorter) answers explain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SCALE = 400.0 / math.log(10.0)  # θ to rating points
BASE = 1000.0
RIDGE = 1e-6  # keeps an unbeaten model's strength finite; far below what any vote moves
MAX_NEWTON_STEPS = 100
TOLERANCE = 1e-9
BOOTSTRAP_ROUNDS = 1000
LENGTH_CONTROLLED_ROUNDS = 200  # a fit per game, not per pair: fewer rounds by default
LEVEL = 0.95
ELO_K = 32.0

# A game's outcome for its first side: 1 a won, 0 b won, 0.5 a tie (or both bad).
A_WINS, B_WINS, TIE = 1.0, 0.0, 0.5


@dataclass(frozen=True)
class Game:
    """One pairwise outcome; `a_length`/`b_length` (characters) feed the length control."""

    a: str
    b: str
    score: float  # a's score: A_WINS, B_WINS or TIE
    a_length: int = 0
    b_length: int = 0


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float
    ci_low: float
    ci_high: float
    votes: int  # the games this model took part in
    rank_best: int  # the rank range: models whose intervals overlap share ranks
    rank_worst: int


# --- the fit ---


def fit_strengths(totals: np.ndarray, scores: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """θ maximising the likelihood, for one or a batch of pair matrices.

    totals[..., i, j]: games between i and j (symmetric); scores[..., i, j]: i's score in them
    (wins plus half the ties). Returns θ[..., i] with mean zero.
    """
    totals = np.asarray(totals, dtype=float)
    scores = np.asarray(scores, dtype=float)
    theta = np.zeros(totals.shape[:-1])
    eye = np.eye(totals.shape[-1])
    for _ in range(MAX_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(theta[..., None, :] - theta[..., :, None]))  # P(i beats j)
        gradient = (scores - totals * p).sum(axis=-1) - ridge * theta
        weights = totals * p * (1.0 - p)
        # the negative Hessian: a weighted graph Laplacian, plus the ridge
        step = np.linalg.solve(_laplacian(weights) + ridge * eye, gradient[..., None])[..., 0]
        # Shifting every θ alike changes nothing: drop that direction, where rounding noise
        # divided by the tiny ridge would otherwise keep the steps from settling.
        step -= step.mean(axis=-1, keepdims=True)
        theta = theta + step
        if np.max(np.abs(step)) < TOLERANCE:
            break
    return theta - theta.mean(axis=-1, keepdims=True)


def _laplacian(weights: np.ndarray) -> np.ndarray:
    laplacian = -weights
    index = np.arange(weights.shape[-1])
    laplacian[..., index, index] += weights.sum(axis=-1)
    return laplacian


def to_rating(theta: np.ndarray) -> np.ndarray:
    return BASE + SCALE * theta


# --- from games to matrices ---


@dataclass(frozen=True)
class Tally:
    """Games counted per (pair, outcome): what the plain fit and its bootstrap need."""

    models: list[str]
    first: np.ndarray  # per category: the pair's first model (index)
    second: np.ndarray
    score: np.ndarray  # the first model's score in this category
    counts: np.ndarray  # games in each category


def tally(games: Sequence[Game]) -> Tally:
    models = sorted({g.a for g in games} | {g.b for g in games})
    index = {m: i for i, m in enumerate(models)}
    counts: dict[tuple[int, int, float], int] = {}
    for game in games:
        a, b, score = index[game.a], index[game.b], game.score
        if a > b:  # one orientation per pair
            a, b, score = b, a, 1.0 - score
        counts[(a, b, score)] = counts.get((a, b, score), 0) + 1
    keys = sorted(counts)  # by pair: pair_matrices sums each pair's categories in one run
    return Tally(
        models,
        np.array([k[0] for k in keys], dtype=int),
        np.array([k[1] for k in keys], dtype=int),
        np.array([k[2] for k in keys], dtype=float),
        np.array([counts[k] for k in keys], dtype=float),
    )


def pair_matrices(table: Tally, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The totals and scores matrices for category counts of shape (categories,) or
    (rounds, categories)."""
    n = len(table.models)
    batch = np.atleast_2d(counts)
    # Categories come sorted by pair: sum each pair's (win, loss, tie) runs, then place them.
    starts = np.flatnonzero(np.r_[True, (np.diff(table.first) != 0) | (np.diff(table.second) != 0)])
    pair_totals = np.add.reduceat(batch, starts, axis=1)
    pair_scores = np.add.reduceat(batch * table.score, starts, axis=1)
    i, j = table.first[starts], table.second[starts]
    totals = np.zeros((batch.shape[0], n, n))
    scores = np.zeros((batch.shape[0], n, n))
    totals[:, i, j] = totals[:, j, i] = pair_totals
    scores[:, i, j] = pair_scores
    scores[:, j, i] = pair_totals - pair_scores
    shape = (*counts.shape[:-1], n, n)
    return totals.reshape(shape), scores.reshape(shape)


# --- the leaderboard ---


def bradley_terry(
    games: Sequence[Game],
    rounds: int | None = None,
    seed: int = 0,
    length_controlled: bool = False,
) -> list[Rating]:
    """Every model's rating, its 95% bootstrap interval, games and rank range, best first.

    `rounds` bootstrap rounds (BOOTSTRAP_ROUNDS, or LENGTH_CONTROLLED_ROUNDS with the length
    control); the same `seed` gives the same intervals."""
    if not games:
        return []
    if rounds is None:
        rounds = LENGTH_CONTROLLED_ROUNDS if length_controlled else BOOTSTRAP_ROUNDS
    rounds = max(1, rounds)
    if length_controlled:
        models, point, samples = _length_controlled(games, rounds, seed)
    else:
        table = tally(games)
        models = table.models
        point = to_rating(fit_strengths(*pair_matrices(table, table.counts)))
        rng = np.random.default_rng(seed)
        drawn = rng.multinomial(int(table.counts.sum()), table.counts / table.counts.sum(), rounds)
        samples = to_rating(fit_strengths(*pair_matrices(table, drawn.astype(float))))
    tail = (1.0 - LEVEL) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    played = games_per_model(games)
    ranges = rank_ranges(list(low), list(high))
    ratings = [
        Rating(m, float(point[i]), float(low[i]), float(high[i]), played[m], *ranges[i])
        for i, m in enumerate(models)
    ]
    return sorted(ratings, key=lambda r: (-r.rating, r.model))


def games_per_model(games: Sequence[Game]) -> dict[str, int]:
    played: dict[str, int] = {}
    for game in games:
        played[game.a] = played.get(game.a, 0) + 1
        played[game.b] = played.get(game.b, 0) + 1
    return played


def rank_ranges(low: Sequence[float], high: Sequence[float]) -> list[tuple[int, int]]:
    """Per model, its best and worst rank: 1 + the models surely better (their interval lies
    wholly above), down to the count of models not surely worse."""
    n = len(low)
    return [
        (
            1 + sum(int(low[j] > high[i]) for j in range(n)),
            n - sum(int(high[j] < low[i]) for j in range(n)),
        )
        for i in range(n)
    ]


# --- length control: a logistic regression with one covariate, per game ---


def _length_controlled(
    games: Sequence[Game], rounds: int, seed: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    models = sorted({g.a for g in games} | {g.b for g in games})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[g.a] for g in games])
    b = np.array([index[g.b] for g in games])
    feature = length_feature(games)
    outcome = np.array([g.score for g in games])
    # One orientation per pair (lower index first), the games sorted by pair: sums per pair are
    # then runs of the arrays, and the fit works on models × models matrices, as the plain one.
    flip = a > b
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    feature = np.where(flip, -feature, feature)
    outcome = np.where(flip, 1.0 - outcome, outcome)
    order = np.lexsort((b, a))
    a, b, feature, outcome = a[order], b[order], feature[order], outcome[order]
    design = LengthDesign(a, b, feature, len(models))
    point = design.fit(outcome, np.ones((1, len(games))))[0]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(games), np.full(len(games), 1.0 / len(games)), rounds)
    samples = design.fit(outcome, weights.astype(float))
    return models, to_rating(centred(point, len(models))), to_rating(centred(samples, len(models)))


def length_feature(games: Sequence[Game]) -> np.ndarray:
    """(a − b) / (a + b) in characters: −1 to 1, 0 for equal lengths, as style control uses."""
    a = np.array([g.a_length for g in games], dtype=float)
    b = np.array([g.b_length for g in games], dtype=float)
    total = a + b
    return np.divide(a - b, total, out=np.zeros_like(total), where=total > 0)


def centred(coefficients: np.ndarray, models: int) -> np.ndarray:
    """The models' strengths (the first coefficients) with mean zero; the covariate dropped."""
    theta = coefficients[..., :models]
    return theta - theta.mean(axis=-1, keepdims=True)


class LengthDesign:
    """P(a beats b) = σ(θa − θb + β·length feature), for games sorted by pair (a < b)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, feature: np.ndarray, models: int) -> None:
        self.a, self.b, self.feature, self.n = a, b, feature, models
        self.starts = np.flatnonzero(np.r_[True, (np.diff(a) != 0) | (np.diff(b) != 0)])
        self.pair_a, self.pair_b = a[self.starts], b[self.starts]
        # pair -> model: +1 for its first model, -1 for its second
        self.signs = np.zeros((self.starts.size, models))
        self.signs[np.arange(self.starts.size), self.pair_a] = 1.0
        self.signs[np.arange(self.starts.size), self.pair_b] = -1.0

    def per_pair(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self.starts, axis=1)

    def fit(self, outcome: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(θ, β) per row of `weights` (game counts), by Newton's method."""
        n, batch = self.n, weights.shape[0]
        coefficients = np.zeros((batch, n + 1))
        eye = np.eye(n + 1)
        rows = np.arange(batch)[:, None]
        for _ in range(MAX_NEWTON_STEPS):
            theta, beta = coefficients[:, :n], coefficients[:, n:]
            z = theta[:, self.a] - theta[:, self.b] + beta * self.feature
            p = 1.0 / (1.0 + np.exp(-z))
            residual = weights * (outcome - p)
            curvature = weights * p * (1.0 - p)
            gradient = (
                np.concatenate(
                    [
                        self.per_pair(residual) @ self.signs,
                        (residual * self.feature).sum(1, keepdims=True),
                    ],
                    axis=1,
                )
                - RIDGE * coefficients
            )
            hessian = np.zeros((batch, n + 1, n + 1))
            pair_curvature = self.per_pair(curvature)
            hessian[rows, self.pair_a, self.pair_b] = -pair_curvature
            hessian[rows, self.pair_b, self.pair_a] = -pair_curvature
            diagonal = np.arange(n)
            hessian[:, diagonal, diagonal] = pair_curvature @ np.abs(self.signs)
            cross = self.per_pair(curvature * self.feature) @ self.signs
            hessian[:, :n, n] = hessian[:, n, :n] = cross
            hessian[:, n, n] = (curvature * self.feature**2).sum(1)
            step = np.linalg.solve(hessian + RIDGE * eye, gradient[..., None])[..., 0]
            step[:, :n] -= step[:, :n].mean(axis=1, keepdims=True)
            coefficients = coefficients + step
            if np.max(np.abs(step)) < TOLERANCE:
                break
        return coefficients


# --- online Elo, kept for comparison: it depends on the order games arrive in ---


def elo(games: Sequence[Game], k: float = ELO_K) -> dict[str, float]:
    ratings: dict[str, float] = {}
    for game in games:
        a, b = ratings.get(game.a, BASE), ratings.get(game.b, BASE)
        expected = 1.0 / (1.0 + 10 ** ((b - a) / 400.0))
        change = k * (game.score - expected)
        ratings[game.a], ratings[game.b] = a + change, b - change
    return ratings
