"""What Streamlit's own frontend costs before the dashboard does anything: the floor under the
browser targets of issue 14 (first page load <= 1 s, Enter to the reply's first text <= 150 ms).

Timed as bench/browser.py times the dashboard (Debian's chromium, a new page with nothing cached,
until the page is idle with the sidebar's "New chat" drawn; Enter to first text inside the page),
for three apps served the same way (`streamlit run` of an `st.App`, this repo's config.toml):
- bare: one sidebar button;
- widgets: the dashboard's first screen drawn from constants (its sidebar: two selectboxes, two
  sliders, two number inputs, a text area, 16 buttons; seven pages; the chat input), no database,
  no model server;
- the dashboard on the generated 10,000-conversation history (bench/history_data.py).
Each round starts fresh servers and runs the apps one after the other (interleaved), so the
machine's load falls on all alike; the browser's own CPU time (Chrome's TaskDuration) is printed
beside the wall clock, as it depends less on the load. `python -m bench.browser_floor`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.browser import IDLE_JS, VIEWPORT, WATCH_JS, chromium, load_average, used_history
from bench.support import ROOT, fake_ollama_process, median, report
from testkit.browser import CHROMIUM, free_port, wait_for_health

LOAD_ROUNDS = 5
SEND_ROUNDS = 9

SIDEBAR_WIDGETS = """
with st.sidebar:
    st.selectbox("Language / 语言", ["English", "简体中文"])
    st.selectbox("Model", ["llama3.2:latest · 127.0.0.1:11434"])
    st.button("Refresh models", icon=":material/refresh:", width="stretch")
    st.caption("llama3.2:latest can't see images.")
    st.slider("Temperature", 0.0, 1.0, 0.7, 0.05)
    st.slider("Top p", 0.0, 1.0, 0.9, 0.05)
    st.number_input("Max tokens", 1, 32768, 500, 50)
    st.text_area("System prompt", placeholder="You are a helpful assistant.")
    st.number_input("Context size", 0, 131072, 0, 1024)
    st.divider()
    st.button("New chat", key="new-chat", icon=":material/add:", width="stretch")
    for i in range(15):
        st.button(f"Conversation {i} about a topic", key=f"c{i}", type="tertiary", width="stretch")
"""
BARE_APP = """
import streamlit as st
st.sidebar.button("New chat", key="new-chat")
"""
WIDGETS_APP = (
    """
import streamlit as st
st.set_page_config(page_title="Ollama Chat Dashboard", layout="wide")
def chat() -> None:
    st.title("Chat")
    st.caption("Pick a model in the sidebar and say something. Every turn is saved.")
    st.chat_input("Message", key="chat_prompt")
others = [st.Page(lambda: None, title=f"Page {i}", url_path=f"page{i}") for i in range(6)]
pages = st.navigation([st.Page(chat, title="Chat", icon=":material/chat:", default=True), *others])
"""
    + SIDEBAR_WIDGETS
    + "pages.run()\n"
)
# A send at its simplest: the user's turn and the reply's first words drawn at once, after the
# latest 20 messages, as the Chat page draws a long conversation's window.
CHAT_APP = """
import os
import streamlit as st
st.set_page_config(page_title="Ollama Chat Dashboard", layout="wide")
if os.environ.get("FLOOR_WIDGETS") == "1":
<<SIDEBAR>>
turns = st.session_state.setdefault("turns", [])
for role, text in turns[-20:]:
    with st.chat_message(role):
        st.markdown(text)
if prompt := st.chat_input("Message", key="chat_prompt"):
    with st.chat_message("user"):
        st.markdown(prompt)
    with st.chat_message("assistant"):
        st.markdown("w0 w1 w2")
    turns += [("user", prompt), ("assistant", "w0 w1 w2")]
""".replace("<<SIDEBAR>>", "\n".join("    " + line for line in SIDEBAR_WIDGETS.splitlines()))
SERVER = 'import streamlit as st\napp = st.App("app.py")\n'


def write_app(folder: Path, source: str) -> Path:
    """An app folder as `streamlit run` wants it: the script, an st.App, this repo's config."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(source)
    (folder / "server.py").write_text(SERVER)
    shutil.copytree(ROOT / ".streamlit", folder / ".streamlit", dirs_exist_ok=True)
    return folder


@contextmanager
def served(folder: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "server.py", "--server.headless=true"]
    command += [f"--server.port={port}", "--server.address=127.0.0.1"]
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=folder, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_for_health(f"http://127.0.0.1:{port}", server, log)
            time.sleep(1.0)  # the start-up's own work, as a user comes a moment later
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(10)


