"""The app's streaming path against the bare `ollama` client, on the same loopback server.

Both sides stream the same reply from one fake Ollama process, alternately, and we compare
tokens per second and the time to the first token. The app's side includes everything a send
does: validation, the model check, storing the user's turn, checkpoints and the final store.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import ollama

from bench.support import fake_ollama_process, median, report
from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services

MODEL = "llama3.2:latest"
MESSAGES = [{"role": "user", "content": "Tell me a long story"}]


@dataclass
class Timing:
    """One streamed reply: time to the first token, and the rate from the first to the last."""

    started: float = field(default_factory=time.perf_counter)
    first: float = 0.0
    last: float = 0.0
    tokens: int = 0

    def token(self) -> None:
        self.last = time.perf_counter()
        self.first = self.first or self.last
        self.tokens += 1

    @property
    def ttft_ms(self) -> float:
        return (self.first - self.started) * 1000

    @property
    def tokens_per_second(self) -> float:
        return (self.tokens - 1) / (self.last - self.first)


def bare_round(client: ollama.Client, params: GenerationParams) -> Timing:
    timing = Timing()
    options = params.ollama_options()
    for part in client.chat(model=MODEL, messages=MESSAGES, stream=True, options=options):
        if part.message.thinking:  # a reasoning reply: every piece counts, thinking or answer
            timing.token()
        if part.message.content:
            timing.token()
    return timing


def app_round(services: Services, params: GenerationParams) -> Timing:
    timing = Timing()
    for _ in services.chat.send(None, MESSAGES[0]["content"], MODEL, params):
        timing.token()
    return timing


def run(tokens: int, delay: float, rounds: int, thinking: int = 0) -> dict[str, float]:
    params = GenerationParams(max_tokens=thinking + tokens + 10)
    server_args = ("--tokens", str(tokens), "--delay", str(delay), "--thinking", str(thinking))
    with (
        fake_ollama_process(*server_args) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        client = ollama.Client(host=url, timeout=httpx.Timeout(None, connect=5.0), trust_env=False)
        services = open_services(Settings(url, Path(tmp) / "bench.duckdb", 0))
        bare_round(client, params), app_round(services, params)  # warm both up
        bare, app = [], []
        for _ in range(rounds):
            bare.append(bare_round(client, params))
            app.append(app_round(services, params))
        services.close()
    # This machine is shared and noisy: compare each app round with the bare round run just
    # before it, and take the median of those paired ratios.
    return {
        "bare_tps": median([t.tokens_per_second for t in bare]),
        "app_tps": median([t.tokens_per_second for t in app]),
        "ratio": median(
            [a.tokens_per_second / b.tokens_per_second for a, b in zip(app, bare, strict=True)]
        ),
        "bare_ttft_ms": median([t.ttft_ms for t in bare]),
        "app_ttft_ms": median([t.ttft_ms for t in app]),
        "added_ttft_ms": median([a.ttft_ms - b.ttft_ms for a, b in zip(app, bare, strict=True)]),
    }


SCENARIOS = [
    # answer tokens, thinking tokens before them, seconds between tokens, rounds, label
    (2000, 0, 0.0, 40, "an unthrottled server (the worst case for the app)"),
    (1000, 1000, 0.0, 40, "an unthrottled server, a reasoning reply (1000 thinking first)"),
    (300, 0, 0.002, 5, "a server at ~500 tokens/s"),
    (150, 150, 0.002, 5, "a server at ~500 tokens/s, a reasoning reply (150 thinking first)"),
]


def main() -> None:
    for tokens, thinking, delay, rounds, label in SCENARIOS:
        result = run(tokens, delay, rounds, thinking)
        report(
            f"streaming: app path vs bare ollama client, {thinking + tokens} tokens from {label}",
            [
                ("bare client tokens/s", f"{result['bare_tps']:,.0f}"),
                ("app path tokens/s", f"{result['app_tps']:,.0f}"),
                ("ratio app/bare (target >= 0.99)", f"{result['ratio']:.3f}"),
                ("bare time to first token (any kind)", f"{result['bare_ttft_ms']:.1f} ms"),
                ("app time to first token", f"{result['app_ttft_ms']:.1f} ms"),
                ("added by the app (target <= 5 ms)", f"{result['added_ttft_ms']:.1f} ms"),
            ],
        )


if __name__ == "__main__":
    main()
