"""The queries behind the Stats page: usage and performance of every finished generation run.

Each query takes the cursor of its unit of work and a `StatsFilter` and returns a pandas DataFrame;
`StatsService.report` (chatcore/stats.py) runs them all in one read transaction. Runs still
streaming are left out everywhere: their figures are not known yet.

Days, hours and weekdays are local time (the database session's time zone). Converting every
run's timestamp through the time-zone database costs more than the rest of a query, so
`LocalClock` finds the zone's offsets once per report and turns a run's UTC second into its
local second with integer arithmetic.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from chatcore.storage import rollup
from chatcore.types import RunStatus, model_spellings

CONTEXT_HITS_SHOWN = 200
REPLY_LENGTH_BINS = 30
HOURLY_UP_TO_DAYS = 3  # a span this short is charted by the hour, longer ones by the day
SECONDS = {"hour": 3600, "day": 86400}
# Run statuses as SQL literals.
STREAMING, STOPPED, ERROR = (
    f"'{status.value}'" for status in (RunStatus.STREAMING, RunStatus.STOPPED, RunStatus.ERROR)
)


@dataclass(frozen=True)
class StatsFilter:
    """What the page is narrowed to; an empty tuple means every value. Days are inclusive."""

    start: date | None = None
    end: date | None = None
    models: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()  # who sent the request: DASHBOARD, or a proxy's client

    def within(self, first_day: date | None, last_day: date | None) -> StatsFilter:
        """The same runs, with a date bound dropped when every finished run (first_day to
        last_day) lies on its side of it: the page's every-day range reads the summaries'
        whole months then, not the days at their edges."""
        start = (
            None
            if self.start is None or first_day is None or self.start <= first_day
            else self.start
        )
        end = None if self.end is None or last_day is None or self.end >= last_day else self.end
        return replace(self, start=start, end=end)

    @property
    def narrows_runs(self) -> bool:
        """True when the filter picks runs by model, backend, host or client (not only by date)."""
        return bool(self.models or self.backends or self.hosts or self.clients)

    def where(self, alias: str = "r") -> tuple[str, list[object]]:
        """The SQL condition selecting the filtered, finished runs, and its parameters."""
        clauses, params = dates_where(self, f"{alias}.started_at")
        clauses = [f"{alias}.status <> {STREAMING}", clauses]
        models = model_spellings(self.models)
        for column, values in (("model", models), ("backend", self.backends)):
            if values:
                clauses.append(f"{alias}.{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        if self.hosts:
            clauses.append(f"{alias}.host IN ({', '.join('?' * len(self.hosts))})")
            params.extend(self.hosts)
        if self.clients:
            clauses.append(f"{client_of(alias)} IN ({', '.join('?' * len(self.clients))})")
            params.extend(self.clients)
        return " AND ".join(clauses), params

    def rollup_where(self, alias: str = "r") -> tuple[str, list[object]]:
        """The same condition over the rows of `run_rollup` (each a quarter hour of one key)."""
        dates, params = dates_where(self, f"{alias}.bucket")
        keys, key_params = self.key_where(alias)
        return f"{dates} AND {keys}", [*params, *key_params]

    def key_where(self, alias: str) -> tuple[str, list[object]]:
        """The condition on model, backend, host and client of a table keyed by them."""
        clauses, params = ["true"], []
        for column, values in (
            ("model", model_spellings(self.models)),
            ("backend", self.backends),
            ("host", self.hosts),
            ("client", self.clients),
        ):
            if values:
                clauses.append(f"{alias}.{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        return " AND ".join(clauses), params

    def digest_spans(self) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
        """The whole UTC months (first, last month number) within the dates, and the days
        (first, last UTC day) around them. The digests count runs by UTC day, so the first and
        last day of a date filter are only as near as the zone's offset."""
        lowest, highest = -(2**31), 2**31 - 1
        start = lowest if self.start is None else (self.start - EPOCH_DAY).days
        end = highest if self.end is None else (self.end - EPOCH_DAY).days
        first_month = lowest if self.start is None else rollup.month_of(start)
        if self.start is not None and rollup.days_of_month(first_month)[0] < start:
            first_month += 1
        last_month = highest if self.end is None else rollup.month_of(end)
        if self.end is not None and rollup.days_of_month(last_month)[1] > end:
            last_month -= 1
        if first_month > last_month:
            return None, [(start, end)]
        days = []
        if self.start is not None and start < rollup.days_of_month(first_month)[0]:
            days.append((start, rollup.days_of_month(first_month)[0] - 1))
        if self.end is not None and end > rollup.days_of_month(last_month)[1]:
            days.append((rollup.days_of_month(last_month)[1] + 1, end))
        return (first_month, last_month), days


