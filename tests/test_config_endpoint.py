"""GET/PUT /config: validation, immediate effect, no secrets, and the file written back."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.conftest import make_services, tone_plugin
from tests.job_helpers import TONE, tone_server
from tests.server import builtin_plugin_names
from ttsframe.assembly import build_services
from ttsframe.core.config.file import update_toml_text
from ttsframe.core.config.settings import load_settings
from ttsframe.http.app import create_app

GUIDE_KEYS = {"debug_mode", "save_outputs", "show_prompts", "output_retention_hours"}


@pytest.fixture
def root_level():
    """PUT debug_mode/log_level sets the root logger's level; put it back."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def test_guide_keys_are_shown_and_secrets_never(tmp_path):
    secrets = {"api_keys": ["sk-api-0123456789"], "admin_keys": ["sk-admin-0123456789"]}
    services = make_services(tmp_path, security=secrets)
    with TestClient(app=create_app(services)) as c:
        r = c.get("/config", headers={"Authorization": "Bearer sk-api-0123456789"})
        assert r.status_code == 200
        config = r.json()
        assert set(config) >= GUIDE_KEYS
        assert config["config_file"] == str(tmp_path / "ttsframe.toml")
        assert config["restart_required"]["server.port"] == 7860
        assert "sk-" not in r.text and "api_keys" not in r.text and "plugins" not in r.text
        # changing the configuration is an admin route
        r = c.put("/config", json={"debug_mode": True},
                  headers={"Authorization": "Bearer sk-api-0123456789"})
        assert r.status_code == 403


