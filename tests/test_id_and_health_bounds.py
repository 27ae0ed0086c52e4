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
