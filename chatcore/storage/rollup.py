"""The Stats rollup: finished runs summed per quarter hour, and digests of their timings per day.

`run_rollup` holds one row per (UTC quarter hour, model, backend, host, client) with the counts
and sums the Stats page adds up; every sum it shows is exact for any filter, because a local day
or hour always starts on a UTC quarter hour (every real-world zone's offset is a whole number of
quarter hours), so a quarter never straddles a filter's edge.

Medians and p95 can't come from sums. `run_digest` keeps, per (UTC day, model, backend, host,
client, metric), how many runs fell in each logarithmic bin (each bin {BIN_RATIO}x wider than
the last). Stats reads quantiles from it only when the filter matches more runs than it can rank
exactly in time (chatcore/storage/stats.py); those are approximate: within 1% of the value, and
with runs near a filter's first and last day counted by their UTC day.

Both tables are rebuilt per UTC day from the runs: at the end of every run, for the days of
deleted or imported runs, and for every day by migration 13 (the backfill). Rebuilding a day
reads only that day's runs (they are stored in time order, so DuckDB skips the others).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import duckdb

from chatcore.types import RunStatus

EPOCH_DAY = date(1970, 1, 1)
QUARTER_MS = 15 * 60 * 1000
DAY_MS = 24 * 3600 * 1000
BIN_RATIO = 1.02
DASHBOARD = "dashboard"  # the client of the runs sent from the dashboard's own pages and API
STREAMING = f"'{RunStatus.STREAMING.value}'"
ERROR = f"'{RunStatus.ERROR.value}'"
STOPPED = f"'{RunStatus.STOPPED.value}'"
ZERO_BIN = -32768  # a value of exactly 0 (a load time of 0 ms, say) has no logarithm

# metric number -> its per-run value (NULL where the backend did not report it)
METRICS: dict[int, str] = {
    1: """CASE WHEN completion_tokens > 0 AND eval_duration_ns > 0
              THEN completion_tokens * 1e9 / eval_duration_ns END""",
    2: "ttft_ms",
    3: "load_duration_ns / 1e6",
    4: """CASE WHEN prompt_tokens > 0 AND prompt_eval_duration_ns > 0
              THEN prompt_tokens * 1e9 / prompt_eval_duration_ns END""",
    5: "answer_ms",
}
TOKENS_PER_SECOND, TTFT_MS, LOAD_MS, PROMPT_TOKENS_PER_SECOND, ANSWER_MS = METRICS

# Context-window signals (see chatcore/storage/stats.py context_hits).
OLLAMA_DEFAULT_NUM_CTX = 4096  # Ollama's window when neither the run nor its options say
FULL_WINDOW_SHARE = 0.95  # a prompt this close to the window probably filled it
CHARS_PER_TOKEN = 4  # the app's own size estimate of a prompt
FAR_BELOW_ESTIMATE_SHARE = 0.5  # a prompt counted below this share of it probably lost messages
MIN_ESTIMATED_TOKENS = 256  # smaller prompts are left alone: templates and tokenisers blur them

TABLES = [
    """
    CREATE TABLE run_rollup (
        utc_day INTEGER NOT NULL,
        bucket TIMESTAMPTZ NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR NOT NULL,
        runs BIGINT NOT NULL,
        errors BIGINT NOT NULL,
        stopped BIGINT NOT NULL,
        prompt_tokens BIGINT,
        completion_tokens BIGINT,
        generation_ns BIGINT,
        speed_tokens BIGINT,
        speed_ns BIGINT,
        max_load_ms DOUBLE,
        thinking_tokens BIGINT,
        thinking_tokens_answered BIGINT,
        completion_tokens_thought BIGINT,
        thinking_ms_timed DOUBLE,
        total_ms_thought DOUBLE
    )
    """,
    """
    CREATE TABLE run_digest (
        utc_day INTEGER NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR NOT NULL,
        metric TINYINT NOT NULL,
        bin SMALLINT NOT NULL,
        n BIGINT NOT NULL
    )
    """,
    # The same bins summed per UTC month (year * 12 + month - 1), so a long span reads a month's
    # rows instead of thirty days' worth.
    """
    CREATE TABLE run_digest_month (
        month INTEGER NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR NOT NULL,
        metric TINYINT NOT NULL,
        bin SMALLINT NOT NULL,
        n BIGINT NOT NULL
    )
    """,
    # The few finished runs whose prompt probably hit the context window, with what the list
    # shows and what the filter needs (status and client as the runs hold them).
    """
    CREATE TABLE run_context_hits (
        utc_day INTEGER NOT NULL,
        id BIGINT NOT NULL,
        conversation_id VARCHAR NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR,
        status VARCHAR NOT NULL,
        prompt_tokens INTEGER,
        num_ctx INTEGER,
        estimated_tokens DOUBLE,
        reason VARCHAR NOT NULL
    )
    """,
]

UTC_DAY = f"(epoch_ms(started_at) // {DAY_MS})::INTEGER"
KEYS = f"model, backend, host, coalesce(client, '{DASHBOARD}')"


def rollup_rows(days_where: str) -> str:
    """SELECT of the rollup rows of the finished runs matching `days_where`."""
    return f"""
        SELECT {UTC_DAY} AS utc_day,
            to_timestamp(epoch_ms(started_at) // {QUARTER_MS} * {QUARTER_MS // 1000}) AS bucket,
            {KEYS} AS client,
            count(*) AS runs,
            count(*) FILTER (WHERE status = {ERROR}) AS errors,
            count(*) FILTER (WHERE status = {STOPPED}) AS stopped,
            sum(prompt_tokens), sum(completion_tokens),
            sum(coalesce(total_duration_ns, epoch_ns(finished_at) - epoch_ns(started_at))),
            sum(completion_tokens) FILTER (completion_tokens > 0 AND eval_duration_ns > 0),
            sum(eval_duration_ns) FILTER (completion_tokens > 0 AND eval_duration_ns > 0),
            max(load_duration_ns / 1e6),
            sum(thinking_tokens),
            sum(thinking_tokens) FILTER (completion_tokens > 0),
            sum(completion_tokens) FILTER (thinking_tokens IS NOT NULL),
            sum(thinking_ms) FILTER (total_duration_ns > 0),
            sum(total_duration_ns / 1e6) FILTER (thinking_ms IS NOT NULL)
        FROM runs WHERE status <> {STREAMING} AND {days_where}
        GROUP BY ALL
    """


def digest_rows(days_where: str) -> str:
    """SELECT of the digest rows of the finished runs matching `days_where`."""
    values = ", ".join(f"({expression}) AS m{number}" for number, expression in METRICS.items())
    names = ", ".join(f"m{number}" for number in METRICS)
    return f"""
        SELECT utc_day, model, backend, host, client,
            CAST(substr(metric, 2) AS TINYINT) AS metric, {bin_of("value")} AS bin, count(*) AS n
        FROM (
            UNPIVOT (
                SELECT {UTC_DAY} AS utc_day, {KEYS} AS client, {values}
                FROM runs WHERE status <> {STREAMING} AND {days_where}
            ) ON {names} INTO NAME metric VALUE value
        )
        GROUP BY ALL
    """


def context_hit_rows(days_where: str) -> str:
    """SELECT of the finished runs matching `days_where` whose prompt probably hit the window.

    The window in force is the run's num_ctx (the embedded backend records it), else a num_ctx in
    the run's options, else Ollama's default. A prompt hit it when its token count reached the
    window, or fell far below the app's estimate of its size (Ollama silently drops the oldest
    messages to fit)."""
    return f"""
        WITH sized AS (
            SELECT {UTC_DAY} AS utc_day, id, conversation_id, started_at, model, backend, host,
                client, status, prompt_tokens,
                CASE WHEN num_ctx IS NOT NULL THEN num_ctx
                     WHEN contains(CAST(options AS VARCHAR), 'num_ctx')
                     THEN coalesce(TRY_CAST(json_extract_string(options, '$.num_ctx') AS INTEGER),
                                   {OLLAMA_DEFAULT_NUM_CTX})
                     ELSE {OLLAMA_DEFAULT_NUM_CTX} END AS num_ctx,
                prompt_chars / {CHARS_PER_TOKEN} AS estimated_tokens
            FROM runs
            WHERE status <> {STREAMING} AND prompt_tokens IS NOT NULL AND {days_where}
        )
        SELECT *,
            CASE WHEN prompt_tokens >= num_ctx * {FULL_WINDOW_SHARE}
                 THEN 'at the context window'
                 ELSE 'far below the estimate' END AS reason
        FROM sized
        WHERE prompt_tokens >= num_ctx * {FULL_WINDOW_SHARE}
           OR (estimated_tokens >= {MIN_ESTIMATED_TOKENS}
               AND prompt_tokens < estimated_tokens * {FAR_BELOW_ESTIMATE_SHARE})
    """


DERIVED = {
    "run_rollup": rollup_rows,
    "run_digest": digest_rows,
    "run_context_hits": context_hit_rows,
}


MONTH_OF_DAY = (
    "(year(DATE '1970-01-01' + utc_day) * 12 + month(DATE '1970-01-01' + utc_day) - 1)::INTEGER"
)


def month_rows(days_where: str) -> str:
    """SELECT of the monthly digest rows from the daily ones matching (whole months of them)."""
    return f"""
        SELECT {MONTH_OF_DAY} AS month, model, backend, host, client, metric, bin, sum(n)
        FROM run_digest WHERE {days_where}
        GROUP BY ALL
    """


def bin_of(value: str) -> str:
    """SQL for a value's bin number; its bin holds the values in [ratio^bin, ratio^(bin+1))."""
    return (
        f"CASE WHEN {value} <= 0 THEN {ZERO_BIN} "
        f"ELSE greatest(floor(ln({value}) / ln({BIN_RATIO})), {ZERO_BIN + 1}) END::SMALLINT"
    )


