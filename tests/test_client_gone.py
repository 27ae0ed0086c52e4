"""A synchronous request whose client gives up stops generating (real server process)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.job_helpers import TONE, tone_server
from tests.test_metrics import scrape, value, wait_for

# Two requests generate at once (one batch); each slow one would take 50 s.
TWO_WORKERS = TONE.replace("workers = 1", "workers = 2")


def _give_up(url: str, path: str, body: dict) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + path, json=body, timeout=httpx.Timeout(10, read=1.5))


def test_requests_abandoned_by_their_clients_stop_generating(tmp_path: Path) -> None:
    with tone_server(tmp_path, TWO_WORKERS) as srv:
        text = "[S1] A very long story. (slow)"
        calls = [("/generate", {"text": text, "voice_id": "alloy"}),
                 ("/v1/audio/speech", {"input": text, "voice": "alloy", "model": "tts-1"}),
                 ("/generate", {"text": text, "voice_id": "alloy"})]
        with ThreadPoolExecutor(len(calls)) as pool:
            for f in [pool.submit(_give_up, srv.url, p, b) for p, b in calls]:
                f.result()
        # Without cancellation the workers stay busy for 50 s; with it they are free
        # within a few decoding steps.
        deadline = time.monotonic() + 15
        while True:
            stats = srv.client.get("/queue/stats").json()
            if stats["active_workers"] == 0 and stats["queued_requests"] == 0:
                break
            assert time.monotonic() < deadline, stats
            time.sleep(0.1)
        r = srv.client.post("/generate", json={"text": "[S1] Next.", "voice_id": "alloy"},
                            timeout=10)
        assert r.status_code == 200
        deadline = time.monotonic() + 10
        while True:
            logs = srv.client.get("/logs").json()["logs"]
            abandoned = [e for e in logs if e["status"] != "completed"]
            if len(abandoned) == len(calls):
                break
            assert time.monotonic() < deadline, logs
            time.sleep(0.1)
        assert all("abandoned" in (e["error"] or "") for e in abandoned), abandoned
        # Each counted under its cause (the metric is told after the log: wait for it).
        wait_for(lambda: value(scrape(srv.client), "ttsframe_cancellations_total",
                               reason="client_disconnect") == len(calls))
        assert value(scrape(srv.client), "ttsframe_cancellations_total") == len(calls)
