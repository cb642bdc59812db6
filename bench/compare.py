"""A compare round against its slowest single answer (target: at most 1.15 times, not the sum).

One fake Ollama process that serves requests in parallel (ThreadingHTTPServer) offers models at
different speeds. Each repetition first lets every model answer alone through ChatService.send,
one after the other, then runs one round with all of them through CompareService.start, the
fan-out the Compare page uses (user turns stored, a thread per column, the page's update loop).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.support import fake_ollama_process, median, report
from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services

TOKENS = 60
# name, seconds between tokens: 0.6 s to 1 s per answer
MODELS = [("m1:latest", 0.010), ("m2:latest", 0.012), ("m3:latest", 0.014), ("m4:latest", 0.016)]
PROMPT = "Tell me a story"
REPETITIONS = 5


def single_seconds(services: Services, model: str, params: GenerationParams) -> float:
    started = time.perf_counter()
    reply = services.chat.send(None, PROMPT, model, params).consume()
    assert reply.status == "complete", reply.error
    return time.perf_counter() - started


def round_seconds(services: Services, models: list[str], params: GenerationParams) -> float:
    started = time.perf_counter()
    live = services.compare.start(PROMPT, models, params, blind=True)
    for _ in live.updates():  # what the page does between redraws
        pass
    elapsed = time.perf_counter() - started
    assert all(column.status == "complete" for column in live.columns)
    return elapsed


def run(n: int) -> dict[str, float]:
    params = GenerationParams(max_tokens=TOKENS + 10)
    (first, first_delay), *others = MODELS[:n]
    also = [arg for name, delay in others for arg in ("--also", f"{name}={delay}")]
    models = [name for name, _ in MODELS[:n]]
    with (
        fake_ollama_process(
            "--model", first, "--tokens", str(TOKENS), "--delay", str(first_delay), *also
        ) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        services = open_services(Settings(url, Path(tmp) / "bench.duckdb", 0))
        round_seconds(services, models, params)  # warm up
        slowest, rounds, sums = [], [], []
        for _ in range(REPETITIONS):
            singles = [single_seconds(services, model, params) for model in models]
            slowest.append(max(singles))
            sums.append(sum(singles))
            rounds.append(round_seconds(services, models, params))
        services.close()
    # The machine is shared and noisy: pair each round with the singles measured just before it.
    return {
        "slowest": median(slowest),
        "sum": median(sums),
        "round": median(rounds),
        "ratio": median([r / s for r, s in zip(rounds, slowest, strict=True)]),
    }


def main() -> None:
    for n in (2, 4):
        result = run(n)
        report(
            f"compare: a round of {n} models vs its slowest single answer ({TOKENS} tokens each)",
            [
                ("slowest single answer", f"{result['slowest']:.3f} s"),
                ("the answers one after another", f"{result['sum']:.3f} s"),
                ("the round, all at once", f"{result['round']:.3f} s"),
                ("ratio round/slowest (target <= 1.15)", f"{result['ratio']:.3f}"),
            ],
        )


if __name__ == "__main__":
    main()