EPOCH_DAY = date(1970, 1, 1)
DASHBOARD = rollup.DASHBOARD  # the client of the runs sent from the dashboard's own pages and API


def client_of(alias: str = "r") -> str:
    """A run's client as the filter names it: runs without one came from the dashboard."""
    return f"coalesce({alias}.client, '{DASHBOARD}')"


def dates_where(f: StatsFilter, column: str) -> tuple[str, list[object]]:
    """`column` within the filter's local days (a DATE compares as its local midnight)."""
    clauses, params = ["true"], []
    if f.start is not None:
        clauses.append(f"{column} >= CAST(? AS DATE)")
        params.append(f.start)
    if f.end is not None:
        clauses.append(f"{column} < CAST(? AS DATE) + INTERVAL 1 DAY")
        params.append(f.end)
    return " AND ".join(clauses), params


@dataclass(frozen=True)
class FilterChoices:
    """The values the filters offer: what the finished runs hold."""

    models: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    first_day: date | None = None
    last_day: date | None = None
    clients: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.first_day is None


def filter_choices(cur: duckdb.DuckDBPyConnection) -> FilterChoices:
    """From the daily rollup: the same values as the finished runs, far fewer rows."""
    keys = cur.execute("SELECT DISTINCT model, backend, host, client FROM run_rollup_day")
    rows = keys.fetchall()
    models, backends, hosts, clients = (sorted({row[i] for row in rows}) for i in range(4))
    first_day, last_day = run_days(cur)
    return FilterChoices(models, backends, hosts, first_day, last_day, clients)


def data_version(cur: duckdb.DuckDBPyConnection) -> tuple[object, ...]:
    """Changes whenever a run is added, finishes or goes: the key under which results may be
    cached. A finished run changes the rollup, which is far smaller than the runs."""
    row = cur.execute(
        "SELECT * FROM (SELECT count(*), max(id) FROM runs), "
        "(SELECT count(*), sum(runs), sum(completion_tokens) FROM run_rollup_day)"
    ).fetchone()
    assert row is not None
    return tuple(row)


# --- local time without a time-zone lookup per row ---


@dataclass(frozen=True)
class LocalClock:
    """The session zone's UTC offsets over a span: [(from UTC second, offset in seconds), ...]."""

    offsets: tuple[tuple[int, int], ...] = ((0, 0),)

    @property
    def whole_hours(self) -> bool:
        """True when every offset is a whole number of hours (a UTC hour is a local hour)."""
        return all(offset % 3600 == 0 for _, offset in self.offsets)

    def seconds(self, column: str = "started_at") -> str:
        """SQL for `column`'s local time as seconds since 1970-01-01 00:00 local."""
        utc = f"(epoch_ms({column}) // 1000)"
        first_offset = self.offsets[0][1]
        if len(self.offsets) == 1:
            return f"({utc} + {first_offset})"
        cases = " ".join(
            f"WHEN {utc} < {since} THEN {offset}"
            for (since, _), (_, offset) in zip(self.offsets[1:], self.offsets, strict=False)
        )
        return f"({utc} + CASE {cases} ELSE {self.offsets[-1][1]} END)"


CLOCKS: dict[tuple[object, ...], LocalClock] = {}  # by zone and span: a zone's past is fixed
CLOCKS_KEPT = 8
clocks_lock = threading.Lock()


def local_clock(cur: duckdb.DuckDBPyConnection) -> LocalClock:
    """The zone's offsets over the finished runs' span (remembered: the same zone and span
    always give the same offsets)."""
    row = cur.execute(
        "SELECT current_setting('TimeZone'), min(utc_day), max(utc_day) FROM run_rollup_day"
    ).fetchone()
    assert row is not None
    key = tuple(row)
    with clocks_lock:
        if (known := CLOCKS.get(key)) is not None:
            return known
    clock = zone_offsets(cur, row[1], row[2])
    with clocks_lock:
        if len(CLOCKS) >= CLOCKS_KEPT:
            CLOCKS.pop(next(iter(CLOCKS)))
        CLOCKS[key] = clock
    return clock


