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

Migration 16 adds what the rest of a Stats page load needs, so that none of its queries reads
the runs (but for the part-days at a date filter's ends): the rollup summed per UTC hour and per
UTC day, the conversations per quarter hour (a set, for exact distinct counts), reply lengths
per UTC day and month, and the model switches.

A finishing run is only queued (`queue_finished`, in finish_run's transaction); just after, on
a thread of its own, `summarise_queued` adds it to every table: its quarter hour, hour and day of
rollup recomputed (a few runs), its digest and length counts added to, its conversation, context
hit and switch looked up. Stats adds what is queued before it reads, and so does the next start
after a crash. Deleted or imported runs and crash recovery recompute their whole UTC days (and
the switches after the first changed run); migrations 13 and 16 backfill every day. Rebuilding a
day reads only that day's runs (they are stored in time order, so DuckDB skips the others).
Every table equals a fresh recompute from the runs (tests/services/test_stats_rollup.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
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

# Migration 16: what the rest of the page needs, so that no query of a page load reads the runs.
SUMS = [
    "runs", "errors", "stopped", "prompt_tokens", "completion_tokens", "generation_ns",
    "speed_tokens", "speed_ns", "max_load_ms", "thinking_tokens", "thinking_tokens_answered",
    "completion_tokens_thought", "thinking_ms_timed", "total_ms_thought",
]  # fmt: skip
# run_rollup's columns after its keys, with their types
SUM_COLUMNS = TABLES[0].split("client VARCHAR NOT NULL,", 1)[1].rsplit(")", 1)[0]

TABLES_16 = [
    # run_rollup summed per UTC hour: a zone whose offsets are whole hours (nearly all) charts
    # its local hours and days from a third of the rows.
    f"""
    CREATE TABLE run_rollup_hour (
        utc_day INTEGER NOT NULL,
        bucket TIMESTAMPTZ NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR NOT NULL,
        {SUM_COLUMNS}
    )
    """,
    # ... and per UTC day: the sums of the whole days within a filter's dates (the part-days at
    # its ends come from the quarter hours), a seventieth of the rows.
    f"""
    CREATE TABLE run_rollup_day (
        utc_day INTEGER NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR NOT NULL,
        {SUM_COLUMNS}
    )
    """,
    # Which conversations had finished runs, per quarter hour and key: the distinct conversations
    # of any filter, exact (a set, not a count, so that quarters can be added up). Conversations
    # by number (run_conversation_numbers): counting distinct numbers is twice as fast.
    """
    CREATE TABLE run_conversations (
        utc_day INTEGER NOT NULL,
        bucket TIMESTAMPTZ NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR NOT NULL,
        conversation BIGINT NOT NULL
    )
    """,
    # A number for every conversation id with finished runs; never renumbered (a recompute
    # finds the same numbers), gone with its conversation (conversations.CONVERSATION_CLEANUP).
    "CREATE SEQUENCE run_conversation_numbers_seq",
    """
    CREATE TABLE run_conversation_numbers (
        conversation_id VARCHAR NOT NULL,
        number BIGINT NOT NULL
    )
    """,
    # How many finished runs had each reply length (completion tokens), per UTC day and key: the
    # reply-length histogram of whole days; the runs of a filter's partial first and last UTC
    # day are read from the runs themselves, so the histogram stays exact in any time zone.
    """
    CREATE TABLE run_lengths (
        utc_day INTEGER NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR NOT NULL,
        tokens BIGINT NOT NULL,
        n BIGINT NOT NULL
    )
    """,
    # The same counts per UTC month (as run_digest_month), so a long span reads far fewer rows.
    """
    CREATE TABLE run_lengths_month (
        month INTEGER NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR NOT NULL,
        tokens BIGINT NOT NULL,
        n BIGINT NOT NULL
    )
    """,
    # Runs finished but not yet added to the tables: finish_run only queues them (its
    # transaction stays short), summarise_queued adds them just after, and at the latest before
    # Stats reads or the next start. streamed_on: the host the run streamed on.
    """
    CREATE TABLE run_summary_queue (
        run_id BIGINT NOT NULL,
        streamed_on VARCHAR
    )
    """,
    # The finished runs whose host had last served another model (a "switch"): the run the app
    # started just before on the same host (by run id, whatever its status) had another model.
    # A host's first run is not a switch. Columns as the runs name them, for StatsFilter.where.
    """
    CREATE TABLE run_switches (
        utc_day INTEGER NOT NULL,
        id BIGINT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        model VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        host VARCHAR NOT NULL,
        client VARCHAR,
        status VARCHAR NOT NULL,
        load_duration_ns BIGINT
    )
    """,
]

UTC_DAY = f"(epoch_ms(started_at) // {DAY_MS})::INTEGER"
BUCKET = f"to_timestamp(epoch_ms(started_at) // {QUARTER_MS} * {QUARTER_MS // 1000})"
KEYS = f"model, backend, host, coalesce(client, '{DASHBOARD}')"


def rollup_rows(days_where: str) -> str:
    """SELECT of the rollup rows of the finished runs matching `days_where`."""
    return f"""
        SELECT {UTC_DAY} AS utc_day,
            {BUCKET} AS bucket,
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


def conversation_rows(days_where: str) -> str:
    """SELECT of the (quarter hour, key, conversation) rows of the finished runs matching (their
    conversations numbered first: number_conversations)."""
    return f"""
        SELECT DISTINCT {UTC_DAY} AS utc_day, {BUCKET} AS bucket, {KEYS} AS client, n.number
        FROM runs JOIN run_conversation_numbers n USING (conversation_id)
        WHERE status <> {STREAMING} AND {days_where}
    """


def number_conversations(days_where: str) -> str:
    """INSERT numbering the conversations of the finished runs matching that have none yet."""
    return f"""
        INSERT INTO run_conversation_numbers
        SELECT conversation_id, nextval('run_conversation_numbers_seq') FROM (
            SELECT DISTINCT conversation_id FROM runs
            WHERE status <> {STREAMING} AND {days_where}
                AND conversation_id NOT IN (SELECT conversation_id FROM run_conversation_numbers)
            ORDER BY conversation_id
        )
    """


def conversation_number(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> int:
    """The conversation's number, given it now if it has none."""
    row = cur.execute(
        "SELECT number FROM run_conversation_numbers WHERE conversation_id = ?", [conversation_id]
    ).fetchone()
    if row is None:
        row = cur.execute(
            "INSERT INTO run_conversation_numbers "
            "VALUES (?, nextval('run_conversation_numbers_seq')) RETURNING number",
            [conversation_id],
        ).fetchone()
    assert row is not None
    return int(row[0])


def length_rows(days_where: str) -> str:
    """SELECT of the (UTC day, key, reply length) counts of the finished runs matching."""
    return f"""
        SELECT {UTC_DAY} AS utc_day, {KEYS} AS client, completion_tokens AS tokens,
            count(*) AS n
        FROM runs
        WHERE status <> {STREAMING} AND completion_tokens IS NOT NULL AND {days_where}
        GROUP BY ALL
    """


HOUR_OF_BUCKET = "to_timestamp(epoch(bucket)::BIGINT // 3600 * 3600)"


def coarser_rollup(source: str, where: str, hourly: bool) -> str:
    """SELECT of `source`'s rollup rows matching `where`, summed per UTC hour or day."""
    figures = ", ".join(f"{'max' if c == 'max_load_ms' else 'sum'}({c})" for c in SUMS)
    period = f"utc_day, {HOUR_OF_BUCKET} AS bucket" if hourly else "utc_day"
    return f"""
        SELECT {period}, model, backend, host, client, {figures}
        FROM {source} WHERE {where} GROUP BY ALL
    """


# coarser table: (its source, hourly)
COARSER = {"run_rollup_hour": ("run_rollup", True), "run_rollup_day": ("run_rollup_hour", False)}


def rebuild_coarser(cur: duckdb.DuckDBPyConnection, where: str, params: object = None) -> None:
    """Recompute the hourly and daily rollup rows whose UTC days match `where` (on utc_day)."""
    for table, (source, hourly) in COARSER.items():
        cur.execute(f"DELETE FROM {table} WHERE {where}", params)
        cur.execute(f"INSERT INTO {table} {coarser_rollup(source, where, hourly)}", params)


DERIVED_13 = {
    "run_rollup": rollup_rows,
    "run_digest": digest_rows,
    "run_context_hits": context_hit_rows,
}
DERIVED_16 = {"run_conversations": conversation_rows, "run_lengths": length_rows}
DERIVED = DERIVED_13 | DERIVED_16


MONTH_OF_DAY = (
    "(year(DATE '1970-01-01' + utc_day) * 12 + month(DATE '1970-01-01' + utc_day) - 1)::INTEGER"
)


def month_rows(days_where: str, table: str = "run_digest") -> str:
    """SELECT of the monthly rows from the daily ones of `table` matching (whole months)."""
    return f"""
        SELECT {MONTH_OF_DAY} AS month, * EXCLUDE (utc_day, n), sum(n)
        FROM {table} WHERE {days_where}
        GROUP BY ALL
    """


# monthly table: the daily one it sums
MONTHLY_13 = {"run_digest_month": "run_digest"}
MONTHLY_16 = {"run_lengths_month": "run_lengths"}
MONTHLY = MONTHLY_13 | MONTHLY_16


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
        *(f"INSERT INTO {table} {rows('true')} ORDER BY 1" for table, rows in DERIVED_13.items()),
        *(
            f"INSERT INTO {monthly} {month_rows('true', daily)} ORDER BY 1"
            for monthly, daily in MONTHLY_13.items()
        ),
    ]


def backfill_16() -> list[str]:
    """Migration 16's statements: the conversations, reply lengths and switches, backfilled."""
    return [
        *TABLES_16,
        number_conversations("true"),
        *(f"INSERT INTO {table} {rows('true')} ORDER BY 1" for table, rows in DERIVED_16.items()),
        *(
            f"INSERT INTO {monthly} {month_rows('true', daily)} ORDER BY 1"
            for monthly, daily in MONTHLY_16.items()
        ),
        f"INSERT INTO run_switches {switch_rows()} ORDER BY id",
        *(
            f"INSERT INTO {table} {coarser_rollup(source, 'true', hourly)} ORDER BY 1"
            for table, (source, hourly) in COARSER.items()
        ),
    ]


def rebuild_all(cur: duckdb.DuckDBPyConnection) -> None:
    """Recompute every table from every run: for runs written behind the app's back (bulk
    loads of test and benchmark data)."""
    cur.execute("DELETE FROM run_summary_queue")  # every run is counted afresh
    cur.execute(number_conversations("true"))
    for table, rows in DERIVED.items():
        cur.execute(f"DELETE FROM {table}")
        cur.execute(f"INSERT INTO {table} {rows('true')}")
    for monthly, daily in MONTHLY.items():
        cur.execute(f"DELETE FROM {monthly}")
        cur.execute(f"INSERT INTO {monthly} {month_rows('true', daily)}")
    rebuild_coarser(cur, "true")
    rebuild_switches(cur, 0)


def days_of_runs(cur: duckdb.DuckDBPyConnection, where: str, params: object) -> list[int]:
    """The UTC days of the runs matching `where` (run before they change or go)."""
    rows = cur.execute(f"SELECT DISTINCT {UTC_DAY} FROM runs WHERE {where}", params).fetchall()
    return [int(row[0]) for row in rows]


def first_id_of_runs(cur: duckdb.DuckDBPyConnection, where: str, params: object) -> int | None:
    """The lowest id of the runs matching `where`: the switches after it are the ones a change
    to these runs can move (run before they change or go)."""
    row = cur.execute(f"SELECT min(id) FROM runs WHERE {where}", params).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def rebuild_days(
    cur: duckdb.DuckDBPyConnection, days: Iterable[int], first_id: int | None = 0
) -> None:
    """Recompute the tables for these UTC days from the runs as they are now, and the switches
    from run `first_id` on (the lowest id of the runs that changed; 0: all of them; None: none
    changed)."""
    summarise_queued(cur)  # the queued runs of other days are added, these days' recomputed
    days = sorted(set(days))
    if days:
        rebuild_utc_days(cur, days)
    if days and first_id is not None:
        rebuild_switches(cur, first_id)


def rebuild_utc_days(cur: duckdb.DuckDBPyConnection, days: list[int]) -> None:
    # the range lets DuckDB skip the row groups of other days; the list keeps only these days
    in_days = (
        f"started_at >= to_timestamp({days[0] * DAY_MS // 1000}) "
        f"AND started_at < to_timestamp({(days[-1] + 1) * DAY_MS // 1000}) "
        f"AND {UTC_DAY} IN (SELECT unnest($days))"
    )
    params = {"days": days}
    cur.execute(number_conversations(in_days), params)
    for table, rows in DERIVED.items():
        cur.execute(f"DELETE FROM {table} WHERE utc_day IN (SELECT unnest($days))", params)
        cur.execute(f"INSERT INTO {table} {rows(in_days)}", params)
    rebuild_coarser(cur, "utc_day IN (SELECT unnest($days))", params)
    for month in sorted({month_of(day) for day in days}):
        first, last = days_of_month(month)
        for monthly, daily in MONTHLY.items():
            cur.execute(f"DELETE FROM {monthly} WHERE month = ?", [month])
            cur.execute(
                f"INSERT INTO {monthly} {month_rows('utc_day BETWEEN $first AND $last', daily)}",
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
    rebuild_days(cur, days_of_runs(cur, where, params), first_id_of_runs(cur, where, params))


# --- switches ---

SWITCH_COLUMNS = "utc_day, id, started_at, model, backend, host, client, status, load_duration_ns"


def switch_rows(first_id: int = 0) -> str:
    """SELECT of the finished switches among the runs from id `first_id` on (parameter
    $first_id when it is not 0): each run's previous run on its host, by id, is looked up in
    the runs before `first_id` when none of the later ones precedes it."""
    if not first_id:
        before, since = "SELECT NULL::VARCHAR AS host, NULL::VARCHAR AS model LIMIT 0", "true"
    else:
        before = (
            "SELECT host, arg_max(model, id) AS model FROM runs WHERE id < $first_id GROUP BY host"
        )
        since = "id >= $first_id"
    return f"""
        WITH earlier AS ({before}),
        ordered AS (
            SELECT {UTC_DAY} AS utc_day, id, started_at, model, backend, host, client, status,
                load_duration_ns, lag(model) OVER (PARTITION BY host ORDER BY id) AS previous
            FROM runs WHERE {since}
        )
        SELECT {", ".join(f"o.{c}" for c in SWITCH_COLUMNS.split(", "))}
        FROM ordered o LEFT JOIN earlier e ON e.host = o.host
        WHERE o.status <> {STREAMING} AND coalesce(o.previous, e.model) <> o.model
    """


def rebuild_switches(cur: duckdb.DuckDBPyConnection, first_id: int) -> None:
    """Recompute the switches among the runs from id `first_id` on."""
    params = {"first_id": first_id} if first_id else None
    cur.execute("DELETE FROM run_switches WHERE id >= ?", [first_id])
    cur.execute(f"INSERT INTO run_switches {switch_rows(first_id)}", params)


NEARBY_RUNS = 10_000  # a run's previous one on its host is nearly always among these ids


def previous_model(cur: duckdb.DuckDBPyConnection, run_id: int, host: str) -> str | None:
    """The model of the run started just before `run_id` on `host` (None: the host's first).
    The ids just below it are looked at first: DuckDB skips the other row groups."""
    nearby = cur.execute(
        "SELECT arg_max(model, id) FROM runs WHERE host = ? AND id < ? AND id >= ?",
        [host, run_id, run_id - NEARBY_RUNS],
    ).fetchone()
    if nearby is not None and nearby[0] is not None:
        return str(nearby[0])
    anywhere = cur.execute(
        "SELECT arg_max(model, id) FROM runs WHERE host = ? AND id < ?", [host, run_id]
    ).fetchone()
    return None if anywhere is None or anywhere[0] is None else str(anywhere[0])


# --- a run finishing ---


def queue_finished(cur: duckdb.DuckDBPyConnection, run_id: int, streamed_on: str | None) -> None:
    """Note a run that just finished, for summarise_queued to add to the tables."""
    cur.execute("INSERT INTO run_summary_queue VALUES (?, ?)", [run_id, streamed_on])


def queued(cur: duckdb.DuckDBPyConnection) -> bool:
    """True when finished runs wait to be added to the tables."""
    row = cur.execute("SELECT EXISTS (SELECT 1 FROM run_summary_queue)").fetchone()
    return bool(row and row[0])


def summarise_queued(cur: duckdb.DuckDBPyConnection, at_most: int | None = None) -> int:
    """Add the queued finished runs to the tables (in the order they started), `at_most` of
    them (None: all); how many."""
    limit = "" if at_most is None else f" LIMIT {int(at_most)}"
    waiting = cur.execute(
        f"SELECT run_id, streamed_on FROM run_summary_queue ORDER BY run_id{limit}"
    ).fetchall()
    if not waiting:
        return 0
    if at_most is None:
        cur.execute("DELETE FROM run_summary_queue")
    else:
        cur.execute(
            "DELETE FROM run_summary_queue WHERE run_id IN (SELECT unnest($ids))",
            {"ids": [int(run_id) for run_id, _ in waiting]},
        )
    finished: list[tuple[int, FinishedRun, bool]] = []  # each with: answered elsewhere
    for run_id, streamed_on in waiting:
        if (row := finished_run(cur, int(run_id))) is not None:
            run = read_finished(row)
            finished.append((int(run_id), run, streamed_on != run.host))
    # A run answered on another host than it streamed on is recomputed the slow way: its days
    # whole, and the switches from it on. Those cover the other runs of this pass on its days
    # (but their switches, when earlier) and all switches from it on: not added a second time.
    moved = [(run_id, run) for run_id, run, elsewhere in finished if elsewhere]
    rebuilt_days = {run.utc_day for _, run in moved}
    first_moved = min((run_id for run_id, _ in moved), default=None)
    pending = Recomputes()
    for run_id, run, elsewhere in finished:
        if elsewhere:
            continue
        if first_moved is None or run_id < first_moved:
            add_switch(cur, run_id, run)
        if run.utc_day not in rebuilt_days:
            add_finished(cur, run)
            pending.add(run_id, run)
    pending.apply(cur)
    if moved:
        rebuild_days(cur, rebuilt_days, first_moved)
    return len(waiting)


@dataclass
class Recomputes:
    """What the finished runs of one pass share: their quarter hours' rollup rows (with those
    hours' and days'), recomputed once for all of them, and their context hits, added in one
    statement. Those were two thirds of a run's cost (about 22 of 32 ms): a tool sending many
    requests queues many runs of one quarter hour."""

    quarters: set[int] = field(default_factory=set)
    days: set[int] = field(default_factory=set)
    may_hit: list[int] = field(default_factory=list)

    def add(self, run_id: int, run: FinishedRun) -> None:
        self.quarters.add(run.quarter)
        self.days.add(run.utc_day)
        if run.may_hit_the_window:
            self.may_hit.append(run_id)

    def apply(self, cur: duckdb.DuckDBPyConnection) -> None:
        for quarter in sorted(self.quarters):
            recompute_quarter(cur, quarter)
        for hour in sorted({quarter // 3600 * 3600 for quarter in self.quarters}):
            recompute_hour(cur, hour)
        for utc_day in sorted(self.days):
            recompute_day(cur, utc_day)
        if self.may_hit:
            ids = ", ".join(str(run_id) for run_id in self.may_hit)
            cur.execute(f"INSERT INTO run_context_hits {context_hit_rows(f'id IN ({ids})')}")


def recompute_quarter(cur: duckdb.DuckDBPyConnection, quarter: int) -> None:
    """The quarter hour's rollup rows from its runs (a few): sums of doubles stay exactly as a
    fresh recompute adds them."""
    in_quarter = (
        f"started_at >= to_timestamp({quarter}) "
        f"AND started_at < to_timestamp({quarter + QUARTER_MS // 1000})"
    )
    cur.execute("DELETE FROM run_rollup WHERE bucket = to_timestamp(?)", [quarter])
    cur.execute(f"INSERT INTO run_rollup {rollup_rows(in_quarter)}")


def recompute_hour(cur: duckdb.DuckDBPyConnection, hour: int) -> None:
    cur.execute("DELETE FROM run_rollup_hour WHERE bucket = to_timestamp(?)", [hour])
    in_hour = f"bucket >= to_timestamp({hour}) AND bucket < to_timestamp({hour + 3600})"
    cur.execute(f"INSERT INTO run_rollup_hour {coarser_rollup('run_rollup', in_hour, True)}")


def recompute_day(cur: duckdb.DuckDBPyConnection, utc_day: int) -> None:
    cur.execute("DELETE FROM run_rollup_day WHERE utc_day = ?", [utc_day])
    on_day = f"utc_day = {utc_day}"
    cur.execute(f"INSERT INTO run_rollup_day {coarser_rollup('run_rollup_hour', on_day, False)}")


def streaming_host(cur: duckdb.DuckDBPyConnection, run_id: int) -> str | None:
    """The host of a run still streaming (None: it is not), read just before it finishes."""
    row = cur.execute(
        f"SELECT host FROM runs WHERE id = ? AND status = {STREAMING}", [run_id]
    ).fetchone()
    return None if row is None else str(row[0])


def add_finished(cur: duckdb.DuckDBPyConnection, run: FinishedRun) -> None:
    """A finished run's own rows, added by their keys: its conversation in its quarter hour,
    its metrics' bins and its length (its rollup rows and context hits are the Recomputes',
    its switch add_switch's)."""
    cur.execute(
        """
        INSERT INTO run_conversations
        SELECT $utc_day, to_timestamp($quarter), $model, $backend, $host, $client, $conversation
        WHERE NOT EXISTS (
            SELECT 1 FROM run_conversations
            WHERE utc_day = $utc_day AND bucket = to_timestamp($quarter) AND model = $model
                AND backend = $backend AND host = $host AND client = $client
                AND conversation = $conversation
        )
        """,
        {
            **run.keys,
            "utc_day": run.utc_day,
            "quarter": run.quarter,
            "conversation": conversation_number(cur, run.conversation),
        },
    )
    if run.bins:
        add_one(cur, "run_digest", {"utc_day": run.utc_day, **run.keys}, run.bins)
        add_one(cur, "run_digest_month", {"month": month_of(run.utc_day), **run.keys}, run.bins)
    if run.completion_tokens is not None:
        length = {**run.keys, "tokens": run.completion_tokens}
        add_one(cur, "run_lengths", {"utc_day": run.utc_day, **length})
        add_one(cur, "run_lengths_month", {"month": month_of(run.utc_day), **length})


def add_switch(cur: duckdb.DuckDBPyConnection, run_id: int, run: FinishedRun) -> None:
    """The run's switch of model on its host, when it made one."""
    if previous_model(cur, run_id, run.host) not in (None, run.model):
        cur.execute(
            f"INSERT INTO run_switches SELECT {UTC_DAY}, {SWITCH_COLUMNS.split(', ', 1)[1]} "
            "FROM runs WHERE id = ?",
            [run_id],
        )


@dataclass(frozen=True)
class FinishedRun:
    """What the tables need of one run, read once."""

    quarter: int  # the start of its quarter hour, seconds since 1970
    utc_day: int
    keys: dict[str, str]  # model, backend, host, client (the dashboard's when it has none)
    conversation: str
    completion_tokens: int | None
    bins: list[tuple[int, int]]  # (metric, bin) of each metric it reported
    may_hit_the_window: bool  # False only when context_hit_rows would surely not list it

    @property
    def host(self) -> str:
        return self.keys["host"]

    @property
    def model(self) -> str:
        return self.keys["model"]


# What summarise_queued reads of each run.
FINISHED_RUN = f"""
    epoch_ms(started_at) // {QUARTER_MS} * {QUARTER_MS // 1000}, {UTC_DAY}, {KEYS},
    conversation_id, completion_tokens, eval_duration_ns, ttft_ms, load_duration_ns,
    prompt_tokens, prompt_eval_duration_ns, answer_ms, num_ctx, prompt_chars,
    contains(CAST(options AS VARCHAR), 'num_ctx')
"""


def finished_run(cur: duckdb.DuckDBPyConnection, run_id: int) -> tuple[object, ...] | None:
    """The run's FINISHED_RUN columns."""
    return cur.execute(f"SELECT {FINISHED_RUN} FROM runs WHERE id = ?", [run_id]).fetchone()


def read_finished(row: tuple[object, ...]) -> FinishedRun:
    """The run's keys and figures from its FINISHED_RUN columns; its metrics' bins are worked
    out here (as `bin_of` does in SQL): the same expressions in SQL cost DuckDB more to plan
    than the rest of the finish."""
    quarter, utc_day, model, backend, host, client, conversation, tokens, *figures = row
    eval_ns, ttft_ms, load_ns, prompt_tokens, prompt_eval_ns, answer_ms, *window = figures
    values = {
        TOKENS_PER_SECOND: rate(tokens, eval_ns),
        TTFT_MS: ttft_ms,
        LOAD_MS: None if load_ns is None else load_ns / 1e6,
        PROMPT_TOKENS_PER_SECOND: rate(prompt_tokens, prompt_eval_ns),
        ANSWER_MS: answer_ms,
    }
    return FinishedRun(
        quarter=int(quarter),
        utc_day=int(utc_day),
        keys={"model": model, "backend": backend, "host": host, "client": client},
        conversation=str(conversation),
        completion_tokens=None if tokens is None else int(tokens),
        bins=[(metric, bin_number(v)) for metric, v in values.items() if v is not None],
        may_hit_the_window=may_hit_the_window(prompt_tokens, *window),
    )


def may_hit_the_window(
    prompt_tokens: int | None, num_ctx: int | None, prompt_chars: int | None, in_options: bool
) -> bool:
    """context_hit_rows' test, loosened by a token either way (its decimals are SQL's): False
    only for a run it surely leaves out, so the SQL runs just for the few that may be hits."""
    if prompt_tokens is None:
        return False
    if num_ctx is None and in_options:
        return True  # the window is in the options' JSON: let SQL read it
    window = OLLAMA_DEFAULT_NUM_CTX if num_ctx is None else num_ctx
    if prompt_tokens >= window * FULL_WINDOW_SHARE - 1:
        return True
    estimated = (prompt_chars or 0) / CHARS_PER_TOKEN
    return estimated >= MIN_ESTIMATED_TOKENS - 1 and (
        prompt_tokens < estimated * FAR_BELOW_ESTIMATE_SHARE + 1
    )


def rate(tokens: int | None, ns: int | None) -> float | None:
    """Tokens per second, as METRICS has it: None unless both were reported."""
    return tokens * 1e9 / ns if tokens and ns and tokens > 0 and ns > 0 else None


def bin_number(value: float) -> int:
    """`bin_of` in Python: the same double arithmetic, so the same bin."""
    if value <= 0:
        return ZERO_BIN
    return max(math.floor(math.log(value) / math.log(BIN_RATIO)), ZERO_BIN + 1)


def add_one(
    cur: duckdb.DuckDBPyConnection,
    table: str,
    keys: dict[str, object],
    rows: list[tuple[int, int]] | None = None,
) -> None:
    """Count one more run in the table's row of `keys`, or with `rows` in its rows of `keys`
    and each (metric, bin): the rows it already has are added to, the others inserted."""
    where = " AND ".join(f"{column} = ${column}" for column in keys)
    if rows is None:
        if not cur.execute(
            f"UPDATE {table} SET n = n + 1 WHERE {where} RETURNING 1", keys
        ).fetchall():
            cur.execute(
                f"INSERT INTO {table} VALUES ({', '.join('?' * len(keys))}, 1)", [*keys.values()]
            )
        return
    pairs = ", ".join(f"({metric}, {number})" for metric, number in rows)
    updated = cur.execute(
        f"UPDATE {table} SET n = n + 1 WHERE {where} AND (metric, bin) IN ({pairs}) "
        "RETURNING metric, bin",
        keys,
    ).fetchall()
    missing = [row for row in rows if row not in {tuple(u) for u in updated}]
    if missing:
        one = f"({', '.join('?' * len(keys))}, ?, ?, 1)"
        cur.execute(
            f"INSERT INTO {table} VALUES {', '.join([one] * len(missing))}",
            [value for row in missing for value in (*keys.values(), *row)],
        )
