"""A dashboard process that starts a suite run and keeps running until killed: the resume test
kills it with SIGKILL mid-run and opens the same database again.

    python -m testkit.suite_process DB_PATH OLLAMA_URL PROMPTS MODEL [MODEL ...]

Prints the suite run's id once the run has started.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import open_services


def main() -> None:
    db_path, url, prompts, *models = sys.argv[1:]
    services = open_services(Settings(ollama_host=url, db_path=Path(db_path), port=0))
    suite_id = services.suites.create_suite(
        "resume", [f"Prompt number {i}" for i in range(int(prompts))]
    )
    run_id = services.suites.start_run(suite_id, models, GenerationParams(max_tokens=50))
    print(run_id, flush=True)
    while True:  # until killed
        time.sleep(1)


if __name__ == "__main__":
    main()
