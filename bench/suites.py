"""Suites: the Bradley-Terry fit with its bootstrap, and a suite run spread over two hosts.

1. The fit plus 1,000 bootstrap rounds on 10,000 simulated votes over 20 models (target: at
   most 1 s).
2. A suite of 50 prompts x 4 models against two loopback Ollama processes that each serve one
   reply at a time (as OLLAMA_NUM_PARALLEL=1). The total work is what the 200 replies took, each
   from its send to its stored end (the runs' own clock, in the same run, so a loaded machine
   slows both sides alike); with one reply per host at a time none of it is queueing. Two hosts
   kept busy finish in half of it. Target: at most 1.1 x (total work / 2). One reply's median
   time alone, times 200, is printed as a cross-check.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from bench.support import fake_ollama_process, median, report
from chatcore.bradley_terry import A_WINS, B_WINS, TIE, Game, bradley_terry
from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services

VOTES, MODELS, ROUNDS = 10_000, 20, 1000
PROMPTS = 50
SUITE_MODELS = ["m0:latest", "m1:latest", "m2:latest", "m3:latest"]
TOKENS, DELAY = 20, 0.005  # about 0.1 s a reply


def simulated_votes(rng: np.random.Generator) -> list[Game]:
    strengths = rng.normal(0, 1, MODELS)
    a = rng.integers(0, MODELS, VOTES)
    b = (a + rng.integers(1, MODELS, VOTES)) % MODELS
    p = 1 / (1 + np.exp(strengths[b] - strengths[a]))
    u = rng.random(VOTES)
    scores = np.where(u < 0.1, TIE, np.where(u < 0.1 + 0.9 * p, A_WINS, B_WINS))
    return [Game(f"model{x}", f"model{y}", float(s)) for x, y, s in zip(a, b, scores, strict=True)]


def fit_seconds() -> float:
    games = simulated_votes(np.random.default_rng(0))
    times = []
    for seed in range(3):
        started = time.perf_counter()
        bradley_terry(games, rounds=ROUNDS, seed=seed)
        times.append(time.perf_counter() - started)
    return median(times)


def suite_run() -> dict[str, float]:
    also = [f"--also={m}={DELAY}" for m in SUITE_MODELS[1:]]
    args = ("--serial", "--tokens", str(TOKENS), "--delay", str(DELAY), "--model", SUITE_MODELS[0])
    with ExitStack() as stack:
        first = stack.enter_context(fake_ollama_process(*args, *also))
        second = stack.enter_context(fake_ollama_process(*args, *also))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = Settings(first, tmp / "bench.duckdb", 0, ollama_hosts=(second,), embedded=False)
        services = open_services(settings)
        stack.callback(services.close)
        params = GenerationParams(max_tokens=TOKENS + 10)
        alone = []
        for model in SUITE_MODELS * 2:  # warm up, then one reply's time with nothing else
            started = time.perf_counter()
            services.chat.send(None, "alone", model, params).consume()
            alone.append(time.perf_counter() - started)
        one_reply = median(alone[len(SUITE_MODELS) :])
        suite_id = services.suites.create_suite("bench", [f"Prompt {i}" for i in range(PROMPTS)])
        started = time.perf_counter()
        run_id = services.suites.start_run(suite_id, SUITE_MODELS, params)
        view = services.suites.wait(run_id)
        wall = time.perf_counter() - started
        assert all(c.status == "complete" for c in view.cells)
        work = summed_seconds(services, [c.run_id or 0 for c in view.cells])
    alone_work = one_reply * PROMPTS * len(SUITE_MODELS)
    return {"wall": wall, "work": work, "alone": alone_work, "ratio": wall / (work / 2)}


def summed_seconds(services: Services, run_ids: list[int]) -> float:
    with services.db.cursor() as cur:
        row = cur.execute(
            "SELECT sum(epoch(finished_at) - epoch(started_at)) FROM runs "
            "WHERE id IN (SELECT unnest($ids))",
            {"ids": run_ids},
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def main() -> None:
    fit = fit_seconds()
    suite = suite_run()
    report(
        f"suites: Bradley-Terry on {VOTES:,} votes over {MODELS} models; "
        f"a suite of {PROMPTS} prompts x {len(SUITE_MODELS)} models on two one-at-a-time hosts",
        [
            (f"fit + {ROUNDS:,} bootstrap rounds, s (target <= 1)", f"{fit:.2f}"),
            ("suite: total work (sum of the 200 replies), s", f"{suite['work']:.2f}"),
            ("suite: one reply alone x 200, s", f"{suite['alone']:.2f}"),
            ("suite: wall time on two hosts, s", f"{suite['wall']:.2f}"),
            ("ratio wall / (work / 2) (target <= 1.1)", f"{suite['ratio']:.2f}"),
        ],
    )


if __name__ == "__main__":
    main()
