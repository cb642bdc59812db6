"""Tool calls through the proxies: `tools` (and `tool_choice`) reach the host in either
protocol, and the model's calls come back to the official `ollama` and `openai` clients as their
protocol has them, across protocols too; the run stores the calls. Real HTTP on loopback: the
fake Ollama and the fake OpenAI-compatible server answer a request with tools by calling the
first one."""

from __future__ import annotations

import json
from typing import Any

import ollama
import openai
import pytest

from chatcore.chat import relayed_conversation_id
from chatcore.services import Services
from testkit.fake_ollama import FakeOllama
from testkit.fake_openai import FakeOpenAI

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
ASKED = [{"role": "user", "content": "What is the weather in Paris?"}]
CALLED = {"city": "Paris", "days": 3}  # the fakes fill each parameter with an example


def stored_calls(services: Services, client: str) -> list[dict[str, Any]]:
    """The tool calls stored with the run of `client`'s chat that opened with ASKED."""
    run = services.chat.last_run(relayed_conversation_id(client, ASKED))  # type: ignore[arg-type]
    assert run is not None and run.status == "complete"
    return json.loads(run.metrics.tool_calls or "[]")


def chat_requests_of(host: FakeOpenAI) -> list[dict[str, Any]]:
    return [r["body"] for r in host.requests if r["path"] == "/v1/chat/completions"]


@pytest.mark.parametrize("stream", [True, False])
def test_the_ollama_client_gets_an_ollama_hosts_calls_unchanged(
    services: Services, proxy: str, fake_ollama: FakeOllama, stream: bool
) -> None:
    client = ollama.Client(host=f"{proxy}/ollama")
    if stream:
        parts = list(client.chat("llama3.2", ASKED, tools=[WEATHER], stream=True))
        calls = [c for p in parts for c in p.message.tool_calls or ()]
        assert parts[-1].done
    else:
        calls = list(client.chat("llama3.2", ASKED, tools=[WEATHER]).message.tool_calls or ())

    assert fake_ollama.chat_requests()[-1]["body"]["tools"] == [WEATHER]  # forwarded as sent
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("get_weather", CALLED)
    ]
    stored = stored_calls(services, "ollama-python")
    assert [(c["name"], json.loads(c["arguments"])) for c in stored] == [("get_weather", CALLED)]


def test_the_openai_client_gets_streamed_calls_whole(
    services: Services, proxy: str, vllm: FakeOpenAI
) -> None:
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="qwen3-32b",
            messages=ASKED,  # type: ignore[arg-type]
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice="auto",
            parallel_tool_calls=False,
            stream=True,
        )
    )
    sent = chat_requests_of(vllm)[-1]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "auto"
    assert sent["parallel_tool_calls"] is False

    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert [(d.index, d.id, d.function.name) for d in deltas] == [  # type: ignore[union-attr]
        (0, "call_fake_1", "get_weather")
    ]
    assert json.loads(deltas[0].function.arguments) == CALLED  # type: ignore[union-attr, arg-type]
    finished = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finished[-1] == "tool_calls"
    assert stored_calls(services, "OpenAI/Python") == [
        {"id": "call_fake_1", "name": "get_weather", "arguments": json.dumps(CALLED)}
    ]


