"""What the proxies pass on of a request beyond its messages: every field its client sent,
as it came, for a host of the same protocol, and the fields both protocols share translated for
a host of the other one (any model on any host: an Ollama client may be answered by vLLM).

Tools: `tools` goes to either kind of host (both protocols describe a function alike);
OpenAI's `tool_choice` and `parallel_tool_calls` to OpenAI-compatible hosts only (Ollama has
neither; `tool_choice: "none"` sends an Ollama host no tools at all). The calls come back
through chatcore/api/tool_calls.py. Not relayed: OpenAI's `n` (one reply a request).
"""

from __future__ import annotations

from typing import Any

from chatcore.params import GenerationParams, RelayedParams

# The fields the proxy sets itself, or does not relay.
OLLAMA_OWN = frozenset(
    {"model", "messages", "stream", "prompt", "system", "images", "raw", "template"}
    | {"context", "suffix"}
)
OPENAI_OWN = frozenset(
    {"model", "messages", "stream", "stream_options", "n", "functions", "function_call"}
)
SHARED_SAMPLING = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed")


def relayed(params: GenerationParams, body: dict[str, Any], protocol: str) -> RelayedParams:
    """`params` (the dashboard's view of the request) with the client's own fields for both
    kinds of host; `protocol` is the one the client spoke: "ollama" or "openai"."""
    if protocol == "ollama":
        for_ollama = present({k: v for k, v in body.items() if k not in OLLAMA_OWN})
        for_openai = openai_from_ollama(for_ollama)
    else:
        for_openai = present({k: v for k, v in body.items() if k not in OPENAI_OWN})
        for_ollama = ollama_from_openai(for_openai)
    return RelayedParams(**params.model_dump(), for_ollama=for_ollama, for_openai=for_openai)


def present(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields sent as null are as good as absent; so is an empty `tools` (the ollama client
    sends `[]` with every chat)."""
    return {
        name: value
        for name, value in fields.items()
        if value is not None and not (name == "tools" and not value)
    }


def openai_from_ollama(fields: dict[str, Any]) -> dict[str, Any]:
    options = fields.get("options") if isinstance(fields.get("options"), dict) else {}
    out = {name: options[name] for name in SHARED_SAMPLING if options.get(name) is not None}
    if isinstance(tokens := options.get("num_predict"), int) and tokens > 0:
        out["max_tokens"] = tokens
    if options.get("stop"):
        out["stop"] = options["stop"]
    if fields.get("tools"):
        out["tools"] = fields["tools"]
    match fields.get("format"):
        case "json":
            out["response_format"] = {"type": "json_object"}
        case dict() as schema:
            out["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema},
            }
    return out


def ollama_from_openai(fields: dict[str, Any]) -> dict[str, Any]:
    options = {name: fields[name] for name in SHARED_SAMPLING if name in fields}
    tokens = fields.get("max_completion_tokens", fields.get("max_tokens"))
    if isinstance(tokens, int) and tokens > 0:
        options["num_predict"] = tokens
    if stop := fields.get("stop"):
        options["stop"] = [stop] if isinstance(stop, str) else stop
    out: dict[str, Any] = {"options": options} if options else {}
    if fields.get("tools") and fields.get("tool_choice") != "none":
        out["tools"] = fields["tools"]
    response_format = fields.get("response_format")
    if isinstance(response_format, dict):
        if response_format.get("type") == "json_object":
            out["format"] = "json"
        elif response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            if isinstance(schema, dict):
                out["format"] = schema
    return out
