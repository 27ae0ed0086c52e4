"""Faults the server must survive with a clear answer and nothing stored lost: a backend
that raises in a batch, a model that cannot load, a disk that is full or read-only, a
full database. (Kills and stops are in ``test_kill_and_restart.py`` and
``test_graceful_shutdown.py``.)

Disk faults are injected in-process: ``os.fsync`` fails the way a full or read-only
disk makes it fail, so every file write (prompts, voices, job results, saved outputs,
the config file) meets the error at the last step before its atomic rename. The
database is filled for real, by capping its size with ``PRAGMA max_page_count``.
"""

from __future__ import annotations

import errno
import io
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
import soundfile as sf
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.job_helpers import submit, tone_server, wait_for
from tests.stored_state import stored_state
from tests.voice_fixtures import sine_wav
from ttsframe.http.app import create_app


def upload(client, prompt_id: str, data: bytes | None = None):
    return client.post("/audio_prompts/upload", data={"prompt_id": prompt_id},
                       files={"audio_file": ("sample.wav", data or sine_wav(), "audio/wav")})


def wait_job(client, job_id: str) -> dict:
    return wait_for(client, job_id, "completed", "failed", "cancelled")


# --------------------------------------------------------------------------- backend


BATCHING = """\
[generation]
default_backend = "tone"
workers = 4
batch_wait_ms = 400

[plugins.tone]
step_delay_s = 0.02
"""


def test_a_request_failing_in_a_batch_fails_alone(tmp_path):
    """Requests that share one generate call: the backend fails the one that asks it to (a
    per-row error, as Dia reports a row whose input cannot be prepared). That request
    fails naming the error, its batch-mates get their audio, the server goes on."""
    texts = ["[S1] First.", "[S1] Second (explode)", "[S1] Third.", "[S1] Fourth."]
    with tone_server(tmp_path, BATCHING) as srv:
        c = srv.client
        jobs = [submit(c, text) for text in texts]  # inside one batch window
        done = [wait_job(c, job) for job in jobs]
        assert len({d["started_at"] for d in done}) == 1, done  # one generate call
        assert [d["status"] for d in done] == ["completed", "failed", "completed", "completed"]
        assert done[1]["error_message"] == "RuntimeError: tone backend was asked to fail"
        for d in (done[0], done[2], done[3]):
            assert sf.read(io.BytesIO(c.get(d["result_url"]).content))[0].size > 0

        # The same for synchronous requests, sent at once: the failing one is a 500 that
        # names the error, the others are audio.
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda t: c.post("/generate", json={"text": t}), texts))
        assert [r.status_code for r in replies] == [200, 500, 200, 200]
        assert "tone backend was asked to fail" in replies[1].json()["detail"]
        assert c.get("/health").json()["status"] == "healthy"
        assert c.post("/generate", json={"text": "After."}).status_code == 200


class CrashingTone:
    """A backend plugin whose generate raises for the whole batch on '(crash)'."""

    from ttsframe import hookimpl

    @staticmethod
    @hookimpl
    def register_backends(register):
        from ttsframe.testing.fake_backend import TONE, FakeBackend, config_type

        class Crashing(FakeBackend):
            name = "crashing"

            def generate(self, tasks):
                if any("(crash)" in t.text for t in tasks):
                    self.calls.append(list(tasks))
                    raise MemoryError("the batch did not fit")
                return super().generate(tasks)

        register("crashing", lambda ctx: Crashing(ctx.config), config=config_type(TONE))


def test_a_backend_raising_for_a_whole_batch_fails_only_the_culprit(tmp_path):
    """A backend that raises instead of returning per-row errors cannot say which request
    was at fault: the worker runs each request of that batch again on its own, so only
    the culprit fails; the worker and server carry on."""
    services = make_services(tmp_path, extra_plugins=(("crashing-plugin", CrashingTone),),
                             generation={"default_backend": "crashing", "batch_wait_ms": 400,
                                         "workers": 2})
    with TestClient(app=create_app(services)) as client:
        jobs = [client.post("/generate?async_mode=true", json={"text": text}).json()["job_id"]
                for text in ("[S1] Fine.", "[S1] Boom (crash)")]
        done = [wait_job(client, job) for job in jobs]
        assert [d["status"] for d in done] == ["completed", "failed"]
        assert done[1]["error_message"] == "MemoryError: the batch did not fit"
        calls = services.backends["crashing"].texts()
        # the shared call, then each request alone
        assert calls[:3] == [["[S1] Fine.", "[S1] Boom (crash)"], ["[S1] Fine."],
                             ["[S1] Boom (crash)"]]
        r = client.post("/generate", json={"text": "[S1] Boom (crash)"})
        assert r.status_code == 500 and "the batch did not fit" in r.json()["detail"]
        assert client.get("/health").json()["status"] == "healthy"
        assert client.post("/generate", json={"text": "[S1] Fine again."}).status_code == 200


def test_a_model_that_cannot_load_is_503_naming_the_fix_and_stores_nothing(tmp_path):
    config = ('[generation]\ndefault_backend = "tone"\n\n'
              '[plugins.tone]\nfail_load = "weights file is corrupt"\n')
    with tone_server(tmp_path, config) as srv:
        c = srv.client
        health = c.get("/health").json()
        assert health["status"] == "unhealthy"
        assert health["backends"]["tone"]["error"] == "weights file is corrupt"
        before = stored_state(tmp_path)
        for path in ("/generate", "/generate?async_mode=true", "/v1/audio/speech"):
            r = c.post(path, json={"text": "Hello", "input": "Hello"})
            assert r.status_code == 503, r.text
            detail = r.json()["detail"]
            assert "failed to load: weights file is corrupt" in detail
            assert "ttsframe.toml" in detail and "restart the server" in detail
        assert c.get("/jobs").json()["jobs"] == []
        assert stored_state(tmp_path) == before
        # Everything that does not need the model still works.
        assert upload(c, "kept").status_code == 201
        assert c.post("/voice_mappings", json={"voice_id": "v", "audio_prompt": "kept"}
                      ).status_code == 201
        assert c.get("/config").status_code == 200


