"""Cloning through the whole server on the tiny Dia model equals transformers used directly,
and a killed server comes back with its voices and prompts.

The prompt goes in through ``POST /audio_prompts/upload``, the voice through
``POST /voice_mappings``, speech comes out of ``POST /generate``; the reference is the
documented transformers recipe (processor with transcript + text and the prompt audio,
``generate``, ``batch_decode(..., audio_prompt_len=...)``) fed the user's own WAV file.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf
from litestar.testing import TestClient

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.conftest import make_services
from tests.dia_fixtures import tiny_model_dir  # noqa: F401
from tests.server import ServerProcess
from tests.test_dia_backend import reference, reference_run  # noqa: F401
from tests.voice_fixtures import encode_upload, wav_bytes
from ttsframe.core.interfaces.speech_types import GenerationParams, SpeechRequest
from ttsframe.core.voices.voice import AudioPrompt
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually

TRANSCRIPT = "[S1] This is the prompt speaking."
# The reference's temperature 0: argmax with guidance and the CFG filter (the
# checkpoint's guidance_scale 3.0 and top_k 45).
GREEDY = {"do_sample": False}
MAX_TOKENS = 100


@pytest.fixture(scope="module")
def dia_app(tmp_path_factory, tiny_model_dir) -> Iterator[tuple[TestClient, object]]:  # noqa: F811
    root = tmp_path_factory.mktemp("dia-voices")
    services = make_services(root, generation={"default_backend": "dia"},
                             plugins={"dia": {"model": str(tiny_model_dir), "device": "cpu",
                                              "cpu_threads": 1}})
    with TestClient(app=create_app(services), timeout=120) as client:
        eventually(lambda: client.get("/health").json()["status"] == "healthy", timeout=120,
                   interval=0.1, message=lambda: f"healthy: {client.get('/health').json()}")
        yield client, services


@pytest.fixture(scope="module")
def user_wav() -> bytes:
    """What a user would upload: 1 s of 44.1 kHz mono 16-bit noise-like speech stand-in."""
    rng = np.random.default_rng(5)
    return wav_bytes((rng.standard_normal(44100) * 0.1).clip(-1, 1).astype(np.float32))


@pytest.fixture(scope="module")
def cloned_voice(dia_app, user_wav) -> str:
    client, _ = dia_app
    r = client.post("/audio_prompts/upload", data={"prompt_id": "user_sample"},
                    files={"audio_file": ("sample.wav", user_wav, "audio/wav")})
    assert r.status_code == 201, r.text
    r = client.post("/voice_mappings", json={"voice_id": "cloned", "primary_speaker": "S1",
                                              "audio_prompt": "user_sample",
                                              "audio_prompt_transcript": TRANSCRIPT})
    assert r.status_code == 201, r.text
    return "cloned"


def codes_through_the_server(services, voice: str, text: str):
    """The codes the server's own request path produces (prepare -> backend)."""
    request = SpeechRequest(text=text, voice_id=voice,
                            params=GenerationParams(greedy=True),
                            options={"max_tokens": MAX_TOKENS})
    prepared = asyncio.run(services.speech.prepare(request))
    (out,) = services.backends["dia"].generate_codes([prepared.task])
    assert not isinstance(out, BaseException), out
    return prepared.task, out.codes


def test_cloned_voice_over_http_equals_transformers(dia_app, cloned_voice, user_wav,
                                                     reference):  # noqa: F811
    client, services = dia_app
    prompt = sf.read(io.BytesIO(user_wav), dtype="float32")[0]  # the user's own file
    expected_text = TRANSCRIPT + " [S1] And this is new speech."

    r = client.post("/generate", json={"text": "And this is new speech.", "voice_id": "cloned",
                                       "greedy": True, "max_tokens": MAX_TOKENS})
    assert r.status_code == 200, r.text
    audio, rate = sf.read(io.BytesIO(r.content), dtype="int16")
    assert rate == 44100

    text = "[S1] And this is new speech."
    user_prompt = AudioPrompt(prompt_id="user", samples=prompt, sample_rate=44100)
    ref_codes, ref_audio = reference_run(reference, text, prompt=user_prompt,
                                         transcript=TRANSCRIPT, max_new=MAX_TOKENS, **GREEDY)
    task, codes = codes_through_the_server(services, "cloned", "And this is new speech.")
    assert task.prompt_transcript + " " + task.text == expected_text
    np.testing.assert_array_equal(task.prompt.samples, prompt)
    assert np.array_equal(codes, ref_codes)
    assert codes.shape == (MAX_TOKENS - 16, 9)  # only the audio after the prompt
    ref_pcm = np.rint(np.clip(ref_audio.reshape(-1), -1, 1) * 32767).astype(np.int16)
    assert audio.shape == ref_pcm.shape
    assert np.abs(audio.astype(np.int32) - ref_pcm).max() <= 1

    # the prompt really conditions the result: the same text without it differs
    plain, _ = reference_run(reference, text, max_new=MAX_TOKENS, **GREEDY)
    assert not np.array_equal(plain, codes)


