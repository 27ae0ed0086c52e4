"""The whole server on the tiny Dia model, loaded by repo id from a Hugging Face cache."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import soundfile as sf

from tests.dia_fixtures import tiny_hub_cache  # noqa: F401  (fixture)
from tests.server import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


def dia_server(tmp_path: Path, cache: Path, **kw) -> ServerProcess:
    cfg = tmp_path / "ttsframe.toml"
    shutil.copy(ROOT / "ttsframe.toml", cfg)  # the shipped config, unchanged
    # One torch thread, as a user sharing the cores would set: with one per core, a busy
    # machine (CI, concurrent runs) slows the threads' lockstep down many times over.
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "TTSFRAME_PLUGINS__DIA__CPU_THREADS": "1"}
    return ServerProcess(cfg, env=env, **kw)


def test_generate_with_role_and_parameters(tmp_path, tiny_hub_cache):  # noqa: F811
    with dia_server(tmp_path, tiny_hub_cache) as srv:
        health = srv.client.get("/health").json()
        assert health["status"] == "healthy", health
        assert health["backends"]["dia"]["info"]["device"] == "cpu"
        body = {"text": "Hello, this is a test message.", "voice_id": "alloy", "role": "user",
                "response_format": "wav", "temperature": 1.3, "cfg_scale": 2.5, "top_p": 0.9,
                "max_tokens": 200, "seed": 7}
        r = srv.client.post("/generate", json=body)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "audio/wav"
        audio, rate = sf.read(io.BytesIO(r.content))
        assert rate == 44100
        frames = int(r.headers["x-generated-tokens"])
        assert 0 < frames <= 200
        # one Dia frame is 512 samples of the 44.1 kHz codec
        assert len(audio) == frames * 512
        assert float(r.headers["x-audio-duration"]) == round(frames * 512 / 44100, 3)

        again = srv.client.post("/generate", json=body)
        assert again.content == r.content  # same seed, same audio

        bad = srv.client.post("/generate", json={**body, "temperature": 3.0})
        assert bad.status_code == 400
        assert "temperature" in bad.json()["detail"]


def test_model_that_cannot_load_reports_why(tmp_path):
    empty_cache = tmp_path / "empty-cache"
    empty_cache.mkdir()
    with dia_server(tmp_path, empty_cache, wait_for="failed") as srv:
        health = srv.client.get("/health").json()
        assert health["status"] == "unhealthy"
        error = health["backends"]["dia"]["error"]
        assert "nari-labs/Dia-1.6B-0626" in error
        r = srv.client.post("/generate", json={"text": "hi"})
        assert r.status_code == 503
        assert "ttsframe.toml" in r.json()["detail"] or "download" in r.json()["detail"]
