"""The Stats figures on a real DuckDB file, against numbers worked out by hand from the fixture."""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from chatcore import stats
from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.stats import StatsFilter, StatsService
from chatcore.storage.db import Database
from testkit.stats_data import GEMMA, LLAMA, MS, QWEN, RUNS, STREAMING, A, Run, S, insert_runs

ALL = StatsFilter()


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database(db_path)
    insert_runs(database, [*RUNS, STREAMING])
    yield database
    database.close()


@pytest.fixture
def service(db: Database) -> StatsService:
    return StatsService(db)


def report(service: StatsService, f: StatsFilter = ALL) -> stats.StatsReport:
    return service.report(f, service.choices())


def tps(run: Run) -> float | None:
    if run.completion_tokens and run.eval_ns:
        return run.completion_tokens / run.eval_ns * 1e9
    return None


def pps(run: Run) -> float | None:
    if run.prompt_tokens and run.prompt_eval_ns:
        return run.prompt_tokens / run.prompt_eval_ns * 1e9
    return None


def present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def test_headline_numbers(service: StatsService) -> None:
    figures = report(service).headline.iloc[0]
    assert figures["conversations"] == 5  # c1..c5; the streaming run's c5 counts through run 8
    # your 8 messages (one per run except the regeneration, run 4) + the 8 finished replies
    assert figures["messages"] == 8 + 8
    assert figures["replies"] == 8
    assert figures["prompt_tokens"] == 20 + 4000 + 100 + 2000 + 10 + 10
    assert figures["completion_tokens"] == 100 + 50 + 30 + 200 + 10 + 40
    # the backend's total_duration, else the app's clock (the stopped and the failed run)
    assert figures["generation_seconds"] == pytest.approx(2 + 3 + 4 + 1.5 + 0.25 + 1 + 0.5 + 1.1)
    assert figures["error_rate"] == pytest.approx(1 / 8)
    assert figures["stop_rate"] == pytest.approx(1 / 8)


def test_filters_narrow_every_figure(service: StatsService) -> None:
    qwen = report(service, StatsFilter(models=(QWEN,)))
    figures = qwen.headline.iloc[0]
    # c2: your one message (run 4 regenerated run 3's answer) + two replies
    assert (figures["conversations"], figures["messages"], figures["replies"]) == (1, 3, 2)
    assert figures["stop_rate"] == pytest.approx(0.5) and figures["error_rate"] == 0
    assert list(qwen.per_model["model"]) == [QWEN]
    assert set(qwen.usage_over_time["model"]) == {QWEN}
    assert qwen.activity["runs"].sum() == 2

    days = report(service, StatsFilter(start=date(2026, 3, 3), end=date(2026, 3, 4)))
    figures = days.headline.iloc[0]
    # runs 3, 4, 5, 6 in c2, c3, c4; your messages on those days: runs 3, 5 and 6
    assert (figures["conversations"], figures["messages"], figures["replies"]) == (3, 3 + 4, 4)

    embedded = report(service, StatsFilter(backends=("embedded",)))
    assert embedded.headline.iloc[0]["replies"] == 2
    on_a = report(service, StatsFilter(hosts=(A,)))
    assert on_a.headline.iloc[0]["replies"] == 6
    nothing = report(service, StatsFilter(models=(QWEN,), hosts=("local",)))
    assert nothing.headline.iloc[0]["replies"] == 0
    assert nothing.headline.iloc[0]["error_rate"] is None


def test_per_model_table(service: StatsService) -> None:
    table = report(service).per_model.set_index("model")
    assert list(table.index) == [LLAMA, GEMMA, QWEN]  # busiest first, then by name
    for model in (LLAMA, GEMMA, QWEN):
        runs = [r for r in RUNS if r.model == model]
        row = table.loc[model]
        speeds = present([tps(r) for r in runs])
        loads = present([r.load_ns / 1e6 if r.load_ns is not None else None for r in runs])
        assert row["runs"] == len(runs)
        assert row["errors"] == sum(r.status == "error" for r in runs)
        assert row["prompt_tokens"] == sum(r.prompt_tokens or 0 for r in runs)
        assert row["completion_tokens"] == sum(r.completion_tokens or 0 for r in runs)
        assert row["median_tokens_per_second"] == pytest.approx(statistics.median(speeds))
        assert row["p95_tokens_per_second"] == pytest.approx(np.percentile(speeds, 95))
        assert row["median_ttft_ms"] == pytest.approx(
            statistics.median(present([r.ttft_ms for r in runs]))
        )
        assert row["median_load_ms"] == pytest.approx(statistics.median(loads))
        assert row["max_load_ms"] == pytest.approx(max(loads))
        assert row["median_prompt_tokens_per_second"] == pytest.approx(
            statistics.median(present([pps(r) for r in runs]))
        )
    # the same figures written out, for llama: tokens/s 50, 25, 40; p95 between 40 and 50
    assert table.loc[LLAMA, "median_tokens_per_second"] == pytest.approx(40)
    assert table.loc[LLAMA, "p95_tokens_per_second"] == pytest.approx(40 + 0.9 * 10)
    assert table.loc[QWEN, "median_ttft_ms"] == pytest.approx(500)  # 800 and the stopped 200


def test_usage_over_time_by_day(service: StatsService) -> None:
    usage = report(service).usage_over_time
    assert report(service).grain == "day"  # four days of runs
    expected: dict[tuple[date, str], list[Run]] = {}
    for run in RUNS:
        expected.setdefault((run.started.date(), run.model), []).append(run)
    got = {(row.period.date(), row.model): row for row in usage.itertuples()}
    assert set(got) == set(expected)
    for key, runs in expected.items():
        row = got[key]
        assert row.runs == len(runs)
        assert row.tokens == sum((r.prompt_tokens or 0) + (r.completion_tokens or 0) for r in runs)
        measured = [r for r in runs if tps(r) is not None]
        if measured:
            speed = sum(r.completion_tokens for r in measured) / sum(r.eval_ns for r in measured)
            assert row.tokens_per_second == pytest.approx(speed * 1e9)
        else:
            assert pd.isna(row.tokens_per_second)
    # 2 March, llama: 150 tokens in 4 s of generation
    assert got[(date(2026, 3, 2), LLAMA)].tokens_per_second == pytest.approx(37.5)


def test_a_short_span_is_shown_by_the_hour(service: StatsService) -> None:
    one_day = report(service, StatsFilter(start=date(2026, 3, 2), end=date(2026, 3, 2)))
    assert one_day.grain == "hour"
    usage = one_day.usage_over_time
    assert [(p.hour, n) for p, n in zip(usage["period"], usage["runs"], strict=True)] == [(9, 2)]


def test_activity_by_weekday_and_hour(service: StatsService) -> None:
    activity = report(service).activity
    got = {(int(r.weekday), int(r.hour)): int(r.runs) for r in activity.itertuples()}
    assert got == Counter((r.started.isoweekday(), r.started.hour) for r in RUNS)
    assert got[(3, 23)] == 1  # the failed run, Wednesday 23:30


def test_reply_length_histogram(service: StatsService) -> None:
    lengths = report(service).reply_lengths
    counted = [r.completion_tokens for r in RUNS if r.completion_tokens is not None]
    widths = set(lengths["bin_end"] - lengths["bin_start"])
    assert widths == {7}  # ceil((200 + 1) / 30) tokens per bin
    assert lengths["replies"].sum() == len(counted)
    for row in lengths.itertuples():
        assert row.replies == sum(row.bin_start <= n < row.bin_end for n in counted)


def test_context_window_signals(service: StatsService) -> None:
    hits = report(service).context_hits
    assert list(hits["id"]) == [8, 6, 3, 2]  # newest first
    assert set(hits["total"]) == {4}
    reasons = dict(zip(hits["id"], hits["reason"], strict=True))
    assert reasons == {
        8: "at the context window",  # options set num_ctx 10
        6: "at the context window",  # the embedded engine's 2048
        3: "far below the estimate",  # 100 tokens for 4,000 characters
        2: "at the context window",  # Ollama's default 4096
    }
    windows = dict(zip(hits["id"], hits["num_ctx"], strict=True))
    assert windows == {8: 10, 6: 2048, 3: 4096, 2: 4096}
    assert report(service, StatsFilter(models=(GEMMA,))).context_hits["id"].tolist() == [6]


