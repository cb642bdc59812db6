"""Routing over several Ollama hosts: 8 concurrent chats for the same model, one host vs two.

Each fake host serves one chat at a time (as Ollama does with OLLAMA_NUM_PARALLEL=1) and runs
in its own process. Both sides send through the app's whole path (`ChatService.send`), so the
least-busy choice in the registry is what spreads the chats. Target: two hosts give at least 1.8
times the throughput of one.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from bench.support import fake_ollama_process, median, report
from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services

MODEL = "llama3.2:latest"
CHATS = 8
TOKENS = 30
DELAY = 0.01  # seconds between tokens: about 0.3 s a reply
ROUNDS = 4


def chat_round(services: Services, pool: ThreadPoolExecutor) -> tuple[float, dict[str, int]]:
    """Wall time of CHATS concurrent chats, and how many each host answered."""
    params = GenerationParams(max_tokens=TOKENS + 10)

    def one_chat(index: int) -> str:
        reply = services.chat.send(None, f"Chat {index}", MODEL, params).consume()
        assert reply.status == "complete", reply.error
        return reply.host

    started = time.perf_counter()
    hosts = list(pool.map(one_chat, range(CHATS)))
    elapsed = time.perf_counter() - started
    return elapsed, {host: hosts.count(host) for host in sorted(set(hosts))}


def run() -> dict[str, float | str]:
    args = ("--serial", "--tokens", str(TOKENS), "--delay", str(DELAY))
    with ExitStack() as stack:
        first = stack.enter_context(fake_ollama_process(*args))
        second = stack.enter_context(fake_ollama_process(*args))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        one = open_services(Settings(first, tmp / "one.duckdb", 0))
        two = open_services(Settings(first, tmp / "two.duckdb", 0, ollama_hosts=(second,)))
        stack.callback(one.close)
        stack.callback(two.close)
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=CHATS))
        chat_round(one, pool), chat_round(two, pool)  # warm up both
        single, double, spread = [], [], {}
        for _ in range(ROUNDS):
            single.append(chat_round(one, pool)[0])
            elapsed, spread = chat_round(two, pool)
            double.append(elapsed)
    return {
        "one_host_chats_per_s": CHATS / median(single),
        "two_hosts_chats_per_s": CHATS / median(double),
        # Paired: each two-host round against the one-host round run just before it.
        "ratio": median([s / d for s, d in zip(single, double, strict=True)]),
        "spread": " / ".join(str(n) for n in spread.values()),
    }


def main() -> None:
    result = run()
    report(
        f"routing: {CHATS} concurrent chats, hosts serving one chat at a time, "
        f"{TOKENS} tokens a reply",
        [
            ("one host, chats/s", f"{result['one_host_chats_per_s']:.2f}"),
            ("two hosts, chats/s", f"{result['two_hosts_chats_per_s']:.2f}"),
            ("chats per host (two hosts, last round)", str(result["spread"])),
            ("ratio two/one (target >= 1.8)", f"{result['ratio']:.2f}"),
        ],
    )


if __name__ == "__main__":
    main()
