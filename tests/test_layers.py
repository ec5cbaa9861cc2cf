"""The layers show in the folders (issue #15, point 2), read from the code itself:

    domain/    grades, statuses, roles, the config models, the directory   imports nothing of ours
    store/     all SQL                                                     imports domain/
    handlers/  the business behaviour and operations (handlers/ops/)       imports domain/, store/
    bot/       the runtime: HTTP, channels, outbox, engine, CLI            imports anything

No module imports one of a layer above it, no two modules import each other (directly or round a
longer cycle) when the program runs, and no module grows past the size one person can hold in mind.
Imports under `if TYPE_CHECKING:` are for the type checker only and do not count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "store", "handlers", "bot")
ALLOWED = {
    "domain": {"domain"},
    "store": {"domain", "store"},
    "handlers": {"domain", "store", "handlers"},
    "bot": {"domain", "store", "handlers", "bot"},
}
MAX_LINES = 420  # "no module over ~400 lines"
GENERATED = {"store/migrations"}  # Alembic revisions are written once and never edited


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if any(str(relative).startswith(prefix) for prefix in GENERATED):
                continue
            name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            yield name, path


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(path: Path, name: str) -> set[str]:
    """The modules of ours `path` imports when it runs (at import time or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            skipped.update(id(child) for part in node.body for child in ast.walk(part))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module.split(".")[0] in PACKAGES}


ALL = dict(modules())


def _resolve(module: str) -> str | None:
    """`bot.api.items.create_item` → `bot.api.items` (the longest name that is one of our modules)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in ALL:
            return candidate
    return None


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in ALL.items():
        targets = {_resolve(m) for m in runtime_imports(path, name)}
        edges[name] = {t for t in targets if t is not None and t != name}
    return edges


@pytest.mark.parametrize("name", sorted(ALL))
def test_a_module_imports_nothing_from_a_layer_above_it(name: str) -> None:
    layer = name.split(".")[0]
    above = sorted(m for m in runtime_imports(ALL[name], name) if m.split(".")[0] not in ALLOWED[layer])
    assert not above, f"{name} ({layer}/) imports {above}"


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    # A package's __init__ re-exporting its own modules is no cycle of behaviour.
    real = [c for c in cycles if not any(a.startswith(b + ".") or b.startswith(a + ".") for a, b in pairwise(c))]
    assert not real, "\n".join(" → ".join(cycle) for cycle in real)


@pytest.mark.parametrize("name", sorted(ALL))
def test_no_module_is_over_about_400_lines(name: str) -> None:
    lines = len(ALL[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{ALL[name].relative_to(ROOT)} has {lines} lines"