def test_put_takes_effect_at_once(tmp_path, root_level):
    with TestClient(app=create_app(make_services(tmp_path))) as c:
        r = c.put("/config", json={"debug_mode": True, "queue_size": 7, "workers": 2,
                                   "max_text_chars": 20, "default_format": "mp3"})
        assert r.status_code == 200, r.text
        assert r.json()["queue_size"] == 7
        assert logging.getLogger().level == logging.DEBUG
        stats = c.get("/queue/stats").json()
        assert (stats["queue_size"], stats["total_workers"]) == (7, 2)
        r = c.post("/generate", json={"text": "[S1] " + "x" * 30})
        assert r.status_code == 400 and "limit is 20" in r.json()["detail"]
        r = c.post("/generate", json={"text": "[S1] short"})
        assert r.headers["content-type"] == "audio/mpeg"
        c.put("/config", json={"debug_mode": False, "log_level": "warning"})
        assert logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize(("body", "fragment"), [
    ({"debug_mod": True}, "unknown config key 'debug_mod'; known keys: debug_mode"),
    ({"save_outputs": "yes"}, "invalid value for 'save_outputs': "),
    ({"save_outputs": None}, "allowed values: bool"),
    ({"output_retention_hours": -1}, "allowed values: float >= 0"),
    ({"log_level": "loud"}, "allowed values: 'debug', 'info', 'warning', 'error'"),
    ({"queue_size": 2.5}, "allowed values: int >= 1 and <= 100000"),
    ({"default_format": "xyz"}, "allowed values: aac, flac, mp3, opus, pcm, wav"),
    ({"port": 9000}, "'port' cannot change while the server runs"),
    ({"api_keys": ["mine"]}, "unknown config key 'api_keys'"),
    ({"save_outputs": True, "workers": 0}, "invalid value for 'workers': "),
    ([1, 2], "Invalid request"),
])
def test_bad_input_is_400_and_changes_nothing(tmp_path, body, fragment):
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text("# my notes\n[logging]\nsave_outputs = false  # keep it off\n")
    before = cfg.read_bytes()
    with TestClient(app=create_app(make_services(tmp_path))) as c:
        shown = c.get("/config").json()
        r = c.put("/config", json=body)
        assert r.status_code == 400, r.text
        assert fragment in r.json()["detail"]
        assert c.get("/config").json() == shown
        assert cfg.read_bytes() == before
        r = c.put("/config", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400
        assert cfg.read_bytes() == before


def test_a_broken_config_file_is_not_overwritten(tmp_path):
    cfg = tmp_path / "ttsframe.toml"
    with TestClient(app=create_app(make_services(tmp_path))) as c:
        cfg.write_text("[logging\nsave_outputs = ")  # someone is editing it by hand
        r = c.put("/config", json={"save_outputs": True})
        assert r.status_code == 409
        assert "not valid TOML" in r.json()["detail"]
        assert cfg.read_text() == "[logging\nsave_outputs = "
        assert c.get("/config").json()["save_outputs"] is False


def test_without_a_config_file_one_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    allow = ",".join([*builtin_plugin_names(), "tone-plugin"])
    settings = load_settings(None, environ={"TTSFRAME_LOAD_PLUGINS": allow}, overrides={
        "generation": {"default_backend": "tone"}, "plugins": {"dia": {"enabled": False}}})
    assert settings.config_path is None
    services = build_services(settings, extra_plugins=[("tone-plugin", tone_plugin())])
    # A name the server answers without configuration (http/hosts.py).
    with TestClient(app=create_app(services), base_url="http://127.0.0.1") as c:
        assert c.get("/config").json()["config_file"] == str(tmp_path / "ttsframe.toml")
        assert c.put("/config", json={"show_prompts": True}).status_code == 200
    written = tomllib.loads((tmp_path / "ttsframe.toml").read_text())
    assert written == {"logging": {"show_prompts": True}}
    assert load_settings(None, environ={}).logging.show_prompts is True


def test_put_persists_across_a_restart(tmp_path):
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text("# Tone server for this test\n" + TONE
                   + "\n[logging]\nsave_outputs = false   # off by default\n")
    with tone_server(tmp_path) as srv:
        change = {"debug_mode": True, "save_outputs": True, "show_prompts": True,
                  "output_retention_hours": 48}
        r = srv.client.put("/config", json=change)
        assert r.status_code == 200
        assert {k: r.json()[k] for k in change} == change
        before = cfg.read_bytes()
        assert srv.client.put("/config", json={"save_outputs": 1}).status_code == 400
        assert cfg.read_bytes() == before

    text = cfg.read_text()
    assert "# Tone server for this test" in text and "# off by default" in text
    data = tomllib.loads(text)
    assert data["logging"] == {"save_outputs": True, "show_prompts": True,
                               "output_retention_hours": 48.0}
    assert data["server"] == {"debug_mode": True}
    assert data["plugins"] == {"tone": {"step_delay_s": 0.05, "steps": 10}}  # untouched
    assert data["generation"]["default_backend"] == "tone"

    with tone_server(tmp_path) as srv:
        shown = srv.client.get("/config").json()
        assert {k: shown[k] for k in change} == change
        srv.client.post("/generate", json={"text": "[S1] Saved after the restart."})
        entry = srv.client.get("/logs").json()["logs"][0]
        assert entry["text"] == "[S1] Saved after the restart."
        assert (tmp_path / "audio_outputs" / entry["audio_file"]).is_file()


SHIPPED = Path(__file__).resolve().parents[1] / "ttsframe.toml"


def test_file_edits_keep_comments_and_other_settings():
    text = SHIPPED.read_text()
    changes = {"logging": {"save_outputs": True, "output_retention_hours": 48.0},
               "server": {"debug_mode": True}}
    edited = update_toml_text(text, changes)
    expected = tomllib.loads(text)
    for section, values in changes.items():
        expected[section].update(values)
    assert tomllib.loads(edited) == expected
    changed = [(a, b) for a, b in zip(text.splitlines(), edited.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 3  # one line per key, nothing else moved
    for old, new in changed:  # each comment stays where it was
        assert old.index("#") == new.index("#")
        assert old.split("#")[1] == new.split("#")[1]


@pytest.mark.parametrize(("text", "expected_text"), [
    # a missing key joins its section; a missing section is appended
    ("[logging]\nshow_prompts = false\n\n[other]\nx = 1\n",
     "[logging]\nshow_prompts = false\nsave_outputs = true\n\n[other]\nx = 1\n"),
    ("top = 1\n", "top = 1\n\n[logging]\nsave_outputs = true\n"),
    ("", "\n[logging]\nsave_outputs = true\n"),
    # a '#' inside a string is not a comment
    ('[logging]\nsave_outputs = false # "#"\nname = "a#b"\n',
     '[logging]\nsave_outputs = true  # "#"\nname = "a#b"\n'),
])
def test_file_edits_in_place(text, expected_text):
    assert update_toml_text(text, {"logging": {"save_outputs": True}}) == expected_text


@pytest.mark.parametrize("text", [
    "logging.save_outputs = false\n",                         # dotted key
    "[logging]\nsave_outputs = [\n  false]\n",                 # multi-line value
    "logging = { save_outputs = false, show_prompts = true }\n",  # inline table
])
def test_shapes_it_cannot_edit_are_rewritten_whole(text):
    """Falls back to tomli-w: the same settings, only the comments are lost."""
    edited = update_toml_text(text, {"logging": {"save_outputs": True}})
    expected = tomllib.loads(text)
    expected["logging"]["save_outputs"] = True
    assert tomllib.loads(edited) == expected
