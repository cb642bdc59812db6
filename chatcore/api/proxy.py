"""The dashboard as a logging proxy for every tool: an Ollama-compatible API (mounted at /ollama)
and an OpenAI-compatible one (mounted at /v1), over the same hosts and routing as the pages.

`OLLAMA_HOST=http://127.0.0.1:8501/ollama` points the ollama CLI and clients here; an openai
client takes `base_url="http://127.0.0.1:8501/v1"`. Chats go through the one send path
(ChatService.relay) and are stored as runs with their client: the label of its token when it
presents one of CHAT_API_TOKENS, else named from the User-Agent. Same security as the REST API:
AccessGuard (loopback, or the Bearer token; a labelled token is accepted too), CORS closed.

What is forwarded of a request: its messages, and every other field its client sent, as it came
(chatcore/api/passthrough.py: options, format, keep_alive, penalties, response_format...);
temperature, top p, max tokens, seed and stop are also stored clamped to the dashboard's ranges,
for Stats; `tools` too, and the model's tool calls come back in the client's protocol
(chatcore/api/tool_calls.py). Not yet: images, and tool results in a request's messages.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring  # ensure_ascii=False's, in C
from typing import Any, TypeVar

import anyio
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from chatcore.api import tool_calls
from chatcore.api.errors import UNEXPECTED, status_for
from chatcore.api.passthrough import relayed
from chatcore.api.security import AccessGuard, token_matches
from chatcore.api.streaming import PieceBatches, framed
from chatcore.chat import Reply, ReplyStream, described
from chatcore.errors import DashboardError, InvalidInput
from chatcore.logs import event as log_event
from chatcore.params import MAX_TOKENS_LIMIT, GenerationParams
from chatcore.services import Services
from chatcore.types import ChatMessage, ModelInfo, RunStatus

T = TypeVar("T")
ServicesProvider = Callable[[], Services]
PROXY_THREADS = 40
UNKNOWN_CLIENT = "unknown"
# A request's defaults where it sets none: Ollama's and OpenAI's own, within the dashboard's ranges.
OLLAMA_DEFAULTS = {"temperature": 0.8, "top_p": 0.9}
OPENAI_DEFAULTS = {"temperature": 1.0, "top_p": 1.0}


def client_label(user_agent: str | None) -> str:
    """`ollama-python/0.6.3 (x86_64 linux) Python/3.11` -> `ollama-python`; `OpenAI/Python 3.5`
    -> `OpenAI/Python`: the product without its version, so Stats groups a tool's calls."""
    first = (user_agent or "").strip().split(" ", 1)[0]
    name, _, version = first.partition("/")
    label = name if version[:1].isdigit() else first
    return label[:60] or UNKNOWN_CLIENT


