"""No import cycle among ttsframe's modules: each concern imports only the ones below it.

Every import counts (module level, inside functions, under ``TYPE_CHECKING``): a lazy or
typing-only import still ties two modules together, and a cycle is where a change in one
concern starts to need a change in another. A new cycle fails here with its modules named,
as a private import fails ``test_public_api.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [ROOT / "ttsframe", *sorted((ROOT / "plugins_contrib").glob("*/ttsframe_*"))]


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            parts = list(path.relative_to(package.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def imports_of(name: str, path: Path, files: dict[str, Path]) -> set[str]:
    """The modules of ``files`` that ``name`` imports, wherever the import stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # ``from package import module`` imports the module; else the package.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, files) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (move the shared part down a layer): " + "; ".join(
        " <-> ".join(c) for c in found)


# What the core must not import: the layers above it (HTTP, startup, the engines and the
# plugins it serves, the public facades built on it).
ABOVE_THE_CORE = ("ttsframe.http", "ttsframe.assembly", "ttsframe.cli", "ttsframe.cluster",
                  "ttsframe.plugins", "ttsframe.routes", "ttsframe.testing")


def test_the_core_imports_nothing_above_it():
    graph = import_graph()
    wrong = {name: sorted(t for t in targets
                          if any(t == up or t.startswith(up + ".") for up in ABOVE_THE_CORE))
             for name, targets in graph.items() if name.startswith("ttsframe.core")}
    assert not {k: v for k, v in wrong.items() if v}, wrong


def test_the_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_every_kind_of_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import X\n")
    (package / "c.py").write_text("def f():\n    from . import b\n")
    files = {"pkg": package / "__init__.py", "pkg.b": package / "b.py",
             "pkg.c": package / "c.py"}
    graph = {name: imports_of(name, path, files) for name, path in files.items()}
    assert graph == {"pkg": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.b"}}
    assert cycles(graph) == [["pkg.b", "pkg.c"]]
