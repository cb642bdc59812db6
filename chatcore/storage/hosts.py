"""Queries over the hosts a user added on the Models page: Ollama and OpenAI-compatible."""

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


def added_openai_hosts(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None, str | None]]:
    """(url, api_key, api_key_env) of every OpenAI-compatible host, oldest first."""
    rows = cur.execute(
        "SELECT url, api_key, api_key_env FROM openai_hosts ORDER BY added_at, url"
    ).fetchall()
    return [(url, key, env) for (url, key, env) in rows]


def add_openai_host(
    cur: duckdb.DuckDBPyConnection, url: str, api_key: str | None, api_key_env: str | None
) -> None:
    cur.execute(
        "INSERT INTO openai_hosts (url, api_key, api_key_env) VALUES (?, ?, ?) "
        "ON CONFLICT (url) DO UPDATE SET api_key = excluded.api_key, "
        "api_key_env = excluded.api_key_env",
        [url, api_key, api_key_env],
    )


def remove_openai_host(cur: duckdb.DuckDBPyConnection, url: str) -> bool:
    row = cur.execute("DELETE FROM openai_hosts WHERE url = ? RETURNING url", [url]).fetchone()
    return row is not None
