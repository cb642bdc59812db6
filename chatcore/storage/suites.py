"""Queries over prompt suites, their runs and cells, pairwise votes and judge verdicts.

A cell is one prompt answered by one model with one preset; its answer is an ordinary run (and
conversation) made by the chat service. Cells are appended, never updated: the newest row for a
(prompt, model, preset) is the cell, so a re-run keeps the earlier answer in History.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from chatcore.storage.runs import named_rows, run_from, run_select
from chatcore.types import RunRecord


@dataclass(frozen=True)
class SuitePrompt:
    prompt: str
    category: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class SuiteSummary:
    id: int
    name: str
    prompts: int
    created_at: datetime


@dataclass(frozen=True)
class Suite:
    id: int
    name: str
    prompts: list[SuitePrompt]


@dataclass(frozen=True)
class SuiteRunRow:
    id: int
    suite_id: int
    models: list[str]
    presets: list[dict[str, Any]]
    judge: str | None
    state: str
    created_at: datetime


@dataclass(frozen=True)
class StoredCell:
    prompt_index: int
    model: str
    preset_index: int
    conversation_id: str | None
    text: str
    error: str | None
    run: RunRecord | None


@dataclass(frozen=True)
class RunFacts:
    """What a vote needs to know about a run: its model, status and the prompt it answered."""

    run_id: int
    model: str
    status: str
    prompt: str | None


@dataclass(frozen=True)
class PairOutcome:
    """One pairwise outcome for the leaderboard, whatever its source."""

    source: str  # human | judge
    a_model: str
    b_model: str
    outcome: str  # a | b | tie | both_bad
    a_length: int
    b_length: int
    a_run_id: int
    b_run_id: int
    created_at: datetime


@dataclass(frozen=True)
class ModelSpeed:
    model: str
    median_tokens_per_second: float | None
    median_seconds: float | None


# --- suites ---


def create_suite(cur: duckdb.DuckDBPyConnection, name: str, prompts: list[SuitePrompt]) -> int:
    row = cur.execute("INSERT INTO suites (name) VALUES (?) RETURNING id", [name]).fetchone()
    assert row is not None
    suite_id = int(row[0])
    cur.executemany(
        "INSERT INTO suite_prompts VALUES (?, ?, ?, ?, ?)",
        [[suite_id, i, p.prompt, p.category, p.reference] for i, p in enumerate(prompts)],
    )
    return suite_id


def list_suites(cur: duckdb.DuckDBPyConnection) -> list[SuiteSummary]:
    rows = cur.execute(
        """
        SELECT s.id, s.name, count(p.position), s.created_at
        FROM suites s LEFT JOIN suite_prompts p ON p.suite_id = s.id
        GROUP BY s.id, s.name, s.created_at ORDER BY s.id DESC
        """
    ).fetchall()
    return [SuiteSummary(*row) for row in rows]


def get_suite(cur: duckdb.DuckDBPyConnection, suite_id: int) -> Suite | None:
    row = cur.execute("SELECT id, name FROM suites WHERE id = ?", [suite_id]).fetchone()
    if row is None:
        return None
    prompts = cur.execute(
        "SELECT prompt, category, reference FROM suite_prompts WHERE suite_id = ? "
        "ORDER BY position",
        [suite_id],
    ).fetchall()
    return Suite(row[0], row[1], [SuitePrompt(*p) for p in prompts])


def categories(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cur.execute(
        "SELECT DISTINCT category FROM suite_prompts WHERE category IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


# --- suite runs ---


def create_suite_run(
    cur: duckdb.DuckDBPyConnection,
    suite_id: int,
    models: list[str],
    presets: list[dict[str, Any]],
    judge: str | None,
) -> int:
    row = cur.execute(
        "INSERT INTO suite_runs (suite_id, models, presets, judge, state) "
        "VALUES (?, ?, ?, ?, 'running') RETURNING id",
        [suite_id, json.dumps(models), json.dumps(presets), judge],
    ).fetchone()
    assert row is not None
    return int(row[0])


def get_suite_run(cur: duckdb.DuckDBPyConnection, suite_run_id: int) -> SuiteRunRow | None:
    row = cur.execute(
        "SELECT id, suite_id, models, presets, judge, state, created_at FROM suite_runs "
        "WHERE id = ?",
        [suite_run_id],
    ).fetchone()
    return None if row is None else suite_run_row(row)


def suite_runs(cur: duckdb.DuckDBPyConnection, suite_id: int | None = None) -> list[SuiteRunRow]:
    rows = cur.execute(
        "SELECT id, suite_id, models, presets, judge, state, created_at FROM suite_runs "
        "WHERE suite_id = ? OR ? IS NULL ORDER BY id DESC",
        [suite_id, suite_id],
    ).fetchall()
    return [suite_run_row(row) for row in rows]


def suite_run_row(row: tuple[Any, ...]) -> SuiteRunRow:
    return SuiteRunRow(
        id=row[0],
        suite_id=row[1],
        models=json.loads(row[2]),
        presets=json.loads(row[3]),
        judge=row[4],
        state=row[5],
        created_at=row[6],
    )


def set_state(cur: duckdb.DuckDBPyConnection, suite_run_id: int, state: str) -> None:
    cur.execute(
        "UPDATE suite_runs SET state = ?, "
        "finished_at = CASE WHEN ? = 'running' THEN NULL ELSE now() END WHERE id = ?",
        [state, state, suite_run_id],
    )


def runs_in_state(cur: duckdb.DuckDBPyConnection, state: str) -> list[int]:
    rows = cur.execute("SELECT id FROM suite_runs WHERE state = ? ORDER BY id", [state])
    return [int(row[0]) for row in rows.fetchall()]


# --- cells ---


def add_cell(
    cur: duckdb.DuckDBPyConnection,
    *,
    suite_run_id: int,
    prompt_index: int,
    model: str,
    preset_index: int,
    conversation_id: str | None,
    run_id: int | None,
    error: str | None = None,
) -> None:
    cur.execute(
        """
        INSERT INTO suite_cells
            (suite_run_id, prompt_index, model, preset_index, conversation_id, run_id, error)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        [suite_run_id, prompt_index, model, preset_index, conversation_id, run_id, error],
    )


