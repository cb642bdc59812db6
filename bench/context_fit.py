"""What fitting a conversation into the context window costs a send: fitting a 1,001-message
history (English, then Chinese) into a 4k window as the chat service does (the correction's
query included), beside the bare fit that re-estimates every message on each of its O(log n)
measurements, and one estimate of the whole history. In one process, on an in-memory DuckDB
with the app's schema."""

from __future__ import annotations

import time
from collections.abc import Callable

import duckdb

from bench.support import median, report
from chatcore.context import estimated_tokens, fit_history
from chatcore.fitting import ContextFitter
from chatcore.params import GenerationParams
from chatcore.storage.migrations import apply_migrations
from chatcore.types import ChatMessage

ROUNDS = 15
WINDOW = 4096
TEXTS = {
    "English": (
        "Tell me more about the history of the river towns along the old trade route, how the "
        "merchants lived and what they carried upstream in spring."
    ),
    "Chinese": "请再给我讲讲古代商路沿线河边小镇的历史，商人们怎样生活，春天往上游运什么货物。",
}


def history(text: str, count: int = 1001) -> list[ChatMessage]:
    dialogue = [
        ChatMessage(role="user" if i % 2 == 0 else "assistant", content=f"{i}: {text}")
        for i in range(count)
    ]
    return [ChatMessage(role="system", content="Be brief."), *dialogue]


def timed_ms(work: Callable[[], object]) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return median(samples)


def main() -> None:
    con = duckdb.connect()
    apply_migrations(con)
    fitter = ContextFitter()
    params = GenerationParams()
    for language, text in TEXTS.items():
        messages = history(text)
        fitted = fitter.fit(con, "bench", "model", messages, params, WINDOW)
        fit = timed_ms(lambda m=messages: fitter.fit(con, "bench", "model", m, params, WINDOW))
        naive = timed_ms(lambda m=messages: fit_history(m, estimated_tokens, WINDOW - 500))
        whole = timed_ms(lambda m=messages: estimated_tokens(m))
        report(
            f"context fitting, {language}: 1,001 messages into {WINDOW:,} tokens "
            f"(kept {len(fitted.messages)}, window {fitted.window:,})",
            [
                ("the service's fit (with the correction query)", f"{fit:.2f} ms"),
                (
                    "bare fit, no query, re-measured each step",
                    f"{naive:.2f} ms  ({naive / fit:.2f}x)",
                ),
                ("one estimate of the whole history", f"{whole:.2f} ms  ({whole / fit:.2f}x)"),
            ],
        )


if __name__ == "__main__":
    main()
