"""Speed as the user feels it: the dashboard in Debian's chromium (Playwright), `streamlit run`.

Two parts, each figure the median of several runs beside its target:
- conversations of 2, 100, 300 and 1,000 messages (imported through the REST-free transfer
  service into a fresh database): open one until the page is idle, from its sidebar entry as a
  user switches conversations, and in a new tab from its address (in a browser that has been to
  the dashboard before, so Streamlit's scripts are cached, but starting them again); and press
  Enter until the reply's first text shows, with replies from a loopback Ollama in its own
  process that answers at once;
- the generated history of 10,000 conversations and 1,000,000 messages (bench/history_data.py):
  the first page load (at a new address, nothing cached), the first visit to History and to
  Stats in a freshly started server, and a search from Enter to its results.

Enter-to-text is timed inside the page (a keydown listener and a MutationObserver on
performance.now()), so Playwright's polling adds nothing to it. `python -m bench.browser`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.history_data import NEEDLE, generated_database
from bench.support import ROOT, fake_ollama_process, median, report
from chatcore.config import Settings
from chatcore.history import HistoryService
from chatcore.services import open_services
from chatcore.storage.db import Database
from testkit.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server
from testkit.long_conversations import conversation_document

SIZES = [2, 100, 300, 1_000]
VIEWPORT = {"width": 1280, "height": 900}
OPEN_ROUNDS = 5
SEND_ROUNDS = 5
HISTORY_ROUNDS = 3  # fresh servers, each for one first visit of every page
SEARCH_ROUNDS = 5
TARGET_OPEN_1000_S = 1.0
TARGET_FIRST_TEXT_S = 0.15
TARGET_PAGE_S = 1.0
TARGET_SEARCH_S = 0.3
FIRST_REPLY_WORD = "w0"  # testkit.fake_ollama's replies are "w0 w1 ..."
# Page idleness, as testkit.browser.wait_until_idle checks it, without its fixed pause.
IDLE_JS = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  return app && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && document.querySelector("[data-test-script-state='notRunning']") !== null
    && document.querySelectorAll('[data-stale="true"]').length === 0
    && [...document.querySelectorAll("[data-testid='stSidebar'] button")]
         .some(b => b.innerText.includes('New chat'));
}"""

# Installed before Enter: when Enter goes down, and when the reply under `prompt` first shows text.
WATCH_JS = """(prompt) => {
  window.__enterAt = null; window.__textAt = null;
  window.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && window.__enterAt === null) window.__enterAt = performance.now();
  }, {capture: true, once: true});
  const seen = () => {
    const all = document.querySelectorAll("[data-testid='stChatMessage']");
    if (all.length < 2) return false;
    return all[all.length - 2].textContent.includes(prompt)
      && all[all.length - 1].textContent.includes('FIRST_WORD');
  };
  const observer = new MutationObserver(() => {
    if (window.__enterAt !== null && window.__textAt === null && seen()) {
      window.__textAt = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document.body, {childList: true, subtree: true, characterData: true});
}""".replace("FIRST_WORD", FIRST_REPLY_WORD)


# Installed in a page before it loads: notes when the server's "script finished" message
# arrives (a ForwardMsg whose field 6 is set) once window.__watchRuns is on. The end of a run the
# page can't miss, where one the browser draws at once may never show as 'running'.
FINISHED_WATCH_INIT = """(() => {
  const fields = (buffer) => {  // the numbers of a protobuf message's top-level fields
    const bytes = new Uint8Array(buffer), found = [];
    let at = 0;
    const varint = () => {
      let value = 0, shift = 0, byte;
      do { byte = bytes[at++]; value += (byte & 0x7f) * 2 ** shift; shift += 7; }
      while (byte & 0x80 && at < bytes.length);
      return value;
    };
    while (at < bytes.length) {
      const key = varint(), wire = key % 8;
      found.push(Math.floor(key / 8));
      if (wire === 0) varint();
      else if (wire === 2) at += varint();
      else if (wire === 1) at += 8;
      else if (wire === 5) at += 4;
      else break;
    }
    return found;
  };
  const Original = window.WebSocket;
  window.WebSocket = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        if (window.__watchRuns && event.data instanceof ArrayBuffer
            && fields(event.data).includes(6)) window.__finishedAt = performance.now();
      });
    }
  };
})();"""

