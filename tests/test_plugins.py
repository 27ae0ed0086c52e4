"""Plugin loading, registry naming and conflicts, enable/disable."""

from __future__ import annotations

import types

import pytest

from tests.conftest import tone_plugin
from ttsframe.core.errors import PluginError
from ttsframe.core.hookspecs import hookimpl
from ttsframe.core.plugins import load_plugins


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
