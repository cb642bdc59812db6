"""A small history of runs, written straight into the tables, whose figures the tests work out by
hand. Timestamps carry no zone: DuckDB reads them as the session's local time, as the page does."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chatcore.storage import rollup
from chatcore.storage.db import Database

A = "http://a:11434"
LOCAL = "local"
LLAMA, QWEN, GEMMA = "llama3.2:latest", "qwen3:4b", "gemma-3-270m"
MS = 1_000_000
S = 1_000_000_000


@dataclass(frozen=True)
class Run:
    id: int
    conversation: str
    model: str
    status: str
    started: datetime
    seconds: float  # from start to finish on the app's clock
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_ns: int | None = None
    load_ns: int | None = None
    prompt_eval_ns: int | None = None
    eval_ns: int | None = None
    prompt_chars: int = 40
    num_ctx: int | None = None
    options: dict[str, object] = field(default_factory=lambda: {"temperature": 0.7})
    asked: bool = True  # False for a regeneration: no new message of yours

    @property
    def backend(self) -> str:
        return "embedded" if self.model == GEMMA else "ollama"

    @property
    def host(self) -> str:
        return LOCAL if self.model == GEMMA else A


def day(d: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, d, hour, minute)  # 2026-03-02 is a Monday


RUNS = [
    Run(
        1, "c1", LLAMA, "complete", day(2, 9, 10), 2.0, 100, 20, 100, 2 * S, 5 * MS, S // 10, 2 * S
    ),
    # a prompt at Ollama's default window (0.95 x 4096 = 3891.2)
    Run(
        2, "c1", LLAMA, "complete", day(2, 9, 20), 3.0, 300, 4000, 50, 3 * S, 1 * MS, S // 2, 2 * S
    ),
    # a switch from llama on host A, with a cold load; its prompt far below the estimate (1000)
    Run(
        3,
        "c2",
        QWEN,
        "complete",
        day(3, 14),
        4.0,
        800,
        100,
        30,
        4 * S,
        2000 * MS,
        S // 5,
        S,
        prompt_chars=4000,
    ),
    Run(4, "c2", QWEN, "stopped", day(3, 14, 5), 1.5, 200, asked=False),
    Run(5, "c3", LLAMA, "error", day(4, 23, 30), 0.25),
    # the embedded engine records its window: 2000 >= 0.95 x 2048
    Run(
        6,
        "c4",
        GEMMA,
        "complete",
        day(4, 10),
        1.0,
        50,
        2000,
        200,
        S,
        300 * MS,
        S // 4,
        S // 2,
        num_ctx=2048,
    ),
    Run(
        7,
        "c4",
        GEMMA,
        "complete",
        day(5, 10),
        0.5,
        60,
        10,
        10,
        S // 2,
        0,
        S // 100,
        S // 10,
        num_ctx=2048,
    ),
    # options set a window of 10 tokens: 10 >= 9.5
    Run(
        8,
        "c5",
        LLAMA,
        "complete",
        day(5, 11),
        1.1,
        120,
        10,
        40,
        11 * S // 10,
        4 * MS,
        S // 50,
        S,
        options={"temperature": 0.7, "num_ctx": 10},
    ),
]
STREAMING = Run(9, "c5", LLAMA, "streaming", day(5, 12), 0.0)  # left out of every figure


def insert_runs(db: Database, runs: list[Run]) -> None:
    """Each run with its reply message, after a message of yours unless it is a regeneration.
    Ids come from the runs' sequence (so the app can add runs after them)."""
    with db.transaction() as cur:
        for run in runs:
            cur.execute(
                "INSERT INTO conversations (id, title, created_at, updated_at) "
                "SELECT ?, 'A chat', ?, ? WHERE NOT EXISTS "
                "(SELECT 1 FROM conversations WHERE id = ?)",
                [run.conversation, run.started, run.started, run.conversation],
            )
            if run.asked:
                cur.execute(
                    "INSERT INTO messages (conversation_id, role, content, created_at) "
                    "VALUES (?, 'user', 'a question', ?)",
                    [run.conversation, run.started],
                )
            row = cur.execute(
                "INSERT INTO messages (conversation_id, role, content, created_at) "
                "VALUES (?, 'assistant', 'an answer', ?) RETURNING id",
                [run.conversation, run.started],
            ).fetchone()
            finished = None
            if run.status != "streaming":
                finished = run.started + timedelta(seconds=run.seconds)
            inserted = cur.execute(
                """
                INSERT INTO runs (conversation_id, message_id, model, backend, host,
                    options, status, error, started_at, finished_at, ttft_ms, prompt_tokens,
                    completion_tokens, total_duration_ns, load_duration_ns,
                    prompt_eval_duration_ns, eval_duration_ns, prompt_chars, num_ctx)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
                """,
                [
                    run.conversation, row[0], run.model, run.backend, run.host,
                    json.dumps(run.options), run.status,
                    "It broke" if run.status == "error" else None,
                    run.started, finished, run.ttft_ms, run.prompt_tokens,
                    run.completion_tokens, run.total_ns, run.load_ns, run.prompt_eval_ns,
                    run.eval_ns, run.prompt_chars, run.num_ctx,
                ],
            ).fetchone()  # fmt: skip
            assert inserted == (run.id,), "insert the runs in id order into a fresh database"
        rollup.rebuild_all(cur)  # written behind the app's back: Stats' rollup catches up
