"""The job workflow on the real transformers path, with the tiny Dia model."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import soundfile as sf

from tests.dia_fixtures import tiny_hub_cache  # noqa: F401  (fixture)
from tests.job_helpers import ids, logged, submit, wait_for
from tests.server import ServerProcess
from ttsframe.testing.waiting import eventually

ROOT = Path(__file__).resolve().parents[1]


def test_job_workflow_on_tiny_dia(tmp_path, tiny_hub_cache):  # noqa: F811
    cfg = tmp_path / "ttsframe.toml"
    shutil.copy(ROOT / "ttsframe.toml", cfg)  # the shipped config
    env = {"HF_HUB_CACHE": str(tiny_hub_cache), "HF_HUB_OFFLINE": "1",
           "TTSFRAME_PLUGINS__DIA__CPU_THREADS": "1"}
    with ServerProcess(cfg, env=env) as srv:
        c = srv.client
        body = {"text": "[S1] Hello world!", "voice_id": "alloy", "max_tokens": 120, "seed": 3}
        wav = submit(c, **body)
        mp3 = submit(c, **{**body, "text": "[S2] And in mp3.", "response_format": "mp3"})
        job = wait_for(c, wav, "completed", timeout=120)
        assert job["model"] == "dia" and job["worker"] == "dia-0"
        assert job["sample_rate"] == 44100
        r = c.get(f"/jobs/{wav}/result")
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        audio, rate = sf.read(io.BytesIO(r.content))
        assert rate == 44100 and 0 < len(audio) <= 120 * 512  # 512 samples per Dia frame
        assert abs(len(audio) / rate - job["duration_s"]) < 0.002

        # the same request, synchronously: the same pipeline gives the same audio
        sync = c.post("/generate", json=body)
        assert sync.status_code == 200 and sync.content == r.content

        wait_for(c, mp3, "completed", timeout=120)
        r = c.get(f"/jobs/{mp3}/result")
        assert r.headers["content-type"] == "audio/mpeg" and len(r.content) > 0
        assert ids(c, "?status=completed") == [mp3, wav]
        stats = c.get("/queue/stats").json()
        assert (stats["completed_jobs"], stats["failed_jobs"]) == (2, 0)
        assert stats["total_workers"] == 4  # generation.workers, within Dia's batch size
        eventually(lambda: logged(c, wav) and logged(c, mp3), message="both jobs logged")
        kinds = [e["kind"] for e in c.get("/logs").json()["logs"]]
        assert sorted(kinds) == ["job", "job", "sync"]
        assert c.delete("/jobs").json()["deleted"] == 2
