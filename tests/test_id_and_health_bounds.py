"""Ids stay portable (no reserved device names, none that differ only in case), and an
unauthenticated ``/health`` on a keyed server shows only states."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.voice_fixtures import sine, wav_bytes
from ttsframe.http.app import create_app


@pytest.fixture
def c(tmp_path):
    with TestClient(app=create_app(make_services(tmp_path))) as client:
        yield client


def upload(c, prompt_id: str):
    return c.post("/audio_prompts/upload", data={"prompt_id": prompt_id},
                  files={"audio_file": ("a.wav", wav_bytes(sine(1.0, 44100)), "audio/wav")})


@pytest.mark.parametrize("voice_id", ["Alloy", "ALLOY"])
def test_a_voice_id_differing_only_in_case_is_refused(c, voice_id):
    r = c.post("/voice_mappings", json={"voice_id": voice_id})
    assert r.status_code == 409, r.text
    assert "differs only in case from the existing 'alloy'" in r.json()["detail"]
    assert c.post("/voice_mappings", json={"voice_id": "mine"}).status_code == 201
    r = c.post("/voice_mappings", json={"voice_id": "MINE"})
    assert r.status_code == 409


@pytest.mark.parametrize("name", ["CON", "nul", "Com1", "LPT9", "aux", "prn"])
def test_reserved_device_names_are_refused(c, name):
    r = c.post("/voice_mappings", json={"voice_id": name})
    assert r.status_code == 400, r.text
    assert "reserved device name" in r.json()["detail"]
    r = upload(c, name)
    assert r.status_code == 400, r.text
    assert "reserved device name" in r.json()["detail"]
    assert c.get("/voices").status_code == 200


def test_a_prompt_id_differing_only_in_case_is_refused(c):
    assert upload(c, "narrator").status_code == 201
    r = upload(c, "Narrator")
    assert r.status_code == 409, r.text
    assert "differs only in case" in r.json()["detail"]


def test_health_without_a_key_shows_only_states(tmp_path):
    services = make_services(tmp_path, security={"api_keys": ["k1"]})
    with TestClient(app=create_app(services)) as c:
        public = c.get("/health").json()
        assert public["queue"] == {}
        assert all(b["info"] == {} and b["error"] is None for b in public["backends"].values())
        assert public["backends"][public["default_backend"]]["state"] in ("loading", "ready")
        full = c.get("/health", headers={"Authorization": "Bearer k1"}).json()
        assert full["queue"]


def test_health_counts_tasks_and_queue_stats_counts_jobs(c):
    """A long text is several tasks but one job: the two counts never share a name."""
    from ttsframe.testing.waiting import eventually

    job = c.post("/generate?async_mode=true", json={"text": "Hello there."}).json()["job_id"]
    eventually(lambda: c.get(f"/jobs/{job}").json()["status"] == "completed")
    assert c.post("/generate", json={"text": "And once more."}).status_code == 200
    queue = c.get("/health").json()["queue"]
    assert set(queue) == {"queued_tasks", "running_tasks", "completed_tasks", "failed_tasks",
                          "total_workers", "active_workers"}
    assert queue["completed_tasks"] == 2
    stats = c.get("/queue/stats").json()
    assert stats["completed_jobs"] == 1  # the sync request is no job
    assert {"pending_jobs", "active_workers"} <= set(stats)  # the API guide's client reads


def _cloner_client(tmp_path, **config):
    from tests.voice_fixtures import cloner_plugin

    plugin, _ = cloner_plugin()
    services = make_services(tmp_path, extra_plugins=(("cloner-plugin", plugin),),
                             **{"generation": {"default_backend": "cloner"}, **config})
    return TestClient(app=create_app(services))


def test_the_work_of_one_request_is_bounded_in_generations(tmp_path):
    with _cloner_client(tmp_path, generation={"default_backend": "cloner",
                                              "max_generations": 4}) as c:
        emoji = "[S1] " + "😀" * 3000  # 3005 characters, 12 KB: about 12 generations
        r = c.post("/generate", json={"text": emoji, "voice_id": "alloy"})
        assert r.status_code == 400, r.text[:200]
        assert "generation.max_generations" in r.json()["detail"]
        r = c.post("/generate", json={"text": "[S1] " + "a " * 1500, "voice_id": "alloy"})
        assert r.status_code == 200, r.text[:200]  # as many characters, 4 generations
        # (cloning later chunks from the first would take more: the text is split plainly)
        assert "more than generation.max_generations (4)" in r.headers["x-ttsframe-warnings"]


def test_a_transcript_too_long_for_the_backend_is_refused_when_the_voice_is_made(tmp_path):
    with _cloner_client(tmp_path) as c:
        assert upload(c, "p").status_code == 201
        r = c.post("/voice_mappings", json={"voice_id": "v", "audio_prompt": "p",
                                            "audio_prompt_transcript": "[S1] " + "x " * 600})
        assert r.status_code == 400, r.text
        assert "shorten audio_prompt_transcript" in r.json()["detail"]
        assert c.get("/voice_mappings/v").status_code == 404


def test_prompt_storage_and_voice_count_have_quotas(tmp_path):
    # A 1 s prompt is about 88 KB as 44.1 kHz 16-bit WAV: room for two.
    with _cloner_client(tmp_path, storage={"max_prompts_mb": 0.2, "max_voices": 2}) as c:
        assert upload(c, "one").status_code == 201
        assert upload(c, "two").status_code == 201
        r = upload(c, "three")
        assert r.status_code == 507, r.text
        assert "storage.max_prompts_mb" in r.json()["detail"]
        assert not (tmp_path / "audio_prompts" / "three.wav").exists()
        for name in ("a", "b"):
            assert c.post("/voice_mappings", json={"voice_id": name}).status_code == 201
        r = c.post("/voice_mappings", json={"voice_id": "c"})
        assert r.status_code == 507, r.text
        assert "storage.max_voices" in r.json()["detail"]
