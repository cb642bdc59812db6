"""The layout's rules, checked on every import of every module (see README: Layout).

Each module belongs to one layer; a layer may import only the layers listed for it. The checks
read the source with `ast`, so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("chatcore", "ui", "pages")
ENTRY_POINTS = ("server.py", "streamlit_app.py")

VOCABULARY = {"chatcore.types", "chatcore.errors", "chatcore.params", "chatcore.config"}
VOCABULARY |= {"chatcore.context", "chatcore"}

# layer -> the layers it may import (itself included where listed)
ALLOWED: dict[str, set[str]] = {
    "vocabulary": {"vocabulary"},
    "backends": {"vocabulary", "backends"},
    "storage": {"vocabulary", "storage"},
    "services": {"vocabulary", "backends", "storage", "services"},
    "api": {"vocabulary", "services", "api"},
    "ui": {"vocabulary", "services", "ui"},
    "pages": {"vocabulary", "services", "ui"},
    "entry": {"vocabulary", "services", "api", "ui", "storage"},
}
SQL_CALLS = {"execute", "executemany", "sql", "query", "register"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (or module.name for `from m import name`)
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files() -> list[Path]:
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return files + [ROOT / name for name in ENTRY_POINTS]


def layer_of(module: str) -> str | None:
    """The layer of a project module, None for anything outside the project."""
    top = module.split(".")[0]
    if top in ("server", "streamlit_app"):
        return "entry"
    if top in ("ui", "pages"):
        return top
    if top != "chatcore":
        return None
    if module in VOCABULARY:
        return "vocabulary"
    second = module.split(".")[1] if "." in module else ""
    if second in ("backends", "storage", "api"):
        return second
    return "services"


def imports_of(path: Path) -> Iterator[Import]:
    source = module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                package = source.split(".")[: len(source.split(".")) - node.level]
                base = ".".join([*package, *([base] if base else [])])
            for alias in node.names:
                yield Import(source, f"{base}.{alias.name}", node.lineno)


def resolved(target: str, modules: set[str]) -> str:
    """`pkg.mod.name` -> `pkg.mod` when `name` is not itself a module."""
    return target if target in modules else target.rsplit(".", 1)[0]


ALL_IMPORTS = [imp for path in project_files() for imp in imports_of(path)]
MODULES = {module_name(path) for path in project_files()}


def broken(rule) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"{i.source}:{i.line} imports {i.target}" for i in ALL_IMPORTS if rule(i)]


def test_every_project_module_has_a_layer() -> None:
    assert all(layer_of(module) for module in MODULES)


def test_layers_import_only_the_layers_below_them() -> None:
    def crosses(imp: Import) -> bool:
        target = layer_of(resolved(imp.target, MODULES))
        return target is not None and target not in ALLOWED[layer_of(imp.source) or ""]

    assert broken(crosses) == []


def test_nothing_in_chatcore_imports_streamlit_and_only_the_api_imports_fastapi() -> None:
    def web(imp: Import) -> bool:
        top = imp.target.split(".")[0]
        if not imp.source.startswith("chatcore"):
            return False
        if top == "streamlit":
            return True
        return top in ("fastapi", "starlette") and not imp.source.startswith("chatcore.api")

    assert broken(web) == []


def test_pages_and_ui_never_touch_the_database() -> None:
    def database(imp: Import) -> bool:
        return layer_of(imp.source) in ("ui", "pages") and imp.target.split(".")[0] == "duckdb"

    assert broken(database) == []


def sql_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{module_name(path)}:{node.lineno} calls .{node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SQL_CALLS
    ]


def database_handles(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{module_name(path)}:{node.lineno} reaches .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("db", "cursor", "transaction")
    ]


def test_pages_and_ui_never_reach_the_database_object() -> None:
    screens = [p for p in project_files() if layer_of(module_name(p)) in ("ui", "pages")]
    assert [hit for path in screens for hit in database_handles(path)] == []


def test_sql_runs_only_in_storage() -> None:
    outside = [
        path for path in project_files() if (layer_of(module_name(path)) or "") not in ("storage",)
    ]
    assert [call for path in outside for call in sql_calls(path)] == []


def test_no_two_modules_import_each_other_in_a_cycle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for imp in ALL_IMPORTS:
        target = resolved(imp.target, MODULES)
        if target in MODULES and target != imp.source:
            graph[imp.source].add(target)
    # a package's __init__ importing its own modules is not an arrow upwards
    cycles = [
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a in path_between(graph, b, a) and not b.startswith(a + ".")
    ]
    assert cycles == []


def path_between(graph: dict[str, set[str]], start: str, goal: str) -> set[str]:
    """Every module reachable from `start` (empty when `goal` is not among them)."""
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen if goal in seen else set()


# --- the rules catch what they are for ---


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("chatcore.storage.conversations", "chatcore.backends.base.ChatMessage"),
        ("chatcore.backends.ollama", "chatcore.storage.db"),
        ("chatcore.types", "chatcore.storage.runs"),
        ("pages.chat", "chatcore.storage.conversations"),
        ("ui.components", "chatcore.backends.registry"),
        ("chatcore.chat", "chatcore.api.rest"),
    ],
)
def test_a_leak_breaks_the_layer_rule(source: str, target: str) -> None:
    target_layer = layer_of(resolved(target, MODULES))
    assert target_layer not in ALLOWED[layer_of(source) or ""]


def test_a_sql_call_outside_storage_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.py"
    page.write_text("def draw(cur):\n    return cur.execute('SELECT 1')\n")
    original = ROOT
    try:
        globals()["ROOT"] = tmp_path
        assert sql_calls(page) == ["page:2 calls .execute()"]
    finally:
        globals()["ROOT"] = original
