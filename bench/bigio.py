"""Big histories: the History benchmark's generated history (10,000 conversations, 1,000,000
messages, cached under bench/data) exported through the REST API as a stream to a file (about
750 MB of JSON), then imported through the REST API into a fresh database. Each runs in a child
process of its own, so each peak resident memory (ru_maxrss) is its own, printed beside the
target: a 500 MB history exports and re-imports with the process's peak under 500 MB.

    python -m bench.bigio            # the whole benchmark
    python -m bench.bigio export DB FILE / import DB FILE   # one side, in this process
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.history_data import DATA_DIR, Shape, generated_database
from bench.support import ROOT, report

TARGET_MB = 500
TIMEOUT = httpx.Timeout(30.0, read=3600.0)  # an import answers once all of it is in


def peak_mb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss would
    carry the parent's peak over, and the parent may have just generated the history)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def opened(db_path: Path):  # type: ignore[no-untyped-def]
    from chatcore.config import Settings
    from chatcore.services import open_services

    return open_services(Settings(ollama_host="http://127.0.0.1:9", db_path=db_path, port=8501))


def export_side(db_path: Path, out: Path) -> dict[str, float]:
    """GET /api/export streamed to `out` by a client in this process, from the app's own server."""
    from testkit.asgi import mounted, served

    services = opened(db_path)
    try:
        with served(mounted(services)) as url:
            before = peak_mb()
            started = time.perf_counter()
            with (
                httpx.stream("GET", f"{url}/api/export", timeout=TIMEOUT) as answer,
                out.open("wb") as file,
            ):
                answer.raise_for_status()
                for chunk in answer.iter_raw():
                    file.write(chunk)
            seconds = time.perf_counter() - started
    finally:
        services.close()
    return {"seconds": seconds, "before_mb": before, "peak_mb": peak_mb()}


def import_side(db_path: Path, source: Path) -> dict[str, float]:
    """POST /api/import with `source` as the body, sent as it is read."""
    from testkit.asgi import mounted, served

    services = opened(db_path)
    try:
        with served(mounted(services)) as url:
            before = peak_mb()
            started = time.perf_counter()
            with source.open("rb") as file:
                answer = httpx.post(f"{url}/api/import", content=file, timeout=TIMEOUT)
            answer.raise_for_status()
            seconds = time.perf_counter() - started
            body = answer.json()
    finally:
        services.close()
    return {
        "seconds": seconds,
        "before_mb": before,
        "peak_mb": peak_mb(),
        "conversations": len(body["imported"]),
        "messages": body["messages"],
        "runs": body["runs"],
    }


def in_child(side: str, db_path: Path, file: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bigio", side, str(db_path), str(file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdict(peak: float) -> str:
    met = "met" if peak < TARGET_MB else "MISSED"
    return f"{peak:.0f} MB peak RSS (target < {TARGET_MB} MB: {met})"


def main() -> None:
    shape = Shape()
    source = generated_database(shape)
    with tempfile.TemporaryDirectory(dir=DATA_DIR, prefix="bigio-") as tmp:
        folder = Path(tmp)
        shutil.copy(source, folder / "source.duckdb")  # opening it may migrate it: a copy
        exported = in_child("export", folder / "source.duckdb", folder / "export.json")
        size_mb = (folder / "export.json").stat().st_size / 2**20
        imported = in_child("import", folder / "target.duckdb", folder / "export.json")
    report(
        f"Big history: {shape.conversations:,} conversations, {shape.messages:,} messages "
        "(REST export and import, each in a process of its own)",
        [
            ("export file", f"{size_mb:,.0f} MB of JSON (format 5)"),
            (
                "export (GET /api/export, streamed)",
                f"{exported['seconds']:.1f} s, {size_mb / exported['seconds']:.1f} MB/s, "
                f"{verdict(exported['peak_mb'])}; {exported['before_mb']:.0f} MB before",
            ),
            (
                "import (POST /api/import, empty database)",
                f"{imported['seconds']:.1f} s, {size_mb / imported['seconds']:.1f} MB/s, "
                f"{verdict(imported['peak_mb'])}; {imported['before_mb']:.0f} MB before",
            ),
            (
                "imported",
                f"{imported['conversations']:,.0f} conversations, {imported['messages']:,.0f} "
                f"messages, {imported['runs']:,.0f} runs",
            ),
            ("the old in-memory path", "not run: the whole document in memory, several GB here"),
        ],
    )


if __name__ == "__main__":
    if len(sys.argv) == 4:
        side = {"export": export_side, "import": import_side}[sys.argv[1]]
        print(json.dumps(side(Path(sys.argv[2]), Path(sys.argv[3]))))
    else:
        main()
