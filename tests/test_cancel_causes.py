"""Each way a job is cancelled leaves its cause on the task's token and in the metric
(in process, on the tone fake backend; the client-disconnect paths are checked against a
real server in test_client_gone.py and test_streaming.py)."""

from __future__ import annotations

from litestar.testing import TestClient

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