def zone_offsets(cur: duckdb.DuckDBPyConnection, first: int | None, last: int | None) -> LocalClock:
    """The zone's offsets from the day before UTC day `first` to two days after `last`: sampled
    daily, then every quarter hour through each day whose offset changed (every real-world zone
    changes its offset on a quarter hour, at most once a day)."""
    if first is None or last is None:  # no runs: the offset now
        row = cur.execute(
            "SELECT epoch(now()::TIMESTAMP)::BIGINT - epoch(now())::BIGINT"
        ).fetchone()
        return LocalClock(((0, int(row[0]) if row else 0),))
    rows = cur.execute(
        f"""
        WITH span AS (
            SELECT to_timestamp({(int(first) - 1) * DAY_SECONDS}) AS first,
                to_timestamp({(int(last) + 3) * DAY_SECONDS}) AS last
        ),
        daily AS (
            SELECT d.ts, epoch(d.ts::TIMESTAMP)::BIGINT - epoch(d.ts)::BIGINT AS offset_s
            FROM span, generate_series(span.first, span.last, INTERVAL 1 DAY) AS d(ts)
        ),
        changed AS (
            SELECT ts FROM (SELECT ts, offset_s, lag(offset_s) OVER (ORDER BY ts) AS previous
                            FROM daily)
            WHERE previous <> offset_s
        ),
        samples AS (
            SELECT ts, offset_s FROM daily
            UNION
            SELECT q.ts, epoch(q.ts::TIMESTAMP)::BIGINT - epoch(q.ts)::BIGINT
            FROM changed c,
                generate_series(c.ts - INTERVAL 1 DAY, c.ts, INTERVAL 15 MINUTE) AS q(ts)
        ),
        changes AS (
            SELECT ts, offset_s, lag(offset_s) OVER (ORDER BY ts) AS previous FROM samples
        )
        SELECT epoch(ts)::BIGINT, offset_s FROM changes
        WHERE previous IS NULL OR previous <> offset_s ORDER BY ts
        """
    ).fetchall()
    return LocalClock(tuple((int(since), int(offset)) for since, offset in rows))


# --- the figures ---


ROLLUP_COLUMNS = ", ".join(["model", "backend", "host", "client", *rollup.SUMS])


