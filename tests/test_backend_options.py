"""Options per backend: each backend declares its own (``Backend.options``), a request's
are checked against the chosen backend before queueing, listed on /models and
/v1/models, and handed to the backend as ``task.options``; Dia's flat body fields reach
only a backend that declares them. Speaker tags are a backend's capability."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
from litestar.testing import TestClient

from tests.conftest import make_services
from ttsframe import BackendOptions, InvalidInput, hookimpl
from ttsframe.core.interfaces.speech_types import stored_request
from ttsframe.core.speech.options import decode_options, option_schema
from ttsframe.http.app import create_app
from ttsframe.testing.fake_backend import BEEPER, FakeBackend


class GainOptions(BackendOptions):
    gain: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    mode: str = "plain"


class GainBackend(FakeBackend):
    """The kit's beeper with options of its own and a third speaker."""

    options = GainOptions

    @property
    def capabilities(self):
        return msgspec.structs.replace(super().capabilities, speakers=("S1", "S2", "S3"))


class GainPlugin:
    def __init__(self) -> None:
        self.backend = GainBackend(msgspec.structs.replace(BEEPER, preferred_text_bytes=100),
                                   name="gain")

    @hookimpl
    def register_backends(self, register) -> None:
        register("gain", lambda ctx: self.backend)


@pytest.fixture
def gain():
    return GainPlugin()


@pytest.fixture
def client(tmp_path, gain):
    services = make_services(tmp_path, extra_plugins=(("gain-plugin", gain),))
    with TestClient(app=create_app(services)) as client:
        yield client


# -- decoding ---------------------------------------------------------------------------

def test_declared_options_decode_into_the_backends_struct():
    options, notes = decode_options("gain", GainOptions, {"gain": 0.5}, {})
    assert options == GainOptions(gain=0.5) and notes == []


@pytest.mark.parametrize("explicit, flat, param, words", [
    ({"loud": 1}, {}, "options.loud",
     "backend 'gain' has no option 'loud'; its options are gain, mode"),
    ({"gain": 2.0}, {}, "options.gain", "option 'gain' of backend 'gain'"),
    ({"gain": "x"}, {}, "options.gain", "option 'gain' of backend 'gain'"),
    ({"gain": 0.5}, {"gain": 0.4}, "options.gain", "'gain' and 'options.gain' are both set"),
])
def test_bad_options_are_a_400_naming_backend_and_field(explicit, flat, param, words):
    with pytest.raises(InvalidInput) as caught:
        decode_options("gain", GainOptions, explicit, flat)
    assert caught.value.param == param
    assert words in caught.value.message


def test_a_backend_without_options_names_none():
    with pytest.raises(InvalidInput, match="backend 'plain' has no option 'x'; it takes no "
                                           "options"):
        decode_options("plain", BackendOptions, {"x": 1}, {})


def test_flat_options_reach_a_backend_that_declares_them_and_are_noted_elsewhere():
    options, notes = decode_options("gain", GainOptions, {}, {"gain": 0.25, "max_tokens": 300,
                                                               "cfg_scale": None})
    assert options == GainOptions(gain=0.25)
    assert notes == ["'max_tokens' is not an option of backend 'gain' and was ignored"]


def test_option_schema_is_an_object_of_the_options():
    schema = option_schema(GainOptions)
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"gain", "mode"}
    assert schema["properties"]["mode"]["default"] == "plain"
    assert option_schema(BackendOptions)["properties"] == {}


def test_a_job_stored_before_options_keeps_dias_fields():
    """A request stored with Dia's fields under params (an older job row) is read with
    them as flat options, so a recovered job is generated as it was asked."""
    row = msgspec.json.encode({"text": "hi", "voice_id": "alloy",
                               "params": {"temperature": 1.1, "max_tokens": 300,
                                          "cfg_scale": 2.0}})
    request = stored_request(row)
    assert request.params.temperature == 1.1
    assert request.flat_options == {"max_tokens": 300, "cfg_scale": 2.0}


# -- over HTTP --------------------------------------------------------------------------

def test_options_reach_the_backend(client, gain):
    r = client.post("/generate", json={"text": "Three short words", "model": "gain",
                                       "options": {"gain": 0.5, "mode": "loud"}})
    assert r.status_code == 200, r.text
    assert gain.backend.tasks[-1].options == GainOptions(gain=0.5, mode="loud")
    assert "X-TTSFrame-Warnings" not in r.headers


def test_options_of_a_split_text_reach_every_chunk(client, gain):
    """A long text's chunks are separate tasks: each carries the request's options."""
    text = " ".join(["Words to speak here, and then a few more."] * 8)  # > 100 bytes
    r = client.post("/generate", json={"text": text, "model": "gain",
                                       "options": {"gain": 0.2}})
    assert r.status_code == 200, r.text
    assert len(gain.backend.tasks) >= 2
    assert {t.options for t in gain.backend.tasks} == {GainOptions(gain=0.2)}


@pytest.mark.parametrize("route, body", [
    ("/generate", {"text": "hi", "model": "gain", "options": {"volume": 1}}),
    ("/v1/audio/speech", {"input": "hi", "model": "gain", "options": {"volume": 1}}),
])
def test_an_undeclared_option_is_a_400_before_anything_is_queued(client, gain, route, body):
    r = client.post(route, json=body)
    assert r.status_code == 400, r.text
    assert ("backend 'gain' has no option 'volume'; its options are gain, mode"
            in r.json()["detail"])
    if route.startswith("/v1/"):
        assert r.json()["error"]["param"] == "options.volume"
    assert gain.backend.tasks == []


