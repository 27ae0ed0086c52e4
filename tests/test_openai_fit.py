"""What OpenAI clients expect of /v1/audio/speech, checked with the official Python SDK
against a real server: 24 kHz PCM and ``sample_rate``, OpenAI's newer voice names, the
operator's voice aliases, and error objects that name the field at fault."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import openai
import pytest

from tests.audio_checks import decode, dominant_frequency
from tests.test_streaming import node_modules_with_openai
from ttsframe.testing.server import (
    ServerProcess,
    builtin_plugin_names,
    install_fake_backend,
)

RATE = 44100  # the backend's rate: not OpenAI's 24 kHz
TEXT = "Raw samples for a client that plays them at twenty four kilohertz."
NEW_NAMES = ("coral", "ash", "sage", "ballad", "verse", "marin", "cedar")


def serve(tmp_path: Path, config: str = "") -> ServerProcess:
    """A server whose only backend is a 44.1 kHz tone (``tone44``)."""
    site = tmp_path / "site"
    install_fake_backend(site, "tone44", "TONE", sample_rate=RATE)
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "tone44"\n' + config)
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "TTSFRAME_LOAD_PLUGINS": ",".join([*builtin_plugin_names(), "tone44"]),
           "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}
    return ServerProcess(cfg, env=env)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = ('[voices.aliases]\nnarrator = "storyteller"\nalloy = "storyteller"\n'
              'ghost = "nobody"\n')
    with serve(tmp_path_factory.mktemp("openai-fit"), config) as srv:
        r = srv.client.post("/voice_mappings", json={"voice_id": "storyteller",
                                                     "primary_speaker": "S2", "seed": 77})
        assert r.status_code in (200, 201), r.text
        yield srv


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def seconds_of_pcm(data: bytes, rate: int) -> float:
    return len(data) / 2 / rate


# -------------------------------------------------------------------------- pcm and rates


def test_sdk_pcm_is_24khz_and_as_long_as_the_wav(client):
    """OpenAI's pyaudio example plays pcm at 24000 Hz: played so, it lasts as long as the
    WAV of the same request and keeps its pitch."""
    pcm = client.audio.speech.create(model="tts-1", voice="nova", input=TEXT,
                                     response_format="pcm")
    wav = client.audio.speech.create(model="tts-1", voice="nova", input=TEXT,
                                     response_format="wav")
    assert pcm.response.headers["x-sample-rate"] == "24000"
    wav_samples, wav_rate, _ = decode(wav.content, "wav")
    assert wav_rate == RATE == int(wav.response.headers["x-sample-rate"])  # unchanged
    assert seconds_of_pcm(pcm.content, 24000) == pytest.approx(len(wav_samples) / wav_rate,
                                                               abs=0.002)
    pcm_samples = decode(pcm.content, "pcm", 24000)[0]
    assert dominant_frequency(pcm_samples, 24000) == pytest.approx(
        dominant_frequency(wav_samples, wav_rate), rel=0.01)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("fmt,rate", [("pcm", 16000), ("pcm", 48000), ("wav", 22050),
                                      ("flac", 8000), ("mp3", 22050), ("aac", 16000),
                                      ("opus", 48000)])
def test_sample_rate_asks_for_another_rate(client, fmt, rate, stream):
    reply = client.audio.speech.create(model="tts-1", voice="nova", input=TEXT,
                                       response_format=fmt,
                                       extra_body={"sample_rate": rate, "stream": stream})
    assert reply.response.headers["x-sample-rate"] == str(rate)
    samples, decoded_rate, _ = decode(reply.content, fmt, rate)
    assert decoded_rate == rate
    expected = len(f"[S2] {TEXT}") * 0.01
    slack = 0.002 if fmt in ("pcm", "wav", "flac") else 0.15  # codec delay and padding
    assert len(samples) / rate == pytest.approx(expected, abs=slack)


def test_sample_rate_the_format_cannot_carry_is_a_400_naming_the_field(client, server):
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="tts-1", voice="nova", input="Hi",
                                   response_format="opus", extra_body={"sample_rate": 16000})
    assert (err.value.param, err.value.code) == ("sample_rate", "invalid_value")
    assert "response_format 'opus' cannot be encoded at 16000 Hz (it would be 48000 Hz)" \
        in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="tts-1", voice="nova", input="Hi",
                                   response_format="pcm", extra_body={"sample_rate": 7000})
    assert err.value.param == "sample_rate"
    assert "sample_rate" in err.value.message and "8000" in err.value.message
    r = server.client.post("/generate", json={"text": "Hi", "response_format": "mp3",
                                              "sample_rate": 23000})
    assert r.status_code == 400
    assert "cannot be encoded at 23000 Hz" in r.json()["detail"]


def test_generate_keeps_the_backend_rate_for_pcm_unless_asked(server):
    plain = server.client.post("/generate", json={"text": TEXT, "response_format": "pcm"})
    assert plain.headers["x-sample-rate"] == str(RATE)
    asked = server.client.post("/generate", json={"text": TEXT, "response_format": "pcm",
                                                  "sample_rate": 24000})
    assert asked.headers["x-sample-rate"] == "24000"
    assert seconds_of_pcm(asked.content, 24000) == pytest.approx(
        seconds_of_pcm(plain.content, RATE), abs=0.002)


def test_a_job_keeps_its_sample_rate(server):
    job = server.client.post("/generate?async_mode=true",
                             json={"text": TEXT, "response_format": "wav",
                                   "sample_rate": 16000}).json()
    from ttsframe.testing.waiting import eventually
    eventually(lambda: server.client.get(f"/jobs/{job['job_id']}").json()["status"]
               == "completed", timeout=60)
    info = server.client.get(f"/jobs/{job['job_id']}").json()
    assert info["sample_rate"] == 16000
    result = server.client.get(f"/jobs/{job['job_id']}/result")
    assert decode(result.content, "wav")[1] == 16000


def test_node_sdk_pcm_decoded_at_24000_lasts_as_long_as_the_wav(server, tmp_path):
    modules = node_modules_with_openai()
    if modules is None:
        pytest.skip("needs node and the npm openai package (scripts/ensure-node-openai.sh)")
    (tmp_path / "node_modules").symlink_to(modules)
    script = tmp_path / "pcm.mjs"
    script.write_text(
        'import fs from "node:fs";\nimport OpenAI from "openai";\n'
        f'const client = new OpenAI({{baseURL: "{server.url}/v1", apiKey: "unused", '
        'maxRetries: 0});\n'
        'for (const fmt of ["pcm", "wav"]) {\n'
        '  const r = await client.audio.speech.create({model: "tts-1", voice: "coral", '
        f'input: {json.dumps(TEXT)}, response_format: fmt}});\n'
        '  console.log(`${fmt} ${r.headers.get("x-sample-rate")}`);\n'
        '  fs.writeFileSync(`speech.${fmt}`, Buffer.from(await r.arrayBuffer()));\n'
        '}\n')
    run = subprocess.run(["node", str(script)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["pcm", "24000", "wav", str(RATE)]
    wav_samples, wav_rate, _ = decode((tmp_path / "speech.wav").read_bytes(), "wav")
    assert seconds_of_pcm((tmp_path / "speech.pcm").read_bytes(), 24000) == pytest.approx(
        len(wav_samples) / wav_rate, abs=0.002)


# -------------------------------------------------------------------------- voices


def test_openai_s_newer_voice_names_are_built_in(client, server):
    listed = {v["id"]: v for v in server.client.get("/v1/audio/voices").json()["voices"]}
    for name in NEW_NAMES:
        assert listed[name]["type"] == "builtin"
        reply = client.audio.speech.create(model="tts-1", voice=name, input="Hi there.",
                                           response_format="wav")
        assert reply.response.headers["x-voice-id"] == name
    seeds = {server.client.post("/generate", json={"text": "Hi", "voice": name})
             .headers["x-seed"] for name in NEW_NAMES}
    assert len(seeds) == len(NEW_NAMES)  # each its own fixed voice


def test_aliases_resolve_on_every_speech_route(client, server):
    for name in ("narrator", "alloy"):  # an alias wins over a built-in voice
        reply = client.audio.speech.create(model="tts-1", voice=name, input="Hi.",
                                           response_format="wav")
        assert reply.response.headers["x-voice-id"] == "storyteller"
        r = server.client.post("/generate", json={"text": "Hi.", "voice_id": name})
        assert r.headers["x-voice-id"] == "storyteller"
        assert r.headers["x-seed"] == "77"
    # The alias to a voice that does not exist was a warning at startup, and is an
    # error naming the alias when used.
    assert "voices.aliases: 'ghost' names voice 'nobody', which does not exist" \
        in server.output()
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="tts-1", voice="ghost", input="Hi.")
    assert "voice 'ghost' is an alias of 'nobody' (voices.aliases), which does not exist" \
        in err.value.message
    assert (err.value.param, err.value.code) == ("voice", "voice_not_found")


def test_an_alias_of_an_alias_stops_startup(tmp_path):
    srv = serve(tmp_path, '[voices.aliases]\na = "b"\nb = "alloy"\n')
    with pytest.raises(RuntimeError, match="'a' names 'b', which is an alias itself"):
        srv.start()


# -------------------------------------------------------------------------- error objects


def test_error_objects_name_the_field_and_the_reason(client, server):
    with pytest.raises(openai.BadRequestError) as err:  # 400 as OpenAI, not 404
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi")
    assert err.value.status_code == 400
    assert (err.value.type, err.value.param, err.value.code) == \
        ("invalid_request_error", "voice", "voice_not_found")
    assert "Voice 'nobody' not found" in err.value.message
    # /generate keeps the API guide's 404
    assert server.client.post("/generate", json={"text": "Hi", "voice_id": "nobody"}
                              ).status_code == 404

    cases = [
        ({"response_format": "ogg"}, "response_format", "invalid_value"),
        ({"model": "whisper-1"}, "model", "model_not_found"),
        ({"speed": 9.0}, "speed", "invalid_value"),
        ({"input": "   "}, "input", "empty_input"),
        ({"extra_body": {"stream_format": "midi"}}, "stream_format", "invalid_value"),
    ]
    for change, param, code in cases:
        args = {"model": "tts-1", "voice": "nova", "input": "Hi", **change}
        with pytest.raises(openai.BadRequestError) as err:
            client.audio.speech.create(**args)
        assert (err.value.param, err.value.code) == (param, code), change
    r = server.client.post("/v1/audio/speech", json={"voice": "nova"})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "message": "missing text: send the words to speak in 'input'",
        "type": "invalid_request_error", "param": "input",
        "code": "missing_required_parameter"}


def test_a_streamed_pipeline_at_another_rate_sends_the_whole_file_s_audio():
    """The output rate is the last step before the encoder, streamed and whole alike."""
    import numpy as np

    from ttsframe.core.speech.output_pipeline import OutputPipeline
    from ttsframe.plugins.encoders import PcmEncoder

    t = np.arange(RATE) / RATE
    parts = [(0.4 * np.sin(2 * np.pi * 440 * t[:n])).astype(np.float32)
             for n in (30000, 1000, 13100)]
    whole = OutputPipeline(PcmEncoder(), RATE, 1.0, parts=3, whole=True, out_rate=24000)
    for part in parts:
        whole.end_part(part)
    file = whole.finish()
    streamed = OutputPipeline(PcmEncoder(), RATE, 1.0, parts=3, keep=True, out_rate=24000)
    sent = b""
    for part in parts:
        sent += streamed.feed(part[:777]) + streamed.end_part(part[777:])
    sent += streamed.finish()
    a, b = (np.frombuffer(x, "<i2").astype(np.float32) / 32767 for x in (file, sent))
    joined = sum(map(len, parts)) - 2 * round(RATE * 0.010)  # two 10 ms crossfades
    assert len(a) == len(b)
    assert abs(len(a) - joined * 24000 / RATE) <= 1
    assert np.max(np.abs(a - b)) < 2e-3  # the same resampler, fed in other pieces
    assert whole.duration_s == streamed.duration_s == pytest.approx(len(a) / 24000)
    assert streamed.whole_file() == PcmEncoder().encode(b, 24000)
