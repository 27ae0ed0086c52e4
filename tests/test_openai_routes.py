"""OpenAI-shaped routes and the two request shapes of /generate (in-process app)."""

from __future__ import annotations

import pytest

from tests.audio_checks import decode, dominant_frequency, tone_frequency


def test_models_list_has_openai_shape_with_backends_and_aliases(app_client):
    body = app_client.get("/v1/models").json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert ids[0] == "tone"
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"} <= set(ids)
    for model in body["data"]:
        assert set(model) == {"id", "object", "created", "owned_by", "options"}
        assert model["object"] == "model"
        assert isinstance(model["created"], int) and model["created"] > 1_600_000_000
    owners = {m["id"]: m["owned_by"] for m in body["data"]}
    assert owners["tone"] == "tone-plugin"  # the plugin that registered the backend
    assert owners["tts-1"] == "ttsframe"
    # Each model's option schema; an OpenAI name's are the default backend's (the
    # test backend's are Dia's names: tests/conftest.py registers the fake backend).
    options = {m["id"]: m["options"] for m in body["data"]}
    assert set(options["tone"]["properties"]) == {"cfg_scale", "max_tokens",
                                                  "use_torch_compile"}
    assert options["tts-1"] == options["tone"]  # tone is the default backend


def test_model_retrieve(app_client):
    assert app_client.get("/v1/models/tts-1").json()["id"] == "tts-1"
    r = app_client.get("/v1/models/whisper-1")
    assert r.status_code == 404
    assert f"Model 'whisper-1' not found; available models: {KNOWN}" in r.json()["detail"]


def test_voices_listing(app_client):
    voices = app_client.get("/v1/audio/voices").json()["voices"]
    by_id = {v["id"]: v for v in voices}
    assert set(by_id) == {"alloy", "echo", "fable", "nova", "onyx", "shimmer", "coral", "ash",
                          "sage", "ballad", "verse", "marin", "cedar"}
    assert by_id["nova"] == {"id": "nova", "name": "nova", "type": "builtin",
                             "style": "bright", "primary_speaker": "S2"}
    assert app_client.get("/v1/audio/voices?model=tts-1").json()["voices"] == voices
    assert app_client.get("/v1/audio/voices?model=nope").status_code == 404


def test_voice_options_per_model(app_client):
    """The ``{value, label}`` shape TTS WebUI's client reads from /v1/audio/voices/<model>."""
    for model in ("tone", "tts-1"):
        options = app_client.get(f"/v1/audio/voices/{model}").json()["voices"]
        assert {"value": "alloy", "label": "alloy (neutral)"} in options
        assert len(options) == 13
    r = app_client.get("/v1/audio/voices/kokoro")
    assert r.status_code == 404
    assert "Model 'kokoro' not found" in r.json()["detail"]


KNOWN = ("tone, gpt-4o-mini-tts, gpt-4o-mini-tts-2025-03-20, gpt-4o-mini-tts-2025-12-15, "
         "tts-1, tts-1-hd")


def test_one_list_and_one_wording_wherever_a_model_is_named(app_client):
    """TTS WebUI's provider asks for ``chatterbox``: every route names the same models,
    the ones ``/v1/models`` lists, in the same words."""
    expected = (f"Model 'chatterbox' not found; available models: {KNOWN} (the OpenAI names "
                "mean the default backend, 'tone')")
    listed = [m["id"] for m in app_client.get("/v1/models").json()["data"]]
    assert ", ".join(listed) == KNOWN
    replies = [
        app_client.get("/v1/audio/voices/chatterbox"),
        app_client.get("/v1/audio/voices?model=chatterbox"),
        app_client.get("/v1/models/chatterbox"),
        app_client.post("/v1/audio/speech", json={"input": "hi", "model": "chatterbox"}),
        app_client.post("/generate", json={"text": "hi", "model": "chatterbox"}),
        app_client.post("/generate?async_mode=true", json={"text": "hi",
                                                           "model": "chatterbox"}),
    ]
    # lookups by name are 404s; a request body naming a bad model is a 400
    assert [r.status_code for r in replies] == [404, 404, 404, 400, 400, 400]
    for r in replies:
        assert r.json()["detail"] == expected


def test_speech_with_openai_fields_and_model_parameters(app_client):
    r = app_client.post("/v1/audio/speech", json={
        "model": "tone", "input": "Model parameters pass through.", "voice": "onyx",
        "response_format": "wav", "speed": 1.0, "temperature": 0.9, "cfg_scale": 2.0,
        "top_p": 0.9, "seed": 7, "role": "assistant",
    })
    assert r.status_code == 200, r.text
    assert r.headers["x-voice-id"] == "onyx"
    assert r.headers["x-model"] == "tone"
    samples, rate, _ = decode(r.content, "wav")
    # role=assistant made the text "[S2] ..." before the backend saw it.
    assert dominant_frequency(samples, rate) == pytest.approx(
        tone_frequency("[S2] Model parameters pass through."), abs=1)


