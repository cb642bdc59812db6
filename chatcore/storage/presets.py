"""Queries over named presets, and the parameters a model last ran with."""

from __future__ import annotations

import json
from typing import Any

import duckdb


def list_presets(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, dict[str, Any]]]:
    rows = cur.execute("SELECT name, params FROM presets ORDER BY lower(name), name").fetchall()
    return [(name, json.loads(params)) for name, params in rows]


def get_preset(cur: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any] | None:
    row = cur.execute("SELECT params FROM presets WHERE name = ?", [name]).fetchone()
    return None if row is None else json.loads(row[0])


def save_preset(cur: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> None:
    """Create the preset, or replace the one of that name."""
    cur.execute(
        "INSERT INTO presets (name, params) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
        "SET params = excluded.params, updated_at = now()",
        [name, json.dumps(params)],
    )


def delete_preset(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = cur.execute("DELETE FROM presets WHERE name = ? RETURNING name", [name]).fetchone()
    return row is not None


def last_options(cur: duckdb.DuckDBPyConnection, model: str) -> dict[str, Any] | None:
    """The options of the newest run of `model` sent from the dashboard (not through the
    proxies, whose clients choose their own)."""
    row = cur.execute(
        "SELECT options FROM runs WHERE model = ? AND client IS NULL "
        "ORDER BY started_at DESC, id DESC LIMIT 1",
        [model],
    ).fetchone()
    if row is None or row[0] is None:
        return None
    options = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return options if isinstance(options, dict) else None


def preset_rows(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, dict[str, Any], Any]]:
    """(name, params, updated_at) of every preset, by name: what a whole export carries."""
    rows = cur.execute("SELECT name, params, updated_at FROM presets ORDER BY name").fetchall()
    return [(name, json.loads(params), updated_at) for name, params, updated_at in rows]


def add_missing_presets(
    cur: duckdb.DuckDBPyConnection, presets: list[tuple[str, dict[str, Any], Any]]
) -> list[str]:
    """Add the presets whose name is not taken (one already here is the user's: kept as it
    is); returns the names added."""
    added = []
    for name, params, updated_at in presets:
        row = cur.execute(
            "INSERT INTO presets (name, params, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            [name, json.dumps(params), updated_at],
        ).fetchall()
        if row:
            added.append(name)
    return added
