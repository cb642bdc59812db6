"""The History page's queries on a generated history of 10,000 conversations, 1,000,000 messages.

Each query runs several times on a copy of the cached file (bench/history_data.py) and we print
its median beside its target. "after a reply" lists right after one conversation changed, so it
includes refreshing that conversation's summary.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.history_data import LONG_CONVERSATION, LONG_MESSAGES, NEEDLE, Shape, generated_database
from bench.support import median, report
from chatcore.history import Filters, HistoryService
from chatcore.storage.db import Database

ROUNDS = 15
COMMON_WORD = "anmo"  # in most conversations: the search that finds the most


def timed_ms(action: Callable[[], object], rounds: int = ROUNDS) -> float:
    action()  # warm up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


def after_a_reply(db: Database, history: HistoryService, rounds: int = ROUNDS) -> float:
    """The list right after a reply ended in one conversation (its summary is then stale)."""
    times = []
    for _ in range(rounds + 1):
        with db.transaction() as cur:
            cur.execute("UPDATE conversations SET updated_at = now() WHERE id = 'bench-000042'")
        started = time.perf_counter()
        history.list_conversations()
        times.append((time.perf_counter() - started) * 1000)
    return median(times[1:])


def measure(path: Path) -> list[tuple[str, str]]:
    db = Database(path)
    history = HistoryService(db)
    try:
        with db.transaction() as cur:
            cur.execute("DELETE FROM conversation_summaries")
        started = time.perf_counter()
        history.refresh_summaries()
        first_build = (time.perf_counter() - started) * 1000
        opened = history.open(LONG_CONVERSATION)
        assert opened is not None and len(opened.messages) >= LONG_MESSAGES * 0.95
        assert history.search(NEEDLE).total > 0
        figures = {
            "list, newest first (target <= 50 ms)": timed_ms(history.list_conversations),
            "list, by tokens, one model, page 20 (<= 50 ms)": timed_ms(
                lambda: history.list_conversations(
                    Filters(models=("qwen3:4b",)), sort="tokens", page=19
                )
            ),
            "list right after a reply (<= 50 ms)": after_a_reply(db, history),
            f"search a rare word '{NEEDLE}' (<= 300 ms)": timed_ms(lambda: history.search(NEEDLE)),
            f"search a common word '{COMMON_WORD}' (<= 300 ms)": timed_ms(
                lambda: history.search(COMMON_WORD)
            ),
            f"open a {len(opened.messages):,}-message conversation (<= 300 ms)": timed_ms(
                lambda: history.open(LONG_CONVERSATION)
            ),
        }
    finally:
        db.close()
    rows = [(name, f"{value:.1f} ms") for name, value in figures.items()]
    rows.append(("first summary build after upgrading (once)", f"{first_build:.0f} ms"))
    return rows


def main() -> None:
    shape = Shape()
    source = generated_database(shape)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "history.duckdb"
        shutil.copyfile(source, copy)
        rows = measure(copy)
    report(
        f"history: {shape.conversations:,} conversations, {shape.messages:,} messages "
        f"(median of {ROUNDS})",
        rows,
    )


if __name__ == "__main__":
    main()