def current_cells(cur: duckdb.DuckDBPyConnection, suite_run_id: int) -> list[StoredCell]:
    """The newest attempt at every cell, with its run and text (None/"" where refused)."""
    rows = named_rows(
        cur.execute(
            f"""
            SELECT c.prompt_index, c.model, c.preset_index, c.conversation_id, c.error,
                coalesce(m.content, '') AS text, {run_select("r")}
            FROM suite_cells c
            LEFT JOIN runs r ON r.id = c.run_id
            LEFT JOIN messages m ON m.id = r.message_id
            WHERE c.suite_run_id = ?
            QUALIFY row_number() OVER (
                PARTITION BY c.prompt_index, c.model, c.preset_index ORDER BY c.id DESC) = 1
            ORDER BY c.prompt_index, c.preset_index, c.model
            """,
            [suite_run_id],
        )
    )
    return [
        StoredCell(
            prompt_index=row["prompt_index"],
            model=row["model"],
            preset_index=row["preset_index"],
            conversation_id=row["conversation_id"],
            text=row["text"],
            error=row["error"] or (row["run_error"] if row["run_id"] is not None else None),
            run=run_from(row),
        )
        for row in rows
    ]


def attempts(cur: duckdb.DuckDBPyConnection, suite_run_id: int) -> int:
    row = cur.execute(
        "SELECT count(*) FROM suite_cells WHERE suite_run_id = ?", [suite_run_id]
    ).fetchone()
    return int(row[0]) if row else 0


# --- votes and verdicts ---


def run_facts(cur: duckdb.DuckDBPyConnection, run_id: int) -> RunFacts | None:
    """A run's entry (a suite cell's model, which may be a collaboration, else the run's model),
    its status, and the prompt it answered (the suite prompt, else the user message before it)."""
    row = cur.execute(
        f"""
        WITH {CELL_INFO}
        SELECT r.id, coalesce(ci.model, fs.collaboration, r.model), r.status, coalesce(ci.prompt, (
            SELECT u.content FROM messages u
            WHERE u.conversation_id = m.conversation_id AND u.role = 'user' AND u.id < m.id
            ORDER BY u.id DESC LIMIT 1))
        FROM runs r JOIN messages m ON m.id = r.message_id
        LEFT JOIN cell_info ci ON ci.run_id = r.id
        LEFT JOIN final_steps fs ON fs.run_id = r.id
        WHERE r.id = ?
        """,
        [run_id],
    ).fetchone()
    return None if row is None else RunFacts(*row)


def record_pair_vote(
    cur: duckdb.DuckDBPyConnection, a_run_id: int, b_run_id: int, outcome: str
) -> int:
    row = cur.execute(
        "INSERT INTO pair_votes (a_run_id, b_run_id, outcome) VALUES (?, ?, ?) RETURNING id",
        [a_run_id, b_run_id, outcome],
    ).fetchone()
    assert row is not None
    return int(row[0])


