"""What the services tests of History's search watch: the windows its scans of the text cover."""

from __future__ import annotations

from typing import Any

import pytest

from chatcore import history as history_module


def recorded_scans(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The `since` of each scan of the folded text from now on (None: everything), in order."""
    scans: list[object] = []
    search_since = history_module.queries.search_since

    def noting(cur: Any, needle: str, filters: Any, since: Any, limit: int) -> Any:
        scans.append(since)
        return search_since(cur, needle, filters, since, limit)

    monkeypatch.setattr(history_module.queries, "search_since", noting)
    return scans