def clamped(value: Any, low: float, high: float, default: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return default
    return min(high, max(low, float(value)))


def generation_params(
    defaults: dict[str, float],
    temperature: Any,
    top_p: Any,
    max_tokens: Any,
    seed: Any,
    stop: Any,
) -> GenerationParams:
    """A proxied request's options as the send path takes them."""
    tokens = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else MAX_TOKENS_LIMIT
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    return GenerationParams(
        temperature=clamped(temperature, 0, 1, defaults["temperature"]),
        top_p=clamped(top_p, 0, 1, defaults["top_p"]),
        max_tokens=min(tokens, MAX_TOKENS_LIMIT),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        stop=tuple(str(s) for s in stops if s),
    )


def text_of(content: Any) -> str:
    """A message's content: a string, or OpenAI's list of parts (the text parts joined)."""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def messages_of(raw: Any) -> list[ChatMessage]:
    if not isinstance(raw, list):
        raise InvalidInput("`messages` is a list of {role, content}.")
    return [message_of(m) if isinstance(m, dict) else ChatMessage(role="", content="") for m in raw]


def message_of(raw: dict[str, Any]) -> ChatMessage:
    """A message of either protocol; an assistant's tool calls and a tool's result kept."""
    message = ChatMessage(role=str(raw.get("role", "")), content=text_of(raw.get("content")))
    if calls := tool_calls.calls_in_request(raw.get("tool_calls")):
        message["tool_calls"] = calls
    for key in ("tool_call_id", "tool_name"):
        if isinstance(raw.get(key), str) and raw[key]:
            message[key] = raw[key]  # type: ignore[literal-required]
    return message


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class ProxyApp:
    """What both proxies share: the services, worker threads, security and error shape."""

    def __init__(
        self,
        services: ServicesProvider,
        title: str,
        origins: Sequence[str],
        token: str | None,
        error_body: Callable[[str], dict[str, Any]],
        stream_error: Callable[[str], bytes],
        client_tokens: Sequence[tuple[str, str]] = (),
    ) -> None:
        """`error_body`: an error answer's body; `stream_error`: how a streamed answer that
        already began ends in error, in the client's protocol."""
        self.services = services
        self.client_tokens = list(client_tokens)
        self.api = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
        self._threads = anyio.CapacityLimiter(PROXY_THREADS)
        self.error_body = error_body
        self.stream_error = stream_error
        self.api.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
        more = [token for _, token in client_tokens]
        self.api.add_middleware(AccessGuard, origins=origins, token=token, more_tokens=more)

        @self.api.exception_handler(DashboardError)
        async def dashboard_error(_: Request, error: DashboardError) -> JSONResponse:
            return JSONResponse(error_body(str(error)), status_code=status_for(error))

    async def in_thread(self, work: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(work, limiter=self._threads)

    async def body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as error:
            raise InvalidInput("The request body is not JSON.") from error
        if not isinstance(body, dict):
            raise InvalidInput("The request body is a JSON object.")
        return body

    async def relay(
        self, request: Request, model: Any, messages: list[ChatMessage], params: GenerationParams
    ) -> ReplyStream:
        send = self._sender(request, model, messages, params)
        return await self.in_thread(lambda: send(lambda: None))

    async def relay_batches(
        self, request: Request, model: Any, messages: list[ChatMessage], params: GenerationParams
    ) -> PieceBatches:
        """A streamed relay, sent and read on one worker thread: the response starts once the
        request is found good (PieceBatches.accepted), while the user's turn is written."""
        send = self._sender(request, model, messages, params)
        return await PieceBatches.accepted(send, self.in_thread)

    def _sender(
        self, request: Request, model: Any, messages: list[ChatMessage], params: GenerationParams
    ) -> Callable[[Callable[[], None]], ReplyStream]:
        """The relay to run on a worker thread, given what to call once the request is found
        good (ChatService.relay's `accepted`)."""
        if not isinstance(model, str) or not model:
            raise InvalidInput("`model` names the model to answer with.")
        client = self.client_of(request)
        chat = self.services().chat
        return lambda accepted: chat.relay(messages, model, params, client, accepted)

    def client_of(self, request: Request) -> str:
        """The label of the client's token (CHAT_API_TOKENS), else its User-Agent's product."""
        authorization = request.headers.get("authorization", "")
        for label, token in self.client_tokens:
            if token_matches(authorization, token):
                return label
        return client_label(request.headers.get("user-agent"))

    def streamed(
        self,
        batches: PieceBatches,
        media_type: str,
        head: Callable[[], bytes],
        pieces: Callable[[list[str]], bytes],
        tail: Callable[[Reply], bytes],
    ) -> StreamingResponse:
        return RelayedResponse(batches, media_type, head, pieces, tail, self.stream_error)


class RelayedResponse(StreamingResponse):
    """A relayed reply in the client's own protocol: `head`, the pieces of each batch, then
    `tail` with the stored outcome (or `failed`, when the turn could not be stored after the
    answer began). Pieces travel in batches (chatcore/api/streaming.py); however the response
    ends, the reply is closed, so a client that hangs up leaves it stored as stopped."""

    def __init__(
        self,
        batches: PieceBatches,
        media_type: str,
        head: Callable[[], bytes],
        pieces: Callable[[list[str]], bytes],
        tail: Callable[[Reply], bytes],
        failed: Callable[[str], bytes],
    ) -> None:
        self.batches = batches
        self.head, self.pieces, self.tail, self.failed = head, pieces, tail, failed
        super().__init__(self.chunks(), media_type=media_type)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.head()
        async for batch in self.batches:
            if written := self.pieces(batch):
                yield written
        if self.batches.failure is not None:
            yield self.failed(failure_text(self.batches.failure))
        else:
            yield self.tail(self.batches.stream.reply)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
                await self.batches.close()


def failure_text(error: BaseException) -> str:
    """What a client is told of a relay that failed after its answer began (its turn could not
    be stored): the dashboard's own words, or for anything else a pointer to the log."""
    if isinstance(error, DashboardError):
        return str(error)
    log_event("relay.failed", logging.ERROR, cause=described(error))
    return UNEXPECTED


# --- the Ollama-compatible API ---


def ollama_error(message: str) -> dict[str, Any]:
    return {"error": message}


def ollama_params(body: dict[str, Any]) -> GenerationParams:
    options = body.get("options") if isinstance(body.get("options"), dict) else {}
    own = generation_params(
        OLLAMA_DEFAULTS,
        options.get("temperature"),
        options.get("top_p"),
        options.get("num_predict"),
        options.get("seed"),
        options.get("stop"),
    )
    return relayed(own, body, "ollama")  # and the client's other fields, passed on


def ollama_final(reply: Reply) -> dict[str, Any]:
    """The figures Ollama puts on its last line; those the backend did not report are left out."""
    m = reply.metrics
    figures = {
        "done_reason": m.done_reason or ("stop" if reply.status == RunStatus.COMPLETE else None),
        "total_duration": m.total_duration_ns,
        "load_duration": m.load_duration_ns,
        "prompt_eval_count": m.prompt_tokens,
        "prompt_eval_duration": m.prompt_eval_duration_ns,
        "eval_count": m.completion_tokens,
        "eval_duration": m.eval_duration_ns,
    }
    return {key: value for key, value in figures.items() if value is not None}


def line(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode() + b"\n"


def tag(info: ModelInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "model": info.name,
        "modified_at": info.modified_at.isoformat() if info.modified_at else now_iso(),
        "size": info.size_bytes or 0,
        "digest": "",
        "details": {
            "format": "gguf",
            "family": info.family or "",
            "families": [info.family] if info.family else None,
            "parameter_size": info.parameter_size or "",
            "quantization_level": info.quantization or "",
        },
    }


def create_ollama_proxy(
    services: ServicesProvider,
    *,
    origins: Sequence[str],
    token: str | None = None,
    client_tokens: Sequence[tuple[str, str]] = (),
) -> FastAPI:
    proxy = ProxyApp(
        services,
        "Ollama-compatible proxy",
        origins,
        token,
        ollama_error,
        lambda message: line(ollama_error(message)),
        client_tokens,
    )
    api = proxy.api

    @api.api_route("/", methods=["GET", "HEAD"])
    def running() -> Any:
        return StreamingResponse(iter([b"Ollama is running"]), media_type="text/plain")

    @api.get("/api/version")
    async def version() -> dict[str, str]:
        return {"version": await proxy.in_thread(services().gateway.version)}

    @api.get("/api/tags")
    async def tags() -> dict[str, Any]:
        listing = await proxy.in_thread(services().gateway.listing)
        return {"models": [tag(m) for m in listing.models if m.available]}

    @api.get("/api/ps")
    async def ps() -> dict[str, Any]:
        return {"models": await proxy.in_thread(services().gateway.running)}

    @api.post("/api/show")
    async def show(request: Request) -> dict[str, Any]:
        body = await proxy.body(request)
        name = str(body.get("model") or body.get("name") or "")
        return await proxy.in_thread(lambda: services().gateway.show(name))

    @api.post("/api/embed")
    async def embed(request: Request) -> dict[str, Any]:
        body = await proxy.body(request)
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        name = str(body.get("model", ""))
        result = await proxy.in_thread(lambda: services().gateway.embed(name, inputs))
        answer: dict[str, Any] = {"model": result.model, "embeddings": result.vectors}
        if result.prompt_tokens is not None:
            answer["prompt_eval_count"] = result.prompt_tokens
        return answer

    @api.post("/api/chat")
    async def chat(request: Request) -> Any:
        body = await proxy.body(request)
        model = body.get("model")
        messages, params = messages_of(body.get("messages")), ollama_params(body)

        def message(content: str) -> dict[str, Any]:
            return {
                "model": model,
                "created_at": now_iso(),
                "message": {"role": "assistant", "content": content},
            }

        def with_calls(answer: dict[str, Any], reply: Reply) -> dict[str, Any]:
            if reply.tool_calls:
                answer["message"]["tool_calls"] = tool_calls.for_ollama(reply.tool_calls)
            return answer

        def tail(reply: Reply) -> bytes:
            calls = b""
            if reply.tool_calls and reply.status != RunStatus.ERROR:  # as Ollama: before done
                calls = line({**with_calls(message(""), reply), "done": False})
            return calls + ollama_tail(reply, {**message(""), "done": True})

        if body.get("stream", True) is False:
            stream = await proxy.relay(request, model, messages, params)
            reply = await proxy.in_thread(stream.consume)
            whole = with_calls({**message(reply.text), "done": True, **ollama_final(reply)}, reply)
            return ollama_whole(reply, whole)
        return proxy.streamed(
            await proxy.relay_batches(request, model, messages, params),
            "application/x-ndjson",
            head=lambda: b"",
            pieces=ollama_lines(model, "message"),
            tail=tail,
        )

    @api.post("/api/generate")
    async def generate(request: Request) -> Any:
        body = await proxy.body(request)
        model = body.get("model")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():  # an empty prompt loads the model
            raise InvalidInput("`prompt` is the text to continue; loading alone is not proxied.")
        messages = [ChatMessage(role="user", content=prompt)]
        if isinstance(system := body.get("system"), str) and system:
            messages.insert(0, ChatMessage(role="system", content=system))
        params = ollama_params(body)

        def response(text: str) -> dict[str, Any]:
            return {"model": model, "created_at": now_iso(), "response": text}

        if body.get("stream", True) is False:
            stream = await proxy.relay(request, model, messages, params)
            reply = await proxy.in_thread(stream.consume)
            return ollama_whole(
                reply, {**response(reply.text), "done": True, **ollama_final(reply)}
            )
        return proxy.streamed(
            await proxy.relay_batches(request, model, messages, params),
            "application/x-ndjson",
            head=lambda: b"",
            pieces=ollama_lines(model, "response"),
            tail=lambda reply: ollama_tail(reply, {**response(""), "done": True}),
        )

    return api


def ollama_lines(model: Any, kind: str) -> Callable[[list[str]], bytes]:
    """Ollama's line for each piece of a batch: `message` (chat) or `response` (generate),
    reasoning under `thinking`. Only the text is encoded per piece: the rest of a line is the
    same for the whole batch (one timestamp), at thousands of pieces a second."""
    start = '{"model": ' + text_json(model) + ', "created_at": '
    answer, reasoning = (
        (
            '"message": {"role": "assistant", "content": ',
            '"message": {"role": "assistant", "content": "", "thinking": ',
        )
        if kind == "message"
        else ('"response": ', '"response": "", "thinking": ')
    )
    end = '}, "done": false}\n' if kind == "message" else ', "done": false}\n'

    def lines(batch: list[str]) -> bytes:
        return framed(batch, start + encode_basestring(now_iso()) + ", ", answer, reasoning, end)

    return lines


def text_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def ollama_whole(reply: Reply, payload: dict[str, Any]) -> JSONResponse:
    if reply.status == RunStatus.ERROR:
        return JSONResponse({"error": reply.error}, status_code=502)
    return JSONResponse(payload)


def ollama_tail(reply: Reply, payload: dict[str, Any]) -> bytes:
    """The last line: Ollama's error line when the reply failed mid-stream, else its figures."""
    if reply.status == RunStatus.ERROR:
        return line({"error": reply.error})
    return line({**payload, **ollama_final(reply)})


# --- the OpenAI-compatible API ---


def openai_error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "dashboard_error"}}


def openai_usage(reply: Reply) -> dict[str, int] | None:
    prompt, completion = reply.metrics.prompt_tokens, reply.metrics.completion_tokens
    if prompt is None and completion is None:
        return None
    return {
        "prompt_tokens": prompt or 0,
        "completion_tokens": completion or 0,
        "total_tokens": (prompt or 0) + (completion or 0),
    }


def finish_reason(reply: Reply) -> str:
    if reply.tool_calls:
        return "tool_calls"
    return "length" if reply.metrics.done_reason == "length" else "stop"


def openai_message(reply: Reply) -> dict[str, Any]:
    """A whole reply's message: its text, and its tool calls when it made any (content is
    then null when there is no text, as OpenAI has it)."""
    if not reply.tool_calls:
        return {"role": "assistant", "content": reply.text}
    return {
        "role": "assistant",
        "content": reply.text or None,
        "tool_calls": tool_calls.for_openai(reply.tool_calls, False),
    }


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def openai_events(
    chunk: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[list[str]], bytes]:
    """A server-sent event per piece of a batch: `delta.content`, or `delta.reasoning_content`
    for reasoning (as vLLM, SGLang and llama.cpp send it). The event's constant parts are
    encoded once; only the text is encoded per piece."""
    before, after = text_json(chunk({})).split('"delta": {}')
    before = "data: " + before + '"delta": {'
    after = "}" + after + "\n\n"
    answer, reasoning = '"content": ', '"reasoning_content": '

    def events(batch: list[str]) -> bytes:
        return framed(batch, before, answer, reasoning, after)

    return events


def create_openai_proxy(
    services: ServicesProvider,
    *,
    origins: Sequence[str],
    token: str | None = None,
    client_tokens: Sequence[tuple[str, str]] = (),
) -> FastAPI:
    proxy = ProxyApp(
        services,
        "OpenAI-compatible proxy",
        origins,
        token,
        openai_error,
        lambda message: event(openai_error(message)) + b"data: [DONE]\n\n",
        client_tokens,
    )
    api = proxy.api

    @api.get("/models")
    async def models() -> dict[str, Any]:
        listing = await proxy.in_thread(services().gateway.listing)
        return {
            "object": "list",
            "data": [
                {"id": m.name, "object": "model", "created": 0, "owned_by": m.where}
                for m in listing.models
                if m.available
            ],
        }

    @api.post("/embeddings")
    async def embeddings(request: Request) -> dict[str, Any]:
        body = await proxy.body(request)
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        name = str(body.get("model", ""))
        result = await proxy.in_thread(lambda: services().gateway.embed(name, inputs))
        tokens = result.prompt_tokens or 0
        return {
            "object": "list",
            "model": result.model,
            "data": [
                {"object": "embedding", "index": i, "embedding": vector}
                for i, vector in enumerate(result.vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @api.post("/chat/completions")
    async def chat_completions(request: Request) -> Any:
        body = await proxy.body(request)
        model = body.get("model")
        own = generation_params(
            OPENAI_DEFAULTS,
            body.get("temperature"),
            body.get("top_p"),
            body.get("max_completion_tokens", body.get("max_tokens")),
            body.get("seed"),
            body.get("stop"),
        )
        params = relayed(own, body, "openai")  # and the client's other fields, passed on
        messages = messages_of(body.get("messages"))
        # Not the run's id: that is written beside the first token, not before it.
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if not body.get("stream"):
            stream = await proxy.relay(request, model, messages, params)
            reply = await proxy.in_thread(stream.consume)
            if reply.status == RunStatus.ERROR:
                return JSONResponse(openai_error(reply.error or "failed"), status_code=502)
            answer: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": openai_message(reply),
                        "finish_reason": finish_reason(reply),
                    }
                ],
            }
            if (usage := openai_usage(reply)) is not None:
                answer["usage"] = usage
            return answer

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def tail(reply: Reply) -> bytes:
            if reply.status == RunStatus.ERROR:
                return event(openai_error(reply.error or "failed")) + b"data: [DONE]\n\n"
            out = b""
            if reply.tool_calls:
                out = event(chunk({"tool_calls": tool_calls.for_openai(reply.tool_calls, True)}))
            out += event(chunk({}, finish_reason(reply)))
            if include_usage:
                out += event({**chunk({}), "choices": [], "usage": openai_usage(reply)})
            return out + b"data: [DONE]\n\n"

        return proxy.streamed(
            await proxy.relay_batches(request, model, messages, params),
            "text/event-stream",
            head=lambda: event(chunk({"role": "assistant", "content": ""})),
            pieces=openai_events(chunk),
            tail=tail,
        )

    return api