def record_verdict(
    cur: duckdb.DuckDBPyConnection,
    *,
    a_run_id: int,
    b_run_id: int,
    judge_model: str,
    rubric: str,
    first_verdict: str | None,
    second_verdict: str | None,
    outcome: str | None,
) -> None:
    cur.execute(
        """
        INSERT INTO judge_verdicts (a_run_id, b_run_id, judge_model, rubric, first_verdict,
            second_verdict, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        [a_run_id, b_run_id, judge_model, rubric, first_verdict, second_verdict, outcome],
    )


def add_collaboration_step(
    cur: duckdb.DuckDBPyConnection,
    group_id: str,
    collaboration: str,
    step: int,
    role: str,
    run_id: int,
) -> None:
    cur.execute(
        "INSERT INTO collaboration_steps VALUES (?, ?, ?, ?, ?)",
        [group_id, collaboration, step, role, run_id],
    )


def collaboration_steps(
    cur: duckdb.DuckDBPyConnection, final_run_id: int
) -> list[tuple[str, str, int]]:
    """(role, model, run id) of every step of the collaboration whose last step is this run."""
    rows = cur.execute(
        """
        SELECT s.role, r.model, s.run_id FROM collaboration_steps s JOIN runs r ON r.id = s.run_id
        WHERE s.group_id = (SELECT group_id FROM collaboration_steps WHERE run_id = ?)
        ORDER BY s.step, s.run_id
        """,
        [final_run_id],
    ).fetchall()
    return [(role, model, int(run_id)) for role, model, run_id in rows]


def voted_pairs(cur: duckdb.DuckDBPyConnection) -> set[frozenset[int]]:
    """The pairs of runs a human already voted on, in either order."""
    rows = cur.execute("SELECT a_run_id, b_run_id FROM pair_votes").fetchall()
    return {frozenset((int(a), int(b))) for a, b in rows}


def judged_pairs(cur: duckdb.DuckDBPyConnection, judge_model: str) -> set[tuple[int, int]]:
    rows = cur.execute(
        "SELECT a_run_id, b_run_id FROM judge_verdicts WHERE judge_model = ?", [judge_model]
    ).fetchall()
    return {(int(a), int(b)) for a, b in rows}


def judge_human_pairs(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(human outcome, agreed judge outcome) for every pair both judged, in the human's order."""
    rows = cur.execute(
        """
        SELECT v.outcome,
            CASE WHEN j.a_run_id = v.a_run_id THEN j.outcome
                 WHEN j.outcome = 'a' THEN 'b' WHEN j.outcome = 'b' THEN 'a'
                 ELSE j.outcome END
        FROM pair_votes v JOIN judge_verdicts j
          ON (j.a_run_id = v.a_run_id AND j.b_run_id = v.b_run_id)
          OR (j.a_run_id = v.b_run_id AND j.b_run_id = v.a_run_id)
        WHERE j.outcome IS NOT NULL
        """
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


# The suite, category, prompt and entry of every run that answered a suite cell. The entry is
# what a leaderboard ranks: the cell's model or collaboration and, when the run tried more than
# one preset, the preset's temperature and top p (each preset of a model is an entry of its own;
# the same settings in another run pool with it). Then the final step of every collaboration,
# named by it: a Compare column's collaboration is ranked under its name, not its last model.
CELL_INFO = """
    cell_info AS (
        SELECT DISTINCT ON (c.run_id) c.run_id, sr.suite_id, p.category, p.prompt,
            CASE WHEN json_array_length(sr.presets) > 1 THEN printf('%s [t %g · top p %g]',
                c.model,
                json_extract(sr.presets, '$[' || c.preset_index || '].temperature')::DOUBLE,
                json_extract(sr.presets, '$[' || c.preset_index || '].top_p')::DOUBLE)
            ELSE c.model END AS model
        FROM suite_cells c
        JOIN suite_runs sr ON sr.id = c.suite_run_id
        JOIN suite_prompts p ON p.suite_id = sr.suite_id AND p.position = c.prompt_index
        WHERE c.run_id IS NOT NULL
    ),
    final_steps AS (
        SELECT DISTINCT ON (group_id) run_id, collaboration
        FROM collaboration_steps ORDER BY group_id, step DESC
    )
"""


def pair_outcomes(
    cur: duckdb.DuckDBPyConnection,
    *,
    sources: tuple[str, ...],
    category: str | None = None,
    suite_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[PairOutcome]:
    """Every pairwise outcome from the chosen sources, oldest first: human votes on pairs of
    runs, human votes on Compare rounds (as pairs: the best beats each other answer, a tie or
    'all bad' is a draw between every pair), and judge verdicts both orders agreed on. With a
    category or suite, only outcomes over suite cells of it count."""
    rows = cur.execute(
        f"""
        WITH {CELL_INFO},
        outcomes AS (
            SELECT 'human' AS source, a_run_id, b_run_id, outcome, created_at FROM pair_votes
            UNION ALL
            SELECT 'judge', a_run_id, b_run_id, outcome, created_at FROM judge_verdicts
            WHERE outcome IS NOT NULL
            UNION ALL
            SELECT 'human', ea.run_id, eb.run_id,
                CASE WHEN v.outcome = 'best' THEN 'a' ELSE 'tie' END, v.created_at
            FROM votes v
            JOIN compare_entries ea ON ea.round_id = v.round_id
            JOIN compare_entries eb ON eb.round_id = v.round_id
            WHERE (v.outcome = 'best' AND ea.label = v.winner_label AND eb.label <> ea.label)
               OR (v.outcome <> 'best' AND ea.position < eb.position)
        )
        SELECT o.source, coalesce(ci.model, fa.collaboration, ra.model),
            coalesce(cb.model, fb.collaboration, rb.model), o.outcome,
            length(ma.content), length(mb.content),
            o.a_run_id, o.b_run_id, o.created_at
        FROM outcomes o
        JOIN runs ra ON ra.id = o.a_run_id JOIN messages ma ON ma.id = ra.message_id
        JOIN runs rb ON rb.id = o.b_run_id JOIN messages mb ON mb.id = rb.message_id
        LEFT JOIN cell_info ci ON ci.run_id = o.a_run_id
        LEFT JOIN cell_info cb ON cb.run_id = o.b_run_id
        LEFT JOIN final_steps fa ON fa.run_id = o.a_run_id
        LEFT JOIN final_steps fb ON fb.run_id = o.b_run_id
        WHERE list_contains($sources, o.source)
          AND ($category IS NULL OR ci.category = $category)
          AND ($suite IS NULL OR ci.suite_id = $suite)
          AND ($since IS NULL OR o.created_at >= $since)
          AND ($until IS NULL OR o.created_at < $until)
        ORDER BY o.created_at, o.a_run_id
        """,
        {
            "sources": list(sources),
            "category": category,
            "suite": suite_id,
            "since": since,
            "until": until,
        },
    ).fetchall()
    return [PairOutcome(*row) for row in rows]


def model_speeds(cur: duckdb.DuckDBPyConnection, run_ids: list[int]) -> list[ModelSpeed]:
    """Per entry, over the given runs that completed: median tokens/s and seconds to answer
    (a collaboration's: its last step's speed, and the time from its first step's start)."""
    if not run_ids:
        return []
    rows = cur.execute(
        f"""
        WITH {CELL_INFO},
        began AS (
            SELECT s.run_id, min(r.started_at) OVER (PARTITION BY s.group_id) AS started_at
            FROM collaboration_steps s JOIN runs r ON r.id = s.run_id
        )
        SELECT coalesce(ci.model, fs.collaboration, r.model),
            median(r.completion_tokens / (r.eval_duration_ns / 1e9))
                FILTER (WHERE r.completion_tokens > 0 AND r.eval_duration_ns > 0),
            median(epoch(r.finished_at) - epoch(coalesce(b.started_at, r.started_at)))
        FROM runs r LEFT JOIN cell_info ci ON ci.run_id = r.id
        LEFT JOIN began b ON b.run_id = r.id
        LEFT JOIN final_steps fs ON fs.run_id = r.id
        WHERE r.id IN (SELECT unnest($ids)) AND r.status = 'complete'
        GROUP BY ALL
        """,
        {"ids": run_ids},
    ).fetchall()
    return [ModelSpeed(*row) for row in rows]


# --- export and import: the evaluation tables as rows ---

EVALUATION_TABLES = (
    "compare_rounds",
    "compare_entries",
    "votes",
    "suites",
    "suite_prompts",
    "suite_runs",
    "suite_cells",
    "pair_votes",
    "judge_verdicts",
    "collaboration_steps",
)


def evaluation_rows(cur: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """Every row of the evaluation tables (compare rounds and votes, suites, their runs and
    cells, pairwise votes, judge verdicts), by table, in order of id."""
    return {
        table: named_rows(cur.execute(f"SELECT * FROM {table} ORDER BY ALL"))
        for table in EVALUATION_TABLES
    }


def existing_suites(cur: duckdb.DuckDBPyConnection) -> set[tuple[str, datetime]]:
    rows = cur.execute("SELECT name, created_at FROM suites").fetchall()
    return {(name, created_at) for name, created_at in rows}


def insert_evaluation_rows(
    cur: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]
) -> None:
    if not rows:
        return
    columns = list(rows[0])
    cur.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [[row[c] for c in columns] for row in rows],
    )
