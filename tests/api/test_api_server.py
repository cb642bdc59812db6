"""The REST API of the real `streamlit run server.py` process, over real HTTP, beside its pages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from testkit.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    free_port,
    streamlit_server,
    wait_until_idle,
)
from testkit.fake_ollama import FakeModel, FakeOllama

LONG = " ".join(f"w{i}" for i in range(60))


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel("llama2:latest", reply="你好！我是 Llama 2。"),
            FakeModel("echo:latest", echo=True, token_delay=0.01),
            FakeModel("slow:latest", reply=LONG, token_delay=0.05),
        ]
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(ollama: FakeOllama, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("api-server")
    env = {"OLLAMA_HOST": ollama.url, "CHAT_DB": str(tmp / "chat.duckdb")}
    env.pop("CHAT_API_TOKEN", None)
    with streamlit_server(env, tmp / "streamlit.log") as url:
        yield url


def history(url: str, conversation_id: str) -> dict:
    answer = httpx.get(f"{url}/api/history/{conversation_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_readmes_curl_works_verbatim_but_for_the_port(server: str) -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"```sh\n(curl -X POST http://localhost:8501/api/chat.*?)```", readme, re.S)
    assert command, "the README's REST API section lost its curl example"
    port = server.rsplit(":", 1)[1]
    script = command.group(1).replace("localhost:8501", f"localhost:{port}")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["reply"] == "你好！我是 Llama 2。" and reply["status"] == "complete"
    assert reply["conversation_id"] == "default" and reply["model"] == "llama2:latest"
    assert [m["content"] for m in history(server, "default")["messages"]][-2:] == [
        "你好",
        "你好！我是 Llama 2。",
    ]


def test_twenty_concurrent_chats_over_real_http(server: str) -> None:
    jobs = [(f"real-{i % 10}", f"question {i}", i % 3 == 0) for i in range(20)]

    def chat(job: tuple[str, str, bool]) -> str:
        conversation, text, stream = job
        body = {
            "message": text,
            "conversation_id": conversation,
            "stream": stream,
            "model_params": {"model": "echo"},
        }
        answer = httpx.post(f"{server}/api/chat", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        return json.loads(answer.text.splitlines()[-1])["reply"]

    with ThreadPoolExecutor(len(jobs)) as pool:
        replies = list(pool.map(chat, jobs))
    assert replies == [f"You said: {text}" for _, text, _ in jobs]
    for conversation in {c for c, _, _ in jobs}:
        messages = history(server, conversation)["messages"]
        asked = sorted(m["content"] for m in messages if m["role"] == "user")
        assert asked == sorted(t for c, t, _ in jobs if c == conversation)
        answered = sorted(m["content"] for m in messages if m["role"] == "assistant")
        assert answered == sorted(f"You said: {t}" for t in asked)


def test_hanging_up_mid_stream_stores_the_reply_as_stopped(server: str, ollama: FakeOllama) -> None:
    body = {"message": "Go on", "conversation_id": "hang-up", "stream": True}
    body["model_params"] = {"model": "slow"}
    with httpx.stream("POST", f"{server}/api/chat", json=body, timeout=30) as answer:
        lines = answer.iter_lines()
        received = [json.loads(next(lines)) for _ in range(3)]
    assert "".join(r["content"] for r in received) == "w0 w1 w2"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        reply = history(server, "hang-up")["messages"][-1]
        if reply["status"] != "streaming":
            break
        time.sleep(0.1)
    assert reply["status"] == "stopped"
    assert reply["content"].startswith("w0 w1 w2") and "w59" not in reply["content"]


def test_replies_stream_uncompressed_though_the_client_accepts_gzip(server: str) -> None:
    """Streamlit's server gzips what it serves; a relayed reply goes out as it comes."""
    asks = [
        ("/api/chat", {"message": "Hi", "model_params": {"model": "llama2"}, "stream": True}),
        ("/ollama/api/chat", {"model": "llama2", "messages": [{"role": "user", "content": "Hi"}]}),
        (
            "/v1/chat/completions",
            {"model": "llama2", "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
        ),
    ]
    gzip = {"Accept-Encoding": "gzip, deflate"}
    for path, body in asks:
        with httpx.stream("POST", server + path, json=body, headers=gzip, timeout=30) as answer:
            assert answer.status_code == 200, path
            assert "content-encoding" not in answer.headers, path
            assert "Llama" in answer.read().decode(), path
    page = httpx.get(server + "/", headers=gzip, timeout=10)  # the app itself is served as before
    assert page.status_code == 200


def test_a_foreign_origin_is_refused_by_the_real_server(server: str) -> None:
    answer = httpx.post(
        f"{server}/api/chat",
        json={"message": "Hi", "model_params": {"model": "echo"}},
        headers={"Origin": "http://evil.example"},
    )
    assert answer.status_code == 403
    own = server.replace("127.0.0.1", "localhost")
    preflight = httpx.options(
        f"{server}/api/chat",
        headers={"Origin": own, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["access-control-allow-origin"] == own
    assert httpx.get(f"{server}/api/docs").status_code == 200


@pytest.mark.browser
def test_a_chat_made_through_the_api_shows_in_the_page(server: str) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: apt-get install chromium", pytrace=False)
    body = {"message": "Asked by a script", "conversation_id": "from-api"}
    body["model_params"] = {"model": "echo"}
    assert httpx.post(f"{server}/api/chat", json=body, timeout=30).status_code == 200
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{server}/?c=from-api")
        wait_until_idle(page)
        messages = page.get_by_test_id("stChatMessage")
        assert messages.count() == 2
        assert "Asked by a script" in messages.nth(0).inner_text()
        assert "You said: Asked by a script" in messages.nth(1).inner_text()
        assert page.get_by_test_id("stSidebar").get_by_text("Asked by a script").count() == 1
        browser.close()


def test_it_refuses_to_listen_beyond_this_machine_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CHAT_API_TOKEN"}
    env["CHAT_DB"] = str(tmp_path / "chat.duckdb")
    # the check `make run` makes before starting anything
    check = subprocess.run(
        [sys.executable, "-m", "chatcore.api.security", "0.0.0.0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1 and "without CHAT_API_TOKEN" in check.stderr
    # and `streamlit run server.py` itself, when started some other way
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "server.py", f"--server.port={port}"]
    command += ["--server.address=0.0.0.0", "--server.headless=true"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "Refusing to listen on 0.0.0.0 without CHAT_API_TOKEN" in run.stderr
    assert not (tmp_path / "chat.duckdb").exists()  # nothing was opened, nothing was served