def rollup_rows(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> tuple[str, list[object]]:
    """A subquery of rollup rows whose sums are those of the runs `f` matches, and its
    parameters: the whole UTC days within its dates from `run_rollup_day`, the part-days at
    either end (a local day straddles two UTC days) from the quarter hours of `run_rollup`."""
    where, params = f.rollup_where()
    quarters = f"SELECT {ROLLUP_COLUMNS} FROM run_rollup r WHERE {where} AND {{}}"
    first, last = whole_utc_days(cur, f)
    if first is not None and last is not None and first > last:  # not one whole UTC day
        return f"({quarters.format('true')})", list(params)
    keys, key_params = f.key_where("r")
    lowest, highest = UTC_DAYS
    parts = [
        f"SELECT {ROLLUP_COLUMNS} FROM run_rollup_day r WHERE utc_day BETWEEN ? AND ? AND {keys}"
    ]
    values: list[object] = [lowest if first is None else first, highest if last is None else last]
    values += key_params
    if first is not None:
        parts.append(quarters.format(f"r.bucket < to_timestamp({first * DAY_SECONDS})"))
        values += params
    if last is not None:
        parts.append(quarters.format(f"r.bucket >= to_timestamp({(last + 1) * DAY_SECONDS})"))
        values += params
    return f"({' UNION ALL '.join(parts)})", values


def run_days(cur: duckdb.DuckDBPyConnection) -> tuple[date | None, date | None]:
    """The local days of the first and last finished run (a quarter hour never straddles a
    local midnight)."""
    row = cur.execute("SELECT min(bucket)::DATE, max(bucket)::DATE FROM run_rollup").fetchone()
    assert row is not None
    return row[0], row[1]


def totals(
    cur: duckdb.DuckDBPyConnection, f: StatsFilter, messages: StatsFilter | None = None
) -> pd.DataFrame:
    """One row: conversations with a matching run, and messages.

    Messages are the messages you sent within the dates (with a model, backend or host filter:
    only in conversations that a matching run answered) plus the matching replies. The
    conversations and replies come from the rollup's quarter hours (chatcore/storage/rollup.py).
    `messages` is the filter whose dates your messages are counted within (default: `f`)."""
    where, params = f.rollup_where()
    summed, summed_params = rollup_rows(cur, f)
    message_where, message_params = dates_where(messages or f, "m.created_at")
    in_conversations = """AND m.conversation_id IN (
        SELECT n.conversation_id FROM run_conversation_numbers n
        WHERE n.number IN (SELECT conversation FROM f))"""
    return cur.execute(
        f"""
        WITH f AS (SELECT DISTINCT conversation FROM run_conversations r WHERE {where})
        SELECT (SELECT count(*) FROM f) AS conversations,
            (SELECT count(*) FROM messages m WHERE m.role = 'user' AND m.forked_from IS NULL
                AND {message_where}
                {in_conversations if f.narrows_runs else ""})
            + (SELECT coalesce(sum(runs), 0) FROM {summed}) AS messages
        """,
        [*params, *message_params, *summed_params],
    ).df()


def usage(
    cur: duckdb.DuckDBPyConnection, f: StatsFilter, clock: LocalClock, grain: str = "day"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Usage over time, and activity by weekday and hour: one pass over the runs for both.

    Over time, per local hour or day (`period`, its local start) and model: runs, errors, stops,
    tokens, generation time and speed. Generation time is the backend's total_duration, or the
    app's clock from start to finish for a run that reported none (stopped, failed).
    `tokens_per_second` is the period's completion tokens over its generation time, counting only
    runs that reported both.

    Activity: runs per local ISO weekday (1 = Monday) and hour of day, only cells that have runs.
    """
    seconds = SECONDS[grain]
    where, params = f.rollup_where()
    # From the rollup: a quarter hour lies within one local hour, so its local start places
    # all of its runs (see chatcore/storage/rollup.py); so does a UTC hour in a zone whose
    # offsets are all whole hours.
    table = "run_rollup_hour" if clock.whole_hours else "run_rollup"
    both = cur.execute(
        f"""
        SELECT grouping(period_bucket, model) = 0 AS over_time,
            TIMESTAMP '1970-01-01' + to_seconds(period_bucket * {seconds}) AS period, model,
            weekday, hour, sum(runs) AS runs,
            coalesce(sum(errors), 0) AS errors, coalesce(sum(stopped), 0) AS stopped,
            coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
            coalesce(sum(completion_tokens), 0) AS completion_tokens,
            coalesce(sum(generation_ns), 0) / 1e9 AS generation_seconds,
            sum(speed_tokens) * 1e9 / nullif(sum(speed_ns), 0) AS tokens_per_second
        FROM (
            SELECT local_s // {seconds} AS period_bucket, model,
                (local_s // 86400 + 3) % 7 + 1 AS weekday, local_s // 3600 % 24 AS hour,
                runs, errors, stopped, prompt_tokens, completion_tokens, generation_ns,
                speed_tokens, speed_ns
            FROM (SELECT {clock.seconds("bucket")} AS local_s, * FROM {table} r WHERE {where})
        )
        GROUP BY GROUPING SETS ((period_bucket, model), (weekday, hour))
        ORDER BY over_time DESC, period, model, weekday, hour
        """,
        params,
    ).df()
    periods = int(both["over_time"].sum())  # the rows over time come first, each part in order
    over_time = both.iloc[:periods].drop(columns=["over_time", "weekday", "hour"])
    over_time["tokens"] = over_time["prompt_tokens"] + over_time["completion_tokens"]
    activity = both.iloc[periods:][["weekday", "hour", "runs", "completion_tokens"]]
    return (
        over_time.reset_index(drop=True),
        activity.astype({"weekday": "int64", "hour": "int64"}).reset_index(drop=True),
    )


# Per-run speeds: NULL where the backend did not report both parts.
SPEEDS = """
    CASE WHEN completion_tokens > 0 AND eval_duration_ns > 0
         THEN completion_tokens * 1e9 / eval_duration_ns END AS tokens_per_second,
    CASE WHEN prompt_tokens > 0 AND prompt_eval_duration_ns > 0
         THEN prompt_tokens * 1e9 / prompt_eval_duration_ns END AS prompt_tokens_per_second,
    load_duration_ns / 1e6 AS load_ms
"""


# Up to this many matching runs, medians and p95 are ranked exactly from the runs themselves;
# beyond it they come from the stored digests (within 1%), to keep the page within 300 ms.
EXACT_QUANTILES_UP_TO = 100_000
QUANTILE_COLUMNS = {
    # column: (metric in the digest, quantile)
    "median_tokens_per_second": (rollup.TOKENS_PER_SECOND, 0.5),
    "p95_tokens_per_second": (rollup.TOKENS_PER_SECOND, 0.95),
    "median_ttft_ms": (rollup.TTFT_MS, 0.5),
    "median_load_ms": (rollup.LOAD_MS, 0.5),
    "median_prompt_tokens_per_second": (rollup.PROMPT_TOKENS_PER_SECOND, 0.5),
    "median_answer_ms": (rollup.ANSWER_MS, 0.5),
}
PER_MODEL_COLUMNS = [
    "model", "runs", "errors", "prompt_tokens", "completion_tokens",
    "median_tokens_per_second", "p95_tokens_per_second", "median_ttft_ms", "median_load_ms",
    "max_load_ms", "median_prompt_tokens_per_second", "thinking_token_share",
    "thinking_time_share", "median_answer_ms",
]  # fmt: skip


def per_model(
    cur: duckdb.DuckDBPyConnection, f: StatsFilter, exact_up_to: int = EXACT_QUANTILES_UP_TO
) -> pd.DataFrame:
    """One row per model, busiest first: counts and sums from the rollup, then the medians and
    p95. Those are exact (linear interpolation between the two nearest runs, as numpy's
    percentile does) when at most `exact_up_to` runs match, else estimated from the digests;
    runs that reported no figure are skipped."""
    sums = per_model_sums(cur, f)
    if sums.empty:
        return pd.DataFrame(columns=PER_MODEL_COLUMNS)
    if int(sums["runs"].sum()) <= exact_up_to:
        quantiles = exact_quantiles(cur, f)
    else:
        quantiles = digest_quantiles(cur, f)
    table = sums.merge(quantiles, on="model", how="left")
    # the time to the answer only means something for a model that thought
    table.loc[~(table.pop("thinking_tokens") > 0), "median_answer_ms"] = None
    busiest_first = table.sort_values(["runs", "model"], ascending=[False, True])
    return busiest_first[PER_MODEL_COLUMNS].reset_index(drop=True)


def per_model_sums(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> pd.DataFrame:
    summed, params = rollup_rows(cur, f)
    return cur.execute(
        f"""
        SELECT model, sum(runs) AS runs, coalesce(sum(errors), 0) AS errors,
            coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
            coalesce(sum(completion_tokens), 0) AS completion_tokens,
            max(max_load_ms) AS max_load_ms,
            -- Reasoning: the share of completion tokens that were thinking, and the share of
            -- generation time (the backend's total) spent before the answer began; NULL for
            -- models that never thought.
            sum(thinking_tokens_answered) / nullif(sum(completion_tokens_thought), 0)
                AS thinking_token_share,
            sum(thinking_ms_timed) / nullif(sum(total_ms_thought), 0) AS thinking_time_share,
            sum(thinking_tokens) AS thinking_tokens
        FROM {summed}
        GROUP BY model
        """,
        params,
    ).df()


def exact_quantiles(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> pd.DataFrame:
    where, params = f.where()
    return cur.execute(
        f"""
        SELECT model, tps[1] AS median_tokens_per_second, tps[2] AS p95_tokens_per_second,
            median_ttft_ms, median_load_ms, median_prompt_tokens_per_second, median_answer_ms
        FROM (
            SELECT model,
                quantile_cont(tokens_per_second, [0.5, 0.95]) AS tps,
                median(ttft_ms) AS median_ttft_ms,
                median(load_ms) AS median_load_ms,
                median(prompt_tokens_per_second) AS median_prompt_tokens_per_second,
                median(answer_ms) AS median_answer_ms
            FROM (SELECT model, ttft_ms, answer_ms, {SPEEDS} FROM runs r WHERE {where})
            GROUP BY model
        )
        """,
        params,
    ).df()


BINS = "model, metric, bin, n"


def digest_quantiles(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> pd.DataFrame:
    """The quantiles from the digests' bins: the bin holding each of the two nearest ranks
    stands for its runs by its middle value."""
    keys, key_params = f.key_where("d")
    months, days = f.digest_spans()
    parts, params = [], []
    if months is not None:
        parts.append(
            f"SELECT {BINS} FROM run_digest_month d WHERE month BETWEEN ? AND ? AND {keys}"
        )
        params += [*months, *key_params]
    for first, last in days:
        parts.append(f"SELECT {BINS} FROM run_digest d WHERE utc_day BETWEEN ? AND ? AND {keys}")
        params += [first, last, *key_params]
    bins = cur.execute(
        f"""
        SELECT model, metric, {rollup.bin_value("bin")} AS value, sum(n) AS n
        FROM ({" UNION ALL ".join(parts)})
        GROUP BY model, metric, bin ORDER BY model, metric, bin
        """,
        params,
    ).fetchnumpy()
    models, metrics = np.asarray(bins["model"], dtype=object), np.asarray(bins["metric"])
    values, counts = np.asarray(bins["value"]), np.asarray(bins["n"])
    rows = []
    # the rows come sorted by model, then metric: each model's and metric's rows are a slice
    starts = np.flatnonzero(np.r_[True, models[1:] != models[:-1]]) if len(models) else []
    for start, end in zip(starts, [*starts[1:], len(models)], strict=True):
        row: dict[str, object] = {"model": models[start]}
        of_model = metrics[start:end]
        for column, (metric, q) in QUANTILE_COLUMNS.items():
            first = start + int(np.searchsorted(of_model, metric, side="left"))
            last = start + int(np.searchsorted(of_model, metric, side="right"))
            row[column] = binned_quantile(values[first:last], counts[first:last], q)
        rows.append(row)
    return pd.DataFrame(rows, columns=["model", *QUANTILE_COLUMNS])


def binned_quantile(values: np.ndarray, counts: np.ndarray, q: float) -> float | None:
    """The q-quantile of `counts[i]` runs at `values[i]` (ascending), interpolated like numpy."""
    total = int(counts.sum())
    if not total:
        return None
    position = (total - 1) * q
    ends = np.cumsum(counts)  # the rank after each bin's last run
    below = float(values[np.searchsorted(ends, np.floor(position), side="right")])
    above = float(values[np.searchsorted(ends, np.ceil(position), side="right")])
    return below + (above - below) * (position - np.floor(position))


def reply_lengths(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> pd.DataFrame:
    """A histogram of completion tokens: equal bins from 0 past the longest, empty ones left out."""
    parts, params = length_counts(cur, f)
    return cur.execute(
        f"""
        WITH lengths AS ({" UNION ALL ".join(parts)}),
        width AS (SELECT greatest(1, ceil((max(tokens) + 1) / {REPLY_LENGTH_BINS}))::BIGINT AS w
                  FROM lengths)
        SELECT (tokens // w) * w AS bin_start, (tokens // w) * w + w AS bin_end,
            sum(n)::BIGINT AS replies
        FROM lengths, width
        GROUP BY ALL ORDER BY bin_start
        """,
        params,
    ).df()


def length_counts(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> tuple[list[str], list[object]]:
    """SELECTs of (tokens, n) whose union counts the matching replies by length, and their
    parameters. The whole UTC months and days within the filter's dates come from
    `run_lengths_month` and `run_lengths`; the runs of the part-days at either end (a local day
    straddles two UTC days) from the runs, so the counts are exact in any time zone."""
    where, params = f.where()
    runs = (
        "SELECT completion_tokens AS tokens, 1 AS n FROM runs r "
        "WHERE {} AND completion_tokens IS NOT NULL AND {}"
    )
    first, last = whole_utc_days(cur, f)
    if first is not None and last is not None and first > last:
        return [runs.format(where, "true")], list(params)  # not one whole UTC day in it
    keys, key_params = f.key_where("r")
    months, days = month_and_day_spans(first, last)
    parts: list[str] = []
    values: list[object] = []
    if months is not None:
        parts.append(
            f"SELECT tokens, n FROM run_lengths_month r WHERE month BETWEEN ? AND ? AND {keys}"
        )
        values += [*months, *key_params]
    for span in days:
        parts.append(
            f"SELECT tokens, n FROM run_lengths r WHERE utc_day BETWEEN ? AND ? AND {keys}"
        )
        values += [*span, *key_params]
    if first is not None:
        parts.append(runs.format(where, f"r.started_at < to_timestamp({first * DAY_SECONDS})"))
        values += params
    if last is not None:
        parts.append(
            runs.format(where, f"r.started_at >= to_timestamp({(last + 1) * DAY_SECONDS})")
        )
        values += params
    return parts, values


DAY_SECONDS = 86400
UTC_DAYS = (-(2**31), 2**31 - 1)  # every UTC day the summaries can hold


def whole_utc_days(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> tuple[int | None, int | None]:
    """The first and last UTC day (days since 1970-01-01) lying wholly within the filter's
    local dates (None: no bound); first > last when there is none."""
    first = last = None
    if f.start is not None:
        row = cur.execute("SELECT epoch_ms(CAST(? AS DATE)::TIMESTAMPTZ)", [f.start]).fetchone()
        assert row is not None
        first = -(-int(row[0]) // (DAY_SECONDS * 1000))  # rounded up
    if f.end is not None:
        row = cur.execute(
            "SELECT epoch_ms((CAST(? AS DATE) + INTERVAL 1 DAY)::TIMESTAMPTZ)", [f.end]
        ).fetchone()
        assert row is not None
        last = int(row[0]) // (DAY_SECONDS * 1000) - 1
    return first, last


def month_and_day_spans(
    first: int | None, last: int | None
) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
    """Whole UTC days first..last (None: unbounded) as the whole months within them (first and
    last month number, None: no whole month) and the day spans around those."""
    lowest, highest = -(2**31), 2**31 - 1
    first_month, last_month = lowest, highest
    if first is not None:
        first_month = rollup.month_of(first)
        if rollup.days_of_month(first_month)[0] < first:
            first_month += 1
    if last is not None:
        last_month = rollup.month_of(last)
        if rollup.days_of_month(last_month)[1] > last:
            last_month -= 1
    if first_month > last_month:
        assert first is not None and last is not None
        return None, [(first, last)]
    days = []
    if first is not None and first < rollup.days_of_month(first_month)[0]:
        days.append((first, rollup.days_of_month(first_month)[0] - 1))
    if last is not None and last > rollup.days_of_month(last_month)[1]:
        days.append((rollup.days_of_month(last_month)[1] + 1, last))
    return (first_month, last_month), days


def context_hits(
    cur: duckdb.DuckDBPyConnection, f: StatsFilter, limit: int = CONTEXT_HITS_SHOWN
) -> pd.DataFrame:
    """Replies whose prompt probably hit the context window, newest first (at most `limit`).

    The window in force is the run's num_ctx (the embedded backend records it), else a num_ctx in
    the run's options, else Ollama's default. A prompt hit it when its token count reached the
    window, or fell far below the app's estimate of its size (Ollama silently drops the oldest
    messages to fit). `total` repeats the count of all such replies on every row.
    """
    where, params = f.where()
    # the hits are found as runs finish (chatcore/storage/rollup.py): here they are only listed
    # (and counted apart: a count over every hit beside each listed row costs more)
    total = cur.execute(f"SELECT count(*) FROM run_context_hits r WHERE {where}", params)
    row = total.fetchone()
    listed = cur.execute(
        f"""
        SELECT id, conversation_id, started_at, model, backend, host, prompt_tokens, num_ctx,
            estimated_tokens, reason
        FROM run_context_hits r WHERE {where}
        ORDER BY started_at DESC, id DESC LIMIT ?
        """,
        [*params, limit],
    ).df()
    listed["total"] = int(row[0]) if row else 0
    return listed


def model_switches(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> pd.DataFrame:
    """Per model switched to: how often, and the load time those switches cost. A switch is a
    run whose host had last served another model (kept as runs finish: rollup.run_switches)."""
    where, params = f.where()
    return cur.execute(
        f"""
        SELECT model, count(*) AS switches,
            coalesce(sum(load_duration_ns), 0) / 1e9 AS load_seconds,
            median(load_duration_ns / 1e6) AS median_load_ms
        FROM run_switches r WHERE {where}
        GROUP BY model ORDER BY load_seconds DESC, model
        """,
        params,
    ).df()


# --- the download ---


def filtered_runs(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> pd.DataFrame:
    """The matching runs themselves, oldest first."""
    where, params = f.where()
    return cur.execute(
        "SELECT * REPLACE (CAST(options AS VARCHAR) AS options) FROM runs r "
        f"WHERE {where} ORDER BY started_at, id",
        params,
    ).df()
