"""Plugin loading, registry naming and conflicts, enable/disable."""

from __future__ import annotations

import sys
import types

import pytest

from tests.conftest import tone_plugin
from ttsframe import hookimpl
from ttsframe.core.errors import PluginError
from ttsframe.core.interfaces.plugins import load_plugins


def plugin(**hooks) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


def test_builtins_come_from_entry_points():
    _, registry, infos = load_plugins(lambda name: True)
    by_name = {i.name: i for i in infos}
    for name in ("roles", "speaker_tags", "encoders", "builtin_voices", "dia"):
        assert by_name[name].source == "built-in", name
    assert "backend:dia" in by_name["dia"].provides
    assert registry.get("preprocessor", "roles").plugin == "roles"
    assert "register_preprocessors" in by_name["roles"].hooks


def test_disabled_plugin_is_not_loaded():
    _, registry, infos = load_plugins(lambda name: name != "roles")
    assert registry.get("preprocessor", "roles") is None
    assert "roles" not in {i.name for i in infos}


def test_extra_plugin_is_registered_and_attributed():
    _, registry, infos = load_plugins(lambda n: True, [("tone-plugin", tone_plugin())],
                                      entry_points=False)
    assert registry.get("backend", "tone").plugin == "tone-plugin"
    info = next(i for i in infos if i.name == "tone-plugin")
    assert info.provides == ["backend:tone"]
    assert info.source.startswith("registered in code")


def test_duplicate_names_are_a_clear_error():
    other = plugin(register_backends=lambda register: register("tone", lambda ctx: None))
    with pytest.raises(PluginError) as err:
        load_plugins(lambda n: True, [("a", tone_plugin()), ("b", other)], entry_points=False)
    message = str(err.value)
    assert "backend 'tone' is registered by both plugin 'a' and plugin 'b'" in message
    assert "[plugins.b] enabled = false" in message


def test_factory_must_be_callable():
    bad = plugin(register_encoders=lambda register: register("x", None))
    with pytest.raises(PluginError, match="needs a factory"):
        load_plugins(lambda n: True, [("bad", bad)], entry_points=False)


def install_plugin(tmp_path, monkeypatch, name: str, source: str) -> str:
    """A distribution on ``sys.path`` whose ``ttsframe`` entry point ``name`` is a module
    with ``source``; return the module's name."""
    module = f"tf_test_{name}"
    (tmp_path / f"{module}.py").write_text(source)
    info = tmp_path / f"{module}-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[ttsframe]\n{name} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def test_installed_plugin_is_attributed_to_its_distribution(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "tonal", (
        "from ttsframe import hookimpl\n"
        "@hookimpl\n"
        "def register_encoders(register):\n"
        "    register('tonal', lambda ctx: None)\n"))
    _, registry, infos = load_plugins(lambda n: True)
    info = next(i for i in infos if i.name == "tonal")
    assert (info.source, info.version) == ("distribution tf_test_tonal", "1.2")
    assert registry.get("encoder", "tonal").plugin == "tonal"


def test_a_plugin_that_fails_to_import_is_named(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "broken", "raise ImportError('needs libfoo')\n")
    with pytest.raises(PluginError) as err:
        load_plugins(lambda n: True)
    message = str(err.value)
    assert "plugin 'broken' (tf_test_broken) failed to import: needs libfoo" in message
    assert "[plugins.broken] enabled = false" in message


def test_a_disabled_plugin_is_never_imported(tmp_path, monkeypatch):
    module = install_plugin(tmp_path, monkeypatch, "broken", "raise ImportError('x')\n")
    _, registry, infos = load_plugins(lambda n: n != "broken")
    assert module not in sys.modules
    assert "broken" not in {i.name for i in infos}
    assert registry.get("backend", "dia") is not None  # the others still load


def test_a_disabled_extra_plugin_is_not_registered():
    extra = plugin(register_encoders=lambda register: register("x", lambda ctx: None))
    _, registry, infos = load_plugins(lambda n: n != "extra", [("extra", extra)],
                                      entry_points=False)
    assert registry.get("encoder", "x") is None
    assert infos == []
