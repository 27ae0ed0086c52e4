"""SillyTavern's XTTSv2 provider, replayed request by request against the whole app.

The requests are the provider's: the headers it sets, settings that arrive as numbers at
first and as strings once a slider moved, the browser's CORS preflight for its POSTs.
The kit's fake backend speaks 0.2 s per word as ``beeper`` (the default) and 0.1 s of
silence per character as ``spy``, so durations show what was spoken.
"""

from __future__ import annotations

import types

import msgspec
import pytest

from ttsframe import (
    AudioPrompt,
    ConfigError,
    NotFound,
    Voice,
    VoiceStore,
    hookimpl,
)
from ttsframe.testing import FakeBackend, FakeConfig
from ttsframe.testing.audio import decode

ORIGIN = "http://localhost:8000"  # SillyTavern's default address, allowed by default
HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-cache", "Origin": ORIGIN}
# The provider's defaultSettings, sent by changeTTSSettings() when it loads.
DEFAULT_SETTINGS = {"temperature": 0.75, "speed": 1, "length_penalty": 1.0,
                    "repetition_penalty": 5.0, "top_p": 0.85, "top_k": 50,
                    "enable_text_splitting": True, "stream_chunk_size": 100}
# After the user moves the sliders: jQuery's .val() gives strings.
SLIDER_SETTINGS = {"temperature": "0.01", "speed": "1.5", "length_penalty": "1",
                   "repetition_penalty": "5", "top_p": "0.9", "top_k": "0",
                   "enable_text_splitting": True, "stream_chunk_size": "150"}
TEXT = "Hello there, traveller. Welcome to the inn."  # 7 words


# Records every task it is given (``tasks``); 0.1 s of silence per character of text.
SPY = FakeConfig(sound="silence", sample_rate=8000, length_unit="char", seconds_per_unit=0.1,
                 max_text_bytes=2000, speaker_tags=False, languages=("en", "de"))


class Voices(VoiceStore):
    name = "test-voices"
    voices = [Voice(voice_id="anywhere"), Voice(voice_id="spy-only", backends=["spy"]),
              Voice(voice_id="beeper-only", backends=["beeper"])]

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
    def build(xtts: dict | None = None, **config):
        plugin = types.SimpleNamespace(
            register_backends=hookimpl(lambda register: register("spy", lambda ctx: spy)),
            register_voice_stores=hookimpl(
                lambda register: register("test-voices", lambda ctx: Voices())))
        config.setdefault("plugins", {})["xtts_api"] = xtts or {}
        config["generation"] = {"voice_store": "test-voices"}
        return ttsframe_client(config, plugins={"spy-plugin": plugin},
                               entry_points=["xtts_api"])
    return build


def test_sillytavern_session(client):
    c = client()
    # checkReady(): fetch the speakers and push the default settings.
    speakers = c.get("/speakers", headers={"Origin": ORIGIN})
    assert speakers.status_code == 200
    assert speakers.headers["access-control-allow-origin"] == ORIGIN
    names = [s["name"] for s in speakers.json()]
    assert names == ["anywhere", "beeper-only"]  # the default backend is the beeper
    assert all(s["voice_id"] == s["name"] for s in speakers.json())
    r = c.post("/set_tts_settings", json=DEFAULT_SETTINGS, headers=HEADERS)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Settings successfully applied"}

    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": TEXT, "speaker_wav": "anywhere", "language": "en"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["access-control-allow-origin"] == ORIGIN
    normal = decode(r.content)
    assert normal.duration == pytest.approx(8 * 0.2, abs=0.01)  # "[S1]" + 7 words

    # The user moves the sliders; the provider now sends strings.
    r = c.post("/set_tts_settings", json=SLIDER_SETTINGS, headers=HEADERS)
    assert r.status_code == 200, r.text
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": TEXT, "speaker_wav": "anywhere.wav", "language": "en"})
    assert r.status_code == 200, r.text
    assert decode(r.content).duration == pytest.approx(normal.duration / 1.5, abs=0.03)


def test_cors_preflights_for_the_posts(client):
    c = client()
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,cache-control"}
    for path in ("/tts_to_audio/", "/set_tts_settings"):
        r = c.options(path, headers=preflight)
        assert r.status_code in (200, 204), (path, r.status_code, r.text)
        assert r.headers["access-control-allow-origin"] == ORIGIN
        allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "cache-control"} <= {h.lower() for h in allowed}
    r = c.options("/tts_to_audio/", headers={"Origin": "http://evil.example",
                                            "Access-Control-Request-Method": "POST"})
    assert r.headers.get("access-control-allow-origin") != "http://evil.example"


def test_streaming_mode_and_previews_are_plain_gets(client):
    c = client()
    r = c.get("/tts_stream/", params={"text": TEXT, "speaker_wav": "anywhere",
                                      "language": "en"})
    assert r.status_code == 200, r.text
    assert "content-length" not in r.headers  # sent as it is generated
    assert decode(r.content).duration == pytest.approx(8 * 0.2, abs=0.01)
    preview_url = c.get("/speakers").json()[0]["preview_url"]
    assert preview_url == "http://testserver.local/sample/anywhere.wav"
    r = c.get(preview_url)
    assert r.status_code == 200
    assert decode(r.content).duration == pytest.approx(7 * 0.2, abs=0.01)


