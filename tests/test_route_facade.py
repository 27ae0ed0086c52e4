"""A plugin route written only against ``ttsframe.routes.Server``, in a real server process:
it speaks, streams, replies, lists voices and models, resolves a model and reads settings."""

from __future__ import annotations

import io
import os

import pytest
import soundfile as sf

from tests.server import ServerProcess, install_fake_backend
from ttsframe.testing.server import install_fake_distribution

pytestmark = pytest.mark.server

PLUGIN = '''
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Stream

from ttsframe import SpeechRequest, hookimpl
from ttsframe.routes import Server, stream_response


def _speech(text, stream=False):
    return SpeechRequest(text=text, voice_id="alloy", response_format="wav", stream=stream)


@get("/facade/speak")
async def speak(server: NamedDependency[Server], text: FromQuery[str]) -> Response[bytes]:
    output = await server.speak(_speech(text))
    return Response(output.audio, media_type="audio/wav",
                    headers={"X-Backend": output.backend, "X-Rate": str(output.sample_rate)})


@get("/facade/stream")
async def stream(server: NamedDependency[Server], text: FromQuery[str]) -> Stream:
    return stream_response(await server.open_stream(_speech(text, stream=True)))


@get("/facade/reply")
async def reply(request: Request, server: NamedDependency[Server], text: FromQuery[str],
                stream: FromQuery[bool] = False) -> Response:
    return await server.reply(request, _speech(text, stream=stream))


@get("/facade/listing")
async def listing(server: NamedDependency[Server]) -> dict:
    settings = server.settings
    model = server.model()
    return {
        "models": [{"name": m.name, "state": m.state, "default": m.default,
                    "languages": list(m.languages), "owner": m.owner,
                    "sample_rate": m.capabilities.sample_rate, "options": m.options}
                   for m in server.models()],
        "names": server.model_names(),
        "default": server.resolve_model(None),
        "openai_name": server.resolve_model("tts-1"),
        "ready": model.ready,
        "voices": sorted(v.voice_id for v in await server.voices()),
        "tone_voices": len(await server.voices("tone")),
        "alloy": (await server.voice("alloy")).voice_id,
        "formats": server.formats(),
        "wav_streams": server.format_streams("wav"),
        "settings": {"max_text_chars": settings.max_text_chars,
                     "default_format": settings.default_format,
                     "default_model": settings.default_model,
                     "api_keys_required": settings.api_keys_required},
    }


@get("/facade/model")
async def model(server: NamedDependency[Server], name: FromQuery[str]) -> dict:
    return {"backend": server.resolve_model(name)}


@get("/facade/voice")
async def voice(server: NamedDependency[Server], name: FromQuery[str]) -> dict:
    return {"voice_id": (await server.voice(name)).voice_id}


@hookimpl
def register_routes(register):
    for handler in (speak, stream, reply, listing, model, voice):
        register(handler)
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("facade")
    site = install_fake_backend(tmp / "site", "tone", "TONE")
    install_fake_distribution(site, "ttsframe-facade-probe", "facade_probe",
                              {"facade_probe": "facade_probe"}, source=PLUGIN)
    cfg = tmp / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "tone"\nmax_text_chars = 777\n'
                   '[plugins.dia]\nenabled = false\n')
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    with ServerProcess(cfg, env={"PYTHONPATH": path},
                       plugins=["tone", "facade_probe"]) as srv:
        yield srv


def samples(text: str) -> int:
    """The TONE preset speaks 10 ms per character of the tagged text, at 24 kHz."""
    return int(len(f"[S1] {text}") * 0.01 * 24000)


def wav_frames(data: bytes) -> tuple[int, int]:
    audio, rate = sf.read(io.BytesIO(data))
    return len(audio), rate


def test_speak_gives_the_whole_output(server):
    r = server.client.get("/facade/speak", params={"text": "Hello through the facade"})
    assert r.status_code == 200, r.text
    assert r.headers["x-backend"] == "tone" and r.headers["x-rate"] == "24000"
    assert wav_frames(r.content) == (samples("Hello through the facade"), 24000)


def test_open_stream_sends_the_audio_as_it_comes(server):
    with server.client.stream("GET", "/facade/stream", params={"text": "A streamed one"}) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        data = r.read()
    # A streamed WAV header says "unknown size": count the PCM after its 44 bytes.
    assert data[:4] == b"RIFF"
    assert (len(data) - 44) // 2 == samples("A streamed one")


@pytest.mark.parametrize("stream", [False, True])
def test_reply_answers_as_the_built_in_routes_do(server, stream):
    r = server.client.get("/facade/reply", params={"text": "Replying", "stream": stream})
    assert r.status_code == 200, r.text
    assert r.headers["x-voice-id"] == "alloy"
    assert ("content-length" not in r.headers) == stream
    if not stream:
        assert wav_frames(r.content) == (samples("Replying"), 24000)


def test_listing_matches_the_built_in_routes(server):
    listing = server.client.get("/facade/listing").json()
    models = server.client.get("/models").json()["models"]
    assert [m["name"] for m in listing["models"]] == [m["id"] for m in models] == ["tone"]
    assert listing["models"][0] == {"name": "tone", "state": "ready", "default": True,
                                    "languages": models[0]["capabilities"]["languages"],
                                    "owner": "tone", "sample_rate": 24000,
                                    "options": models[0]["options"]}
    assert set(models[0]["options"]["properties"]) == {"cfg_scale", "max_tokens",
                                                       "use_torch_compile"}
    openai = [m["id"] for m in server.client.get("/v1/models").json()["data"]]
    assert listing["names"] == openai and listing["names"][0] == "tone"
    assert listing["default"] == listing["openai_name"] == "tone" and listing["ready"]
    voices = sorted(v["voice_id"] for v in server.client.get("/voices").json()["voices"])
    assert listing["voices"] == voices and "alloy" in voices
    assert listing["tone_voices"] == len(voices) and listing["alloy"] == "alloy"
    assert "wav" in listing["formats"] and listing["wav_streams"] is True
    assert listing["settings"] == {"max_text_chars": 777, "default_format": "wav",
                                   "default_model": "tone", "api_keys_required": False}


def test_unknown_names_are_the_usual_404s(server):
    r = server.client.get("/facade/model", params={"name": "chatterbox"})
    assert r.status_code == 404
    assert r.json()["detail"].startswith("Model 'chatterbox' not found; available models: tone")
    assert r.json()["detail"] == server.client.get("/v1/models/chatterbox").json()["detail"]
    assert server.client.get("/facade/model", params={"name": "tts-1"}).json() == {
        "backend": "tone"}
    r = server.client.get("/facade/voice", params={"name": "nobody"})
    assert r.status_code == 404 and "nobody" in r.json()["detail"]


def test_errors_of_a_request_are_the_usual_4xx(server):
    r = server.client.get("/facade/speak", params={"text": " "})
    assert r.status_code == 400 and "text is empty" in r.json()["detail"]
