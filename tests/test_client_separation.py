"""Keys separate clients: jobs, results and logs belong to the key that made them (an
admin key sees all), a client cancels its own jobs, and shared voices and prompts change
only with an admin key when admin keys are set. Each case is an attack that used to work."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.voice_fixtures import cloner_plugin, sine, wav_bytes
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually

K1, K2, ADMIN = "client-one-key", "client-two-key", "the-admin-key"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def c(tmp_path) -> Iterator[TestClient]:
    plugin, _ = cloner_plugin()
    services = make_services(tmp_path, extra_plugins=(("cloner-plugin", plugin),),
                             generation={"default_backend": "cloner"},
                             security={"api_keys": [K1, K2], "admin_keys": [ADMIN]},
                             logging={"show_prompts": True, "save_outputs": True})
    with TestClient(app=create_app(services)) as client:
        yield client


def job(c: TestClient, key: str, text: str) -> str:
    r = c.post("/generate?async_mode=true", json={"text": text, "voice_id": "alloy"},
               headers=bearer(key))
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 30
    while c.get(f"/jobs/{job_id}", headers=bearer(key)).json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return job_id


def log_ids(c: TestClient, key: str) -> list[str]:
    r = c.get("/logs", headers=bearer(key))
    assert r.status_code == 200
    return [e["log_id"] for e in r.json()["logs"]]


def test_a_client_sees_only_its_own_jobs_results_and_logs(c):
    secret = job(c, ADMIN, "[S1] The admin's secret text.")
    mine = job(c, K1, "[S1] Client one speaks.")
    assert c.post("/v1/audio/speech", json={"input": "[S1] Also client one.", "voice": "alloy"},
                  headers=bearer(K1)).status_code == 200

    listed = [j["job_id"] for j in c.get("/jobs", headers=bearer(K1)).json()["jobs"]]
    assert listed == [mine]
    for path in (f"/jobs/{secret}", f"/jobs/{secret}/result"):
        r = c.get(path, headers=bearer(K1))
        assert r.status_code == 404, (path, r.text)  # as unknown as an id never used
        assert "secret" not in r.text
    assert c.get(f"/jobs/{mine}/result", headers=bearer(K1)).status_code == 200

    def logs(key: str, count: int) -> list[dict] | None:
        """The key's generation logs once ``count`` are there: a job's entry is written
        just after its row says it finished."""
        entries = c.get("/logs", headers=bearer(key)).json()["logs"]
        return entries if len(entries) >= count else None

    own_logs = eventually(lambda: logs(K1, 2), message="client one's two logs")
    assert len(own_logs) == 2
    assert all("secret" not in (e["text"] or "") for e in own_logs)
    admin_logs = eventually(lambda: logs(ADMIN, 3), message="every log, for the admin")
    assert len(admin_logs) == 3  # the admin sees everyone's
    (theirs,) = [e for e in admin_logs if "secret" in (e["text"] or "")]
    for path in (f"/logs/{theirs['log_id']}", f"/logs/{theirs['log_id']}/download"):
        assert c.get(path, headers=bearer(K1)).status_code == 404, path
    assert c.get(f"/logs/{theirs['log_id']}/download", headers=bearer(ADMIN)).status_code == 200
    assert log_ids(c, K2) == []
    assert {j["job_id"] for j in c.get("/jobs", headers=bearer(ADMIN)).json()["jobs"]} == {
        secret, mine}


def test_a_client_cancels_its_own_jobs_and_no_one_elses(c):
    mine = job(c, K1, "[S1] Mine to delete.")
    theirs = job(c, K2, "[S1] Not yours.")
    r = c.delete(f"/jobs/{theirs}", headers=bearer(K1))
    assert r.status_code == 404
    assert c.get(f"/jobs/{theirs}", headers=bearer(K2)).json()["status"] == "completed"
    r = c.delete(f"/jobs/{mine}", headers=bearer(K1))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "deleted"
    assert c.delete(f"/jobs/{theirs}", headers=bearer(ADMIN)).status_code == 200
    # Clearing every finished job at once stays an admin route.
    assert c.delete("/jobs", headers=bearer(K1)).status_code == 403


def test_queue_stats_count_the_callers_own_jobs_and_all_for_an_admin(c):
    job(c, K1, "[S1] One.")
    job(c, K1, "[S1] Two.")
    job(c, K2, "[S1] Three.")
    counts = {key: c.get("/queue/stats", headers=bearer(key)).json()["completed_jobs"]
              for key in (K1, K2, ADMIN)}
    assert counts == {K1: 2, K2: 1, ADMIN: 3}


def test_shared_voices_and_prompts_change_only_with_an_admin_key(c, tmp_path):
    up = c.post("/audio_prompts/upload", data={"prompt_id": "shared"},
                files={"audio_file": ("a.wav", wav_bytes(sine(1.0, 44100)), "audio/wav")},
                headers=bearer(ADMIN))
    assert up.status_code == 201, up.text
    r = c.post("/voice_mappings", json={"voice_id": "narrator", "audio_prompt": "shared",
                                        "audio_prompt_transcript": "[S1] Hello there."},
               headers=bearer(K1))
    assert r.status_code == 201, r.text
    prompt = tmp_path / "audio_prompts" / "shared.wav"
    before = prompt.read_bytes()

    r = c.post("/audio_prompts/upload", params={"overwrite": "true"},
               data={"prompt_id": "shared"},
               files={"audio_file": ("b.wav", wav_bytes(sine(2.0, 44100, 220)), "audio/wav")},
               headers=bearer(K1))
    assert r.status_code == 403, r.text
    assert prompt.read_bytes() == before
    r = c.put("/voice_mappings/narrator", json={"audio_prompt": None}, headers=bearer(K1))
    assert r.status_code == 403, r.text
    voice = c.get("/voice_mappings/narrator", headers=bearer(K1)).json()
    assert voice["audio_prompt"] == "shared"

    # New prompts and voices are still every client's to add; the admin changes them.
    r = c.post("/audio_prompts/upload", data={"prompt_id": "k1s"},
               files={"audio_file": ("c.wav", wav_bytes(sine(1.0, 44100)), "audio/wav")},
               headers=bearer(K1))
    assert r.status_code == 201, r.text
    r = c.put("/voice_mappings/narrator", json={"style": "calm"}, headers=bearer(ADMIN))
    assert r.status_code == 200, r.text


def test_a_database_from_before_owners_gains_the_column(tmp_path):
    import asyncio
    import sqlite3

    from ttsframe.core.storage.database import SCHEMA, Database

    path = tmp_path / "ttsframe.db"
    old = sqlite3.connect(path)
    schema_1 = SCHEMA.replace(",\n    owner           TEXT", "")
    assert "owner" not in schema_1
    old.executescript(schema_1)
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()

    async def columns() -> set[str]:
        db = Database(path)
        await db.open()
        try:
            rows = await db.call(lambda c: c.execute("PRAGMA table_info(jobs)").fetchall())
            return {r["name"] for r in rows}
        finally:
            await db.close()

    assert "owner" in asyncio.run(columns())
