"""One name per model: Ollama's rule that a name without a tag means `:latest`."""

from __future__ import annotations

import pytest

from chatcore.types import canonical_model


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("phi3", "phi3:latest"),
        ("phi3:latest", "phi3:latest"),
        ("qwen3:4b", "qwen3:4b"),
        (" phi3 ", "phi3:latest"),
        ("library/phi3", "library/phi3:latest"),
        ("localhost:5000/me/phi3", "localhost:5000/me/phi3:latest"),  # the port is no tag
        ("localhost:5000/me/phi3:q4", "localhost:5000/me/phi3:q4"),
        ("phi3@sha256:abc", "phi3@sha256:abc"),
        ("gemma3-270m (embedded)", "gemma3-270m (embedded)"),  # not an Ollama name
        ("", ""),
    ],
)
def test_a_name_without_a_tag_means_latest(given: str, canonical: str) -> None:
    assert canonical_model(given) == canonical
    assert canonical_model(canonical_model(given)) == canonical_model(given)