def first_load(browser: Any, url: str) -> tuple[float, float]:
    """Seconds from a new page (nothing cached) to idle, and the browser's CPU seconds."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(IDLE_JS, timeout=120_000, polling=20)
    took = time.perf_counter() - started
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    context.close()
    return took, float(metrics.get("TaskDuration", float("nan")))


def measure_loads(browser: Any, workdir: Path) -> dict[str, list[tuple[float, float]]]:
    apps = {
        "bare": write_app(workdir / "bare", BARE_APP),
        "widgets": write_app(workdir / "widgets", WIDGETS_APP),
    }
    history = used_history(workdir)
    figures: dict[str, list[tuple[float, float]]] = {"bare": [], "widgets": [], "dashboard": []}
    with fake_ollama_process("--tokens", "40", "--delay", "0") as ollama:
        for round_ in range(LOAD_ROUNDS):
            for name, folder in apps.items():
                with served(folder, {}, workdir / f"{name}.log") as url:
                    figures[name].append(first_load(browser, url))
            db_path = workdir / f"history-{round_}.duckdb"
            shutil.copy(history, db_path)
            env = {"OLLAMA_HOST": ollama, "CHAT_DB": str(db_path), "EMBEDDED": "0"}
            with served(ROOT, env, workdir / "dashboard.log") as url:
                figures["dashboard"].append(first_load(browser, url))
            db_path.unlink()
    return figures


def enter_to_text(page: Any, prompt: str) -> float:
    page.evaluate(WATCH_JS, prompt)
    page.get_by_test_id("stChatInputTextArea").fill(prompt)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__textAt !== null", timeout=60_000, polling=50)
    enter, text = page.evaluate("() => [window.__enterAt, window.__textAt]")
    page.wait_for_timeout(300)  # the run's end
    return (text - enter) / 1000


def measure_sends(browser: Any, workdir: Path) -> dict[str, list[float]]:
    folder = write_app(workdir / "chat", CHAT_APP)
    figures: dict[str, list[float]] = {"alone": [], "with sidebar": []}
    envs = {"alone": {"FLOOR_WIDGETS": "0"}, "with sidebar": {"FLOOR_WIDGETS": "1"}}
    with (
        served(folder, envs["alone"], workdir / "alone.log") as alone,
        served(folder, envs["with sidebar"], workdir / "sidebar.log") as sidebar,
    ):
        pages = {}
        for name, url in (("alone", alone), ("with sidebar", sidebar)):
            pages[name] = browser.new_page(viewport=VIEWPORT)
            pages[name].goto(url)
            pages[name].get_by_test_id("stChatInputTextArea").wait_for()
        for round_ in range(SEND_ROUNDS + 1):
            for name, page in pages.items():
                took = enter_to_text(page, f"floor prompt {round_}")
                if round_:  # the first send loads the chat message's scripts
                    figures[name].append(took)
        for page in pages.values():
            page.close()
    return figures


def spread(values: list[float], unit: float = 1.0, digits: int = 2) -> str:
    scaled = [v * unit for v in values]
    return f"{median(scaled):.{digits}f} (runs {min(scaled):.{digits}f}-{max(scaled):.{digits}f})"


def print_loads(figures: dict[str, list[tuple[float, float]]]) -> None:
    bare = median([t for t, _ in figures["bare"]])
    rows = []
    for name, label in (
        ("bare", "one sidebar button"),
        ("widgets", "the dashboard's first screen, from constants"),
        ("dashboard", "the dashboard, 10,000 conversations"),
    ):
        walls, cpus = [t for t, _ in figures[name]], [c for _, c in figures[name]]
        ratio = median(walls) / bare
        rows.append((f"{label}: s", f"{spread(walls)}  x{ratio:.2f} of bare"))
        rows.append((f"{label}: browser CPU s", spread(cpus)))
    rows.append(("target for the dashboard", "<= 1 s"))
    rows.append(("load average", load_average()))
    report("Browser floor: first page load, new page until idle (median of rounds)", rows)


def print_sends(figures: dict[str, list[float]]) -> None:
    alone = median(figures["alone"])
    report(
        "Browser floor: Enter to the first text of a bare Streamlit chat (median of sends)",
        [
            ("the dialogue alone: s", spread(figures["alone"], digits=3)),
            (
                "with the dashboard's sidebar: s",
                f"{spread(figures['with sidebar'], digits=3)}"
                f"  x{median(figures['with sidebar']) / alone:.2f}",
            ),
            ("target for the dashboard", "<= 0.150 s"),
            ("load average", load_average()),
        ],
    )


def main() -> None:
    if not Path(CHROMIUM).exists():
        print("\n== Browser floor: skipped, Debian's chromium is missing")
        return
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as folder, chromium() as browser:
        workdir = Path(folder)
        print_sends(measure_sends(browser, workdir))
        print_loads(measure_loads(browser, workdir))


if __name__ == "__main__":
    main()
