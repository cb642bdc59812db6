"""Several Ollama hosts, against two loopback servers speaking Ollama's protocol."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chatcore.backends.ollama import PullFailed
from chatcore.config import Settings, load_settings
from chatcore.errors import BackendUnavailable, ModelNotFound
from chatcore.hosts import InvalidHost
from chatcore.models import param_defaults
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from testkit.asgi import mounted
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.ports import closed_port_url

PARAMS = GenerationParams()


@pytest.fixture
def host_a() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel("llama3.2:latest", reply="From A."),
            FakeModel("qwen3:4b", reply="Qwen on A.", family="qwen3"),
        ],
        version="0.33.0",
    ).start()
    yield server
    server.stop()


@pytest.fixture
def host_b() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel("llama3.2:latest", reply="From B."),
            FakeModel("gemma3:1b", reply="Gemma on B.", family="gemma3"),
        ],
        version="0.34.1",
    ).start()
    yield server
    server.stop()


@pytest.fixture
def two_hosts(host_a: FakeOllama, host_b: FakeOllama, db_path: Path) -> Iterator[Services]:
    # Ollama's hosts only: the embedded model would be listed beside their models
    settings = Settings(host_a.url, db_path, 0, ollama_hosts=(host_b.url,), embedded=False)
    opened = open_services(settings)
    yield opened
    opened.close()


def answered_by(services: Services, model: str) -> str:
    reply = services.chat.send(None, "Hi", model, PARAMS).consume()
    assert reply.status == "complete", reply.error
    return reply.host


def test_models_of_both_hosts_are_merged_by_name(two_hosts, host_a, host_b) -> None:
    listing = two_hosts.registry.list_models()
    by_name = {m.name: m for m in listing.models}
    assert list(by_name) == ["llama3.2:latest", "qwen3:4b", "gemma3:1b"]
    assert by_name["llama3.2:latest"].hosts == (host_a.url, host_b.url)
    assert by_name["llama3.2:latest"].label == f"llama3.2:latest · {host_a.url}, {host_b.url}"
    assert by_name["gemma3:1b"].hosts == (host_b.url,)
    assert all(m.available for m in listing.models) and listing.unreachable == {}
    assert [m.name for m in listing.by_host[host_b.url]] == ["llama3.2:latest", "gemma3:1b"]


def test_a_request_goes_to_the_host_that_has_the_model(two_hosts, host_a, host_b) -> None:
    assert answered_by(two_hosts, "gemma3:1b") == host_b.url
    assert answered_by(two_hosts, "qwen3:4b") == host_a.url
    assert [r["body"]["model"] for r in host_b.chat_requests()] == ["gemma3:1b"]
    assert [r["body"]["model"] for r in host_a.chat_requests()] == ["qwen3:4b"]
    run = two_hosts.chat.messages(two_hosts.chat.recent_conversations()[1].id)[1].run
    assert run is not None and run.host == host_b.url  # the run records who answered


def test_the_least_busy_host_gets_the_request(two_hosts, host_a, host_b) -> None:
    for server in (host_a, host_b):
        server.model("llama3.2").token_delay = 0.05  # type: ignore[union-attr]
    first = two_hosts.chat.send(None, "One", "llama3.2", PARAMS)
    next(iter(first))  # streaming from one host
    second = two_hosts.chat.send(None, "Two", "llama3.2", PARAMS)
    assert {first.reply.host, second.reply.host} == {host_a.url, host_b.url}
    assert two_hosts.registry.in_flight(first.reply.host) == 1
    second.consume()
    assert answered_by(two_hosts, "llama3.2") == second.reply.host  # the idle one again
    first.close()  # stopped: no longer in flight
    assert two_hosts.registry.in_flight(host_a.url) == 0
    assert two_hosts.registry.in_flight(host_b.url) == 0


def test_in_flight_counts_end_with_errors_and_unstarted_streams(two_hosts, host_a) -> None:
    host_a.models.append(FakeModel("flaky:latest", reply="one two three", fail_after=1))
    assert two_hosts.chat.send(None, "Hi", "flaky", PARAMS).consume().status == "error"
    never_read = two_hosts.chat.send(None, "Hi", "flaky", PARAMS)
    assert two_hosts.registry.in_flight(host_a.url) == 1
    never_read.close()
    assert two_hosts.registry.in_flight(host_a.url) == 0
    assert never_read.reply.status == "stopped"


def test_a_host_going_down_mid_session(two_hosts, host_a, host_b) -> None:
    assert answered_by(two_hosts, "llama3.2") == host_a.url
    host_a.stop()
    # the first request after it went down is retried on the host still up (test_retry.py)
    retried = two_hosts.chat.send(None, "Hi", "llama3.2", PARAMS).consume()
    assert (retried.status, retried.host, retried.attempts) == ("complete", host_b.url, 2)
    # and the next goes there at once
    assert answered_by(two_hosts, "llama3.2") == host_b.url
    listing = two_hosts.registry.list_models()
    assert "ollama serve" in listing.unreachable[host_a.url]
    by_name = {m.name: m for m in listing.models}
    assert by_name["llama3.2:latest"].available and by_name["llama3.2:latest"].hosts[0] == (
        host_b.url
    )
    assert not by_name["qwen3:4b"].available  # only on the host that is down
    with pytest.raises(BackendUnavailable, match=host_a.url):
        two_hosts.chat.send(None, "Hi", "qwen3:4b", PARAMS)
    statuses = {s.host.url: s for s in two_hosts.hosts.statuses()}
    assert not statuses[host_a.url].reachable and statuses[host_b.url].reachable


def test_send_routes_from_a_cached_listing(two_hosts, host_a, host_b) -> None:
    for _ in range(3):
        two_hosts.chat.send(None, "Hi", "gemma3:1b", PARAMS).consume()
    for server in (host_a, host_b):  # each host was listed once, for the first send
        assert [r["path"] for r in server.requests].count("/api/tags") == 1
    assert len(host_b.chat_requests()) == 3


def test_a_removed_host_has_its_kept_connections_closed(host_a, host_b, db_path) -> None:
    services = open_services(Settings(host_a.url, db_path, 0, embedded=False))
    try:
        services.hosts.add(host_b.url)
        assert answered_by(services, "gemma3:1b") == host_b.url
        assert host_b.open_connections  # kept for the next reply
        services.hosts.remove(host_b.url)
        deadline = time.monotonic() + 5
        while host_b.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert host_b.open_connections == 0
    finally:
        services.close()


def test_host_status_shows_version_and_latency(two_hosts, host_a, host_b) -> None:
    statuses = two_hosts.hosts.statuses()
    assert [(s.host.url, s.reachable, s.version) for s in statuses] == [
        (host_a.url, True, "0.33.0"),
        (host_b.url, True, "0.34.1"),
    ]
    assert all(s.latency_ms is not None and s.latency_ms >= 0 for s in statuses)


def test_hosts_added_here_are_stored_and_come_back(host_a, host_b, db_path) -> None:
    first = open_services(Settings(host_a.url, db_path, 0, embedded=False))
    try:
        assert [m.name for m in first.registry.list_models().models] == [
            "llama3.2:latest",
            "qwen3:4b",
        ]
        added = first.hosts.add(host_b.url.removeprefix("http://"))
        assert added.url == host_b.url and added.removable
        assert "gemma3:1b" in [m.name for m in first.registry.list_models().models]
        with pytest.raises(InvalidHost, match="OLLAMA_HOST"):
            first.hosts.remove(host_a.url)
        with pytest.raises(InvalidHost):
            first.hosts.add("not a host !")
    finally:
        first.close()
    again = open_services(Settings(host_a.url, db_path, 0, embedded=False))
    try:
        assert [h.url for h in again.hosts.all()] == [host_a.url, host_b.url]
        assert answered_by(again, "gemma3:1b") == host_b.url
        again.hosts.remove(host_b.url)
        assert [h.url for h in again.hosts.all()] == [host_a.url]
        with pytest.raises(ModelNotFound):
            again.chat.send(None, "Hi", "gemma3:1b", PARAMS)
    finally:
        again.close()


def test_an_unreachable_added_host_never_breaks_listing(two_hosts) -> None:
    down = closed_port_url()
    two_hosts.hosts.add(down)
    listing = two_hosts.registry.list_models()
    assert "ollama serve" in listing.unreachable[down]
    assert {m.name for m in listing.models} == {"llama3.2:latest", "qwen3:4b", "gemma3:1b"}
    status = next(s for s in two_hosts.hosts.statuses() if s.host.url == down)
    assert not status.reachable and status.version is None and "ollama serve" in status.error


def test_ollama_hosts_setting_is_read() -> None:
    env = {"OLLAMA_HOSTS": "gpu-box:11434, 10.0.0.5 ,http://laptop:8080/", "CHAT_DB": "/x"}
    settings = load_settings(env)
    assert settings.all_ollama_hosts() == [
        "http://gpu-box:11434",
        "http://10.0.0.5:11434",
        "http://laptop:8080",
    ]
    both = load_settings({**env, "OLLAMA_HOST": "127.0.0.1"})
    assert both.all_ollama_hosts()[0] == "http://127.0.0.1:11434"
    assert len(both.all_ollama_hosts()) == 4


def test_pull_streams_progress_and_the_model_becomes_usable(two_hosts, host_b) -> None:
    host_b.library.append(FakeModel("phi4:latest", reply="Phi here.", layers=(8_000, 2_000)))
    seen: list[tuple[str, float, int, int]] = []
    for progress in two_hosts.models.pull(host_b.url, "phi4"):
        seen.append((progress.status, progress.fraction, progress.completed, progress.total))
    statuses = [s for s, *_ in seen]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses
    fractions = [f for _, f, *_ in seen]
    assert fractions == sorted(fractions) and 0 < fractions[len(fractions) // 2] < 1
    assert seen[-2][2:] == (10_000, 10_000)  # every byte of both layers
    assert progress.done and len(progress.layers) == 2
    assert progress.bytes_per_second is not None
    assert answered_by(two_hosts, "phi4") == host_b.url  # usable at once, no restart


def test_pull_error_lines_are_raised_with_the_servers_words(two_hosts, host_b) -> None:
    with pytest.raises(PullFailed, match="file does not exist"):
        list(two_hosts.models.pull(host_b.url, "no-such-model"))
    host_b.library.append(FakeModel("big:latest"))
    host_b.pull_error = "write /models/blobs: no space left on device"
    statuses = []
    with pytest.raises(PullFailed, match="no space left on device"):
        for progress in two_hosts.models.pull(host_b.url, "big"):
            statuses.append(progress.status)
    assert statuses and statuses[0] == "pulling manifest"  # progress came before the error
    assert host_b.model("big") is None


def test_closing_a_pull_cancels_it(two_hosts, host_b) -> None:
    host_b.library.append(FakeModel("slowpull:latest"))
    host_b.pull_delay = 0.1
    pulling = two_hosts.models.pull(host_b.url, "slowpull")
    next(pulling)
    pulling.close()
    deadline = time.monotonic() + 5
    while host_b.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_b.cancelled == 1 and host_b.model("slowpull") is None


def test_delete_and_its_404(two_hosts, host_a) -> None:
    two_hosts.registry.list_models()
    two_hosts.models.delete(host_a.url, "qwen3:4b")
    assert host_a.model("qwen3:4b") is None
    assert "qwen3:4b" not in [m.name for m in two_hosts.registry.list_models().models]
    with pytest.raises(ModelNotFound, match="not installed"):
        two_hosts.models.delete(host_a.url, "qwen3:4b")


def test_model_card_from_show(two_hosts, host_b) -> None:
    gemma = host_b.model("gemma3:1b")
    assert gemma is not None
    gemma.capabilities = ("completion", "vision", "thinking")
    gemma.context_length = 32768
    gemma.parameters = 'temperature 1.2\ntop_p 0.8\nnum_predict 256\nstop "<end>"\nstop "<eos>"'
    gemma.system = "You are Gemma."
    card = two_hosts.models.card(host_b.url, "gemma3:1b")
    assert card.has("vision") and card.has("thinking") and not card.has("tools")
    assert card.context_length == 32768
    assert card.parameters["stop"] == ["<end>", "<eos>"]
    assert param_defaults(card) == {
        "temperature": 1.0,  # clamped to the sidebar's range
        "top_p": 0.8,
        "max_tokens": 256,
        "system_prompt": "You are Gemma.",
    }


def test_running_models_preload_and_unload(two_hosts, host_a) -> None:
    assert two_hosts.models.running(host_a.url) == []
    two_hosts.models.preload(host_a.url, "qwen3:4b")
    [running] = two_hosts.models.running(host_a.url)
    assert running.name == "qwen3:4b" and running.vram_bytes > 0 and running.context_length
    assert running.expires_at is not None
    two_hosts.models.unload(host_a.url, "qwen3:4b")
    assert two_hosts.models.running(host_a.url) == []
    assert host_a.chat_requests()[-1]["body"] == {
        "model": "qwen3:4b",
        "messages": [],
        "tools": [],
        "stream": False,
        "keep_alive": 0,
    }


def test_the_rest_api_lists_and_routes_over_both_hosts(two_hosts, host_a, host_b) -> None:
    with TestClient(mounted(two_hosts), base_url="http://127.0.0.1:8501") as client:
        models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
        assert models["llama3.2:latest"]["where"] == f"{host_a.url}, {host_b.url}"
        assert models["gemma3:1b"]["where"] == host_b.url
        body = {"message": "Hi", "model_params": {"model": "gemma3:1b"}}
        answer = client.post("/api/chat", json=body).json()
    assert (answer["host"], answer["reply"]) == (host_b.url, "Gemma on B.")


# --- OpenAI-compatible servers beside the Ollama hosts ---


def test_an_openai_compatible_server_joins_the_picker_and_answers(
    two_hosts, host_a, db_path, monkeypatch
) -> None:
    from chatcore.hosts import OPENAI
    from testkit.fake_openai import FakeOpenAI

    served = FakeOpenAI([FakeModel("vllm/qwen3-32b", reply="From vLLM.")], api_key="sk-secret-1234")
    served.start()
    try:
        added = two_hosts.hosts.add(served.url, kind=OPENAI, api_key="sk-secret-1234")
        assert (added.url, added.kind, added.key_shown) == (f"{served.url}/v1", OPENAI, "…1234")
        listing = two_hosts.registry.list_models()
        by_name = {m.name: m for m in listing.models}
        assert by_name["vllm/qwen3-32b"].backend == "openai"
        assert by_name["vllm/qwen3-32b"].hosts == (added.url,)
        reply = two_hosts.chat.send(None, "Hi", "vllm/qwen3-32b", PARAMS).consume()
        assert (reply.status, reply.text, reply.host) == ("complete", "From vLLM.", added.url)
        assert reply.metrics.completion_tokens == 2
        status = {s.host.url: s for s in two_hosts.hosts.statuses()}[added.url]
        assert status.reachable and status.latency_ms is not None and status.version is None
        # stored: a new session registers it again, key and all
        two_hosts.close()
        monkeypatch.setenv("SERVED_KEY", "sk-secret-1234")
        again = open_services(Settings(host_a.url, db_path, 0, embedded=False))
        try:
            assert "vllm/qwen3-32b" in {m.name for m in again.registry.list_models().models}
            # a key named by an environment variable: only the name is stored or shown
            named = again.hosts.add(served.url, kind=OPENAI, api_key="$SERVED_KEY")
            assert named.key_shown == "$SERVED_KEY"
            with again.db.cursor() as cur:
                assert "sk-secret-1234" not in str(cur.execute("FROM openai_hosts").fetchall())
            assert again.chat.send(None, "Hi", "vllm/qwen3-32b", PARAMS).consume().text
            again.hosts.remove(named.url)
            assert "vllm/qwen3-32b" not in {m.name for m in again.registry.list_models().models}
        finally:
            again.close()
    finally:
        served.stop()


def test_openai_host_addresses_and_keys_are_checked(two_hosts) -> None:
    from chatcore.hosts import OPENAI

    for address in ("", "ftp://x:1", "http://host:port"):
        with pytest.raises(InvalidHost):
            two_hosts.hosts.add(address, kind=OPENAI)
    for key in ("$not a name", "two words"):
        with pytest.raises(InvalidHost):
            two_hosts.hosts.add("127.0.0.1:8000", kind=OPENAI, api_key=key)
    long_key = "sk-" + "x" * 30 + "WXYZ"
    added = two_hosts.hosts.add("127.0.0.1:8000", kind=OPENAI, api_key=long_key)
    assert added.key_shown == "…WXYZ" and long_key not in repr(added)
