"""What a send cannot go below here: DuckDB's own cost of committing the user's turn.

Architecture rule 4 makes a send commit the user's message before any reply text is shown. For a
new chat that is two INSERTs (the conversation and the message) and a COMMIT; the reply's own
rows (its message, the open branch, its run) are written beside the first token
(chatcore/reply_rows.py). Measured alone, in this process, on a file like the app's, beside the
bare client's time to the first token on the loopback server (the time the commit can hide in).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import ollama

from bench.streaming import MODEL, bare_round
from bench.support import fake_ollama_process, median, report
from chatcore.params import GenerationParams
from chatcore.storage import conversations, runs, trees
from chatcore.storage.db import Database

ROUNDS = 300


def timed(work: Callable[[], object], rounds: int = ROUNDS) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def empty_commit(db: Database) -> None:
    with db.transaction():
        pass


def user_turn(db: Database) -> None:
    """What a new chat's send commits before its first token."""
    conversation = uuid.uuid4().hex
    with db.transaction() as cur:
        conversations.create_conversation(cur, conversation, "a title")
        conversations.add_message(cur, conversation, "user", "Tell me a long story")


def whole_turn(db: Database) -> None:
    """What it committed before this was split: the reply's rows too."""
    conversation = uuid.uuid4().hex
    with db.transaction() as cur:
        conversations.create_conversation(cur, conversation, "a title")
        asked = conversations.add_message(cur, conversation, "user", "Tell me a long story")
        reply = conversations.add_message(cur, conversation, "assistant", "", asked)
        trees.set_open_message(cur, conversation, reply)
        runs.start_run(
            cur,
            conversation_id=conversation,
            message_id=reply,
            model=MODEL,
            backend="ollama",
            host="http://127.0.0.1:11434",
            options={},
            prompt_chars=20,
        )


def summary(times: list[float]) -> str:
    return f"{median(times):.2f} ms (fastest {min(times):.2f})"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "floor.duckdb")
        rows = [
            ("an empty transaction (BEGIN, COMMIT)", summary(timed(lambda: empty_commit(db)))),
            (
                "the user's turn: conversation + message, committed",
                summary(timed(lambda: user_turn(db))),
            ),
            (
                "the whole turn as before (+ reply, open branch, run)",
                summary(timed(lambda: whole_turn(db))),
            ),
        ]
        db.close()
    params = GenerationParams(max_tokens=10)
    with fake_ollama_process("--tokens", "1", "--delay", "0") as url:
        client = ollama.Client(host=url, timeout=httpx.Timeout(None, connect=5.0), trust_env=False)
        bare_round(client, params)
        firsts = [bare_round(client, params).ttft_ms for _ in range(50)]
    rows.append(("bare client's first token on the loopback server", summary(firsts)))
    report("send floor: DuckDB's cost of committing a turn, alone (median, fastest)", rows)


if __name__ == "__main__":
    main()
