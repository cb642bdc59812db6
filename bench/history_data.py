"""A generated history for the History benchmark: 10,000 conversations and 1,000,000 messages.

Built with numpy and Arrow and written with bulk `INSERT ... SELECT` from Arrow tables (never
row by row), then cached under bench/data/ (gitignored) so later runs reuse the file.

The text is pseudo-English from a Zipf-weighted made-up vocabulary: user turns of one to three
sentences, replies of two to nine. A few messages carry the rare word NEEDLE and one conversation
has exactly LONG_MESSAGES messages, for the search and open benchmarks.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chatcore.storage.db import Database
from chatcore.storage.migrations import MIGRATIONS

DATA_DIR = Path(__file__).resolve().parent / "data"
GENERATOR_VERSION = 4  # bump when the shape of the generated data changes (4: parent_id)
SEED = 20261125
LONG_CONVERSATION = "bench-long-conversation"
LONG_MESSAGES = 1_000
NEEDLE = "quokka"
NEEDLE_MESSAGES = 25
MODELS = [
    "llama3.2:latest",
    "qwen3:4b",
    "gemma3:270m",
    "mistral:7b",
    "phi4-mini:latest",
    "deepseek-r1:8b",
    "granite3.3:2b",
    "smollm2:1.7b",
]
HOST = "http://127.0.0.1:11434"
SYLLABLES = "ka lo mi ne ta ri so ve du pa ge li mo ra te ni ba co fu si an el or in us"
OPTIONS = json.dumps({"temperature": 0.7, "top_p": 0.9, "max_tokens": 500, "system_prompt": ""})


@dataclass(frozen=True)
class Shape:
    conversations: int = 10_000
    messages: int = 1_000_000

    @property
    def file_name(self) -> str:
        schema = MIGRATIONS[-1][0]  # a new migration means a new file
        return f"history-v{GENERATOR_VERSION}-s{schema}-{self.conversations}-{self.messages}.duckdb"


def generated_database(shape: Shape = Shape()) -> Path:
    """The cached file for this shape, generated first if it is missing."""
    path = DATA_DIR / shape.file_name
    for stale in DATA_DIR.glob(f"history-*-{shape.conversations}-{shape.messages}.duckdb"):
        if stale != path:  # made by an older generator or schema: ~150 MB each
            stale.unlink()
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        Path(f"{partial}.wal").unlink(missing_ok=True)
        generate(partial, shape)
        shutil.move(partial, path)
        print(f"  (generated {path.name} in {time.perf_counter() - started:.1f} s)")
    return path


def generate(path: Path, shape: Shape) -> None:
    rng = np.random.default_rng(SEED)
    tables = build_tables(rng, shape)
    db = Database(path)
    try:
        with db.transaction() as cur:
            for name, table in tables.items():
                cur.register("incoming", table)
                columns = ", ".join(table.column_names)
                cur.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM incoming")
                cur.unregister("incoming")
            for sequence, table in (("messages_id_seq", "messages"), ("runs_id_seq", "runs")):
                cur.execute(f"SELECT setval('{sequence}', (SELECT max(id) FROM {table}))")
        with db.cursor() as cur:
            cur.execute("CHECKPOINT")
    finally:
        db.close()


# --- text ---


def vocabulary(rng: np.random.Generator, size: int = 3_000) -> np.ndarray:
    syllables = np.array(SYLLABLES.split())
    lengths = rng.integers(1, 4, size)
    words = {"".join(rng.choice(syllables, n)) for n in lengths}
    return np.array(sorted(words))


def sentence_pool(rng: np.random.Generator, size: int = 5_000) -> pa.Array:
    words = vocabulary(rng)
    weights = 1 / np.arange(1, len(words) + 1)  # Zipf: a few words are everywhere
    weights /= weights.sum()
    sentences = []
    for length in rng.integers(5, 17, size):
        chosen = rng.choice(words, length, p=weights)
        sentences.append(" ".join(chosen).capitalize() + ".")
    return pa.array(sentences)


def join_sentences(
    rng: np.random.Generator, pool: pa.Array, counts: np.ndarray
) -> pa.ChunkedArray | pa.Array:
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    picks = pool.take(pa.array(rng.integers(0, len(pool), int(offsets[-1]))))
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), picks), " ")


# --- tables ---


def messages_per_conversation(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Even counts (turn pairs) summing to exactly shape.messages; the first is the long one."""
    others = shape.conversations - 1
    pairs = (shape.messages - LONG_MESSAGES) // 2
    weights = rng.exponential(size=others)
    counts = 1 + rng.multinomial(pairs - others, weights / weights.sum())
    return np.concatenate([[LONG_MESSAGES], 2 * counts])