def test_mistakes_get_clear_errors(client):
    c = client()
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": TEXT, "speaker_wav": "nobody", "language": "en"})
    assert r.status_code == 404
    assert r.json()["detail"] == "Voice 'nobody' not found"
    r = c.post("/tts_to_audio/", headers=HEADERS, json={"text": " ", "speaker_wav": "anywhere"})
    assert r.status_code == 400
    assert "text is empty" in r.json()["detail"]
    r = c.post("/tts_to_audio/", headers=HEADERS, json={"speaker_wav": "anywhere"})
    assert r.status_code == 400
    assert "text" in r.json()["detail"]
    r = c.post("/set_tts_settings", headers=HEADERS, json={"speed": "fast"})
    assert r.status_code == 400
    assert "speed" in r.json()["detail"]
    r = c.get("/tts_stream/", params={"speaker_wav": "anywhere"})
    assert r.status_code == 400
    assert "text" in r.json()["detail"]


def test_configured_backend_language_and_sampling(client, spy):
    c = client({"model": "spy", "forward_sampling": True})
    assert [s["name"] for s in c.get("/speakers").json()] == ["anywhere", "spy-only"]
    c.post("/set_tts_settings", json=SLIDER_SETTINGS, headers=HEADERS)
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": "Guten Tag", "speaker_wav": "spy-only", "language": "de"})
    assert r.status_code == 200, r.text
    assert r.headers["x-model"] == "spy"
    # XTTS's penalties are options of a backend that declares them; spy does not.
    assert ("'repetition_penalty' is not an option of backend 'spy' and was ignored"
            in r.headers["x-ttsframe-warnings"])
    task = spy.tasks[-1]
    assert (task.voice_id, task.language) == ("spy-only", "de")
    # temperature 0.01 is below what ttsframe allows; top_k 0 means "off" in XTTS.
    # The core fixes a seed for every sampled take (this store's voices have none).
    assert isinstance(task.params.seed, int)
    assert msgspec.structs.asdict(task.params) == {**msgspec.structs.asdict(type(task.params)()),
                                                  "temperature": 0.1, "top_p": 0.9,
                                                  "seed": task.params.seed}
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": "Hello", "speaker_wav": "beeper-only", "language": "en"})
    assert r.status_code == 400
    assert "works with beeper, not 'spy'" in r.json()["detail"]


def test_sampling_and_language_are_not_forwarded_unless_asked(client, spy):
    c = client({"model": "spy", "send_language": False, "apply_speed": False})
    c.post("/set_tts_settings", json=SLIDER_SETTINGS, headers=HEADERS)
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": "Hello", "speaker_wav": "anywhere", "language": "de"})
    assert r.status_code == 200
    task = spy.tasks[-1]
    assert task.language is None
    assert isinstance(task.params.seed, int)  # the core's drawn seed, nothing forwarded
    assert task.params == type(task.params)(seed=task.params.seed)
    assert decode(r.content).duration == pytest.approx(0.5, abs=0.01)  # speed 1.5 ignored


def test_settings_belong_to_one_server(client):
    first, second = client(), client()
    first.post("/set_tts_settings", json={"speed": 2}, headers=HEADERS)
    body = {"text": TEXT, "speaker_wav": "anywhere"}
    fast = decode(first.post("/tts_to_audio/", json=body, headers=HEADERS).content)
    normal = decode(second.post("/tts_to_audio/", json=body, headers=HEADERS).content)
    assert fast.duration == pytest.approx(normal.duration / 2, abs=0.03)


def test_api_keys_guard_the_routes(client):
    c = client(security={"api_keys": ["sekrit"]})
    body = {"text": TEXT, "speaker_wav": "anywhere", "language": "en"}
    assert c.post("/tts_to_audio/", json=body, headers=HEADERS).status_code == 401
    # The provider sends SillyTavern's Extras API key as a Bearer token.
    r = c.post("/tts_to_audio/", json=body, headers={**HEADERS, "Authorization": "Bearer sekrit"})
    assert r.status_code == 200


def test_bad_config_stops_startup_naming_the_key(client):
    with pytest.raises(ConfigError, match=r"plugins.xtts_api.response_format.*'wav'"):
        client({"response_format": "ogg"})
    with pytest.raises(ConfigError, match=r"unknown config key 'plugins.xtts_api.colour'"):
        client({"colour": "blue"})


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity"])
def test_a_non_finite_setting_is_refused_and_breaks_nothing(client, value):
    c = client()
    r = c.post("/set_tts_settings", json={**DEFAULT_SETTINGS, "speed": value}, headers=HEADERS)
    assert r.status_code == 400, r.text
    assert "speed" in r.json()["detail"]
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": TEXT, "speaker_wav": "anywhere", "language": "en"})
    assert r.status_code == 200, r.text
    r = c.get("/tts_stream/", params={"text": TEXT, "speaker_wav": "anywhere",
                                      "language": "en"})
    assert r.status_code == 200, r.text
    assert decode(r.content).duration > 0