def test_an_option_out_of_range_is_a_400(client, gain):
    r = client.post("/generate", json={"text": "hi", "model": "gain",
                                       "options": {"gain": 3}})
    assert r.status_code == 400
    assert "option 'gain' of backend 'gain'" in r.json()["detail"]
    assert "<= 1" in r.json()["detail"]


def test_dias_flat_fields_reach_a_backend_that_declares_them(client):
    """The test backend ``tone`` declares Dia's options (the kit's fake stands in for
    Dia): the flat field and the options entry are the same option."""
    flat = client.post("/generate", json={"text": "hi", "max_tokens": 50})
    assert flat.status_code == 400 and "max_tokens" in flat.text  # the body's own range
    r = client.post("/generate", json={"text": "hi", "options": {"max_tokens": 50}})
    assert r.status_code == 400
    assert "option 'max_tokens' of backend 'tone'" in r.json()["detail"]
    both = client.post("/generate", json={"text": "hi", "max_tokens": 200,
                                          "options": {"max_tokens": 300}})
    assert both.status_code == 400
    assert "'max_tokens' and 'options.max_tokens' are both set" in both.json()["detail"]


def test_dias_flat_fields_on_another_backend_are_ignored_with_a_warning(client, gain):
    r = client.post("/v1/audio/speech", json={"input": "hi", "model": "gain",
                                              "cfg_scale": 2.0, "use_torch_compile": True,
                                              "response_format": "wav"})
    assert r.status_code == 200, r.text
    warnings = r.headers["X-TTSFrame-Warnings"]
    assert "'cfg_scale' is not an option of backend 'gain' and was ignored" in warnings
    assert "'use_torch_compile' is not an option of backend 'gain'" in warnings
    assert gain.backend.tasks[-1].options == GainOptions()


def test_listings_publish_each_backends_option_schema(client):
    models = {m["id"]: m for m in client.get("/models").json()["models"]}
    assert models["gain"]["options"] == option_schema(GainOptions)
    assert set(models["tone"]["options"]["properties"]) == {"cfg_scale", "max_tokens",
                                                           "use_torch_compile"}
    listed = {m["id"]: m["options"] for m in client.get("/v1/models").json()["data"]}
    assert listed["gain"] == option_schema(GainOptions)
    assert listed["tts-1"] == listed["tone"]  # an OpenAI name is the default backend


def test_speakers_are_the_backends_capability(client):
    """``[S3]`` is a 400 for a backend that knows two speakers, spoken by one that
    declares a third."""
    r = client.post("/generate", json={"text": "[S1] Hi. [S3] Hello."})
    assert r.status_code == 400
    assert "unknown speaker tag [S3]: backend 'tone' knows [S1], [S2]" in r.json()["detail"]
    r = client.post("/generate", json={"text": "[S1] Hi. [S3] Hello.", "model": "gain"})
    assert r.status_code == 200, r.text
    preview = client.post("/text/preview", json={"text": "[s3] Hello.", "model": "gain"})
    assert preview.status_code == 200, preview.text
    assert "[S3] Hello." in preview.text


def test_a_voice_may_speak_as_any_speaker_its_backends_know(client):
    """A voice's speaker is checked against the backends it names when it is saved, and
    against the chosen backend on every request: no core list of speakers."""
    r = client.post("/voice_mappings", json={"voice_id": "third", "primary_speaker": "S3"})
    assert r.status_code == 400  # the default backend (tone) knows S1 and S2
    assert ("voice 'third' speaks as [S3] (its primary_speaker), but backend 'tone' knows "
            "[S1], [S2]") in r.json()["detail"]
    r = client.post("/voice_mappings", json={"voice_id": "third", "primary_speaker": "S3",
                                             "backends": ["gain"]})
    assert r.status_code == 201, r.text
    assert r.json()["voice_config"]["primary_speaker"] == "S3"
    preview = client.post("/text/preview", json={"text": "Hello.", "voice": "third",
                                                 "model": "gain"})
    assert preview.status_code == 200, preview.text
    assert "[S3] Hello." in preview.text  # untagged text speaks as the voice's speaker
    assert client.post("/generate", json={"text": "Hello.", "voice": "third",
                                          "model": "gain"}).status_code == 200
    # Unlisted with another backend, the same voice is refused naming both.
    r = client.put("/voice_mappings/third", json={"backends": None})
    assert r.status_code == 400 and "backend 'tone' knows [S1], [S2]" in r.json()["detail"]


def test_a_voice_is_checked_against_the_backend_each_request_chooses(tmp_path, gain):
    services = make_services(tmp_path, extra_plugins=(("gain-plugin", gain),),
                             generation={"default_backend": "gain"})
    with TestClient(app=create_app(services)) as client:
        r = client.post("/voice_mappings", json={"voice_id": "third", "primary_speaker": "S3"})
        assert r.status_code == 201, r.text  # gain, the default, speaks S3
        assert client.post("/generate", json={"text": "Hello.", "voice": "third"}
                           ).status_code == 200
        r = client.post("/generate", json={"text": "Hello.", "voice": "third", "model": "tone"})
        assert r.status_code == 400
        body = r.json()
        assert body["detail"].startswith(
            "voice 'third' speaks as [S3] (its primary_speaker), but backend 'tone' knows "
            "[S1], [S2]")
        r = client.post("/v1/audio/speech", json={"model": "tone", "input": "Hello.",
                                                  "voice": "third"})
        assert r.status_code == 400
        assert r.json()["error"]["param"] == "voice", r.json()
