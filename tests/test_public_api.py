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
PUBLIC = ("ttsframe", "ttsframe.routes", "ttsframe.files", "ttsframe.testing")


def is_public(module: str) -> bool:
    return module in PUBLIC or module.startswith("ttsframe.testing.")


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


def builtin_sources() -> list[Path]:
    return sorted((ROOT / "ttsframe" / "plugins").rglob("*.py"))


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


@pytest.mark.parametrize("path", builtin_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_builtin_plugins_import_only_the_public_api(path):
    """The built-in plugins are written as any plugin is: public names, and their own
    package (``ttsframe.plugins``)."""
    private = [m for m in ttsframe_imports(path.read_text())
               if not is_public(m) and not m.startswith("ttsframe.plugins")]
    assert not private, f"{path.relative_to(ROOT)} imports {private}; use the public API"


def test_the_builtin_check_sees_every_plugin():
    names = {p.relative_to(ROOT / "ttsframe" / "plugins").as_posix() for p in builtin_sources()}
    assert {"dia/backend.py", "encoders.py", "voice_store_fs.py", "speaker_tags.py",
            "pronunciations.py"} <= names


def test_the_tutorial_imports_only_the_public_api():
    blocks = tutorial_blocks()
    assert len(blocks) >= 8
    for block in blocks:
        private = [m for m in ttsframe_imports(block) if not is_public(m)]
        assert not private, f"the tutorial imports {private}:\n{block}"


def test_the_check_sees_a_private_import():
    assert ttsframe_imports("from ttsframe.core.voices.voice import Voice\n") \
        == ["ttsframe.core.voices.voice"]
    assert not is_public("ttsframe.core.voices.voice")
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
    source = "def f():\n    from ttsframe.core.interfaces.hookspecs import hookimpl\n"
    assert hookimpl_sources(source) == ["ttsframe.core.interfaces.hookspecs"]