# Installed before Enter in the search box: when Enter goes down, when the run's end arrives
# and when the main area last changed, all on the page's own clock (no polling in them).
SEARCH_WATCH_JS = """() => {
  window.__enterAt = null; window.__finishedAt = null; window.__changedAt = null;
  window.__watchRuns = true;
  window.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && window.__enterAt === null) window.__enterAt = performance.now();
  }, {capture: true, once: true});
  if (!window.__changes) {
    window.__changes = new MutationObserver(() => {
      if (window.__enterAt !== null) window.__changedAt = performance.now();
    });
    window.__changes.observe(document.querySelector("[data-testid='stMain']"),
      {childList: true, subtree: true, characterData: true});
  }
}"""
SEARCH_SHOWN_JS = """() => (Math.max(window.__finishedAt, window.__changedAt ?? 0)
  - window.__enterAt) / 1000"""


NO_MESSAGES_JS = "() => document.querySelectorAll(\"[data-testid='stChatMessage']\").length === 0"


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_idle(page: Any, ready_js: str = "() => true") -> None:
    page.wait_for_function(f"() => ({IDLE_JS})() && ({ready_js})()", timeout=300_000, polling=50)


def last_message_has(text: str) -> str:
    return (
        "() => { const all = document.querySelectorAll(\"[data-testid='stChatMessage']\");"
        " return all.length > 0"
        f" && all[all.length - 1].textContent.includes({json.dumps(text)}); }}"
    )


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --- conversations of 2 to 1,000 messages ---


Figures = tuple[list[float], list[float], list[float]]  # open in the app, in a new tab; Enter


def measure_conversations(browser: Any, workdir: Path) -> dict[int, Figures]:
    results: dict[int, Figures] = {}
    with fake_ollama_process("--tokens", "40", "--delay", "0") as ollama:
        db_path = workdir / "conversations.duckdb"
        services = open_services(Settings(ollama, db_path, 8501))
        try:
            services.transfer.import_json(conversation_document(SIZES, ollama))
        finally:
            services.close()
        env = {"OLLAMA_HOST": ollama, "CHAT_DB": str(db_path), "EMBEDDED": "0"}
        # One browser profile for every visit, as a user's: after the first, Streamlit's own
        # scripts come from its cache (they are served as immutable), so an open times the app.
        user = browser.new_context(viewport=VIEWPORT)
        with streamlit_server(env, workdir / "conversations.log") as url:
            warm_up(user, url)
            for size in SIZES:
                results[size] = (*open_times(user, url, size), first_text_times(user, url, size))
        user.close()
    return results


def warm_up(browser: Any, url: str) -> None:
    """One visit first, so imports and Streamlit's first-run work don't count as a page's."""
    page = browser.new_page()
    page.goto(f"{url}/?c=size-2")
    wait_idle(page, last_message_has("Answer 0."))
    page.close()


def open_times(browser: Any, url: str, size: int) -> tuple[list[float], list[float]]:
    """Opening the conversation as a user does in the dashboard (its entry in the sidebar, from
    a new chat), and in a new tab from its address (the app's own scripts start there too)."""
    last_text = f"Answer {(size - 1) // 2}."
    in_app, new_tab = [], []
    page = browser.new_page()
    page.goto(url)
    wait_idle(page)
    for _ in range(OPEN_ROUNDS):
        # A new chat's screen has no messages, so the waits can't pass on the screen before:
        # a run that starts and ends within one frame never shows as 'running' to watch for.
        page.locator(".st-key-new-chat button").click()
        wait_idle(page, NO_MESSAGES_JS)
        started = time.perf_counter()
        page.locator(f".st-key-conv-size-{size} button").click()
        wait_idle(page, last_message_has(last_text))
        in_app.append(time.perf_counter() - started)
    page.close()
    for _ in range(OPEN_ROUNDS):
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(f"{url}/?c=size-{size}")
        wait_idle(page, last_message_has(last_text))
        new_tab.append(time.perf_counter() - started)
        page.close()
    return in_app, new_tab


