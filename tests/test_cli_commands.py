"""Plugins add CLI subcommands (``register_commands``); the CLI itself imports no plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from tests.server import inherited_environment
from ttsframe import cli, hookimpl
from ttsframe.core.errors import PluginError
from ttsframe.core.interfaces.plugins import load_plugins


def command_plugin(name: str, calls: list) -> types.SimpleNamespace:
    def configure(parser):
        parser.add_argument("--times", type=int, default=1)

    def run(args):
        calls.append(args.times)
        return 7

    @hookimpl
    def register_commands(register):
        register(name, configure, run, help=f"the {name} command")

    return types.SimpleNamespace(register_commands=register_commands)


def test_a_plugin_command_gets_its_arguments_and_exit_status():
    calls: list = []
    _, registry, infos = load_plugins(lambda n: True, [("greeter", command_plugin("greet", calls))],
                                      entry_points=False)
    command = registry.get("command", "greet")
    assert command.plugin == "greeter"
    assert "command:greet" in next(i for i in infos if i.name == "greeter").provides
    parser = cli.build_parser({"greet": command.factory})
    args = parser.parse_args(["greet", "--times", "3"])
    assert args.func(args) == 7
    assert calls == [3]
    assert "the greet command" in parser.format_help()


def test_two_plugins_with_one_command_name_name_both():
    with pytest.raises(PluginError, match=r"'a'.*'b'"):
        load_plugins(lambda n: True, [("a", command_plugin("greet", [])),
                                      ("b", command_plugin("greet", []))], entry_points=False)


def test_a_command_without_callables_is_refused():
    @hookimpl
    def register_commands(register):
        register("broken", None, None)

    with pytest.raises(PluginError, match="needs configure"):
        load_plugins(lambda n: True, [("bad", types.SimpleNamespace(
            register_commands=register_commands))], entry_points=False)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ttsframe", *args], capture_output=True,
                          text=True, timeout=300, env={**inherited_environment(), **(env or {})})


def test_make_tiny_model_comes_from_the_dia_plugin(tmp_path):
    out = tmp_path / "tiny"
    done = run_cli("make-tiny-model", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "config.json").read_text())["model_type"] == "dia"
    # Without the dia plugin the command does not exist.
    gone = run_cli("make-tiny-model", str(tmp_path / "x"), env={"TTSFRAME_LOAD_PLUGINS": "roles"})
    assert gone.returncode == 2
    assert "invalid choice: 'make-tiny-model'" in gone.stderr


def test_a_config_that_disables_dia_removes_its_command(tmp_path):
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text("[plugins.dia]\nenabled = false\n")
    done = run_cli("--help", env={"TTSFRAME_CONFIG": str(cfg)})
    assert done.returncode == 0
    assert "make-tiny-model" not in done.stdout
    assert "make-tiny-model" in run_cli("--help").stdout


def test_the_cli_module_imports_no_plugin():
    code = ("import sys, ttsframe.cli; "
            "print([m for m in sys.modules if m.startswith('ttsframe.plugins')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
