"""Print the import cycles among ttsframe's modules; exit 1 if there is one.

Only imports that run when a module is imported count: module-level ``import`` and
``from ... import`` statements, including those inside ``try`` or ``if`` blocks, except an
``if TYPE_CHECKING:`` block. Imports inside functions run later and never form a cycle
at import time. Usage: ``python scripts/import_cycles.py [--typing] [package_dir]``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# ``--typing``: count ``if TYPE_CHECKING:`` imports too (annotations' dependencies).
TYPING = "--typing" in sys.argv


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def top_level_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """Modules imported when ``name`` is imported (relative imports resolved)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[:len(package) - node.level + 1]
                    base = ".".join([*package, base] if base else package)
                # ``from pkg import mod`` needs ``pkg.mod``; ``pkg`` itself is its
                # parent, imported first whatever it imports.
                found.update(f"{base}.{alias.name}" for alias in node.names)
                found.add(base)
            elif isinstance(node, ast.If):
                if TYPING or not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody,
                              *(h.body for h in node.handlers)):
                    visit(block)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        imported = top_level_imports(tree, name, path.name == "__init__.py")
        submodules = {m for m in imported if m in modules}
        parents = {m.rsplit(".", 1)[0] for m in submodules if "." in m}
        edges[name] = {m for m in submodules if m != name and not (
            m in parents and name.startswith(m + "."))}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--typing"]
    root = Path(args[0] if args else Path(__file__).parent.parent /
                "ttsframe").resolve()
    found = cycles(graph(root))
    for component in found:
        print("cycle:", " <-> ".join(component))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
