"""eSpeak through a real ``ttsframe serve``: discovered by entry point, no model download."""

from __future__ import annotations

from ttsframe.testing.audio import decode, rms


def test_server_speaks_with_espeak(ttsframe_server):
    srv = ttsframe_server({"generation": {"default_backend": "espeak"}}, plugins=["espeak"])
    models = {m["id"]: m for m in srv.client.get("/models").json()["models"]}
    assert models["espeak"]["state"] == "ready"
    assert models["espeak"]["capabilities"]["sample_rate"] == 22050

    short = srv.client.post("/generate", json={"input": "Hello.", "voice": "nova",
                                               "response_format": "mp3"})
    assert short.status_code == 200, short.text
    assert short.headers["content-type"] == "audio/mpeg"
    long = srv.client.post("/generate", json={
        "text": "Hello from eSpeak. This server needs no model download at all.",
        "voice_id": "onyx", "role": "assistant"})
    assert long.status_code == 200, long.text
    assert long.headers["x-model"] == "espeak"
    speech = decode(long.content)
    assert speech.sample_rate == 22050
    assert speech.duration > 2.5 * decode(short.content).duration
    assert rms(speech.samples) > 0.03

    # Its own options: listed, checked, and spoken with; Dia's flat fields are ignored.
    assert set(models["espeak"]["options"]["properties"]) == {"rate", "pitch", "pitch_range",
                                                              "word_gap_ms"}
    slow = srv.client.post("/generate", json={"text": "Hello.", "voice": "nova",
                                              "options": {"rate": 90}, "cfg_scale": 2.0})
    assert slow.status_code == 200, slow.text
    assert decode(slow.content).duration > 1.4 * decode(short.content).duration
    assert ("'cfg_scale' is not an option of backend 'espeak' and was ignored"
            in slow.headers["x-ttsframe-warnings"])
    bad = srv.client.post("/generate", json={"text": "Hello.", "options": {"rate": 10}})
    assert bad.status_code == 400
    assert "option 'rate' of backend 'espeak'" in bad.json()["detail"]


def test_bad_voice_config_is_reported_by_health(ttsframe_server):
    srv = ttsframe_server({"generation": {"default_backend": "espeak"},
                           "plugins": {"espeak": {"voice": "qqq"}}}, plugins=["espeak"])
    health = srv.client.get("/health").json()
    assert health["status"] == "unhealthy"
    assert "voice = 'qqq' is not an eSpeak voice" in health["backends"]["espeak"]["error"]
    r = srv.client.post("/generate", json={"text": "Hello"})
    assert r.status_code == 503
    assert "qqq" in r.json()["detail"]
