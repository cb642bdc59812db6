"""The REST API of the real `streamlit run server.py` process against the in-process send path.

Streaming: the same reply from one fake Ollama process, read alternately through
`POST /api/chat` with `"stream": true` (NDJSON over HTTP) and through `ChatService.send` in this
process; we compare tokens per second and the time to the first token as the client sees them.
Concurrency: 20 chats sent at once against one chat alone, on a model that takes about a second.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.streaming import MESSAGES, MODEL, Timing, app_round
from bench.support import fake_ollama_process, median, report
from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import open_services
from testkit.browser import streamlit_server

CONCURRENT = 20


def api_round(client: httpx.Client, url: str, params: GenerationParams) -> Timing:
    """A line carries what arrived together (a few hundred tokens from a fast model): the
    tokens are the reply's own count, from its last line, delivered from the first line (the
    first token alone) to the last."""
    timing = Timing()
    body = {
        "message": MESSAGES[0]["content"],
        "stream": True,
        "model_params": {"model": MODEL, "max_tokens": params.max_tokens},
    }
    with client.stream("POST", f"{url}/api/chat", json=body) as answer:
        for line in answer.iter_lines():
            if not line:
                continue
            data = json.loads(line)
            if not data["done"]:
                timing.token()
                continue
            metrics = data["metrics"]
            timing.tokens = (metrics["answer_tokens"] or 0) + (metrics["thinking_tokens"] or 0)
    return timing


def api_chat(url: str, text: str) -> float:
    started = time.perf_counter()
    body = {"message": text, "model_params": {"model": MODEL, "max_tokens": 1000}}
    answer = httpx.post(f"{url}/api/chat", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    return time.perf_counter() - started


def streaming(tokens: int, delay: float, rounds: int) -> dict[str, float]:
    params = GenerationParams(max_tokens=tokens + 10)
    with (
        fake_ollama_process("--tokens", str(tokens), "--delay", str(delay)) as ollama_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        env = {"OLLAMA_HOST": ollama_url, "CHAT_DB": str(Path(tmp) / "api.duckdb")}
        services = open_services(Settings(ollama_url, Path(tmp) / "direct.duckdb", 0))
        with (
            streamlit_server(env, Path(tmp) / "streamlit.log") as url,
            httpx.Client(timeout=120) as client,
        ):
            api_round(client, url, params), app_round(services, params)  # warm both up
            direct, api = [], []
            for _ in range(rounds):
                direct.append(app_round(services, params))
                api.append(api_round(client, url, params))
        services.close()
    pairs = list(zip(api, direct, strict=True))
    return {
        "direct_tps": median([t.tokens_per_second for t in direct]),
        "api_tps": median([t.tokens_per_second for t in api]),
        "ratio": median([a.tokens_per_second / d.tokens_per_second for a, d in pairs]),
        "direct_ttft_ms": median([t.ttft_ms for t in direct]),
        "api_ttft_ms": median([t.ttft_ms for t in api]),
        "added_ttft_ms": median([a.ttft_ms - d.ttft_ms for a, d in pairs]),
    }


def concurrency(tokens: int, delay: float, rounds: int) -> dict[str, float]:
    with (
        fake_ollama_process("--tokens", str(tokens), "--delay", str(delay)) as ollama_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        env = {"OLLAMA_HOST": ollama_url, "CHAT_DB": str(Path(tmp) / "api.duckdb")}
        with (
            streamlit_server(env, Path(tmp) / "streamlit.log") as url,
            ThreadPoolExecutor(CONCURRENT) as pool,
        ):
            api_chat(url, "warm up")
            alone, together = [], []
            for round_ in range(rounds):
                alone.append(api_chat(url, f"alone {round_}"))
                started = time.perf_counter()
                list(pool.map(lambda i: api_chat(url, f"together {i}"), range(CONCURRENT)))
                together.append(time.perf_counter() - started)
    return {
        "alone_s": median(alone),
        "together_s": median(together),
        "ratio": median([t / a for t, a in zip(together, alone, strict=True)]),
    }


def main() -> None:
    os.environ.pop("CHAT_API_TOKEN", None)
    # The long replies measure the stream: a 2,000-token reply from an unthrottled server
    # streams in about 15 ms, against each reply's own costs (its rows, its outcome, its Stats
    # summary: about 30 ms of CPU on either side, running into the other side's next round) and
    # the API's flushes every 4 ms. Forty rounds a side: fifteen moved the ratio by 0.15.
    for tokens, delay, rounds, label in [
        (20000, 0.0, 40, "an unthrottled server (the worst case for the API)"),
        (2000, 0.0, 40, "an unthrottled server, short replies"),
        (300, 0.002, 5, "a server at ~500 tokens/s"),
    ]:
        result = streaming(tokens, delay, rounds)
        report(
            f"REST API: streamed over HTTP vs in-process send, {tokens} tokens from {label}",
            [
                ("in-process tokens/s", f"{result['direct_tps']:,.0f}"),
                ("REST API tokens/s", f"{result['api_tps']:,.0f}"),
                ("ratio API/in-process (target >= 0.9 unthrottled)", f"{result['ratio']:.3f}"),
                ("in-process time to first token", f"{result['direct_ttft_ms']:.1f} ms"),
                ("REST API time to first token", f"{result['api_ttft_ms']:.1f} ms"),
                ("added by HTTP and the API", f"{result['added_ttft_ms']:.1f} ms"),
            ],
        )
    result = concurrency(tokens=50, delay=0.02, rounds=3)
    report(
        f"REST API: {CONCURRENT} chats at once vs one alone (50 tokens at 50 tokens/s each)",
        [
            ("one chat alone", f"{result['alone_s']:.2f} s"),
            (f"{CONCURRENT} chats at once", f"{result['together_s']:.2f} s"),
            (f"ratio (1.0: no waiting; {CONCURRENT}: one at a time)", f"{result['ratio']:.2f}"),
        ],
    )


if __name__ == "__main__":
    main()