def test_instructions_are_accepted_and_reported_as_ignored(app_client):
    for route, key in (("/v1/audio/speech", "input"), ("/generate", "text")):
        r = app_client.post(route, json={key: "hi", "instructions": "Speak like a pirate."})
        assert r.status_code == 200, r.text
        assert "'instructions' is not supported" in r.headers["x-ttsframe-warnings"]
    plain = app_client.post("/v1/audio/speech", json={"input": "hi"})
    assert "x-ttsframe-warnings" not in plain.headers


def test_custom_voice_object_form(app_client):
    r = app_client.post("/v1/audio/speech", json={"input": "hi", "voice": {"id": "echo"}})
    assert r.status_code == 200, r.text
    assert r.headers["x-voice-id"] == "echo"


@pytest.mark.parametrize("voice", [None, "", "   "])
def test_missing_voice_means_alloy(app_client, voice):
    for route, key in (("/v1/audio/speech", "input"), ("/generate", "text")):
        payload = {key: "hi"} if voice is None else {key: "hi", "voice": voice}
        r = app_client.post(route, json=payload)
        assert r.status_code == 200, r.text
        assert r.headers["x-voice-id"] == "alloy"


@pytest.mark.parametrize(
    ("payload", "status", "fragment", "param"),
    [
        ({}, 400, "missing text: send the words to speak in 'input'", "input"),
        ({"input": ""}, 400, "text is empty", "input"),
        # OpenAI answers an unknown voice with 400 (the SDKs' BadRequestError)
        ({"input": "hi", "voice": "nobody"}, 400, "Voice 'nobody' not found", "voice"),
        ({"input": "hi", "model": "gpt-9"}, 400, "Model 'gpt-9' not found", "model"),
        ({"input": "hi", "speed": 5}, 400, "speed", "speed"),
        ({"input": "hi", "temperature": 3}, 400, "temperature", "temperature"),
        ({"input": 5}, 400, "input", "input"),
        ({"input": "hi", "sample_rate": 5}, 400, "sample_rate", "sample_rate"),
    ],
)
def test_speech_errors_are_clear(app_client, payload, status, fragment, param):
    r = app_client.post("/v1/audio/speech", json=payload)
    assert r.status_code == status, r.text
    body = r.json()
    assert fragment in body["detail"]
    # OpenAI's error object too: its SDKs put error.message in the exception text.
    assert body["error"]["message"] == body["detail"]
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param
    assert body["error"]["code"]


def test_only_openai_routes_add_the_openai_error_object(app_client):
    r = app_client.post("/generate", json={"text": "hi", "voice_id": "nobody"})
    assert r.status_code == 404  # the API guide's status
    assert r.json() == {"detail": "Voice 'nobody' not found",
                        "request_id": r.headers["X-Request-ID"]}
    r = app_client.get("/v1/no/such/route")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("model", ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "tone", None])
def test_openai_model_names_mean_the_default_backend(app_client, model):
    r = app_client.post("/v1/audio/speech", json={"input": "hi", "model": model})
    assert r.status_code == 200, r.text
    assert r.headers["x-model"] == "tone"


# --- /generate: both shapes, and what counts as a conflict -----------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"text": "Same words.", "input": "Same words."},
        {"text": "hi", "voice_id": "nova", "voice": "nova"},
        {"text": "hi", "voice_id": "nova", "voice": " nova"},  # same voice after trimming
        {"text": "hi", "voice_id": "nova", "voice": ""},  # an empty voice is no voice
        {"input": "hi", "voice": " nova", "model": "tts-1", "response_format": "mp3",
         "speed": 1.25},
    ],
)
def test_generate_accepts_duplicates_that_agree(app_client, payload):
    r = app_client.post("/generate", json=payload)
    assert r.status_code == 200, r.text
    assert r.headers["x-voice-id"] in ("nova", "alloy")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"text": "a", "input": "b"}, "'text' and 'input' are both set and differ"),
        ({"text": "a", "voice_id": "nova", "voice": "echo"},
         "'voice_id' and 'voice' are both set and differ"),
        ({"text": "a", "voice_id": "nova", "voice": {"id": "echo"}},
         "'voice_id' and 'voice' are both set and differ"),
    ],
)
def test_generate_rejects_conflicting_duplicates(app_client, payload, fragment):
    r = app_client.post("/generate", json=payload)
    assert r.status_code == 400
    assert fragment in r.json()["detail"]