def test_server_wide_settings_need_an_admin_key_when_admin_keys_are_set(client):
    c = client(security={"api_keys": ["k1"], "admin_keys": ["boss"]})
    r = c.post("/set_tts_settings", json={"speed": 3}, headers={
        **HEADERS, "Authorization": "Bearer k1"})
    assert r.status_code == 403, r.text
    r = c.post("/set_tts_settings", json={"speed": 3}, headers={
        **HEADERS, "Authorization": "Bearer boss"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("language", ["en\r\nX-Injected: 1", "en\x00", "e" * 100_000,
                                      "english please"])
def test_a_language_that_is_not_a_code_is_refused_briefly(client, language):
    c = client()
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": TEXT, "speaker_wav": "anywhere", "language": language})
    assert r.status_code == 400, r.text
    assert "not a language code" in r.json()["detail"]
    assert len(r.text) < 500 and "x-injected" not in r.headers
    r = c.get("/tts_stream/", params={"text": TEXT, "speaker_wav": "anywhere",
                                      "language": language[:2000]})
    assert r.status_code == 400, r.text


def test_preview_urls_ignore_the_host_header(client):
    # An IP address: the server answers any (an unknown name is refused before routing).
    forged = "203.0.113.9"
    c = client()
    speakers = c.get("/speakers", headers={"Host": forged}).json()
    assert speakers and all(forged not in s["preview_url"] for s in speakers)
    c = client({"public_url": "https://tts.example.org/"})
    speakers = c.get("/speakers", headers={"Host": forged}).json()
    assert speakers[0]["preview_url"] == "https://tts.example.org/sample/anywhere.wav"


API_KEY = "xtts-key-9d3f"


def test_with_keys_previews_are_signed_urls_an_audio_element_can_load(client):
    c = client(security={"api_keys": [API_KEY]})
    keyed = {"Authorization": f"Bearer {API_KEY}"}
    preview_url = c.get("/speakers", headers=keyed).json()[0]["preview_url"]
    path, _, query = preview_url.partition("?")
    assert path == "http://testserver.local/sample/anywhere.wav"
    assert query.startswith("expires=") and "&sig=" in query
    r = c.get(preview_url)  # no key: the signature is the permission
    assert r.status_code == 200, r.text
    assert decode(r.content).duration == pytest.approx(7 * 0.2, abs=0.01)
    r = c.get(path)
    assert r.status_code == 401
    assert "fetch /speakers again" in r.json()["detail"]
    assert c.get(path, headers=keyed).status_code == 200
    # The signature covers the voice and the expiry.
    assert c.get(preview_url.replace("anywhere.wav", "beeper-only.wav")).status_code == 401
    expires = int(query.split("&")[0].split("=")[1])
    assert c.get(preview_url.replace(f"expires={expires}",
                                     f"expires={expires + 1}")).status_code == 401


def test_signed_preview_urls_expire(client, monkeypatch):
    import ttsframe_xtts_api.routes as routes

    c = client({"preview_url_ttl_s": 60}, security={"api_keys": [API_KEY]})
    url = c.get("/speakers", headers={"Authorization": f"Bearer {API_KEY}"}).json()[0]
    assert c.get(url["preview_url"]).status_code == 200
    now = routes.time.time()
    monkeypatch.setattr(routes.time, "time", lambda: now + 61)
    r = c.get(url["preview_url"])
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_without_keys_previews_are_plain_urls(client):
    c = client()
    assert "?" not in c.get("/speakers").json()[0]["preview_url"]


def test_the_text_front_end_applies_to_the_xtts_routes(client, spy):
    """Normalization (in the text's language), the dictionary and SSML reach what the
    backend hears through the XTTS routes as through /generate."""
    c = client({"model": "spy"})
    admin = c.post("/pronunciations", json={"term": "Siobhan", "spoken": "Shiv-awn"})
    assert admin.status_code == 201, admin.text
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": "Siobhan paid $5 at 3:30 pm.", "speaker_wav": "anywhere",
                     "language": "en"})
    assert r.status_code == 200, r.text
    assert spy.tasks[-1].text == "Shiv-awn paid five dollars at three thirty p m."
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": "Ich habe 21 Katzen.", "speaker_wav": "anywhere",
                     "language": "de"})
    assert spy.tasks[-1].text == "Ich habe einundzwanzig Katzen."
    r = c.post("/tts_to_audio/", headers=HEADERS,
               json={"text": '<speak>One.<break time="1s"/>Two.</speak>',
                     "speaker_wav": "anywhere", "language": "en"})
    assert r.status_code == 200, r.text
    assert [t.text for t in spy.tasks[-2:]] == ["One.", "Two."]
