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
PHRASE = f"{NEEDLE} was mentioned"  # words of a few conversations, checked in their text


def timed_ms(action: Callable[[], object], rounds: int = ROUNDS) -> float:
    action()  # warm up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


def side_by_side_ms(
    first: Callable[[], object], second: Callable[[], object], rounds: int = ROUNDS
) -> tuple[float, float]:
    """Both timed in turns, one after the other each round, so a load that comes and goes
    weighs on both alike: their medians."""
    first(), second()  # warm up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for action, kept in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            action()
            kept.append((time.perf_counter() - started) * 1000)
    return median(times[0]), median(times[1])


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
        assert history.search(NEEDLE) == history.search(NEEDLE, by_words=False)
        rare_words, rare_scan = side_by_side_ms(
            lambda: history.search(NEEDLE), lambda: history.search(NEEDLE, by_words=False)
        )
        phrase_words, phrase_scan = side_by_side_ms(
            lambda: history.search(PHRASE), lambda: history.search(PHRASE, by_words=False)
        )
        figures = {
            "list, newest first (target <= 50 ms)": timed_ms(history.list_conversations),
            "list, by tokens, one model, page 20 (<= 50 ms)": timed_ms(
                lambda: history.list_conversations(
                    Filters(models=("qwen3:4b",)), sort="tokens", page=19
                )
            ),
            "list right after a reply (<= 50 ms)": after_a_reply(db, history),
            f"search a rare word '{NEEDLE}' (<= 300 ms)": rare_words,
            "  the same word, the text scanned (before search_words)": rare_scan,
            f"search a rare phrase '{PHRASE}' (<= 300 ms)": phrase_words,
            "  the same phrase, the text scanned (before search_words)": phrase_scan,
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
