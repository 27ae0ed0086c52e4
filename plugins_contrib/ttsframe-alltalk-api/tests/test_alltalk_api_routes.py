"""SillyTavern's AllTalk provider, replayed request by request against the whole app.

The requests are the provider's (``public/scripts/extensions/tts/alltalk.js``): plain
``fetch`` GETs for readiness, voices and settings, a form POST to ``/api/tts-generate``
with ``Content-Type: application/x-www-form-urlencoded`` and ``Cache-Control: no-cache``
(the key only there), then a plain GET of ``output_file_url``. The spy backend speaks
0.1 s of silence per word and records its tasks, so durations and tasks show who said
what.
"""

from __future__ import annotations

import types
from urllib.parse import urlencode, urlsplit

import pytest

from ttsframe import AudioPrompt, NotFound, Voice, VoiceStore, hookimpl
from ttsframe.testing import FakeBackend, FakeConfig
from ttsframe.testing.audio import decode

ORIGIN = "http://localhost:8000"  # SillyTavern's default address, allowed by default
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-cache",
        "Origin": ORIGIN}
MESSAGE = '*She looks up from the map.* "We leave at dawn." Nobody answers.'
SPY = FakeConfig(sound="silence", sample_rate=8000, length_unit="word", seconds_per_unit=0.1,
                 max_text_bytes=2000, speaker_tags=False, languages=("en", "de"))


def generate_body(text: str, voice: str = "hero", *, narrator: str = "false",
                  narrator_voice: str = "female_01.wav", not_inside: str = "narrator") -> str:
    """The provider's fetchTtsGeneration() body, fields in its order. It appends '.wav'
    to both voices: its default narrator voice arrives as 'female_01.wav.wav'."""
    return urlencode({
        "text_input": text, "text_filtering": "standard", "character_voice_gen": voice + ".wav",
        "narrator_enabled": narrator, "narrator_voice_gen": narrator_voice + ".wav",
        "text_not_inside": not_inside, "language": "en", "output_file_name": "st_output",
        "output_file_timestamp": "true", "autoplay": "false", "autoplay_volume": "0.8"})


class Voices(VoiceStore):
    name = "alltalk-test-voices"
    voices = [Voice(voice_id="hero"), Voice(voice_id="female_01"),
              Voice(voice_id="other-backend", backends=["elsewhere"])]

    def list_voices(self):
        return list(self.voices)

    def get_voice(self, voice_id):
        for voice in self.voices:
            if voice.voice_id == voice_id:
                return voice
        raise NotFound(f"Voice '{voice_id}' not found")

    def load_prompt(self, prompt_id) -> AudioPrompt:
        raise NotFound(prompt_id)


@pytest.fixture
def spy():
    return FakeBackend(SPY, name="spy")


@pytest.fixture
def client(ttsframe_client, spy):
    def build(alltalk: dict | None = None, **config):
        plugin = types.SimpleNamespace(
            register_backends=hookimpl(lambda register: register("spy", lambda ctx: spy)),
            register_voice_stores=hookimpl(
                lambda register: register("alltalk-test-voices", lambda ctx: Voices())))
        config.setdefault("plugins", {})["alltalk_api"] = alltalk or {}
        config["generation"] = {"voice_store": "alltalk-test-voices",
                                "default_backend": "spy", **config.get("generation", {})}
        # The spy speaks silence, which the quality stage would retry: these tests count
        # the takes the narrator split asks for, once each.
        config.setdefault("quality", {"enabled": False})
        return ttsframe_client(config, plugins={"spy-plugin": plugin},
                               entry_points=["alltalk_api"])
    return build


def fetch_output(c, reply) -> bytes:
    """The provider's next step: a plain GET of output_file_url (absolute, no key)."""
    assert reply.status_code == 200, reply.text
    url = reply.json()["output_file_url"]
    assert urlsplit(url).scheme == "http" and urlsplit(url).path.startswith("/audio/")
    audio = c.get(url, headers={"Origin": ORIGIN})
    assert audio.status_code == 200, audio.text
    assert audio.headers["content-type"] == "audio/wav"
    return audio.content


def test_provider_start_up_calls(client):
    c = client()
    r = c.get("/api/ready", headers={"Origin": ORIGIN})
    assert r.status_code == 200 and r.text == "Ready"
    assert r.headers["access-control-allow-origin"] == ORIGIN
    settings = c.get("/api/currentsettings", headers={"Origin": ORIGIN}).json()
    assert settings["current_model_loaded"] == "spy"
    assert "spy" in [m["model_name"] for m in settings["models_available"]]
    assert settings["deepspeed_available"] is False and settings["finetuned_model"] is False
    voices = c.get("/api/voices", headers={"Origin": ORIGIN}).json()
    assert voices["voices"] == ["hero", "female_01"]  # not the voice of another backend


def test_standard_generation_without_narrator(client, spy):
    c = client()
    r = c.post("/api/tts-generate", content=generate_body(MESSAGE), headers=FORM)
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.json()["status"] == "generate-success"
    assert r.json()["output_cache_url"].endswith(r.json()["output_file_path"])
    data = fetch_output(c, r)
    assert c.get(r.json()["output_cache_url"]).content == data
    audio = decode(data)
    assert audio.duration == pytest.approx(12 * 0.1, abs=0.01)  # the whole message, 12 words
    assert [(t.voice_id, t.language) for t in spy.tasks] == [("hero", "en")]


