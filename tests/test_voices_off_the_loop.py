"""The event loop never calls the voice store: every route reaches it through
``services.async_voices``, which runs each call in a worker thread."""

from __future__ import annotations

import asyncio
import threading

from tests.voice_fixtures import sine_wav
from ttsframe.core.voices.async_store import AsyncVoices
from ttsframe.testing.app import app_client, make_services


class Watched:
    """A voice store proxy that notes each call made on a thread running an event loop."""

    def __init__(self, store) -> None:
        self._store = store
        self.on_loop: list[str] = []
        self.calls: list[str] = []

    def __getattr__(self, name):
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            self.calls.append(name)
            try:
                asyncio.get_running_loop()
                self.on_loop.append(f"{name} on {threading.current_thread().name}")
            except RuntimeError:
                pass
            return value(*args, **kwargs)

        return call


def test_no_route_calls_the_store_on_the_event_loop(tmp_path):
    services = make_services(tmp_path, entry_points=["xtts_api", "alltalk_api"])
    watched = Watched(services.voices)
    services.voices = services.speech.voices = watched
    services.async_voices = AsyncVoices(watched)
    with app_client(services) as c:
        steps = [
            c.get("/voices"), c.get("/v1/audio/voices"), c.get("/v1/audio/voices/beeper"),
            c.get("/voice_mappings"), c.get("/voice_mappings/alloy"),
            c.post("/audio_prompts/upload", data={"prompt_id": "p1"},
                   files={"audio_file": ("p1.wav", sine_wav(1.0), "audio/wav")}),
            c.get("/audio_prompts"),
            c.post("/voice_mappings", json={"voice_id": "mine", "audio_prompt": "p1",
                                            "audio_prompt_transcript": "[S1] Hello."}),
            c.put("/voice_mappings/mine", json={"style": "calm"}),
            c.post("/generate", json={"text": "[S1] Hi.", "voice_id": "alloy"}),
            c.get("/speakers"), c.get("/speakers_list"),
            c.get("/api/voices"),
            c.post("/api/tts-generate", data={"text_input": "[S1] Hi.",
                                              "character_voice_gen": "alloy.wav"}),
            c.delete("/voice_mappings/mine?keep_prompt=true"),
            c.delete("/audio_prompts/p1"),
        ]
        for r in steps:
            assert r.status_code < 300, (r.request.method, r.request.url, r.text)
    for name in ("list_voices", "get_voice", "save_prompt", "list_prompts", "create_voice",
                 "update_voice", "delete_voice", "delete_prompt"):
        assert name in watched.calls, name
    assert watched.on_loop == []
