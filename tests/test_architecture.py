"""The layering of the code (docs/DEVELOPING.md), checked on its import graph.

Imports are read with `ast`, so nothing is imported; those under `if TYPE_CHECKING:` are left
out (they never run). A lazy import inside a function counts: it is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nas", "search_spaces", "predictors")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    found["cli"] = ROOT / "cli.py"
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def _imported_names(module: str, path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


@cache
def _graph() -> dict[str, frozenset[str]]:
    modules = _modules()
    graph: dict[str, frozenset[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in _imported_names(module, path):
            while name and name not in modules:  # `from pkg import function` -> pkg
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = frozenset(targets)
    return graph


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _imports_of(prefix: str) -> dict[str, frozenset[str]]:
    return {m: t for m, t in _graph().items() if m == prefix or m.startswith(prefix + ".")}


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_import_graph_has_no_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_checker_sees_cycles_and_skips_type_checking_imports() -> None:
    assert _cycles({"a": frozenset({"b"}), "b": frozenset({"a"}), "c": frozenset()}) == [
        ["a", "b"]
    ]
    # nas.supernet.base names SearchSpace for types only; the space imports it for real
    assert "search_spaces.base" not in _graph()["nas.supernet.base"]
    assert "nas.supernet.base" in _graph()["search_spaces.nb201.supernet"]


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("nas.search", ("nas.train", "nas.commands", "nas.export", "cli")),
        ("nas.export", ("nas.train", "nas.commands", "nas.search.pipeline", "cli")),
        ("nas.supernet", ("nas.train", "nas.search", "nas.export", "nas.profile",
                          "nas.commands", "cli")),
        ("predictors", ("nas.profile", "nas.search", "nas.train", "nas.export", "nas.supernet",
                        "nas.commands", "nas.data", "cli")),
        ("search_spaces", ("nas.train", "nas.search", "nas.export", "nas.profile",
                           "nas.commands", "predictors", "cli")),
        ("nas.rank", ("nas.train", "nas.search", "nas.export", "nas.commands", "cli")),
        ("nas.data", ("nas.train", "nas.search", "nas.export", "nas.supernet", "nas.commands")),
    ],
)
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    offending = {
        module: sorted(t for t in targets if _within(t, forbidden))
        for module, targets in _imports_of(layer).items()
    }
    assert {m: t for m, t in offending.items() if t} == {}


def test_only_commands_print_or_draw() -> None:
    drawing = ("rich", "typer")
    offenders = []
    for module, path in _modules().items():
        if _within(module, ("nas.commands", "cli")):
            continue
        tree = ast.parse(path.read_text())
        prints = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call)
                  and isinstance(n.func, ast.Name) and n.func.id == "print"]
        draws = [name for name in _imported_names(module, path)
                 if name.split(".")[0] in drawing]
        if prints or draws:
            offenders.append((module, prints, draws))
    # the bundle runner is a stand-alone script copied to remote devices: it prints its progress
    assert [o for o in offenders if o[0] != "nas.profile.bundle_runner"] == []
