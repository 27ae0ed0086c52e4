"""Plugins adding HTTP routes, and several backends served at once."""

from __future__ import annotations

import types

import msgspec
import pytest
from litestar import get
from litestar.di import NamedDependency

from tests.conftest import tone_plugin
from ttsframe import hookimpl
from ttsframe.core.errors import ConfigError, NotFound
from ttsframe.core.interfaces.voice_store import VoiceStore
from ttsframe.core.voices.voice import AudioPrompt, Voice
from ttsframe.routes import Server
from ttsframe.testing.audio import decode


class GreetingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    greeting: str = "hello"


@get("/greeting", sync_to_thread=False)
def greeting(server: NamedDependency[Server],
             plugin_config: NamedDependency[GreetingConfig]) -> dict:
    return {"greeting": plugin_config.greeting,
            "backends": [model.name for model in server.models()]}


@get("/untyped-config", sync_to_thread=False)
def untyped(plugin_config: NamedDependency[dict]) -> dict:
    return plugin_config


ROUTES_PLUGIN = types.SimpleNamespace(
    register_routes=hookimpl(lambda register: register(greeting, config=GreetingConfig)))
UNTYPED_PLUGIN = types.SimpleNamespace(
    register_routes=hookimpl(lambda register: register(untyped)))


def test_plugin_route_gets_the_server_and_its_validated_config(ttsframe_client):
    client = ttsframe_client({"plugins": {"greeter": {"greeting": "good day"},
                                          "loose": {"anything": 1}}},
                             plugins={"greeter": ROUTES_PLUGIN, "loose": UNTYPED_PLUGIN})
    assert client.get("/greeting").json() == {"greeting": "good day", "backends": ["beeper"]}
    # Without a config type the plugin gets its raw section.
    assert client.get("/untyped-config").json() == {"anything": 1}
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert "/greeting" in paths


def test_plugin_route_config_is_validated_at_startup(ttsframe_services):
    with pytest.raises(ConfigError, match=r"invalid value for 'plugins.greeter.greeting'"):
        ttsframe_services({"plugins": {"greeter": {"greeting": 3}}},
                          plugins={"greeter": ROUTES_PLUGIN})
    with pytest.raises(ConfigError, match=r"unknown config key 'plugins.greeter.colour'"):
        ttsframe_services({"plugins": {"greeter": {"colour": "red"}}},
                          plugins={"greeter": ROUTES_PLUGIN})


def test_the_kit_shows_plugin_tests_the_backends_and_preprocessors_only(ttsframe_services):
    from ttsframe.testing.app import AssembledServer, app_client

    server = ttsframe_services(plugins={"greeter": ROUTES_PLUGIN})
    assert isinstance(server, AssembledServer)
    assert list(server.backends) == ["beeper"]
    with pytest.raises(TypeError):
        server.backends["other"] = server.backends["beeper"]  # a view, not the server's
    names = [p.name for p in server.preprocessors]
    assert names.index("roles") < names.index("speaker_tags")
    assert not {"scheduler", "speech", "db", "settings"} & set(dir(server))
    with app_client(server) as client:
        assert client.get("/greeting").json() == {"greeting": "hello", "backends": ["beeper"]}


def test_disabled_route_plugin_adds_no_routes(ttsframe_client):
    client = ttsframe_client({"plugins": {"greeter": {"enabled": False}}},
                             plugins={"greeter": ROUTES_PLUGIN})
    assert client.get("/greeting").status_code == 404


class TwoVoices(VoiceStore):
    name = "two"

    def list_voices(self):
        return [Voice(voice_id="any"), Voice(voice_id="tone-only", backends=["tone"])]

    def get_voice(self, voice_id):
        for voice in self.list_voices():
            if voice.voice_id == voice_id:
                return voice
        raise NotFound(f"Voice '{voice_id}' not found")

    def load_prompt(self, prompt_id) -> AudioPrompt:
        raise NotFound(prompt_id)


VOICES_PLUGIN = types.SimpleNamespace(
    register_voice_stores=hookimpl(lambda register: register("two", lambda ctx: TwoVoices())))


def test_two_backends_at_once(ttsframe_client):
    """The tone test backend and the eSpeak contributed plugin, side by side."""
    client = ttsframe_client({"generation": {"default_backend": "tone", "voice_store": "two"}},
                             plugins={"tone-plugin": tone_plugin(), "voices": VOICES_PLUGIN},
                             entry_points=["espeak"])
    models = {m["id"]: m for m in client.get("/models").json()["models"]}
    assert {"tone", "espeak", "beeper"} <= set(models)
    assert models["tone"]["default"] and not models["espeak"]["default"]
    assert models["tone"]["capabilities"]["sample_rate"] == 24000
    assert models["espeak"]["capabilities"]["sample_rate"] == 22050
    assert all(m["state"] == "ready" for m in models.values())

    for model, rate in (("espeak", 22050), ("tone", 24000), (None, 24000), ("tts-1", 24000)):
        body = {"text": "Two backends, one server.", "voice_id": "any"}
        if model:
            body["model"] = model
        r = client.post("/generate", json=body)
        assert r.status_code == 200, r.text
        assert r.headers["x-model"] == ("tone" if model in (None, "tts-1") else model)
        assert decode(r.content).sample_rate == rate

    # A voice declares the backends it works with.
    assert client.post("/generate", json={"text": "Hi", "voice_id": "tone-only"}).status_code \
        == 200
    r = client.post("/generate", json={"text": "Hi", "voice_id": "tone-only",
                                       "model": "espeak"})
    assert r.status_code == 400
    assert r.json()["detail"] == "voice 'tone-only' works with tone, not 'espeak'"
    voices = {v["voice_id"]: v for v in client.get("/voices").json()["voices"]}
    assert voices["tone-only"]["backends"] == ["tone"]
    r = client.post("/generate", json={"text": "Hi", "voice_id": "any", "model": "nope"})
    assert r.status_code == 400
    assert "available models: beeper, espeak, tone" in r.json()["detail"]
