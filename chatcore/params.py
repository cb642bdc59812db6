"""Generation parameters with the seed's ranges and defaults, mapped to backend options."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

TEMPERATURE_DEFAULT = 0.7
TOP_P_DEFAULT = 0.9
MAX_TOKENS_DEFAULT = 500
MAX_TOKENS_LIMIT = 32768
THINK_LEVELS = ("low", "medium", "high")  # the named levels Ollama's `think` takes (gpt-oss)
ThinkLevel = Literal["low", "medium", "high"]


class GenerationParams(BaseModel):
    """What the sidebar, the Compare page and the REST API let a user tune."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(TEMPERATURE_DEFAULT, ge=0, le=1)
    top_p: float = Field(TOP_P_DEFAULT, ge=0, le=1)
    max_tokens: int = Field(MAX_TOKENS_DEFAULT, gt=0, le=MAX_TOKENS_LIMIT)
    system_prompt: str = ""
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # Ollama's `think`: on, off or a level; None (the model's default) sends nothing. Strict, so
    # "yes" or 1 are refused rather than read as true.
    think: StrictBool | ThinkLevel | None = Field(
        None, description="true, false or a level (low, medium, high); omitted: model default"
    )
    # The largest context window the user wants for this chat (a preset's "context size");
    # None: the app's CONTEXT_MAX. The window sent is fitted to the prompt within it.
    context_size: int | None = Field(None, ge=256, le=1_048_576)
    # The window this request runs in, set by the chat service's context fitting (Ollama's
    # num_ctx); a value given here is replaced by the fitted one.
    num_ctx: int | None = Field(None, ge=1, le=1_048_576)
    # Knowledge-base collections whose passages go into the prompt (none: no retrieval).
    collections: tuple[str, ...] = ()

    def ollama_options(self) -> dict[str, Any]:
        """Ollama's `options` object; max tokens travels as `num_predict`."""
        options: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "num_predict": self.max_tokens,
        }
        if self.num_ctx is not None:
            options["num_ctx"] = self.num_ctx
        if self.seed is not None:
            options["seed"] = self.seed
        if self.stop:
            options["stop"] = list(self.stop)
        return options

    def ollama_think(self) -> bool | str | None:
        """The request's `think` field; None leaves it out (the model's own default)."""
        return self.think

    def ollama_fields(self) -> dict[str, Any]:
        """More top-level fields of Ollama's chat request (a relayed request's own)."""
        return {}

    def openai_fields(self) -> dict[str, Any]:
        """More fields of a chat-completions request (a relayed request's own)."""
        return {}

    def recorded(self) -> dict[str, Any]:
        """The parameters as stored with every run."""
        return self.model_dump(mode="json")


class RelayedParams(GenerationParams):
    """A request a tool sent through the proxies: the dashboard's parameters (clamped to its
    ranges, for Stats), and every other field the client sent, passed on as it came, under
    the protocol of the host that answers: Ollama's `options` (num_ctx, repeat_penalty, and the
    client's own temperature), `format`, `keep_alive`; OpenAI's penalties, `response_format`,
    `logit_bias`... Both are stored with the run."""

    for_ollama: dict[str, Any] = Field(default_factory=dict)
    for_openai: dict[str, Any] = Field(default_factory=dict)

    def ollama_options(self) -> dict[str, Any]:
        client_options = self.for_ollama.get("options")
        return {**super().ollama_options(), **(client_options or {})}

    def ollama_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.for_ollama.items() if k != "options"}

    def openai_fields(self) -> dict[str, Any]:
        return dict(self.for_openai)
