"""The AllTalk provider's requests, byte for byte, against a real ``ttsframe serve``.

The server process loads the plugin by its entry point (installed as a distribution,
as ``pip install`` leaves it) and the kit's tone backend from an outside distribution:
10 ms of a sine per character, its pitch set by the text, so each part of a narrated
message can be told apart in the joined file.
"""

from __future__ import annotations

import http.client
import os
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from ttsframe.testing.audio import decode, dominant_frequency
from ttsframe.testing.fake_backend import tone_pitch
from ttsframe.testing.server import install_fake_backend

ORIGIN = "http://localhost:8000"
KEY = "st-extras-key-5a1e"
NARRATION, SPEECH = "She looks up from the map.", "We leave at dawn."
MESSAGE = f'*{NARRATION}* "{SPEECH}"'


@pytest.fixture
def server(ttsframe_server, tmp_path):
    site = install_fake_backend(tmp_path / "site", "tone", "TONE", speaker_tags=False)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return ttsframe_server({"generation": {"default_backend": "tone"},
                            "security": {"api_keys": [KEY]}},
                           plugins=["tone", "alltalk_api"], env={"PYTHONPATH": path})


def browser_get(url: str) -> httpx.Response:
    """A plain fetch()/<audio> load: no key, the page's Origin."""
    return httpx.get(url, headers={"Origin": ORIGIN, "Accept": "*/*"}, timeout=60)


def test_the_provider_session_over_tcp(server):
    base = server.url
    # initEndpoint(): checkReady, updateSettingsFromServer, fetchTtsVoiceObjects, no key.
    r = browser_get(f"{base}/api/ready")
    assert (r.status_code, r.text) == (200, "Ready")
    voices = httpx.get(f"{base}/api/voices", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert {"alloy", "nova"} <= set(voices["voices"])

    # fetchTtsGeneration(): doExtrasFetch adds the extras key; URLSearchParams body.
    body = urlencode({
        "text_input": MESSAGE, "text_filtering": "standard", "character_voice_gen": "nova.wav",
        "narrator_enabled": "true", "narrator_voice_gen": "alloy.wav.wav",
        "text_not_inside": "narrator", "language": "en", "output_file_name": "st_output",
        "output_file_timestamp": "true", "autoplay": "false", "autoplay_volume": "0.8"})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/api/tts-generate", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-cache",
        "Authorization": f"Bearer {KEY}", "Origin": ORIGIN})
    reply = conn.getresponse()
    data = reply.read()
    conn.close()
    assert reply.status == 200, data
    assert reply.getheader("access-control-allow-origin") == ORIGIN
    url = httpx.Response(200, content=data).json()["output_file_url"]
    assert urlsplit(url).netloc == f"127.0.0.1:{server.port}"

    # generateTts(): fetch(outputUrl), again without the key.
    audio = browser_get(url)
    assert audio.status_code == 200, audio.text
    wav = decode(audio.content)
    assert wav.duration == pytest.approx((len(NARRATION) + len(SPEECH)) * 0.01, abs=0.005)
    split = int(len(NARRATION) * 0.01 * wav.sample_rate)
    narrated, spoken = wav.samples[:split], wav.samples[split:]
    assert dominant_frequency(narrated, wav.sample_rate) == pytest.approx(
        tone_pitch(NARRATION), abs=15)
    assert dominant_frequency(spoken, wav.sample_rate) == pytest.approx(
        tone_pitch(SPEECH), abs=15)
