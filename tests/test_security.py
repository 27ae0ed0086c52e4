"""The security review's findings, each held by a test: uploads are refused by size before
anything decodes them; nothing outside the data directories is read through a symlink or
a hand-edited voice; the API cannot move the data directories; keys and tokens never
appear in the log, in /config or in any reply. (Ids in paths: ``test_bad_input.py``.)"""

from __future__ import annotations

import json

import pytest
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.job_helpers import logged, tone_server, wait_for
from tests.stored_state import stored_state
from tests.voice_fixtures import cloner_plugin, sine_wav
from ttsframe.core.voices import upload_decoder
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually

MB = 1024 * 1024


def app(tmp_path, **overrides) -> TestClient:
    return TestClient(app=create_app(make_services(tmp_path, **overrides)))


def cloning_app(tmp_path) -> TestClient:
    """A backend that clones, so that a voice's audio prompt is really loaded."""
    plugin, _ = cloner_plugin()
    return TestClient(app=create_app(make_services(
        tmp_path, extra_plugins=(("cloner-plugin", plugin),),
        generation={"default_backend": "cloner"})))


# ------------------------------------------------------------------------- upload size


def test_uploads_are_refused_by_size_before_anything_decodes_them(tmp_path, monkeypatch):
    decoded: list[int] = []
    real = upload_decoder.prepare_prompt
    monkeypatch.setattr(upload_decoder, "prepare_prompt",
                        lambda data, **kw: decoded.append(len(data)) or real(data, **kw))
    with app(tmp_path, storage={"max_upload_mb": 1}) as c:
        big = sine_wav(20.0)  # 1.7 MB of WAV
        r = c.post("/audio_prompts/upload", data={"prompt_id": "big"},
                   files={"audio_file": ("big.wav", big, "audio/wav")})
        assert r.status_code == 413 and "1 MB limit" in r.json()["detail"]
        assert decoded == []  # refused before a decoder saw a byte
        r = c.post("/audio_prompts/upload", data={"prompt_id": "small"},
                   files={"audio_file": ("small.wav", sine_wav(1.0), "audio/wav")})
        assert r.status_code == 201 and len(decoded) == 1
        # JSON routes have the same ceiling: a huge body is refused unread.
        r = c.post("/generate", content=b'{"text": "' + b"a" * (2 * MB) + b'"}',
                   headers={"content-type": "application/json"})
        assert r.status_code == 413


# ------------------------------------------------------------------------- data directories


