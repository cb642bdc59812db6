"""Work the first visit to History and Stats would otherwise do, done once at start in the
background: the conversation summaries brought up to date, the list, the models filter, the
default Stats report, and DuckDB's buffers filled with the searched text and words.

Without it the first user to open History after a start waited for all of it (2 s on the
generated 10,000-conversation history); later visits only read what is kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chatcore.errors import DashboardError
from chatcore.logs import event
from chatcore.services import Services

# Matches nothing: a scan for it reads all of the folded text once, and a search for it the
# conversations' words, so the first real search finds both in memory.
UNFOUND = "\x00warm-up\x00"


def warm_up(services: Services) -> float:
    """Do the first visits' work now; returns the seconds it took."""
    started = time.perf_counter()
    services.history.refresh_summaries()
    services.history.list_conversations()
    services.history.model_names()
    services.stats.warm_up()
    services.history.search(UNFOUND, by_words=False)
    services.history.search(UNFOUND)
    return time.perf_counter() - started


# Set once a page has been drawn. The warm-up waits for it (or FIRST_PAGE_WAIT seconds): it
# uses both cores, and the first page would otherwise wait for it instead of the other way round.
FIRST_PAGE = threading.Event()
FIRST_PAGE_WAIT = 10.0
# The page's run ends before its browser is done: it still fetches the scripts of the widgets it
# shows (some forty files, from this process) and draws them, 1-2 s here. A warm-up started at
# the run's end took the cores (and the GIL) from both and made the first load 1-2 s longer.
FIRST_PAGE_SETTLE = 3.0
SENDS_PAUSE, SENDS_WAIT = 1.0, 60.0  # then a pause in the sends, for a minute at most


def first_page_drawn() -> None:
    FIRST_PAGE.set()


def after_the_first_page(wait: float = FIRST_PAGE_WAIT, settle: float = FIRST_PAGE_SETTLE) -> None:
    """Return `settle` seconds after a page has been drawn (its browser done with it), or after
    `wait` seconds when none is asked for."""
    if FIRST_PAGE.wait(wait):
        time.sleep(settle)


def start_warm_up(
    open_services: Callable[[], Services], before: Callable[[], None] | None = None
) -> threading.Thread:
    """`warm_up` on a daemon thread, after `before` returns (server.py: after the first page);
    a database another process holds is left for the page to report (it says which process
    holds it)."""

    def run() -> None:
        if before is not None:
            before()
        try:
            services = open_services()
            # nor while tools send through the proxies: its queries would take turns with theirs
            services.db.turns.wait_for_a_pause(SENDS_PAUSE, SENDS_WAIT, lambda: False)
            took = warm_up(services)
        except DashboardError as error:
            event("warm_up_skipped", reason=type(error).__name__)
            return
        event("warm_up", seconds=round(took, 2))

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread
