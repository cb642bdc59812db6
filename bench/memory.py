"""The app's resident memory: `streamlit run server.py` after start, after every page is visited
in Debian's chromium, and after a chat (the reply from a loopback Ollama in its own process, so
the embedded model is never loaded). Read from /proc/PID/status (VmRSS) of the server process.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.support import fake_ollama_process, report
from testkit.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_process, wait_until_idle

TARGET_MB = 300
SETTLE_SECONDS = 2.0  # let the process return what a page run allocated for the moment


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def measure() -> list[tuple[str, str]]:
    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        fake_ollama_process("--tokens", "60", "--delay", "0.005") as ollama_url,
        streamlit_process(
            {"OLLAMA_HOST": ollama_url, "CHAT_DB": str(Path(tmp) / "chat.duckdb")},
            Path(tmp) / "streamlit.log",
        ) as (url, server),
        sync_playwright() as playwright,
    ):
        rows.append(("after start (answering, no page yet)", f"{resident_mb(server.pid):.0f} MB"))
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.goto(url)
        wait_until_idle(page)
        links = page.get_by_test_id("stSidebarNav").get_by_role("link")
        names = [links.nth(i).inner_text().strip().splitlines()[-1] for i in range(links.count())]
        for name in names:
            page.get_by_test_id("stSidebarNav").get_by_text(name, exact=True).click()
            wait_until_idle(page)
        time.sleep(SETTLE_SECONDS)
        visited = resident_mb(server.pid)
        rows.append((f"after visiting every page ({len(names)})", f"{visited:.0f} MB"))
        page.get_by_test_id("stSidebarNav").get_by_text(names[0], exact=True).click()
        wait_until_idle(page)
        page.get_by_test_id("stChatInputTextArea").fill("Hello, how much memory do you use?")
        page.keyboard.press("Enter")
        wait_until_idle(page)
        page.get_by_text("w59").first.wait_for(timeout=30_000)
        wait_until_idle(page)
        time.sleep(SETTLE_SECONDS)
        chatted = resident_mb(server.pid)
        rows.append((f"after a chat (target <= {TARGET_MB} MB)", f"{chatted:.0f} MB"))
        browser.close()
    return rows


def main() -> None:
    report("memory: the app's resident set (VmRSS), embedded model not loaded", measure())


if __name__ == "__main__":
    main()
