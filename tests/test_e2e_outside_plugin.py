"""A backend from an outside distribution, found through its entry point by a real server."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import httpx
import soundfile as sf

from tests.job_helpers import tone_server
from tests.server import ServerProcess, install_fake_backend
from ttsframe.testing.waiting import eventually


def start_tone_server(tmp_path: Path, extra_config: str = "") -> ServerProcess:
    return tone_server(tmp_path, '[generation]\ndefault_backend = "tone"\n' + extra_config)


def test_outside_backend_is_discovered_and_used(tmp_path):
    with start_tone_server(tmp_path) as srv:
        models = srv.client.get("/models").json()["models"]
        assert [m["id"] for m in models] == ["tone"]
        r = srv.client.post("/generate", json={"text": "Hello from a plugin", "voice_id": "echo"})
        assert r.status_code == 200, r.text
        audio, rate = sf.read(io.BytesIO(r.content))
        assert rate == 24000
        assert len(audio) == int(len("[S1] Hello from a plugin") * 0.01 * 24000)


def test_plugins_command_lists_the_outside_plugin(tmp_path):
    import subprocess
    import sys

    site = install_fake_backend(tmp_path / "site", "tone", "TONE")
    out = subprocess.run([sys.executable, "-m", "ttsframe", "plugins"], capture_output=True,
                         text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                         cwd=tmp_path, check=True).stdout
    assert "tone 0.1.0  [distribution ttsframe-tone]" in out
    assert "provides: backend:tone" in out
    assert "roles" in out and "[built-in]" in out


def test_health_answers_during_a_long_generation(tmp_path):
    """The event loop is never blocked: /health answers while generate runs for seconds."""
    extra = "[plugins.tone]\nstep_delay_s = 0.3\nsteps = 10\n"
    with start_tone_server(tmp_path, extra) as srv:
        done = {}

        def generate():
            t0 = time.monotonic()
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                done["status"] = c.post("/generate", json={"text": "slow"}).status_code
            done["elapsed"] = time.monotonic() - t0
            done["at"] = time.monotonic()

        thread = threading.Thread(target=generate)
        thread.start()
        eventually(lambda: srv.client.get("/health").json()["queue"]["running_tasks"] == 1,
                   message="the generation running on the backend's worker thread")
        t0 = time.monotonic()
        health = srv.client.get("/health")
        answered_at = time.monotonic()
        assert health.status_code == 200
        assert health.json()["queue"]["running_tasks"] == 1
        thread.join()
        assert done["status"] == 200
        assert done["elapsed"] >= 3.0          # the generation really took seconds
        assert answered_at - t0 < 1.0          # ... and /health did not wait for it
        assert answered_at < done["at"]


def test_invalid_config_stops_startup_naming_the_key(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text("[plugins.dia]\ndtype = \"float8\"\n")
    proc = subprocess.run([sys.executable, "-m", "ttsframe", "serve", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "plugins.dia.dtype" in proc.stderr
    assert "'float32'" in proc.stderr