def test_narrator_speaks_asterisks_and_the_character_quotes(client, spy):
    c = client()
    r = c.post("/api/tts-generate", headers=FORM,
               content=generate_body(MESSAGE, narrator="true", not_inside="narrator"))
    audio = decode(fetch_output(c, r))
    assert audio.duration == pytest.approx(12 * 0.1, abs=0.01)
    spoken = sorted((t.voice_id, t.text) for t in spy.tasks)
    assert spoken == [("female_01", "Nobody answers."),
                      ("female_01", "She looks up from the map."),
                      ("hero", "We leave at dawn.")]


def test_text_outside_marks_can_go_to_the_character_or_nowhere(client, spy):
    c = client()
    r = c.post("/api/tts-generate", headers=FORM,
               content=generate_body(MESSAGE, narrator="true", not_inside="character"))
    assert decode(fetch_output(c, r)).duration == pytest.approx(1.2, abs=0.01)
    assert sorted((t.voice_id, t.text) for t in spy.tasks) == [
        ("female_01", "She looks up from the map."), ("hero", "We leave at dawn. Nobody answers.")]
    spy.calls.clear()
    r = c.post("/api/tts-generate", headers=FORM,
               content=generate_body(MESSAGE, narrator="true", not_inside="silent"))
    assert decode(fetch_output(c, r)).duration == pytest.approx(1.0, abs=0.01)
    r = c.post("/api/tts-generate", headers=FORM,
               content=generate_body("*nods*", narrator="silent"))
    assert r.status_code == 400
    assert "silent" in r.json()["detail"]


def test_streaming_mode_and_preview(client):
    c = client()
    # generateTts() in streaming mode hands this URL to an <audio> element.
    r = c.get("/api/tts-generate-streaming?text=We%20leave%20at%20dawn.&voice=hero.wav"
              "&language=en&output_file=stream_output.wav")
    assert r.status_code == 200, r.text
    assert "content-length" not in r.headers
    assert decode(r.content).duration == pytest.approx(0.4, abs=0.01)
    r = c.post("/api/previewvoice/", content="voice=female_01.wav", headers=FORM)
    assert decode(fetch_output(c, r)).duration == pytest.approx(6 * 0.1, abs=0.01)


def test_model_switch_and_ignored_settings(client):
    c = client()
    r = c.post("/api/reload?tts_method=spy")
    assert r.status_code == 200 and r.json()["status"] == "model-success"
    r = c.post("/api/reload?tts_method=xttsv2_local")
    assert r.status_code == 400
    assert "spy" in r.json()["detail"]
    for path in ("/api/deepspeed?new_deepspeed_value=True",
                 "/api/lowvramsetting?new_low_vram_value=True"):
        assert c.post(path).status_code == 200


def test_cors_preflight_for_the_form_post(client):
    c = client()
    r = c.options("/api/tts-generate", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,cache-control,content-type"})
    assert r.status_code in (200, 204), r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN


def test_mistakes_get_clear_errors(client):
    c = client()
    r = c.post("/api/tts-generate", headers=FORM, content=generate_body("Hi.", "nobody"))
    assert r.status_code == 404
    assert r.json()["detail"] == "Voice 'nobody' not found"
    r = c.post("/api/tts-generate", headers=FORM, content=generate_body("  "))
    assert r.status_code == 400
    assert "text_input" in r.json()["detail"]
    r = c.post("/api/tts-generate", headers=FORM, content="text_input=Hi")
    assert r.status_code == 400
    assert "character_voice_gen" in r.json()["detail"]
    r = c.post("/api/tts-generate", headers=FORM, content=generate_body(
        '*' + "nods. " * 500 + '* "' + "Yes. " * 400 + '"', narrator="true"))
    assert r.status_code == 400
    assert "the limit is 4096 (generation.max_text_chars)" in r.json()["detail"]
    r = c.get("/audio/st_output_0123456789abcdef0123456789abcdef.wav")
    assert r.status_code == 404
    assert "generate it again" in r.json()["detail"]


def test_audio_urls_expire_and_are_bounded(client):
    c = client({"keep_outputs": 2})
    replies = [c.post("/api/tts-generate", headers=FORM, content=generate_body(f"Take {n}."))
               for n in range(3)]
    urls = [r.json()["output_file_url"] for r in replies]
    assert [c.get(u).status_code for u in urls] == [404, 200, 200]  # the oldest is gone


API_KEY = "at-key-31c9"


def test_with_keys_the_key_goes_only_where_the_provider_sends_it(client):
    c = client(security={"api_keys": [API_KEY]})
    assert c.get("/api/ready").text == "Ready"  # open, as /health
    r = c.get("/api/voices")
    assert r.status_code == 401
    assert "public_listing" in r.json()["detail"]
    assert c.get("/api/voices", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    r = c.post("/api/tts-generate", headers=FORM, content=generate_body("Hello."))
    assert r.status_code == 401
    # doExtrasFetch() adds the key from SillyTavern's extras settings; the audio URL it
    # answers with is then fetched without one.
    r = c.post("/api/tts-generate", content=generate_body("Hello there."),
               headers={**FORM, "Authorization": f"Bearer {API_KEY}"})
    assert decode(fetch_output(c, r)).duration == pytest.approx(0.2, abs=0.01)


def test_public_listing_opens_the_voice_list(client):
    c = client({"public_listing": True}, security={"api_keys": [API_KEY]})
    assert c.get("/api/voices").json()["voices"] == ["hero", "female_01"]
    assert c.get("/api/currentsettings").status_code == 200
