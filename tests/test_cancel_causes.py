"""The cancel cause as data, and each way a job is cancelled leaving its cause on the
task's token and in the metric (in process, on the tone fake backend; the
client-disconnect paths are checked against a real server in test_client_gone.py and
test_streaming.py)."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

import ttsframe
from tests.conftest import make_services
from tests.test_metrics import scrape, value, wait_for
from ttsframe.core.errors import CancelCause
from ttsframe.http.app import create_app

SLOW = {"text": "[S1] (slow) this one runs long.", "voice_id": "alloy"}


def _processing(client: TestClient) -> str:
    job = client.post("/generate?async_mode=true", json=SLOW).json()["job_id"]
    wait_for(lambda: client.get(f"/jobs/{job}").json()["status"] == "processing")
    return job


def test_delete_of_a_job_is_a_request(tmp_path):
    services = make_services(tmp_path, plugins={"tone-plugin": {"step_delay_s": 0.02}})
    with TestClient(app=create_app(services)) as client:
        job = _processing(client)
        token = services.scheduler.get(job).task.cancel
        assert client.delete(f"/jobs/{job}").json()["status"] == "cancelled"
        assert token.cause == CancelCause.REQUEST
        wait_for(lambda: value(scrape(client), "ttsframe_cancellations_total",
                               reason="request") == 1)
        assert value(scrape(client), "ttsframe_cancellations_total") == 1


def test_a_job_stopped_by_the_shutdown_is_a_shutdown(tmp_path):
    services = make_services(tmp_path, plugins={"tone-plugin": {"step_delay_s": 0.02}})
    with TestClient(app=create_app(services)) as client:
        job = _processing(client)
        token = services.scheduler.get(job).task.cancel
    assert token.cancelled and token.cause == CancelCause.SHUTDOWN


def test_the_public_types_keep_the_old_calls_working():
    """``Cancelled(words)`` and ``token.cancel(words)`` still work (cause None and
    ``request``); a cause given as its string value becomes the member, and one outside
    the set is refused, so the metric's label set stays closed."""
    assert ttsframe.CancelCause is CancelCause
    assert ttsframe.Cancelled("stopped").cause is None
    assert ttsframe.Cancelled("stopped", cause="shutdown").cause is CancelCause.SHUTDOWN
    token = ttsframe.CancelToken()
    assert token.cause is None and not token.cancelled
    token.cancel("bye")
    assert (token.reason, token.cause) == ("bye", CancelCause.REQUEST)
    token.cancel("later words", CancelCause.SHUTDOWN)  # a later cancel says the latest why
    assert (token.reason, token.cause) == ("later words", CancelCause.SHUTDOWN)
    with pytest.raises(ValueError):
        ttsframe.Cancelled("stopped", cause="tired")
    with pytest.raises(ValueError):
        token.cancel("bye", "tired")
