"""The shape the packages keep (issue 16): imports run one way, one error family.

Static checks over every ``src/`` module of the four packages, read with
``ast`` (nothing imported, so a cycle hidden in a function body counts too).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(ROOT.glob("packages/*/src/ranch_*"))


def module_name(path: Path) -> str:
    src = next(parent for parent in path.parents if parent.name == "src")
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> Dict[str, Path]:
    return {module_name(path): path for source in SOURCES for path in source.rglob("*.py")}


def imported(path: Path, name: str, known: Set[str]) -> Set[str]:
    """The Ranch modules ``path`` (module ``name``) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: List[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            # ``from ranch_core import algorithm`` inside ranch_core names the package only to
            # reach its submodule: an edge to one's own ancestor package is not a cycle.
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def test_the_sources_are_found() -> None:
    names = modules()
    assert {
        "ranch_core.dispatcher",
        "ranch_redis.storage",
        "ranch_celery.task",
        "ranch_dramatiq.actor",
    } <= set(names)


def test_no_module_imports_one_that_imports_it_back() -> None:
    names = modules()
    known = set(names)
    graph = {name: imported(path, name, known) for name, path in names.items()}
    cycles: List[List[str]] = []
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_every_exception_the_packages_define_is_a_ranch_error() -> None:
    from ranch_core.errors import RanchError

    defined = []
    for name in modules():
        if ".demo" in name or name.endswith(".testing") or ".testing." in name:
            continue
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                defined.append(cls)
    assert defined, "no exception classes found"
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in defined if not issubclass(cls, RanchError)]
    assert strays == []