def test_role_cannot_move_a_cloned_voice_off_its_speaker(dia_app, cloned_voice):
    client, services = dia_app
    r = client.post("/generate", json={"text": "Hi.", "voice_id": "cloned", "role": "assistant",
                                       "greedy": True, "max_tokens": MAX_TOKENS})
    assert r.status_code == 200, r.text
    assert "speaks as [S1]" in r.headers["x-ttsframe-warnings"]
    task, _ = codes_through_the_server(services, "cloned", "Hi.")
    assert task.text == "[S1] Hi."


def test_builtin_voices_sound_the_same_every_time(dia_app):
    """Sampling (not greedy) with a built-in voice: its fixed seed makes calls repeat."""
    client, services = dia_app
    body = {"text": "Same voice again.", "voice_id": "onyx", "max_tokens": MAX_TOKENS}
    first = client.post("/generate", json=body)
    second = client.post("/generate", json=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content

    def sampled_codes(voice: str):
        request = SpeechRequest(text="Same voice again.", voice_id=voice,
                                options={"max_tokens": MAX_TOKENS})
        prepared = asyncio.run(services.speech.prepare(request))
        (out,) = services.backends["dia"].generate_codes([prepared.task])
        return out.codes

    assert np.array_equal(sampled_codes("onyx"), sampled_codes("onyx"))
    assert not np.array_equal(sampled_codes("onyx"), sampled_codes("echo"))


# ------------------------------------------------------------------------- restart


def test_voices_and_prompts_survive_a_kill_and_restart(tmp_path, tiny_model_dir):  # noqa: F811
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text(f'[plugins.dia]\nmodel = "{tiny_model_dir}"\ndevice = "cpu"\ncpu_threads = 1\n'
                   '[storage]\naudio_prompts_dir = "voices/prompts"\n')
    speech = {"text": "Hello again.", "voice_id": "cloned", "greedy": True, "max_tokens": 100}
    first = ServerProcess(cfg).start()
    try:
        c = first.client
        r = c.post("/audio_prompts/upload", data={"prompt_id": "sample"},
                   files={"audio_file": ("sample.m4a", encode_upload("m4a", 2.0), "audio/mp4")})
        assert r.status_code == 201, r.text
        r = c.post("/voice_mappings", json={"voice_id": "cloned", "audio_prompt": "sample",
                                            "audio_prompt_transcript": "[S2] A sample."})
        assert r.status_code == 201, r.text
        assert c.post("/voice_mappings", json={"voice_id": "plain", "style": "calm",
                                               "seed": 9}).status_code == 201
        mappings, prompts = c.get("/voice_mappings").json(), c.get("/audio_prompts").json()
        before = c.post("/generate", json=speech)
        assert before.status_code == 200, before.text
    finally:
        first.kill()  # SIGKILL: no shutdown hook gets to save anything
        first.client.close()

    assert (tmp_path / "voices" / "prompts" / "sample.wav").is_file()
    for record in (tmp_path / "data" / "voices").glob("*.json"):
        json.loads(record.read_text())
    with ServerProcess(cfg) as second:
        c = second.client
        assert c.get("/voice_mappings").json() == mappings
        assert c.get("/audio_prompts").json() == prompts
        assert "voice store: 2 custom voice(s), 1 audio prompt(s)" in second.output()
        after = c.post("/generate", json=speech)
        assert after.status_code == 200, after.text
        assert after.content == before.content
        assert sf.info(io.BytesIO(after.content)).samplerate == 44100
        assert c.get("/voice_mappings/plain").json()["seed"] == 9