def bin_value(bin_column: str) -> str:
    """SQL for the value standing for a bin: its geometric middle (0 for the zero bin)."""
    middle = f"pow({BIN_RATIO}, {bin_column} + 0.5)"
    return f"CASE WHEN {bin_column} = {ZERO_BIN} THEN 0.0 ELSE {middle} END"


def backfill() -> list[str]:
    """Migration 13's statements: the tables, filled from every finished run."""
    return [
        *TABLES,
        # in time order, so that rebuilding a day skips the other days' row groups
        *(f"INSERT INTO {table} {rows('true')} ORDER BY 1" for table, rows in DERIVED.items()),
        f"INSERT INTO run_digest_month {month_rows('true')} ORDER BY 1",
    ]


def rebuild_all(cur: duckdb.DuckDBPyConnection) -> None:
    """Recompute both tables from every run: for runs written behind the app's back (bulk
    loads of test and benchmark data)."""
    for table, rows in DERIVED.items():
        cur.execute(f"DELETE FROM {table}")
        cur.execute(f"INSERT INTO {table} {rows('true')}")
    cur.execute("DELETE FROM run_digest_month")
    cur.execute(f"INSERT INTO run_digest_month {month_rows('true')}")


def days_of_runs(cur: duckdb.DuckDBPyConnection, where: str, params: object) -> list[int]:
    """The UTC days of the runs matching `where` (run before they change or go)."""
    rows = cur.execute(f"SELECT DISTINCT {UTC_DAY} FROM runs WHERE {where}", params).fetchall()
    return [int(row[0]) for row in rows]


