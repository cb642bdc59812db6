"""Queries over compare rounds, their entries (one run per column) and the votes that judge them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from chatcore.storage.runs import named_rows, run_from, run_select
from chatcore.types import RunRecord


@dataclass(frozen=True)
class StoredEntry:
    """One column of a stored round: its letter, and the reply the model gave in it."""

    label: str
    position: int
    conversation_id: str
    text: str
    run: RunRecord
    thinking: str = ""  # hidden in a blind round until the reveal: it often names the model
    collaboration: str | None = None  # the models that worked together on it, as one entry
    steps: tuple[tuple[str, str], ...] = ()  # a collaboration's (role, model), step by step

    @property
    def entry(self) -> str:
        """What the vote ranks: the collaboration, else the model."""
        return self.collaboration or self.run.model


@dataclass(frozen=True)
class StoredVote:
    outcome: str  # best | tie | all_bad
    winner_label: str | None


@dataclass(frozen=True)
class StoredRound:
    id: int
    prompt: str
    blind: bool
    entries: list[StoredEntry]
    vote: StoredVote | None


@dataclass(frozen=True)
class VoteRecord:
    """A vote with the models of the columns it judged, for the leaderboard."""

    id: int
    outcome: str
    winner_model: str | None
    models: list[str]


def create_round(
    cur: duckdb.DuckDBPyConnection, prompt: str, blind: bool, options: dict[str, Any]
) -> int:
    row = cur.execute(
        "INSERT INTO compare_rounds (prompt, blind, options) VALUES (?, ?, ?) RETURNING id",
        [prompt, blind, json.dumps(options)],
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_entry(
    cur: duckdb.DuckDBPyConnection,
    *,
    round_id: int,
    label: str,
    position: int,
    conversation_id: str | None,
    run_id: int,
) -> None:
    """A column of a round: the run that answered in it, and its conversation (looked up when
    not given)."""
    cur.execute(
        """
        INSERT INTO compare_entries (round_id, label, position, conversation_id, run_id)
        SELECT ?, ?, ?, coalesce(?, m.conversation_id), r.id
        FROM runs r JOIN messages m ON m.id = r.message_id WHERE r.id = ?
        """,
        [round_id, label, position, conversation_id, run_id],
    )


def get_round(cur: duckdb.DuckDBPyConnection, round_id: int) -> StoredRound | None:
    row = cur.execute(
        "SELECT id, prompt, blind FROM compare_rounds WHERE id = ?", [round_id]
    ).fetchone()
    if row is None:
        return None
    entries = named_rows(
        cur.execute(
            f"""
            SELECT e.label, e.position, e.conversation_id, m.content AS text,
                coalesce(m.thinking, '') AS thinking, s.collaboration, s.group_id,
                {run_select("r")}
            FROM compare_entries e
            JOIN runs r ON r.id = e.run_id JOIN messages m ON m.id = r.message_id
            LEFT JOIN collaboration_steps s ON s.run_id = e.run_id
            WHERE e.round_id = ? ORDER BY e.position
            """,
            [round_id],
        )
    )
    vote = cur.execute(
        "SELECT outcome, winner_label FROM votes WHERE round_id = ?", [round_id]
    ).fetchone()
    return StoredRound(
        id=row[0],
        prompt=row[1],
        blind=row[2],
        entries=[stored_entry(cur, entry) for entry in entries],
        vote=None if vote is None else StoredVote(*vote),
    )


def stored_entry(cur: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> StoredEntry:
    run = run_from(row)
    assert run is not None  # an entry always has its run
    steps = collaboration_steps(cur, row["group_id"]) if row["group_id"] else ()
    return StoredEntry(
        row["label"],
        row["position"],
        row["conversation_id"],
        row["text"],
        run,
        row["thinking"],
        row["collaboration"],
        steps,
    )


def collaboration_steps(
    cur: duckdb.DuckDBPyConnection, group_id: str
) -> tuple[tuple[str, str], ...]:
    """(role, model) of each step of one collaboration, in order."""
    rows = cur.execute(
        """
        SELECT s.role, r.model FROM collaboration_steps s JOIN runs r ON r.id = s.run_id
        WHERE s.group_id = ? ORDER BY s.step, s.run_id
        """,
        [group_id],
    ).fetchall()
    return tuple((role, model) for role, model in rows)


def record_vote(
    cur: duckdb.DuckDBPyConnection, round_id: int, outcome: str, winner_label: str | None
) -> None:
    cur.execute(
        "INSERT INTO votes (round_id, outcome, winner_label) VALUES (?, ?, ?)",
        [round_id, outcome, winner_label],
    )


def all_votes(cur: duckdb.DuckDBPyConnection, blind_only: bool = False) -> list[VoteRecord]:
    """Every vote, oldest first, with the models of the columns it judged."""
    rows = cur.execute(
        """
        WITH entries AS (
            SELECT e.round_id, e.label, e.position, r.status,
                coalesce(s.collaboration, r.model) AS entry
            FROM compare_entries e JOIN runs r ON r.id = e.run_id
            LEFT JOIN collaboration_steps s ON s.run_id = e.run_id  -- a collaboration's answer
        )
        SELECT v.id, v.outcome,
            max(r.entry) FILTER (WHERE r.label = v.winner_label),
            list(r.entry ORDER BY r.position)
        FROM votes v
        JOIN compare_rounds c ON c.id = v.round_id
        JOIN entries r ON r.round_id = v.round_id
        WHERE (c.blind OR NOT ?) AND r.status <> 'error'  -- a failed answer takes no part
        GROUP BY v.id, v.outcome
        ORDER BY v.id
        """,
        [blind_only],
    ).fetchall()
    return [VoteRecord(*row) for row in rows]
