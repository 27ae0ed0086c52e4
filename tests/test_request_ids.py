"""Request ids on a real server: a client's ``X-Request-ID`` comes back in the reply, in
every log line of its request (JSON and text formats), in error bodies, in its
generation-log row and its job record."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from tests.job_helpers import TONE, tone_server
from tests.job_helpers import wait_for as wait_for_job
from ttsframe.testing.waiting import eventually

SAY = {"text": "[S1] Hello there (bogus) friend.", "voice_id": "alloy"}


def log_lines(srv, request_id: str, *, timeout: float = 10.0,
              where=lambda line: True) -> list[dict]:
    """The server's JSON log lines for ``request_id`` (polled: lines are written as the
    request finishes)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(text) for text in srv.output().splitlines() if text.strip()]
        found = [line for line in lines if line["request_id"] == request_id and where(line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    with tone_server(tmp_path_factory.mktemp("json"),
                     TONE + '\n[server]\nlog_format = "json"\n') as srv:
        yield srv


def test_a_client_id_is_in_the_reply_the_log_lines_and_the_generation_log(json_server):
    srv = json_server
    r = srv.client.post("/generate", json=SAY, headers={"X-Request-ID": "report-42"})
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] == "report-42"
    access = log_lines(srv, "report-42", where=lambda line: line["logger"] == "ttsframe.access")
    assert len(access) == 1
    assert access[0]["route"] == "/generate" and access[0]["status"] == 200
    assert access[0]["method"] == "POST" and access[0]["duration_ms"] > 0
    # The warning about the unknown nonverbal, written while generating, carries it too.
    warned = log_lines(srv, "report-42", where=lambda line: "(bogus)" in line["message"])
    assert warned and warned[0]["level"] == "warning"
    rows = srv.client.get("/logs").json()["logs"]
    assert [row["request_id"] for row in rows if row["request_id"] == "report-42"] == [
        "report-42"]
    # Every line the server wrote is one JSON object with the fixed keys.
    for text in srv.output().splitlines():
        line = json.loads(text)
        assert {"time", "level", "logger", "message", "request_id"} <= set(line)


def test_error_bodies_jobs_and_made_up_ids(json_server):
    srv = json_server
    r = srv.client.post("/generate", json={**SAY, "voice_id": "nobody"},
                        headers={"X-Request-ID": "bad-99"})
    assert r.status_code == 404
    assert r.json()["request_id"] == "bad-99" == r.headers["X-Request-ID"]
    # An unrouted path still gets an id, in the header and the body alike.
    r = srv.client.get("/no/such/route")
    assert r.status_code == 404
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])
    assert r.json()["request_id"] == r.headers["X-Request-ID"]
    # An id that could not be logged as it is (spaces, too long) is replaced.
    for bad in ("has spaces", "x" * 129):
        r = srv.client.get("/health", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])
    # A job keeps the id of the request that submitted it, in its record and its row.
    r = srv.client.post("/generate?async_mode=true", json=SAY,
                        headers={"X-Request-ID": "job-7"})
    assert r.status_code == 202 and r.json()["request_id"] == "job-7"
    job = wait_for_job(srv.client, r.json()["job_id"], "completed")
    assert job["request_id"] == "job-7"
    # A job's log row is written just after the job reads completed: poll for it.
    rows = eventually(lambda: [row for row in srv.client.get("/logs").json()["logs"]
                               if row["job_id"] == job["job_id"]],
                      message="the job's log row")
    assert [row["request_id"] for row in rows] == ["job-7"]
    # The job's runner logged its warning under the submitting request's id.
    assert log_lines(srv, "job-7", where=lambda line: "(bogus)" in line["message"])


def test_text_logs_carry_the_id(tmp_path):
    with tone_server(tmp_path) as srv:
        r = srv.client.post("/generate", json=SAY, headers={"X-Request-ID": "text-1"})
        assert r.status_code == 200
        eventually(lambda: "[text-1]: POST /generate 200" in srv.output(),
                   message=lambda: f"the access line in:\n{srv.output()}")
        warning = [line for line in srv.output().splitlines() if "(bogus)" in line]
        assert warning and "WARNING" in warning[0] and "[text-1]" in warning[0]
        with pytest.raises(json.JSONDecodeError):
            json.loads(srv.output().splitlines()[0])
        assert httpx.get(f"{srv.url}/health").headers["X-Request-ID"]