def first_text_times(browser: Any, url: str, size: int) -> list[float]:
    page = browser.new_page()
    page.goto(f"{url}/?c=size-{size}")
    wait_idle(page, last_message_has(f"Answer {(size - 1) // 2}."))
    times = []
    for round_ in range(SEND_ROUNDS):
        prompt = f"bench prompt {size}-{round_}"
        page.evaluate(WATCH_JS, prompt)
        page.get_by_test_id("stChatInputTextArea").fill(prompt)
        page.keyboard.press("Enter")
        page.wait_for_function("() => window.__textAt !== null", timeout=300_000, polling=50)
        enter, text = page.evaluate("() => [window.__enterAt, window.__textAt]")
        times.append((text - enter) / 1000)
        page.wait_for_timeout(150)  # the rerun after the reply begins
        wait_idle(page, last_message_has("w39"))
    page.close()
    return times


# --- the 10,000-conversation history ---


def used_history(workdir: Path) -> Path:
    """The generated history as a user's file would be: its conversation summaries made (a used
    database keeps them up to date; the generator writes none)."""
    used = workdir / "used.duckdb"
    shutil.copy(generated_database(), used)
    db = Database(used)
    try:
        HistoryService(db).refresh_summaries()
        with db.cursor() as cur:
            cur.execute("CHECKPOINT")
    finally:
        db.close()
    return used


def measure_history(browser: Any, workdir: Path) -> dict[str, list[float]]:
    source = used_history(workdir)
    figures: dict[str, list[float]] = {
        "load": [],
        "warm": [],
        "history": [],
        "stats": [],
        "search": [],
        "search in page": [],
    }
    with fake_ollama_process("--tokens", "40", "--delay", "0") as ollama:
        for round_ in range(HISTORY_ROUNDS):
            data = workdir / f"history-{round_}"
            data.mkdir()
            db_path = data / "chat.duckdb"
            shutil.copy(source, db_path)
            env = {"OLLAMA_HOST": ollama, "CHAT_DB": str(db_path), "EMBEDDED": "0"}
            with streamlit_server(env, data / "streamlit.log") as url:
                visit_pages(browser, url, figures, data, searches=round_ == 0)
            shutil.rmtree(data)
    return figures


