"""The proxies at /ollama and /v1 over real HTTP, driven by the official `ollama` and `openai`
Python clients; every chat is then found in the runs with its client."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import ollama
import openai
import pandas as pd
import pytest

from chatcore.config import load_settings
from chatcore.services import Services, open_services
from chatcore.stats import StatsFilter
from testkit.asgi import mounted, served
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.fake_openai import FakeOpenAI


def runs_by_client(services: Services, client: str) -> list[tuple[str, str, str]]:
    """(model, status, backend) of the stored runs of `client`, oldest first."""
    frame = pd.read_csv(io.BytesIO(services.stats.runs_csv(StatsFilter(clients=(client,)))))
    return [(r.model, r.status, r.backend) for r in frame.itertuples()]


def test_the_ollama_client_through_the_proxy(services: Services, proxy: str) -> None:
    client = ollama.Client(host=f"{proxy}/ollama")
    listed = {m.model for m in client.list().models}
    assert {"llama3.2:latest", "qwen3:4b", "qwen3-32b"} <= listed  # any host, any protocol

    whole = client.chat("llama3.2", [{"role": "user", "content": "Hi"}], stream=False)
    assert whole.message.content == "Hello there, I am a small model." and whole.done
    assert whole.eval_count == 7

    parts = list(client.chat("qwen3-32b", [{"role": "user", "content": "Hi"}], stream=True))
    assert "".join(p.message.content or "" for p in parts) == "Served by vLLM."
    assert parts[-1].done and parts[-1].eval_count == 3

    generated = client.generate("llama3.2", "Once upon a time", options={"num_predict": 2})
    assert generated.response == "Hello there," and generated.done_reason == "length"

    embedded = client.embed("llama3.2", ["one", "two"])
    assert len(embedded.embeddings) == 2 and embedded.embeddings[0] != embedded.embeddings[1]
    assert client.show("llama3.2").details.family == "llama"  # type: ignore[union-attr]
    assert isinstance(client.ps().models, list)
    version = httpx.get(f"{proxy}/ollama/api/version", trust_env=False).json()["version"]
    assert version == "0.33.0"

    assert runs_by_client(services, "ollama-python") == [  # Ollama's names under one name
        ("llama3.2:latest", "complete", "ollama"),
        ("qwen3-32b", "complete", "openai"),
        ("llama3.2:latest", "complete", "ollama"),
    ]
    assert "ollama-python" in services.stats.choices().clients


def test_the_openai_client_through_the_proxy(services: Services, proxy: str) -> None:
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    assert {"llama3.2:latest", "qwen3:4b", "qwen3-32b"} <= {m.id for m in client.models.list()}

    whole = client.chat.completions.create(
        model="qwen3:4b", messages=[{"role": "user", "content": "Salut"}], max_tokens=100
    )
    assert whole.choices[0].message.content == "Bonjour from Qwen."
    assert whole.usage is not None and whole.usage.completion_tokens == 3

    stream = client.chat.completions.create(
        model="llama3.2",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, I am a small model."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7

    vectors = client.embeddings.create(model="qwen3-32b", input=["a", "b", "c"])
    assert [d.index for d in vectors.data] == [0, 1, 2]

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])

    label = "OpenAI/Python"
    assert runs_by_client(services, label) == [
        ("qwen3:4b", "complete", "ollama"),
        ("llama3.2:latest", "complete", "ollama"),
    ]
    choices = services.stats.choices()
    assert set(choices.clients) == {label}
    report = services.stats.report(StatsFilter(clients=(label,)), choices)
    assert int(report.headline["replies"].iloc[0]) == 2
    assert set(report.per_model["model"]) == {"qwen3:4b", "llama3.2:latest"}
    nobody = services.stats.report(StatsFilter(clients=("dashboard",)), choices)
    assert int(nobody.headline["replies"].iloc[0]) == 0


def test_an_editor_resending_its_chat_lands_in_one_conversation(
    services: Services, proxy: str
) -> None:
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    chat = [{"role": "user", "content": "Refactor this"}]
    first = client.chat.completions.create(model="llama3.2", messages=chat)  # type: ignore[arg-type]
    chat += [
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": "And now in Rust"},
    ]
    client.chat.completions.create(model="llama3.2", messages=chat)  # type: ignore[arg-type]
    conversations = services.chat.recent_conversations()
    assert len(conversations) == 1 and conversations[0].title == "Refactor this"
    roles = [m.role for m in services.chat.messages(conversations[0].id)]
    assert roles == ["user", "assistant", "user", "assistant"]


def test_a_host_killed_behind_the_proxy_goes_unnoticed(
    services: Services, proxy: str, fake_ollama: FakeOllama
) -> None:
    other = FakeOllama([FakeModel("llama3.2:latest", reply="From the other host.")]).start()
    try:
        services.hosts.add(other.url)
        client = ollama.Client(host=f"{proxy}/ollama")
        client.list()
        fake_ollama.stop()
        answer = client.chat("llama3.2", [{"role": "user", "content": "Hi"}], stream=False)
        assert answer.message.content == "From the other host."
        run = services.chat.messages(services.chat.recent_conversations()[0].id)[-1].run
        assert run is not None and (run.host, run.attempts) == (other.url, 2)
        assert run.client == "ollama-python"
    finally:
        other.stop()


def test_a_turn_that_cannot_be_stored_ends_the_streamed_answer_in_error(
    services: Services, proxy: str
) -> None:
    """A streamed answer starts once the request is found good, while the user's turn is
    written: when that write fails, the answer ends in an error in the client's protocol, with
    no reply text before it, and nothing is stored."""
    with services.db.cursor() as cur:  # a real failure: the turn's table is gone
        cur.execute("ALTER TABLE open_branches RENAME TO branches_elsewhere")
    ask = [{"role": "user", "content": "Hi"}]
    with pytest.raises(ollama.ResponseError, match="log has the details") as failed:
        for part in ollama.Client(host=f"{proxy}/ollama").chat("llama3.2", ask, stream=True):
            assert not part.message.content
    assert failed.value.status_code == -1  # a line of the answer, not a refusal
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.APIError, match="log has the details"):
        for chunk in client.chat.completions.create(model="llama3.2", messages=ask, stream=True):  # type: ignore[arg-type]
            assert not (chunk.choices and chunk.choices[0].delta.content)
    with services.db.cursor() as cur:
        cur.execute("ALTER TABLE branches_elsewhere RENAME TO open_branches")
        assert cur.execute("SELECT count(*) FROM messages").fetchone() == (0,)
        assert cur.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_bad_requests_and_foreign_hosts_are_refused(proxy: str) -> None:
    no_model = httpx.post(f"{proxy}/ollama/api/chat", json={"messages": []}, trust_env=False)
    assert no_model.status_code == 422 and "error" in no_model.json()
    unknown = httpx.post(
        f"{proxy}/ollama/api/chat",
        json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
        trust_env=False,
    )
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    foreign = httpx.get(f"{proxy}/v1/models", headers={"Host": "evil.example"}, trust_env=False)
    assert foreign.status_code == 403
    site = httpx.get(f"{proxy}/ollama/api/tags", headers={"Origin": "https://evil.example"})
    assert site.status_code == 403


def test_a_token_is_required_when_set(services: Services) -> None:
    with served(mounted(services, token="s3cret-token")) as url:
        assert httpx.get(f"{url}/v1/models", trust_env=False).status_code == 401
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret-token", max_retries=0)
        assert client.models.list().data
        headers = {"Authorization": "Bearer s3cret-token"}
        tagged = ollama.Client(host=f"{url}/ollama", headers=headers).list()
        assert tagged.models


def last_run_options(services: Services) -> dict[str, object]:
    run = services.chat.messages(services.chat.recent_conversations()[0].id)[-1].run
    assert run is not None
    return run.options


def test_every_option_a_client_sends_is_passed_on_and_stored(
    services: Services, proxy: str, fake_ollama: FakeOllama, vllm: FakeOpenAI
) -> None:
    ollama_client = ollama.Client(host=f"{proxy}/ollama")
    options = {"num_ctx": 8192, "repeat_penalty": 1.1, "temperature": 1.5, "presence_penalty": 0.5}
    hi = [{"role": "user", "content": "Hi"}]
    ollama_client.chat("llama3.2", hi, format="json", keep_alive="10m", options=options)
    sent = fake_ollama.chat_requests()[-1]["body"]
    assert (sent["format"], sent["keep_alive"]) == ("json", "10m")
    assert {k: sent["options"][k] for k in options} == options  # as sent, 1.5 too
    stored = last_run_options(services)
    assert stored["for_ollama"] == {"format": "json", "keep_alive": "10m", "options": options}
    assert stored["temperature"] == 1.0  # the dashboard's own view, clamped, for Stats

    # An Ollama client answered by an OpenAI-compatible host: the shared fields translated.
    ollama_client.chat("qwen3-32b", hi, format="json", options=options)
    body = vllm.requests[-1]["body"]
    assert body["response_format"] == {"type": "json_object"}
    assert (body["temperature"], body["presence_penalty"]) == (1.5, 0.5)

    openai_client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    openai_client.chat.completions.create(
        model="qwen3-32b",
        messages=hi,  # type: ignore[arg-type]
        frequency_penalty=0.25,
        logit_bias={"42": -100},
        response_format={"type": "json_object"},
        user="someone",
    )
    body = vllm.requests[-1]["body"]
    assert (body["frequency_penalty"], body["logit_bias"], body["user"]) == (
        0.25,
        {"42": -100},
        "someone",
    )
    assert last_run_options(services)["for_openai"]["frequency_penalty"] == 0.25  # type: ignore[index]

    # An OpenAI client answered by an Ollama host.
    openai_client.chat.completions.create(
        model="llama3.2",
        messages=hi,  # type: ignore[arg-type]
        frequency_penalty=0.25,
        response_format={"type": "json_object"},
    )
    sent = fake_ollama.chat_requests()[-1]["body"]
    assert sent["format"] == "json" and sent["options"]["frequency_penalty"] == 0.25


def test_reasoning_travels_as_reasoning_through_both_proxies(
    services: Services, proxy: str, vllm: FakeOpenAI
) -> None:
    vllm.models[0].thinking = "Let me think."
    hi = [{"role": "user", "content": "Hi"}]
    parts = list(ollama.Client(host=f"{proxy}/ollama").chat("qwen3-32b", hi, stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == "Let me think."
    assert "".join(p.message.content or "" for p in parts) == "Served by vLLM."

    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    chunks = list(client.chat.completions.create(model="qwen3-32b", messages=hi, stream=True))  # type: ignore[arg-type]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert reasoning == "Let me think."
    assert "".join(d.content or "" for d in deltas) == "Served by vLLM."


def test_a_labelled_token_names_its_client_and_never_reaches_the_log(
    fake_ollama: FakeOllama, db_path: Path
) -> None:
    settings = load_settings(
        {
            "OLLAMA_HOST": fake_ollama.url,
            "CHAT_DB": str(db_path),
            "EMBEDDED": "0",
            "CHAT_API_TOKEN": "owner-secret-0123456789",
            "CHAT_API_TOKENS": "zed-editor:zed-secret-0123456789, nightly-script:script-secret-42",
        }
    )
    services = open_services(settings)
    try:
        with served(mounted(services, token=settings.api_token)) as url:
            hi = [{"role": "user", "content": "Hi"}]
            zed = {"Authorization": "Bearer zed-secret-0123456789"}
            ollama.Client(host=f"{url}/ollama", headers=zed).chat("llama3.2", hi)
            script = openai.OpenAI(base_url=f"{url}/v1", api_key="script-secret-42", max_retries=0)
            script.chat.completions.create(model="llama3.2", messages=hi)  # type: ignore[arg-type]
            owner = openai.OpenAI(
                base_url=f"{url}/v1", api_key="owner-secret-0123456789", max_retries=0
            )
            owner.chat.completions.create(model="llama3.2", messages=hi)  # type: ignore[arg-type]
            stranger = openai.OpenAI(base_url=f"{url}/v1", api_key="guess", max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                stranger.models.list()
        assert set(services.stats.choices().clients) == {
            "zed-editor",
            "nightly-script",
            "OpenAI/Python",  # the owner's token has no label: named from the User-Agent
        }
        assert runs_by_client(services, "zed-editor") == [("llama3.2:latest", "complete", "ollama")]
    finally:
        services.close()
    logged = "".join(p.read_text() for p in settings.data_dir.glob("*.log*"))
    assert logged and not any(secret in logged for secret in settings.secrets())


def test_a_malformed_token_list_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="entry 2") as refused:
        load_settings({"CHAT_API_TOKENS": "ok:fine-token, just-a-secret-token"})
    assert "just-a-secret-token" not in str(refused.value)
