"""/voice_mappings and /audio_prompts over HTTP: workflow, formats, bad input, speakers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.voice_fixtures import UPLOAD_FORMATS, cloner_plugin, encode_upload, sine, wav_bytes
from ttsframe.core.voices.builtin import BUILTIN_VOICES
from ttsframe.core.voices.voice import derive_seed
from ttsframe.http.app import create_app

LIMIT_MB = 1.0


class Harness:
    def __init__(self, root: Path, client: TestClient, backend) -> None:
        self.root, self.client, self.backend = root, client, backend
        self.prompts = root / "audio_prompts"
        self.records = root / "data"  # voices/<id>.json, prompt_info/<id>.json

    def upload(self, prompt_id: str, data: bytes, filename: str = "sample.wav", **params):
        return self.client.post("/audio_prompts/upload", params=params,
                                data={"prompt_id": prompt_id},
                                files={"audio_file": (filename, data, "application/octet-stream")})

    def voice(self, **body):
        return self.client.post("/voice_mappings", json=body)

    def generate(self, **body):
        return self.client.post("/generate", json=body)

    def state(self) -> tuple[dict[str, bytes], bytes]:
        """Every stored byte: prompt files and the voice and prompt records."""
        files = {p.name: p.read_bytes() for p in self.prompts.iterdir()}
        records = {str(p.relative_to(self.records)): p.read_bytes()
                   for d in ("voices", "prompt_info") for p in (self.records / d).glob("*.json")}
        return files, records


def make_harness(tmp_path, **generation) -> Iterator[Harness]:
    plugin, backend = cloner_plugin()
    services = make_services(tmp_path, extra_plugins=(("cloner-plugin", plugin),),
                             generation={"default_backend": "cloner", **generation},
                             storage={"max_upload_mb": LIMIT_MB})
    with TestClient(app=create_app(services)) as client:
        yield Harness(tmp_path, client, backend)


@pytest.fixture
def h(tmp_path) -> Iterator[Harness]:
    yield from make_harness(tmp_path)


def add_narrator(h: Harness) -> Harness:
    """A prompt 'sample' and a voice 'narrator' cloned from it, speaking as S2."""
    assert h.upload("sample", wav_bytes(sine(2.0, 44100))).status_code == 201
    r = h.voice(voice_id="narrator", audio_prompt="sample",
                audio_prompt_transcript="[S2] This is what I said.")
    assert r.status_code == 201, r.text
    return h


@pytest.fixture
def cloned(h) -> Harness:
    return add_narrator(h)


@pytest.fixture(scope="module")
def shared_cloned(tmp_path_factory) -> Iterator[Harness]:
    """One server for the table of refused requests (each leaves the state unchanged)."""
    for h in make_harness(tmp_path_factory.mktemp("refusals")):
        yield add_narrator(h)


# ------------------------------------------------------------------------- workflow


def test_cloning_workflow_end_to_end(h):
    samples = sine(2.0, 44100, 330.0)
    r = h.upload("character_voice", wav_bytes(samples), "sample.wav")
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["prompt_id"] == "character_voice"
    assert (up["sample_rate"], up["channels"], up["duration"]) == (44100, 1, 2.0)
    assert up["original_sample_rate"] == 44100 and up["source"]["filename"] == "sample.wav"
    assert "uploaded successfully" in up["message"]

    r = h.voice(voice_id="my_character", style="expressive", primary_speaker="S1",
                audio_prompt="character_voice",
                audio_prompt_transcript="[S1] Sample text from the character.")
    assert r.status_code == 201, r.text
    config = r.json()["voice_config"]
    assert config == {"voice_id": "my_character", "style": "expressive",
                      "primary_speaker": "S1", "audio_prompt": "character_voice",
                      "audio_prompt_transcript": "[S1] Sample text from the character.",
                      "seed": derive_seed("my_character"), "builtin": False,
                      "backends": None}

    mappings = h.client.get("/voice_mappings").json()
    assert mappings["my_character"] == config
    assert {v.voice_id for v in BUILTIN_VOICES} <= set(mappings)
    assert h.client.get("/voice_mappings/my_character").json() == config
    voices = {v["voice_id"]: v for v in h.client.get("/voices").json()["voices"]}
    assert voices["my_character"]["type"] == "custom"
    assert voices["alloy"]["type"] == "builtin"

    r = h.generate(text="Hello world!", voice_id="my_character")
    assert r.status_code == 200, r.text
    task = h.backend.tasks[-1]
    assert task.text == "[S1] Hello world!"
    assert task.prompt_transcript == "[S1] Sample text from the character."
    assert task.prompt.sample_rate == 44100
    np.testing.assert_array_equal(task.prompt.samples, sf.read(
        h.prompts / "character_voice.wav", dtype="float32")[0])
    # 16-bit input at 44.1 kHz is stored sample for sample
    assert np.abs(task.prompt.samples - samples).max() <= 1 / 32768
    assert task.params.seed == derive_seed("my_character")

    listing = h.client.get("/audio_prompts").json()
    assert set(listing) == {"character_voice"}
    entry = listing["character_voice"]
    assert entry["used_by"] == ["my_character"] and entry["duration"] == 2.0
    assert entry["size"] == (h.prompts / "character_voice.wav").stat().st_size
    assert entry["created"].endswith("Z")

    r = h.client.delete("/voice_mappings/my_character")
    assert r.status_code == 200, r.text
    assert r.json()["deleted_prompt"] == "character_voice"
    assert h.client.get("/audio_prompts").json() == {}
    assert not (h.prompts / "character_voice.wav").exists()
    assert h.client.get("/voice_mappings/my_character").status_code == 404
    assert list((h.records / "voices").iterdir()) == [h.records / "voices" / ".changed"]
    assert list((h.records / "prompt_info").iterdir()) == []


@pytest.mark.parametrize("fmt", sorted(UPLOAD_FORMATS))
def test_every_upload_format_is_stored_as_44k_mono_wav(h, fmt):
    _, _, rate, channels, _ = UPLOAD_FORMATS[fmt]
    r = h.upload(f"p_{fmt}", encode_upload(fmt, seconds=1.5, freq=440.0), f"voice.{fmt}")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["original_sample_rate"] == rate
    assert body["source"]["channels"] == channels
    info = sf.info(h.prompts / f"p_{fmt}.wav")
    assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
    # lossy encoders add priming and padding; ADTS cannot mark it (16 kHz AAC: ~0.1 s)
    assert 1.49 <= info.frames / 44100 <= 1.65, info.frames / 44100
    stored, _ = sf.read(h.prompts / f"p_{fmt}.wav", dtype="float32")
    middle = stored[4410:-4410]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    assert abs(np.argmax(spectrum) * 44100 / len(middle) - 440.0) < 2.0
    assert 0.2 < np.sqrt(np.mean(middle**2)) < 0.35  # a 0.4 sine has rms 0.28


def test_duplicate_prompt_is_409_and_overwrite_replaces(h):
    assert h.upload("p", wav_bytes(sine(1.0, 44100))).status_code == 201
    before = h.state()
    r = h.upload("p", wav_bytes(sine(3.0, 44100)))
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"] and "overwrite=true" in r.json()["detail"]
    assert h.state() == before
    r = h.upload("p", wav_bytes(sine(3.0, 44100)), overwrite="true")
    assert r.status_code == 201 and r.json()["duration"] == 3.0


def test_prompt_in_use_is_409_naming_voices_then_cascade(cloned):
    h = cloned
    assert h.voice(voice_id="second", audio_prompt="sample").status_code == 201
    before = h.state()
    r = h.client.delete("/audio_prompts/sample")
    assert r.status_code == 409
    assert r.json()["detail"].startswith(
        "Audio prompt 'sample' is used by voice(s) narrator, second;")
    assert "cascade=true" in r.json()["detail"]
    assert h.state() == before
    r = h.client.delete("/audio_prompts/sample", params={"cascade": "true"})
    assert r.status_code == 200
    assert r.json()["deleted_voices"] == ["narrator", "second"]
    assert not (h.prompts / "sample.wav").exists()
    assert {"narrator", "second"}.isdisjoint(h.client.get("/voice_mappings").json())


def test_unused_prompt_deletes_and_removes_its_file(h):
    h.upload("loose", wav_bytes(sine(1.0, 44100)))
    r = h.client.delete("/audio_prompts/loose")
    assert r.status_code == 200 and r.json()["deleted_voices"] == []
    assert list(h.prompts.iterdir()) == []


def test_keep_prompt_when_deleting_a_voice(cloned):
    r = cloned.client.delete("/voice_mappings/narrator", params={"keep_prompt": "true"})
    assert r.json()["deleted_prompt"] is None
    assert (cloned.prompts / "sample.wav").exists()


# ------------------------------------------------------------------------- voices


def test_put_changes_only_the_fields_sent(cloned):
    h = cloned
    r = h.client.put("/voice_mappings/narrator", json={"style": "calm"})
    assert r.status_code == 200, r.text
    voice = r.json()["voice_config"]
    assert voice["style"] == "calm"
    assert voice["audio_prompt_transcript"] == "[S2] This is what I said."
    assert "updated successfully" in r.json()["message"]
    # a tagged transcript alone moves the speaker with it
    r = h.client.put("/voice_mappings/narrator",
                     json={"audio_prompt_transcript": "[S1] Other words."})
    assert r.json()["voice_config"]["primary_speaker"] == "S1"
    # null removes the prompt and its transcript
    r = h.client.put("/voice_mappings/narrator", json={"audio_prompt": None})
    assert r.status_code == 200, r.text
    assert r.json()["voice_config"]["audio_prompt"] is None
    assert r.json()["voice_config"]["audio_prompt_transcript"] is None
    assert h.client.get("/voice_mappings/narrator").json()["style"] == "calm"


def test_untagged_transcript_gets_the_primary_speaker(h):
    h.upload("p", wav_bytes(sine(1.0, 44100)))
    r = h.voice(voice_id="v", primary_speaker="S2", audio_prompt="p",
                audio_prompt_transcript="  plain   words ")
    assert r.json()["voice_config"]["audio_prompt_transcript"] == "[S2] plain words"
    r = h.voice(voice_id="w", audio_prompt="p", audio_prompt_transcript="[s2] lower tag")
    assert r.json()["voice_config"]["primary_speaker"] == "S2"
    assert r.json()["voice_config"]["audio_prompt_transcript"] == "[S2] lower tag"


def test_custom_voice_seed_is_fixed_or_chosen(h):
    h.voice(voice_id="plain")
    h.voice(voice_id="seeded", seed=42)
    for _ in range(2):
        h.generate(text="Hi", voice_id="plain")
    h.generate(text="Hi", voice_id="seeded")
    h.generate(text="Hi", voice_id="seeded", seed=7)
    seeds = [t.params.seed for t in h.backend.tasks]
    assert seeds == [derive_seed("plain"), derive_seed("plain"), 42, 7]
    h.generate(text="Hi", voice_id="nova")
    assert h.backend.tasks[-1].params.seed == 4057


@pytest.mark.parametrize(("method", "path", "body", "status", "detail"), [
    ("post", "/voice_mappings", {"style": "x"}, 400, "voice_id is required"),
    ("post", "/voice_mappings", {"voice_id": "../x"}, 400, "voice_id '../x' contains a path"),
    ("post", "/voice_mappings", {"voice_id": "a" * 65}, 400, "is 65 characters long"),
    ("post", "/voice_mappings", {"voice_id": ""}, 400, "voice_id is empty"),
    ("post", "/voice_mappings", {"voice_id": "v", "primary_speaker": "S3"}, 400,
     "primary_speaker"),
    ("post", "/voice_mappings", {"voice_id": "v", "audio_prompt": "ghost"}, 404,
     "Audio prompt 'ghost' not found"),
    ("post", "/voice_mappings", {"voice_id": "v", "audio_prompt": "a/b"}, 400,
     "audio_prompt 'a/b' contains a path separator"),
    ("post", "/voice_mappings", {"voice_id": "v", "audio_prompt_transcript": "[S1] hi"}, 400,
     "audio_prompt_transcript is set but audio_prompt is not"),
    ("post", "/voice_mappings", {"voice_id": "v", "audio_prompt": "sample",
                                 "audio_prompt_transcript": "[S3] hi"}, 400,
     "voice 'v' speaks as [S3] (its primary_speaker and audio_prompt_transcript), but "
     "backend 'cloner' knows [S1], [S2]"),
    ("post", "/voice_mappings", {"voice_id": "v", "audio_prompt": "sample",
                                 "audio_prompt_transcript": "[S1] hi [S100] there"}, 400,
     "unknown speaker tag [S100]; a speaker tag is [S1] to [S99]"),
    ("post", "/voice_mappings", {"voice_id": "v", "primary_speaker": "S100"}, 400,
     "primary_speaker"),
    ("post", "/voice_mappings", {"voice_id": "v", "primary_speaker": "S1",
                                 "audio_prompt": "sample",
                                 "audio_prompt_transcript": "[S2] hi"}, 400,
     "primary_speaker is S1 but audio_prompt_transcript starts with [S2]"),
    ("post", "/voice_mappings", {"voice_id": "narrator"}, 409, "Voice 'narrator' already exists"),
    ("post", "/voice_mappings", {"voice_id": "alloy"}, 409, "already exists as a built-in"),
    ("put", "/voice_mappings/nobody", {"style": "x"}, 404, "Voice 'nobody' not found"),
    ("put", "/voice_mappings/narrator", {"voice_id": "other"}, 400, "cannot be renamed"),
    ("put", "/voice_mappings/narrator", {"primary_speaker": "S1"}, 400,
     "primary_speaker is S1 but audio_prompt_transcript starts with [S2]"),
    ("put", "/voice_mappings/alloy", {"style": "x"}, 409,
     "Voice 'alloy' is a built-in voice and cannot be changed"),
    ("put", "/voice_mappings/a..b", {"style": "x"}, 400, "voice_id 'a..b' contains"),
    ("delete", "/voice_mappings/nobody", None, 404, "Voice 'nobody' not found"),
    ("delete", "/voice_mappings/shimmer", None, 409,
     "Voice 'shimmer' is a built-in voice and cannot be deleted"),
    ("delete", "/voice_mappings/" + "x" * 70, None, 400, "is 70 characters long"),
    ("delete", "/audio_prompts/nothing", None, 404, "Audio prompt 'nothing' not found"),
    ("delete", "/audio_prompts/bad..id", None, 400, "prompt_id 'bad..id' contains"),
    ("get", "/voice_mappings/nobody", None, 404, "Voice 'nobody' not found"),
])
def test_bad_voice_requests_are_clear_and_change_nothing(shared_cloned, method, path, body,
                                                         status, detail):
    cloned = shared_cloned
    before = cloned.state()
    kwargs = {"json": body} if body is not None else {}
    r = getattr(cloned.client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]
    assert cloned.state() == before


# ------------------------------------------------------------------------- bad uploads


def _flip(data: bytes) -> bytes:
    out = bytearray(data)
    for i in range(200, len(out), 97):
        out[i] ^= 0xFF
    return bytes(out)


@pytest.mark.parametrize(("case", "status", "detail"), [
    ("text file", 400, "supported format (WAV, MP3, M4A"),
    ("empty file", 400, "audio is empty"),
    ("truncated wav", 400, "truncated"),
    ("garbled mp3", 400, "corrupt"),
    ("too short", 400, "audio is 0.2 s long; prompts must be between 0.5 and 60 s"),
    ("too long", 400, "longer than 60 s"),
    ("path id", 400, "prompt_id '../../etc/passwd' contains a path separator"),
    ("slash id", 400, "prompt_id 'a/b' contains a path separator"),
    ("empty id", 400, "prompt_id is empty"),
    ("long id", 400, "is 65 characters long"),
    ("part too large", 413, "larger than the 1 MB limit (storage.max_upload_mb)"),
])
def test_bad_uploads_are_4xx_and_store_nothing(h, case, status, detail):
    wav = wav_bytes(sine(1.0, 44100))
    prompt_id, data = "p", wav
    if case == "text file":
        data = b"hello, this is not audio\n" * 40
    elif case == "empty file":
        data = b""
    elif case == "truncated wav":
        data = wav[: len(wav) // 2]
    elif case == "garbled mp3":
        data = _flip(encode_upload("mp3", seconds=3.0))
    elif case == "too short":
        data = wav_bytes(sine(0.2, 44100))
    elif case == "too long":
        data = wav_bytes(sine(61.0, 8000), 8000)
    elif case == "path id":
        prompt_id = "../../etc/passwd"
    elif case == "slash id":
        prompt_id = "a/b"
    elif case == "empty id":
        prompt_id = ""
    elif case == "long id":
        prompt_id = "a" * 65
    elif case == "part too large":
        data = b"\0" * (int(LIMIT_MB * 1024 * 1024) + 1000)  # inside the form allowance
    r = h.upload(prompt_id, data, "f.mp3" if case == "garbled mp3" else "f.wav")
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"], r.json()["detail"]
    assert list(h.prompts.iterdir()) == []
    assert h.client.get("/audio_prompts").json() == {}


def test_body_over_the_limit_is_413_naming_it(h):
    r = h.client.post("/audio_prompts/upload", content=b"x" * (3 * 1024 * 1024),
                      headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413
    assert r.json()["detail"].startswith("upload is larger than the 1 MB limit")


@pytest.mark.parametrize(("kwargs", "detail"), [
    ({"data": {"prompt_id": "p"}, "files": {"other": ("a.wav", b"RIFF", "audio/wav")}},
     "missing file field 'audio_file'"),
    ({"files": {"audio_file": ("a.wav", b"RIFF", "audio/wav")}}, "missing form field 'prompt_id'"),
    ({"json": {"prompt_id": "p"}}, "send multipart/form-data with fields 'prompt_id'"),
    ({"data": {"prompt_id": "p", "audio_file": "text"}}, "(got Content-Type 'application/x-www"),
    ({"data": {"prompt_id": "p", "audio_file": "text"},
      "files": {"other": ("a.wav", b"RIFF", "audio/wav")}}, "missing file field 'audio_file'"),
])
def test_malformed_upload_requests(h, kwargs, detail):
    r = h.client.post("/audio_prompts/upload", **kwargs)
    assert r.status_code == 400, r.text
    assert detail in r.json()["detail"]


# ------------------------------------------------------------------------- speakers


@pytest.mark.parametrize(("voice", "role", "text", "sent", "warns"), [
    # a cloned voice continues as its transcript's speaker, whatever the role
    ("narrator", None, "Hello.", "[S2] Hello.", None),
    ("narrator", "assistant", "Hello.", "[S2] Hello.", None),
    ("narrator", "user", "Hello.", "[S2] Hello.",
     "role 'user' maps to [S1], but cloned voice 'narrator' speaks as [S2]"),
    # an explicit tag is the caller's choice
    ("narrator", "user", "[S1] Hello. [S2] Hi.", "[S1] Hello. [S2] Hi.", None),
    # voices without a prompt: the role decides, else the voice's speaker
    ("alloy", "assistant", "Hello.", "[S2] Hello.", None),
    ("alloy", None, "Hello.", "[S1] Hello.", None),
    ("nova", None, "Hello.", "[S2] Hello.", None),
])
def test_role_speaker_and_transcript_combine(cloned, voice, role, text, sent, warns):
    body = {"text": text, "voice_id": voice, **({"role": role} if role else {})}
    r = cloned.generate(**body)
    assert r.status_code == 200, r.text
    task = cloned.backend.tasks[-1]
    assert task.text == sent
    warning = r.headers.get("x-ttsframe-warnings")
    if warns:
        assert warns in warning
    else:
        assert warning is None
    if voice == "narrator":
        assert task.prompt_transcript == "[S2] This is what I said."
        assert task.prompt.prompt_id == "sample"
    else:
        assert task.prompt is None and task.prompt_transcript is None


def test_voice_whose_prompt_file_vanished_is_404(cloned):
    (cloned.prompts / "sample.wav").unlink()
    r = cloned.generate(text="Hello.", voice_id="narrator")
    assert r.status_code == 404
    assert r.json()["detail"] == ("Audio prompt 'sample' not found (the audio prompt of "
                                  "voice 'narrator')")


def test_unknown_voice_on_generate_is_the_guides_404(h):
    r = h.generate(text="Hi", voice_id="unknown_voice")
    assert r.status_code == 404
    assert r.json() == {"detail": "Voice 'unknown_voice' not found",
                        "request_id": r.headers["X-Request-ID"]}


# ------------------------------------------------------------------------- nonverbals


def test_unknown_nonverbal_is_reported_in_header_and_log(h, caplog):
    r = h.generate(text="Ha (laughs) (giggles) (Sighs) (see page 4) (NASA)", voice_id="alloy")
    assert r.status_code == 200, r.text
    assert any("unknown nonverbal tag(s) (giggles)" in rec.getMessage()
               for rec in caplog.records if rec.levelname == "WARNING")
    warning = r.headers["x-ttsframe-warnings"]
    assert "unknown nonverbal tag(s) (giggles)" in warning
    assert "nonverbal (Sighs) written as (sighs)" in warning
    assert "(see page 4)" not in warning and "(NASA)" not in warning
    # (Normalization, after the check, writes the page number out.)
    assert h.backend.tasks[-1].text == "[S1] Ha (laughs) (giggles) (sighs) (see page four) (NASA)"


def test_unknown_nonverbal_rejected_when_configured(tmp_path):
    for h in make_harness(tmp_path, unknown_nonverbals="reject"):
        r = h.generate(text="Hi (giggles) (laughs)", voice_id="alloy")
        assert r.status_code == 400
        detail = r.json()["detail"]
        assert detail.startswith("unknown nonverbal tag(s) (giggles);")
        assert "(clears throat)" in detail and 'unknown_nonverbals = "warn"' in detail
        assert h.backend.tasks == []
        assert h.generate(text="Hi (laughs)", voice_id="alloy").status_code == 200


def test_openapi_documents_the_voice_routes(h):
    schema = h.client.get("/schema/openapi.json").json()
    for path in ("/voice_mappings", "/voice_mappings/{voice_id}", "/audio_prompts",
                 "/audio_prompts/upload", "/audio_prompts/{prompt_id}"):
        assert path in schema["paths"], path
    form = schema["paths"]["/audio_prompts/upload"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]
    assert form["required"] == ["prompt_id", "audio_file"]
    assert form["properties"]["audio_file"]["format"] == "binary"