def test_symlinks_in_the_prompts_directory_are_not_followed(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.wav"
    outside.write_bytes(sine_wav(2.0))
    prompts = tmp_path / "audio_prompts"
    prompts.mkdir()
    (prompts / "leak.wav").symlink_to(outside)
    (tmp_path / "data").mkdir()
    # A voice naming it, as if voices.json had been edited by hand.
    (tmp_path / "data" / "voices.json").write_text(json.dumps(
        {"version": 1, "prompts": {}, "voices": {"spy": {"audio_prompt": "leak",
                                                          "primary_speaker": "S1"}}}))
    with cloning_app(tmp_path) as c:
        assert "leak" not in c.get("/audio_prompts").json()
        r = c.post("/voice_mappings", json={"voice_id": "v", "audio_prompt": "leak"})
        assert r.status_code == 404 and "Audio prompt 'leak' not found" in r.json()["detail"]
        r = c.post("/generate", json={"text": "Hello", "voice_id": "spy"})
        assert r.status_code == 404 and "Audio prompt 'leak' not found" in r.json()["detail"]


def test_a_hand_edited_voice_cannot_name_a_file_outside(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "voices.json").write_text(json.dumps(
        {"version": 1, "prompts": {}, "voices": {
            "escape": {"audio_prompt": "../../../etc/passwd", "primary_speaker": "S1"}}}))
    with cloning_app(tmp_path) as c:
        r = c.post("/generate", json={"text": "Hello", "voice_id": "escape"})
        assert r.status_code == 404
        assert "Audio prompt '../../../etc/passwd' not found" in r.json()["detail"]


def test_results_and_saved_outputs_are_never_served_through_a_symlink(tmp_path):
    secret = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    secret.write_text("not for you")
    with app(tmp_path, logging={"save_outputs": True}) as c:
        job = c.post("/generate?async_mode=true", json={"text": "Hello"}).json()["job_id"]
        wait_for(c, job, "completed")
        result = tmp_path / "data" / "jobs" / f"{job}.wav"
        result.unlink()
        result.symlink_to(secret)
        r = c.get(f"/jobs/{job}/result")
        assert r.status_code == 404 and "not for you" not in r.text

        entry = eventually(lambda: logged(c, job), message="the job's generation log entry")
        saved = tmp_path / "audio_outputs" / entry["audio_file"]
        saved.unlink()
        saved.symlink_to(secret)
        r = c.get(entry["download_url"])
        assert r.status_code == 404 and "not for you" not in r.text


@pytest.mark.parametrize("key", ["data_dir", "audio_prompts_dir", "audio_outputs_dir"])
def test_the_api_cannot_move_the_data_directories(tmp_path, key):
    with app(tmp_path) as c:
        before = stored_state(tmp_path)
        r = c.put("/config", json={key: "/etc"})
        assert r.status_code == 400 and key in r.json()["detail"]
        assert stored_state(tmp_path) == before


# ------------------------------------------------------------------------- secrets

API_KEY, ADMIN_KEY = "api-key-Secret-4711", "admin-key-Secret-0815"
HF_TOKEN, WRONG_KEY = "hf_SecretToken9876", "wrong-key-Secret-1234"
SECRETS = (API_KEY, ADMIN_KEY, HF_TOKEN, WRONG_KEY)


def test_secrets_never_appear_in_logs_config_or_replies(tmp_path):
    config = (f'[server]\ndebug_mode = true\nlog_level = "debug"\n\n'
              f'[security]\napi_keys = ["{API_KEY}"]\n\n'
              '[generation]\ndefault_backend = "tone"\n\n'
              '[logging]\nshow_prompts = true\nsave_outputs = true\n')
    srv = tone_server(tmp_path, config)
    srv.env.update({"HF_TOKEN": HF_TOKEN, "TTSFRAME_SECURITY__ADMIN_KEYS": f'["{ADMIN_KEY}"]'})
    replies = []
    with srv:
        c = srv.client
        user, admin = ({"Authorization": f"Bearer {k}"} for k in (API_KEY, ADMIN_KEY))
        wrong = {"Authorization": f"Bearer {WRONG_KEY}"}
        replies += [
            c.post("/generate", json={"text": "Hello there."}, headers=user),
            c.post("/v1/audio/speech", json={"input": "Hello."}, headers=user),
            c.post("/generate?async_mode=true", json={"text": "A job."}, headers=user),
            c.get("/config", headers=user), c.get("/health"), c.get("/models", headers=user),
            c.get("/schema/openapi.json", headers=user), c.get("/logs", headers=user),
            c.put("/config", json={"show_prompts": True}, headers=admin),
            c.put("/config", json={"show_prompts": True}, headers=user),  # 403
            c.get("/voices", headers=wrong), c.get("/voices"),  # 401s
            c.delete("/logs", headers=wrong),
            c.post("/generate", json={"text": f"my key is {WRONG_KEY[:4]}"}, headers=wrong),
        ]
        assert [r.status_code for r in replies] == [200, 200, 202, 200, 200, 200, 200, 200,
                                                    200, 403, 401, 401, 401, 401]
        view = c.get("/config", headers=user).json()
        assert "api_keys" not in json.dumps(view) and "admin_keys" not in json.dumps(view)
    log = srv.output()
    assert "POST /generate 401 " in log and "configuration changed" in log  # access lines
    for secret in SECRETS:
        assert secret not in log, f"{secret} in the server log"
        for reply in replies:
            if not reply.headers["content-type"].startswith("audio/"):
                assert secret not in reply.text, (secret, reply.request.url)
            assert secret not in str(reply.headers)