def rebuild_days(cur: duckdb.DuckDBPyConnection, days: Iterable[int]) -> None:
    """Recompute both tables for these UTC days from the runs as they are now."""
    days = sorted(set(days))
    if not days:
        return
    # the range lets DuckDB skip the row groups of other days; the list keeps only these days
    in_days = (
        f"started_at >= to_timestamp({days[0] * DAY_MS // 1000}) "
        f"AND started_at < to_timestamp({(days[-1] + 1) * DAY_MS // 1000}) "
        f"AND {UTC_DAY} IN (SELECT unnest($days))"
    )
    params = {"days": days}
    for table, rows in DERIVED.items():
        cur.execute(f"DELETE FROM {table} WHERE utc_day IN (SELECT unnest($days))", params)
        cur.execute(f"INSERT INTO {table} {rows(in_days)}", params)
    for month in sorted({month_of(day) for day in days}):
        first, last = days_of_month(month)
        cur.execute("DELETE FROM run_digest_month WHERE month = ?", [month])
        cur.execute(
            f"INSERT INTO run_digest_month {month_rows('utc_day BETWEEN $first AND $last')}",
            {"first": first, "last": last},
        )


def month_of(utc_day: int) -> int:
    """A UTC day's month number, as run_digest_month counts them."""
    day = EPOCH_DAY + timedelta(days=utc_day)
    return day.year * 12 + day.month - 1


def days_of_month(month: int) -> tuple[int, int]:
    """The first and last UTC day of a month number."""
    first = date(month // 12, month % 12 + 1, 1)
    following = date((month + 1) // 12, (month + 1) % 12 + 1, 1)
    return (first - EPOCH_DAY).days, (following - EPOCH_DAY).days - 1


def rebuild_runs(cur: duckdb.DuckDBPyConnection, where: str, params: object) -> None:
    """Recompute the days of the runs matching `where` (after they were added or changed)."""
    rebuild_days(cur, days_of_runs(cur, where, params))