def test_the_openai_client_gets_whole_calls_in_the_message(services: Services, proxy: str) -> None:
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    whole = client.chat.completions.create(
        model="qwen3-32b",
        messages=ASKED,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [(c.id, c.type, c.function.name) for c in calls] == [  # type: ignore[union-attr]
        ("call_fake_1", "function", "get_weather")
    ]
    assert json.loads(calls[0].function.arguments) == CALLED  # type: ignore[union-attr]


def test_across_protocols_each_way(
    services: Services, proxy: str, fake_ollama: FakeOllama, vllm: FakeOpenAI
) -> None:
    # An Ollama client answered by an OpenAI-compatible host: the streamed fragments joined,
    # the arguments' JSON text given as Ollama's object.
    ollama_client = ollama.Client(host=f"{proxy}/ollama")
    parts = list(ollama_client.chat("qwen3-32b", ASKED, tools=[WEATHER], stream=True))
    calls = [c for p in parts for c in p.message.tool_calls or ()]
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("get_weather", CALLED)
    ]
    assert chat_requests_of(vllm)[-1]["tools"] == [WEATHER]

    # An OpenAI client answered by an Ollama host: an id made for the call, which Ollama
    # sent without one; tool_choice stays behind (Ollama has none).
    openai_client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    chunks = list(
        openai_client.chat.completions.create(
            model="llama3.2",
            messages=ASKED,  # type: ignore[arg-type]
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice="auto",
            stream=True,
        )
    )
    sent = fake_ollama.chat_requests()[-1]["body"]
    assert sent["tools"] == [WEATHER] and "tool_choice" not in sent
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert len(deltas) == 1 and (deltas[0].id or "").startswith("call_")
    assert deltas[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(deltas[0].function.arguments) == CALLED  # type: ignore[union-attr, arg-type]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert stored_calls(services, "OpenAI/Python")[0]["id"] == deltas[0].id


def test_tool_choice_none_sends_an_ollama_host_no_tools(
    services: Services, proxy: str, fake_ollama: FakeOllama
) -> None:
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    whole = client.chat.completions.create(
        model="llama3.2",
        messages=ASKED,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="none",
    )
    assert "tools" not in fake_ollama.chat_requests()[-1]["body"]
    assert whole.choices[0].finish_reason == "stop"
    assert whole.choices[0].message.content == "Hello there, I am a small model."
    assert whole.choices[0].message.tool_calls is None
    assert stored_calls(services, "OpenAI/Python") == []


# --- the round trip: the client runs the tool and sends its result back ---


@pytest.mark.parametrize("model", ["llama3.2", "qwen3-32b"])  # an Ollama host, then vLLM
def test_the_ollama_client_sends_the_result_back(
    services: Services,
    proxy: str,
    fake_ollama: FakeOllama,
    vllm: FakeOpenAI,
    model: str,
) -> None:
    client = ollama.Client(host=f"{proxy}/ollama")
    asked = client.chat(model, ASKED, tools=[WEATHER])
    chat: list[Any] = [*ASKED, asked.message, {"role": "tool", "content": "18 C, sunny"}]
    if model == "qwen3-32b":  # newer Ollama clients name the function the result is for
        chat[-1]["tool_name"] = "get_weather"
    answered = client.chat(model, chat, tools=[WEATHER])
    assert answered.message.content == "The tool said: 18 C, sunny"
    assert not answered.message.tool_calls

    if model == "llama3.2":  # the call goes back to Ollama as it came from it
        sent = fake_ollama.chat_requests()[-1]["body"]["messages"]
        assert sent[1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": CALLED}}]
        assert sent[2] == {"role": "tool", "content": "18 C, sunny"}
    else:  # to an OpenAI-compatible host: the result answers its call by id
        sent = chat_requests_of(vllm)[-1]["messages"]
        call = sent[1]["tool_calls"][0]
        assert call["type"] == "function" and call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == CALLED
        assert sent[2]["role"] == "tool" and sent[2]["tool_call_id"] == call["id"]

    conversation = relayed_conversation_id("ollama-python", ASKED)  # type: ignore[arg-type]
    stored = [(m.role, m.content) for m in services.chat.messages(conversation)]
    assert stored == [
        ("user", ASKED[0]["content"]),
        ("assistant", ""),  # the tool calls, stored with its run
        ("tool", "18 C, sunny"),
        ("assistant", "The tool said: 18 C, sunny"),
    ]


@pytest.mark.parametrize("model", ["qwen3-32b", "llama3.2"])  # vLLM, then an Ollama host
def test_the_openai_client_sends_the_result_back(
    services: Services, proxy: str, fake_ollama: FakeOllama, vllm: FakeOpenAI, model: str
) -> None:
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    first = client.chat.completions.create(
        model=model,
        messages=ASKED,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    chat: list[Any] = [
        *ASKED,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"},
    ]
    answered = client.chat.completions.create(
        model=model,
        messages=chat,
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert answered.choices[0].message.content == "The tool said: 18 C, sunny"
    assert answered.choices[0].finish_reason == "stop"
    if model == "qwen3-32b":
        sent = chat_requests_of(vllm)[-1]["messages"]
        assert sent[1]["tool_calls"][0]["id"] == call.id == "call_fake_1"
        assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"}
    else:  # Ollama takes the arguments as an object
        sent = fake_ollama.chat_requests()[-1]["body"]["messages"]
        assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": CALLED}
        assert sent[2]["role"] == "tool" and sent[2]["content"] == "18 C, sunny"


def test_a_chat_that_ends_in_an_assistant_message_is_still_refused(proxy: str) -> None:
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(
            model="llama3.2",
            messages=[*ASKED, {"role": "assistant", "content": "Sunny."}],  # type: ignore[list-item]
        )
    with pytest.raises(openai.UnprocessableEntityError):  # a tool's result needs a question
        client.chat.completions.create(
            model="llama3.2",
            messages=[{"role": "tool", "tool_call_id": "x", "content": "18 C"}],  # type: ignore[list-item]
        )
