"""HTTP behaviour of /generate, /models, /voices, /health over the tone backend."""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from litestar.testing import TestClient

from tests.conftest import make_services
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually


def test_generate_returns_wav(app_client):
    r = app_client.post("/generate", json={"text": "Hello there.", "voice_id": "alloy",
                                           "role": "assistant"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(r.content))
    assert rate == 24000
    # the tone backend speaks 10 ms per character of the *processed* text
    assert len(audio) == int(len("[S2] Hello there.") * 0.01 * 24000)


def test_openai_shape_on_generate(app_client):
    r = app_client.post("/generate", json={"input": "Hi", "voice": " nova", "model": "tts-1",
                                           "response_format": "wav"})
    assert r.status_code == 200, r.text
    assert r.headers["x-voice-id"] == "nova"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"text": "hi", "temperature": 5}, 400, "temperature"),
        ({"text": "hi", "cfg_scale": 0.5}, 400, "cfg_scale"),
        ({"text": "hi", "top_p": 1.5}, 400, "top_p"),
        ({"text": "hi", "max_tokens": 50}, 400, "max_tokens"),
        ({"text": "hi", "speed": 9}, 400, "speed"),
        ({"text": "hi", "role": "narrator"}, 400, "role"),
        ({"text": "   "}, 400, "text is empty"),
        ({}, 400, "missing text"),
        ({"text": "a", "input": "b"}, 400, "'text' and 'input' are both set"),
        ({"text": "hi", "voice_id": "nobody"}, 404, "Voice 'nobody' not found"),
        ({"text": "hi", "model": "gpt-9"}, 400, "Model 'gpt-9' not found"),
        ({"text": "hi", "response_format": "xyz"}, 400, "supported formats"),
        ({"text": "x" * 5000}, 400, "limit is 4096"),
        ({"text": "[S3] hi"}, 400, "unknown speaker tag"),
    ],
)
def test_bad_input_is_a_clear_4xx(app_client, body, status, fragment):
    r = app_client.post("/generate", json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]


def test_malformed_json_is_400(app_client):
    r = app_client.post("/generate", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "detail" in r.json()


def test_voices_models_health(app_client):
    voices = {v["voice_id"] for v in app_client.get("/voices").json()["voices"]}
    assert {"alloy", "echo", "fable", "nova", "onyx", "shimmer"} <= voices
    models = app_client.get("/models").json()["models"]
    assert [m["id"] for m in models] == ["tone"]
    assert models[0]["capabilities"]["sample_rate"] == 24000
    health = app_client.get("/health").json()
    assert health["status"] == "healthy"
    assert health["backends"]["tone"]["state"] == "ready"


def test_openapi_schema_is_served(app_client):
    schema = app_client.get("/schema/openapi.json").json()
    assert "/generate" in schema["paths"]
    assert "GenerateRequest" in str(schema["components"])


def test_failed_backend_gives_503_naming_the_fix(tmp_path):
    services = make_services(tmp_path, plugins={"tone-plugin": {"fail_load": "no weights"}})
    with TestClient(app=create_app(services)) as client:
        def load_ended() -> dict | None:
            health = client.get("/health").json()
            return health if health["backends"]["tone"]["state"] != "loading" else None

        health = eventually(load_ended, message="the tone backend's load ended")
        assert health["status"] == "unhealthy"
        assert health["backends"]["tone"]["error"] == "no weights"
        r = client.post("/generate", json={"text": "hi"})
        assert r.status_code == 503
        assert "no weights" in r.json()["detail"]
        assert "ttsframe.toml" in r.json()["detail"]