def warm_up_seconds(data: Path, timeout: float = 120) -> float:
    """Wait for the server's start-up warm-up (chatcore/warmup.py) to end; its duration from its
    log line, or NaN for a server without one."""
    if not (ROOT / "chatcore" / "warmup.py").exists():  # a build from before the warm-up
        return float("nan")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in data.glob("*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if '"event": "warm_up"' in line:
                    return float(json.loads(line)["seconds"])
        time.sleep(0.2)
    return float("nan")


def visit_pages(
    browser: Any, url: str, figures: dict[str, list[float]], data: Path, searches: bool
) -> None:
    page = browser.new_page(viewport=VIEWPORT)  # a new address: nothing of it cached
    page.add_init_script(FINISHED_WATCH_INIT)  # idle until a search turns it on
    figures["load"].append(seconds(lambda: (page.goto(url), wait_idle(page))))
    # A user opens History some seconds after the start: by then the background warm-up is
    # done (its own time is printed apart).
    figures["warm"].append(warm_up_seconds(data))
    main = page.get_by_test_id("stMain")
    figures["history"].append(
        seconds(lambda: (nav(page, "History"), wait_idle(page, heading_js("History"))))
    )
    figures["stats"].append(
        seconds(lambda: (nav(page, "Stats"), wait_idle(page, heading_js("Stats"))))
    )
    if searches:
        nav(page, "History")
        wait_idle(page, heading_js("History"))
        box = main.get_by_role("textbox", name="Search conversations")
        for round_ in range(SEARCH_ROUNDS):
            word = NEEDLE if round_ % 2 == 0 else NEEDLE.capitalize()
            box.fill(word)
            page.evaluate(SEARCH_WATCH_JS)
            started = time.perf_counter()
            box.press("Enter")
            wait_idle(page, f"() => window.__finishedAt !== null && ({found_js(word)})()")
            figures["search"].append(time.perf_counter() - started)
            figures["search in page"].append(page.evaluate(SEARCH_SHOWN_JS))
    page.close()


def nav(page: Any, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()


def heading_js(title: str) -> str:
    return (
        "() => [...document.querySelectorAll(\"[data-testid='stMain'] h1\")]"
        f".some(h => h.textContent.trim() === {json.dumps(title)})"
    )


def found_js(word: str) -> str:
    """The results of a search for `word` are on screen (the box holds it, a count is shown)."""
    return (
        "() => { const box = document.querySelector(\"[aria-label='Search conversations']\");"
        f" return box && box.value === {json.dumps(word)}"
        " && document.querySelector(\"[data-testid='stMain']\").textContent.includes('match'); }"
    )


# --- printing ---


def spread(values: list[float]) -> str:
    return f"{median(values):.2f} s (runs {min(values):.2f}-{max(values):.2f})"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def print_table(conversations: dict[int, Figures]) -> None:
    print("\n== Browser: conversations (median of runs, seconds; Debian chromium, streamlit run)")
    print("| what the user does | " + " | ".join(f"{s:,} messages" for s in SIZES) + " | target |")
    print("|---|" + "---|" * (len(SIZES) + 1))

    def row(figure: int, digits: int) -> str:
        return " | ".join(f"{median(conversations[s][figure]):.{digits}f}" for s in SIZES)

    target = f"1,000: <= {TARGET_OPEN_1000_S} s"
    print(f"| open the conversation from the sidebar (until idle) | {row(0, 2)} | {target} |")
    print(f"| open it in a new tab from its address (until idle) | {row(1, 2)} | - |")
    print(f"| Enter until the reply's first text | {row(2, 3)} | <= {TARGET_FIRST_TEXT_S} s |")
    worst = max(max(conversations[s][2]) for s in SIZES)
    print(f"  (slowest single Enter-to-text {worst:.3f} s; load average {load_average()})")


def print_history(figures: dict[str, list[float]]) -> None:
    report(
        "Browser: 10,000 conversations, 1,000,000 messages (median of runs)",
        [
            ("first page load (target <= 1 s)", spread(figures["load"])),
            ("warm-up at start, in the background", spread(figures["warm"])),
            ("first visit to History (target <= 1 s)", spread(figures["history"])),
            ("first visit to Stats (target <= 1 s)", spread(figures["stats"])),
            ("search, Enter to results (target <= 0.3 s)", spread(figures["search"])),
            (
                "  the same on the page's clock (Enter key to its last change)",
                spread(figures["search in page"]),
            ),
            ("load average", load_average()),
        ],
    )


def main(parts: Sequence[str] = ("conversations", "history")) -> None:
    """`python -m bench.browser [conversations] [history]`: both parts unless one is named."""
    if not Path(CHROMIUM).exists():
        print("\n== Browser: skipped, Debian's chromium is missing (apt-get install chromium)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as folder, chromium() as browser:
        workdir = Path(folder)
        if "conversations" in parts:
            print_table(measure_conversations(browser, workdir))
        if "history" in parts:
            print_history(measure_history(browser, workdir))


if __name__ == "__main__":
    main(sys.argv[1:] or ("conversations", "history"))