def test_model_switches_and_their_load_time(service: StatsService, db: Database) -> None:
    switches = report(service).model_switches.set_index("model")
    # host A ran llama, llama, qwen (switch, 2 s load), qwen, llama (switch, failed: no load)
    assert switches.loc[QWEN, "switches"] == 1
    assert switches.loc[QWEN, "load_seconds"] == pytest.approx(2.0)
    assert switches.loc[QWEN, "median_load_ms"] == pytest.approx(2000)
    assert switches.loc[LLAMA, "switches"] == 1
    assert switches.loc[LLAMA, "load_seconds"] == 0
    assert GEMMA not in switches.index  # the only model on its host

    # new runs are found incrementally, the same as a fresh look at every run
    later = datetime(2026, 3, 6, 9)
    insert_runs(
        db,
        [
            Run(10, "c6", QWEN, "complete", later, 1.0, 90, 10, 10, S, 700 * MS, S // 10, S),
            Run(11, "c6", QWEN, "complete", later, 1.0, 90, 10, 10, S, 1 * MS, S // 10, S),
        ],
    )
    again = report(service).model_switches.set_index("model")
    assert again.loc[QWEN, "switches"] == 2  # run 10 follows streaming llama run 9
    assert again.loc[QWEN, "load_seconds"] == pytest.approx(2.7)
    fresh = report(StatsService(db)).model_switches
    pd.testing.assert_frame_equal(report(service).model_switches, fresh)


def test_downloads_hold_the_filtered_runs(service: StatsService) -> None:
    everything = pd.read_csv(io.BytesIO(service.runs_csv(ALL)))
    oldest_first = sorted(RUNS, key=lambda r: r.started)
    assert everything["id"].tolist() == [r.id for r in oldest_first]
    qwen = pd.read_parquet(io.BytesIO(service.runs_parquet(StatsFilter(models=(QWEN,)))))
    assert qwen["id"].tolist() == [3, 4]
    assert qwen["status"].tolist() == ["complete", "stopped"]
    assert qwen["load_duration_ns"].iloc[0] == 2000 * MS
    assert {"options", "ttft_ms", "prompt_chars", "num_ctx"} <= set(qwen.columns)


def test_filter_choices_and_an_empty_database(db_path: Path, tmp_path: Path) -> None:
    empty = StatsService(Database(tmp_path / "empty.duckdb"))
    assert empty.choices().empty
    nothing = empty.report(ALL, empty.choices())
    assert nothing.headline.iloc[0]["replies"] == 0
    assert nothing.per_model.empty and nothing.usage_over_time.empty
    assert nothing.context_hits.empty and nothing.model_switches.empty
    empty.db.close()

    db = Database(db_path)
    insert_runs(db, [*RUNS, STREAMING])
    choices = StatsService(db).choices()
    assert choices.models == sorted({r.model for r in RUNS})
    assert choices.backends == ["embedded", "ollama"]
    assert choices.hosts == sorted({A, "local"})
    assert (choices.first_day, choices.last_day) == (date(2026, 3, 2), date(2026, 3, 5))
    db.close()


def test_runs_sent_through_the_app_show_up(services: Services) -> None:
    before = services.stats.version()
    services.chat.send(None, "Hi", "llama3.2", GenerationParams()).consume()
    assert services.stats.version() != before
    figures = services.stats.report(ALL, services.stats.choices())
    assert figures.headline.iloc[0]["messages"] == 2
    row = figures.per_model.iloc[0]
    assert (row["model"], row["runs"], row["completion_tokens"]) == ("llama3.2:latest", 1, 7)
    assert row["median_tokens_per_second"] > 0


@pytest.mark.parametrize("zone", ["Australia/Adelaide", "America/New_York", "Asia/Kathmandu"])
def test_local_days_and_hours_match_the_time_zone_database(db_path: Path, zone: str) -> None:
    """Runs across two years of daylight-saving changes, in zones with half- and
    quarter-hour offsets: the page's integer arithmetic agrees with zoneinfo."""
    db = Database(db_path)
    with db.cursor() as cur:
        cur.execute(f"SET GLOBAL TimeZone = '{zone}'")
    rng = np.random.default_rng(3)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    moments = sorted(base + timedelta(seconds=int(s)) for s in rng.integers(0, 730 * 86400, 400))
    # and one minute either side of every hour, to catch each change of offset at its edge
    for hour in range(0, 730 * 24, 24 * 7):
        edge = base + timedelta(hours=hour)
        moments += [edge - timedelta(minutes=1), edge + timedelta(minutes=1)]
    runs = [
        Run(i + 1, f"z{i}", LLAMA, "complete", moment, 1.0, 10, 5, 5, S, MS, S, S)
        for i, moment in enumerate(sorted(moments))
    ]
    insert_runs(db, runs)
    service = StatsService(db)
    got = report(service)
    local = [run.started.astimezone(ZoneInfo(zone)) for run in runs]
    activity = {(int(r.weekday), int(r.hour)): int(r.runs) for r in got.activity.itertuples()}
    assert activity == Counter((t.isoweekday(), t.hour) for t in local)
    days = Counter(t.date() for t in local)
    assert {row.period.date(): row.runs for row in got.usage_over_time.itertuples()} == days
    db.close()
