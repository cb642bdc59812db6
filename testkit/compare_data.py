"""An arena of fake models that stream at different speeds, and finished compare rounds on it."""

from __future__ import annotations

from chatcore.params import GenerationParams
from chatcore.services import Services
from testkit.fake_ollama import FakeModel, FakeOllama

SLOW = " ".join(f"slow{i}" for i in range(12))
FAST = " ".join(f"fast{i}" for i in range(30))
MID = " ".join(f"mid{i}" for i in range(8))


def arena_server() -> FakeOllama:
    """Not started: slow, fast and mid stream their replies at their own speeds; flaky fails."""
    return FakeOllama(
        [
            FakeModel("slow:latest", reply=SLOW, token_delay=0.06),
            FakeModel("fast:latest", reply=FAST, token_delay=0.005),
            FakeModel("mid:latest", reply=MID, token_delay=0.03, load_delay=0.1),
            FakeModel(
                "flaky:latest", reply="one two three four five", token_delay=0.02, fail_after=2
            ),
        ]
    )


def finished_round(services: Services, models: list[str], blind: bool = True) -> int:
    live = services.compare.start("Which is better?", models, GenerationParams(max_tokens=2), blind)
    live.wait()
    return live.id
