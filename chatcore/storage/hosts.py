"""Queries over the Ollama hosts a user added on the Models page."""

from __future__ import annotations

import duckdb


def added_hosts(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cur.execute("SELECT url FROM ollama_hosts ORDER BY added_at, url").fetchall()
    return [url for (url,) in rows]


def add_host(cur: duckdb.DuckDBPyConnection, url: str) -> None:
    cur.execute("INSERT INTO ollama_hosts (url) VALUES (?) ON CONFLICT DO NOTHING", [url])


def remove_host(cur: duckdb.DuckDBPyConnection, url: str) -> bool:
    row = cur.execute("DELETE FROM ollama_hosts WHERE url = ? RETURNING url", [url]).fetchone()
    return row is not None
