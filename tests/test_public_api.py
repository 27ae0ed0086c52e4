"""The public plugin API: what ``ttsframe`` and ``ttsframe.routes`` export is all a
contributed plugin, or the plugin guide's tutorial, imports from ttsframe."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import ttsframe
import ttsframe.routes

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ("ttsframe", "ttsframe.routes", "ttsframe.testing")


def is_public(module: str) -> bool:
    return module in PUBLIC[:2] or module == PUBLIC[2] or module.startswith(PUBLIC[2] + ".")


def ttsframe_imports(source: str) -> list[str]:
    """Every ttsframe module a piece of Python imports from, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [n for n in names if n == "ttsframe" or n.startswith("ttsframe.")]
    return found


def contributed_sources() -> list[Path]:
    return sorted(p for p in (ROOT / "plugins_contrib").rglob("*.py")
                  if ".venv" not in p.parts and "build" not in p.parts)


def tutorial_blocks() -> list[str]:
    tutorial = (ROOT / "docs" / "plugin-tutorial.md").read_text()
    return re.findall(r"```python\n(.*?)```", tutorial, flags=re.S)


def test_every_exported_name_exists():
    for module in (ttsframe, ttsframe.routes):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    assert ttsframe.BuiltinVoiceStore.__name__ == "BuiltinVoiceStore"


@pytest.mark.parametrize("path", contributed_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_contributed_plugins_import_only_the_public_api(path):
    private = [m for m in ttsframe_imports(path.read_text()) if not is_public(m)]
    assert not private, f"{path.relative_to(ROOT)} imports {private}; use the public API"


def test_the_tutorial_imports_only_the_public_api():
    blocks = tutorial_blocks()
    assert len(blocks) >= 8
    for block in blocks:
        private = [m for m in ttsframe_imports(block) if not is_public(m)]
        assert not private, f"the tutorial imports {private}:\n{block}"


def test_the_check_sees_a_private_import():
    assert ttsframe_imports("from ttsframe.core.voices import Voice\n") == ["ttsframe.core.voices"]
    assert not is_public("ttsframe.core.voices")
    assert ttsframe_imports("def f():\n    import ttsframe.http.app\n") == ["ttsframe.http.app"]
    assert is_public("ttsframe.testing.contracts")


def test_the_check_covers_every_contributed_plugin():
    folders = {p.relative_to(ROOT / "plugins_contrib").parts[0] for p in contributed_sources()}
    expected = {d.name for d in (ROOT / "plugins_contrib").iterdir() if d.is_dir()}
    assert "ttsframe-alltalk-api" in expected
    assert folders == expected


def hookimpl_sources(source: str) -> list[str]:
    """The modules a piece of Python imports ``hookimpl`` from."""
    return [node.module or "" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom)
            and any(alias.name == "hookimpl" for alias in node.names)]


def test_tests_take_hookimpl_from_the_public_api():
    """Tests are written as plugins are: ``from ttsframe import hookimpl``."""
    paths = sorted((ROOT / "tests").rglob("*.py")) + contributed_sources()
    wrong = [str(p.relative_to(ROOT)) for p in paths
             if any(m != "ttsframe" for m in hookimpl_sources(p.read_text()))]
    assert not wrong, f"import hookimpl with `from ttsframe import hookimpl` in {wrong}"
    assert hookimpl_sources("def f():\n    from ttsframe.core.hookspecs import hookimpl\n") \
        == ["ttsframe.core.hookspecs"]