def build_tables(rng: np.random.Generator, shape: Shape) -> dict[str, pa.Table]:
    per_conversation = messages_per_conversation(rng, shape)
    total = int(per_conversation.sum())
    conversation_ids = np.array(
        [LONG_CONVERSATION] + [f"bench-{i:06d}" for i in range(1, shape.conversations)]
    )
    owner = np.repeat(np.arange(shape.conversations), per_conversation)
    starts = np.concatenate([[0], np.cumsum(per_conversation)[:-1]])
    position = np.arange(total) - starts[owner]

    is_reply = position % 2 == 1
    # a few replies were regenerated: the old one is superseded and the next turn is the new one
    last = position == per_conversation[owner] - 1
    superseded = is_reply & ~last & (rng.random(total) < 0.03) & (owner > 0)  # not the long one
    is_reply |= np.roll(superseded, 1)

    now = np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us")
    span_us = int(timedelta(days=729).total_seconds() * 1e6)
    offsets_us = (rng.random(shape.conversations) * span_us).astype("timedelta64[us]")
    created_ns = now - np.timedelta64(730, "D") + offsets_us
    gaps = rng.integers(5, 120, total).astype("timedelta64[s]")
    message_times = created_ns[owner] + (position * np.timedelta64(40, "s")) + gaps

    pool = sentence_pool(rng)
    sentence_counts = np.where(is_reply, rng.integers(2, 10, total), rng.integers(1, 4, total))
    content = join_sentences(rng, pool, sentence_counts).to_numpy(zero_copy_only=False)
    for index in rng.choice(total, NEEDLE_MESSAGES, replace=False):
        content[index] = f"{content[index]} The {NEEDLE} was mentioned here."

    message_ids = np.arange(1, total + 1)
    # each message follows the newest visible one before it, as migration 11 makes it: a
    # superseded reply and its replacement are siblings (a conversation opens with a user message,
    # never superseded, so the running maximum never reaches into the conversation before)
    visible = np.where(superseded, 0, message_ids)
    newest_before = np.maximum.accumulate(np.concatenate([[0], visible[:-1]]))
    parent_ids = pa.array(newest_before, pa.int64(), mask=position == 0)
    messages = pa.table(
        {
            "id": message_ids,
            "conversation_id": conversation_ids[owner],
            "role": np.where(is_reply, "assistant", "user"),
            "content": content,
            "created_at": pa.array(message_times, pa.timestamp("us", tz="UTC")),
            "superseded": superseded,
            "parent_id": parent_ids,
        }
    )
    first_user = content[starts]
    titles = [" ".join(text.split()[:8])[:60] for text in first_user]
    updated = message_times[starts + per_conversation - 1]
    conversations = pa.table(
        {
            "id": conversation_ids,
            "title": titles,
            "created_at": pa.array(created_ns, pa.timestamp("us", tz="UTC")),
            "updated_at": pa.array(updated, pa.timestamp("us", tz="UTC")),
        }
    )
    runs = build_runs(rng, messages.filter(pa.array(is_reply)), owner[is_reply], position[is_reply])
    return {"conversations": conversations, "messages": messages, "runs": runs}


def build_runs(
    rng: np.random.Generator, replies: pa.Table, owner: np.ndarray, position: np.ndarray
) -> pa.Table:
    count = replies.num_rows
    # each conversation talks to one or two models
    first_model = rng.integers(0, len(MODELS), owner.max() + 1)
    second_model = rng.integers(0, len(MODELS), owner.max() + 1)
    switched = rng.random(count) < 0.3
    model = np.where(switched, second_model[owner], first_model[owner])
    status = rng.choice(["complete", "stopped", "error"], count, p=[0.97, 0.02, 0.01])
    completion = rng.integers(20, 600, count)
    eval_ns = (completion * rng.uniform(8e6, 40e6, count)).astype(np.int64)
    prompt_eval_ns = rng.integers(20_000_000, 400_000_000, count)
    load_ns = np.where(rng.random(count) < 0.05, rng.integers(500_000_000, 3_000_000_000, count), 0)
    started = replies.column("created_at").to_numpy()
    finished = started + ((eval_ns + prompt_eval_ns + load_ns) // 1000).astype("timedelta64[us]")
    failed = status == "error"
    return pa.table(
        {
            "id": np.arange(1, count + 1),
            "conversation_id": replies.column("conversation_id"),
            "message_id": replies.column("id"),
            "model": np.array(MODELS)[model],
            "backend": np.full(count, "ollama"),
            "host": np.full(count, HOST),
            "options": np.full(count, OPTIONS),
            "status": status,
            "error": pa.array(np.where(failed, "Ollama stopped answering.", None)),
            "started_at": replies.column("created_at"),
            "finished_at": pa.array(finished, pa.timestamp("us", tz="UTC")),
            "ttft_ms": (prompt_eval_ns + load_ns) / 1e6 + rng.uniform(2, 15, count),
            "prompt_tokens": 30 + position * 60,
            "completion_tokens": completion,
            "total_duration_ns": eval_ns + prompt_eval_ns + load_ns,
            "load_duration_ns": load_ns,
            "prompt_eval_duration_ns": prompt_eval_ns,
            "eval_duration_ns": eval_ns,
            "done_reason": np.where(completion > 580, "length", "stop"),
            "prompt_chars": 120 + position * 250,
        }
    )


if __name__ == "__main__":
    print(generated_database())
