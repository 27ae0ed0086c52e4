"""Config precedence (defaults < file < environment < flags) and error messages."""

from __future__ import annotations

import pytest

from ttsframe.cli import _serve_overrides, build_parser
from ttsframe.core.config.settings import load_settings
from ttsframe.core.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "ttsframe.toml"
    path.write_text(text)
    return str(path)


def test_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert (s.server.host, s.server.port) == ("127.0.0.1", 7860)
    assert s.config_path is None
    assert s.data_dir == tmp_path / "data"


def test_precedence_file_env_flags(tmp_path):
    cfg = write(tmp_path, "[server]\nport = 9000\nhost = '0.0.0.0'\n[generation]\nworkers = 2\n")
    s = load_settings(cfg, environ={})
    assert (s.server.port, s.server.host, s.generation.workers) == (9000, "0.0.0.0", 2)
    s = load_settings(cfg, environ={"TTSFRAME_SERVER__PORT": "9100"})
    assert (s.server.port, s.server.host) == (9100, "0.0.0.0")
    args = build_parser().parse_args(["serve", "--port", "9200", "--workers", "6"])
    s = load_settings(cfg, environ={"TTSFRAME_SERVER__PORT": "9100"},
                      overrides=_serve_overrides(args))
    assert (s.server.port, s.generation.workers) == (9200, 6)


def test_env_values_are_toml_literals_or_strings(tmp_path):
    env = {"TTSFRAME_SECURITY__API_KEYS": '["a", "b"]',
           "TTSFRAME_PLUGINS__DIA__MODEL": "/models/dia",
           "TTSFRAME_LOGGING__SAVE_OUTPUTS": "true"}
    s = load_settings(write(tmp_path, ""), environ=env)
    assert s.security.api_keys == ["a", "b"]
    assert s.plugins["dia"]["model"] == "/models/dia"
    assert s.logging.save_outputs is True


def test_config_file_from_environment(tmp_path, monkeypatch):
    cfg = write(tmp_path, "[server]\nport = 7001\n")
    monkeypatch.chdir(tmp_path.parent)
    assert load_settings(environ={"TTSFRAME_CONFIG": cfg}).server.port == 7001


def test_relative_paths_follow_the_config_file(tmp_path):
    s = load_settings(write(tmp_path, "[storage]\naudio_prompts_dir = 'voices'\n"), environ={})
    assert s.path(s.storage.audio_prompts_dir) == tmp_path / "voices"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nport = 'x'\n", "'server.port'"),
        ("[server]\nport = 70000\n", "<= 65535"),
        ("[server]\nlog_level = 'loud'\n", "allowed values: 'debug', 'info', 'warning', 'error'"),
        ("[generation]\nunknown_nonverbals = 'maybe'\n", "'warn', 'reject'"),
        ("[server]\nprot = 1\n", "unknown config key 'server.prot'; known keys: host, port"),
        ("[bogus]\nx = 1\n", "unknown config key 'bogus'"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_invalid_values_name_the_key(tmp_path, text, expected):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text), environ={})
    assert expected in str(err.value)


def test_invalid_env_value_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'generation\.workers'"):
        load_settings(write(tmp_path, ""), environ={"TTSFRAME_GENERATION__WORKERS": "zero"})


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "nope.toml"), environ={})


def test_shipped_config_is_valid_and_matches_defaults():
    from pathlib import Path

    import msgspec

    from ttsframe.core.config.settings import Settings

    shipped = load_settings(str(Path(__file__).parents[1] / "ttsframe.toml"), environ={})
    defaults = Settings()
    for section in ("server", "security", "storage", "generation", "logging"):
        assert msgspec.to_builtins(getattr(shipped, section)) == \
            msgspec.to_builtins(getattr(defaults, section)), section


def test_dev_and_production_flags():
    dev = _serve_overrides(build_parser().parse_args(["serve", "--dev"]))
    assert dev["logging"] == {"save_outputs": True, "show_prompts": True}
    prod = _serve_overrides(build_parser().parse_args(["serve", "--production"]))
    assert prod["server"]["debug_mode"] is False
