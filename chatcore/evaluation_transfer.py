"""The evaluation's part of the JSON export: compare rounds and their votes, suites, suite runs
and their cells, pairwise votes and judge verdicts.

Rows keep the file's ids; every run id they name is a run of the same file. On import they get
fresh ids (as messages and runs do) and their run ids are mapped to the imported runs' new ids;
a row naming a run that was not imported (its conversation was already here) is left out, and a
suite already here (same name and creation time) is not added twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from chatcore.storage import suites as store
from chatcore.storage import transfer as transfer_store
from chatcore.storage.db import Database


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CompareRoundV1(Row):
    id: int
    prompt: str
    blind: bool
    options: dict[str, Any]
    created_at: AwareDatetime


class CompareEntryV1(Row):
    round_id: int
    label: str
    position: int
    conversation_id: str
    run_id: int


class CompareVoteV1(Row):
    id: int
    round_id: int
    outcome: str
    winner_label: str | None
    created_at: AwareDatetime


class SuiteV1(Row):
    id: int
    name: str
    created_at: AwareDatetime


class SuitePromptV1(Row):
    suite_id: int
    position: int
    prompt: str
    category: str | None
    reference: str | None


class SuiteRunV1(Row):
    id: int
    suite_id: int
    models: list[str]
    presets: list[dict[str, Any]]
    judge: str | None
    state: str
    created_at: AwareDatetime
    finished_at: AwareDatetime | None


class SuiteCellV1(Row):
    id: int
    suite_run_id: int
    prompt_index: int
    model: str
    preset_index: int
    conversation_id: str | None
    run_id: int | None
    error: str | None
    created_at: AwareDatetime


class PairVoteV1(Row):
    id: int
    a_run_id: int
    b_run_id: int
    outcome: str
    created_at: AwareDatetime


class JudgeVerdictV1(Row):
    id: int
    a_run_id: int
    b_run_id: int
    judge_model: str
    rubric: str
    first_verdict: str | None
    second_verdict: str | None
    outcome: str | None
    created_at: AwareDatetime


class CollaborationStepV1(Row):
    group_id: str
    collaboration: str
    step: int
    role: str
    run_id: int


class EvaluationV1(Row):
    compare_rounds: list[CompareRoundV1] = Field(default_factory=list)
    compare_entries: list[CompareEntryV1] = Field(default_factory=list)
    votes: list[CompareVoteV1] = Field(default_factory=list)
    suites: list[SuiteV1] = Field(default_factory=list)
    suite_prompts: list[SuitePromptV1] = Field(default_factory=list)
    suite_runs: list[SuiteRunV1] = Field(default_factory=list)
    suite_cells: list[SuiteCellV1] = Field(default_factory=list)
    pair_votes: list[PairVoteV1] = Field(default_factory=list)
    judge_verdicts: list[JudgeVerdictV1] = Field(default_factory=list)
    collaboration_steps: list[CollaborationStepV1] = Field(default_factory=list)


JSON_COLUMNS = {"options", "models", "presets"}


def evaluation_document(db: Database) -> dict[str, list[dict[str, Any]]]:
    with db.cursor() as cur:
        tables = store.evaluation_rows(cur)
    return {
        table: [
            {
                name: json.loads(value)
                if name in JSON_COLUMNS and isinstance(value, str)
                else value.isoformat()
                if isinstance(value, datetime)
                else value
                for name, value in row.items()
            }
            for row in rows
        ]
        for table, rows in tables.items()
    }


def import_evaluation(
    cur: duckdb.DuckDBPyConnection, evaluation: EvaluationV1, run_ids: Mapping[int, int]
) -> int:
    """Add the file's evaluation rows whose runs were imported; returns how many rows."""
    added = 0

    def fresh(sequence: str, ids: list[int]) -> dict[int, int]:
        """The file's ids kept when free, else moved to a fresh block in the same order."""
        if not ids:
            return {}
        table = sequence.removesuffix("_id_seq")
        offset = transfer_store.id_offset(cur, table, sequence, min(ids), max(ids))
        return {file_id: file_id + offset for file_id in ids}

    def insert(table: str, rows: list[dict[str, Any]]) -> None:
        nonlocal added
        store.insert_evaluation_rows(cur, table, rows)
        added += len(rows)

    # compare rounds whose every entry's run came in
    entries_by_round: dict[int, list[CompareEntryV1]] = {}
    for entry in evaluation.compare_entries:
        entries_by_round.setdefault(entry.round_id, []).append(entry)
    rounds = [
        r
        for r in evaluation.compare_rounds
        if all(e.run_id in run_ids for e in entries_by_round.get(r.id, []))
        and entries_by_round.get(r.id)
    ]
    round_ids = fresh("compare_rounds_id_seq", [r.id for r in rounds])
    insert(
        "compare_rounds",
        [
            {**r.model_dump(), "id": round_ids[r.id], "options": json.dumps(r.options)}
            for r in rounds
        ],
    )
    insert(
        "compare_entries",
        [
            {**e.model_dump(), "round_id": round_ids[e.round_id], "run_id": run_ids[e.run_id]}
            for e in evaluation.compare_entries
            if e.round_id in round_ids
        ],
    )
    votes = [v for v in evaluation.votes if v.round_id in round_ids]
    vote_ids = fresh("votes_id_seq", [v.id for v in votes])
    insert(
        "votes",
        [
            {**v.model_dump(), "id": vote_ids[v.id], "round_id": round_ids[v.round_id]}
            for v in votes
        ],
    )

    # suites not here yet, their prompts, runs and the cells whose runs came in
    present = store.existing_suites(cur)
    suites = [s for s in evaluation.suites if (s.name, s.created_at) not in present]
    suite_ids = fresh("suites_id_seq", [s.id for s in suites])
    insert("suites", [{**s.model_dump(), "id": suite_ids[s.id]} for s in suites])
    insert(
        "suite_prompts",
        [
            {**p.model_dump(), "suite_id": suite_ids[p.suite_id]}
            for p in evaluation.suite_prompts
            if p.suite_id in suite_ids
        ],
    )
    runs = [r for r in evaluation.suite_runs if r.suite_id in suite_ids]
    suite_run_ids = fresh("suite_runs_id_seq", [r.id for r in runs])
    insert(
        "suite_runs",
        [
            {
                **r.model_dump(),
                "id": suite_run_ids[r.id],
                "suite_id": suite_ids[r.suite_id],
                "models": json.dumps(r.models),
                "presets": json.dumps(r.presets),
                # an imported run is not resumed here: its models may not be installed
                "state": "stopped" if r.state == "running" else r.state,
            }
            for r in runs
        ],
    )
    cells = [
        c
        for c in evaluation.suite_cells
        if c.suite_run_id in suite_run_ids and (c.run_id is None or c.run_id in run_ids)
    ]
    cell_ids = fresh("suite_cells_id_seq", [c.id for c in cells])
    insert(
        "suite_cells",
        [
            {
                **c.model_dump(),
                "id": cell_ids[c.id],
                "suite_run_id": suite_run_ids[c.suite_run_id],
                "run_id": None if c.run_id is None else run_ids[c.run_id],
            }
            for c in cells
        ],
    )

    # votes and verdicts over pairs of imported runs
    for table, sequence, rows in (
        ("pair_votes", "pair_votes_id_seq", evaluation.pair_votes),
        ("judge_verdicts", "judge_verdicts_id_seq", evaluation.judge_verdicts),
    ):
        kept = [r for r in rows if r.a_run_id in run_ids and r.b_run_id in run_ids]
        ids = fresh(sequence, [r.id for r in kept])
        insert(
            table,
            [
                {
                    **r.model_dump(),
                    "id": ids[r.id],
                    "a_run_id": run_ids[r.a_run_id],
                    "b_run_id": run_ids[r.b_run_id],
                }
                for r in kept
            ],
        )
    insert(
        "collaboration_steps",
        [
            {**step.model_dump(), "run_id": run_ids[step.run_id]}
            for step in evaluation.collaboration_steps
            if step.run_id in run_ids
        ],
    )
    return added
