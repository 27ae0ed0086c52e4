"""The contributed plugins as users get them: separate distributions found through the
``ttsframe`` entry-point group, listed by ``ttsframe plugins``, and working together in a
real server that SillyTavern's XTTSv2 provider talks to."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib

import pytest

from tests.server import ROOT
from ttsframe.testing.audio import decode, rms

CONTRIB = {  # distribution -> (entry point, hook, what it provides)
    "ttsframe-espeak": ("espeak", "register_backends", "backend:espeak"),
    "ttsframe-xtts-api": ("xtts_api", "register_routes", "routes:/speakers"),
    "ttsframe-alltalk-api": ("alltalk_api", "register_routes", "routes:/api/ready"),
    "ttsframe-chattext": ("chattext", "register_preprocessors", "preprocessor:chattext"),
}


@pytest.mark.parametrize("dist", sorted(CONTRIB))
def test_each_is_its_own_package_registered_only_by_entry_point(dist):
    folder = ROOT / "plugins_contrib" / dist
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["name"] == dist
    entry, _, _ = CONTRIB[dist]
    assert list(project["entry-points"]) == ["ttsframe"]
    assert list(project["entry-points"]["ttsframe"]) == [entry]
    assert (folder / "README.md").is_file()
    assert list((folder / "tests").glob("test_*.py"))
    ours = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert entry not in ours["entry-points"]["ttsframe"]
    # Installed (scripts/test.sh installs every plugins_contrib package), it is found
    # through its own distribution.
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group="ttsframe")}
    assert found[entry].dist.name == dist


def test_plugins_command_shows_version_source_and_hooks(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TTSFRAME_LOAD_PLUGINS"}
    out = subprocess.run([sys.executable, "-m", "ttsframe", "plugins"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, check=True).stdout
    lines = out.splitlines()
    for dist, (entry, hook, provides) in CONTRIB.items():
        version = importlib.metadata.version(dist)
        header = f"{entry} {version}  [distribution {dist}]"
        assert header in lines, out
        at = lines.index(header)
        assert lines[at + 1] == f"    hooks: {hook}"
        assert provides in lines[at + 2]
    assert "roles 0.1.0  [built-in]" in lines


def test_the_repository_tests_do_not_load_them(tmp_path):
    """Installed contributed plugins change nothing unless a test names them."""
    from ttsframe.testing.app import make_services

    services = make_services(tmp_path)
    assert "espeak" not in services.backends
    assert "chattext" not in [p.name for p in services.speech.preprocessors]
    assert not services.registry.routes
    names = {info.name for info in services.plugins}
    assert not names & {entry for entry, _, _ in CONTRIB.values()}


def test_sillytavern_xtts_provider_against_espeak(ttsframe_server):
    """A server with no model download: eSpeak speaks, chattext cleans the chat message,
    the XTTS routes answer SillyTavern's provider, CORS lets its page call them."""
    srv = ttsframe_server({"generation": {"default_backend": "espeak"},
                           "plugins": {"chattext": {"actions": "drop"}}},
                          plugins=["espeak", "xtts_api", "chattext"])
    origin = "http://127.0.0.1:8000"
    client = srv.client
    r = client.options("/tts_to_audio/", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,cache-control"})
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == origin
    speakers = client.get("/speakers", headers={"Origin": origin}).json()
    assert {"alloy", "nova", "onyx"} <= {s["name"] for s in speakers}
    assert speakers[0]["preview_url"].startswith(srv.url + "/sample/")
    headers = {"Content-Type": "application/json", "Cache-Control": "no-cache",
               "Origin": origin}
    r = client.post("/set_tts_settings", headers=headers, json={
        "temperature": 0.75, "speed": 1, "length_penalty": 1.0, "repetition_penalty": 5.0,
        "top_p": 0.85, "top_k": 50, "enable_text_splitting": True, "stream_chunk_size": 100})
    assert r.status_code == 200
    plain = "Welcome back, traveller. The fire is warm tonight."
    chat = (f"*pours a mug of cider* {plain} 🍺\n\n```\nthis code is not read\n```\n"
            "See https://example.com for the menu.")
    spoken = []
    for text in (plain, chat):
        r = client.post("/tts_to_audio/", headers=headers,
                        json={"text": text, "speaker_wav": "nova", "language": "en"})
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == origin
        spoken.append(decode(r.content))
    assert spoken[0].sample_rate == 22050 and rms(spoken[0].samples) > 0.03
    # The chat message says the plain sentence plus "Code omitted." and "See for the
    # menu.": longer, but far shorter than reading the action, code and URL aloud.
    assert spoken[0].duration < spoken[1].duration < spoken[0].duration + 2.5
    r = client.get("/tts_stream/", params={"text": plain, "speaker_wav": "nova",
                                           "language": "de"})
    assert r.status_code == 200
    assert r.headers["transfer-encoding"] == "chunked"
    assert decode(r.content).duration > 1.0
