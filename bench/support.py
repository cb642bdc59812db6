"""Helpers the benchmarks share: a fake Ollama in its own process, and medians."""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def fake_ollama_process(*args: str) -> Iterator[str]:
    """A loopback Ollama in a separate process, so it does not share our GIL; yields its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "testkit.fake_ollama", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait()


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n== {title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}", flush=True)