# --------------------------------------------------------------------------- disk


@pytest.fixture(params=[errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
def broken_disk(request, monkeypatch):
    """Call it to make every file write fail as a full (or read-only) disk does."""
    code = request.param

    def fsync(fd):
        raise OSError(code, os.strerror(code))

    def break_disk() -> str:
        monkeypatch.setattr(os, "fsync", fsync)
        return os.strerror(code)

    yield break_disk


@pytest.fixture
def client(tmp_path):
    services = make_services(tmp_path, logging={"save_outputs": True})
    with TestClient(app=create_app(services)) as client:
        yield client


def no_temp_files(root) -> bool:
    return not [p for p in root.rglob(".*tmp-*") if p.is_file()]


def test_writes_on_a_broken_disk_are_507_and_change_nothing(tmp_path, client, broken_disk):
    assert upload(client, "kept").status_code == 201
    assert client.post("/voice_mappings", json={"voice_id": "mine", "audio_prompt": "kept"}
                       ).status_code == 201
    before = stored_state(tmp_path)
    reason = broken_disk()

    for r in (upload(client, "new"),
              upload(client, "kept", sine_wav(2.0)),
              client.post("/audio_prompts/upload?overwrite=true", data={"prompt_id": "kept"},
                          files={"audio_file": ("a.wav", sine_wav(2.0), "audio/wav")}),
              client.post("/voice_mappings", json={"voice_id": "other"}),
              client.put("/voice_mappings/mine", json={"style": "calm"}),
              client.delete("/voice_mappings/mine"),
              client.put("/config", json={"save_outputs": False})):
        if r.status_code == 409:  # "kept" exists: refused before anything is written
            continue
        assert r.status_code == 507, r.text
        detail = r.json()["detail"]
        assert reason in detail and "free disk space or make the directory writable" in detail
    assert stored_state(tmp_path) == before
    assert no_temp_files(tmp_path)
    assert client.get("/config").json()["save_outputs"] is True
    assert client.get("/voice_mappings/mine").json()["style"] == "neutral"


def test_job_whose_result_cannot_be_written_fails_clearly(tmp_path, client, broken_disk,
                                                          monkeypatch):
    reason = broken_disk()
    r = client.post("/generate?async_mode=true", json={"text": "Hello"})
    assert r.status_code == 202  # the row is in the database, which the disk fault spares
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "failed"
    assert "could not write" in job["error_message"] and reason in job["error_message"]
    result = client.get(f"/jobs/{job['job_id']}/result")
    assert result.status_code == 409 and reason in result.json()["detail"]
    assert list((tmp_path / "data" / "jobs").iterdir()) == []
    # Once the disk takes writes again, so does the server.
    monkeypatch.undo()
    r = client.post("/generate?async_mode=true", json={"text": "Hello"})
    assert wait_job(client, r.json()["job_id"])["status"] == "completed"


def test_sync_audio_is_delivered_when_its_saved_copy_cannot_be(tmp_path, client, broken_disk):
    reason = broken_disk()
    r = client.post("/generate", json={"text": "Hello"})
    assert r.status_code == 200
    assert sf.read(io.BytesIO(r.content))[0].size > 0
    entry = client.get("/logs").json()["logs"][0]
    assert entry["status"] == "completed" and entry["audio_file"] is None
    assert any("output not saved" in w and reason in w for w in entry["warnings"])
    assert not any((tmp_path / "audio_outputs").glob("*.wav"))


def test_a_full_database_refuses_new_jobs_and_keeps_the_rest(tmp_path):
    services = make_services(tmp_path)
    with TestClient(app=create_app(services)) as client:
        _full_database(tmp_path, services, client)


def _full_database(tmp_path, services, client):
    done = client.post("/generate?async_mode=true", json={"text": "Kept"}).json()["job_id"]
    assert wait_job(client, done)["status"] == "completed"
    before = stored_state(tmp_path)
    db = tmp_path / "data" / "ttsframe.db"
    with sqlite3.connect(db) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    # max_page_count is per connection: cap the server's own connection at its size now.
    client.blocking_portal.call(services.database.call,
                                lambda c: c.execute(f"PRAGMA max_page_count = {pages}"))
    big = "[S1] " + "x" * 4000
    refused = 0
    for _ in range(40):  # until the pages still free are used up
        r = client.post("/generate?async_mode=true", json={"text": big})
        if r.status_code == 507:
            refused += 1
            assert "database" in r.json()["detail"] and "full" in r.json()["detail"]
            break
        wait_job(client, r.json()["job_id"])
    assert refused
    # What was stored is still there and still served.
    assert client.get(f"/jobs/{done}").json()["status"] == "completed"
    assert client.get(f"/jobs/{done}/result").status_code == 200
    assert set(before["rows"]["jobs"]) <= set(stored_state(tmp_path)["rows"]["jobs"])
    # Synchronous speech needs no storage: it still works.
    assert client.post("/generate", json={"text": "Still speaking."}).status_code == 200
