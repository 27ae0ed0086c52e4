"""``GET /metrics``: each metric moves when its event happens, the docs table lists exactly
what is served, the route's keys, and one registry per app."""

from __future__ import annotations

import asyncio
import re
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_services
from ttsframe import hookimpl
from ttsframe.core.errors import CancelCause, Cancelled
from ttsframe.core.interfaces.synthesis import CancelToken, SynthesisResult
from ttsframe.core.observability.metrics import Metrics, cancel_reason
from ttsframe.http.app import create_app
from ttsframe.testing.fake_backend import TONE, FakeBackend
from ttsframe.testing.waiting import eventually

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "observability.md"
SAY = {"text": "[S1] Hello there, this is a test.", "voice_id": "alloy"}


def scrape(client: TestClient, **headers: str) -> dict[str, dict]:
    """``{family name: {"type": ..., "samples": [(name, labels, value)]}}``; counters
    are named with their ``_total`` as in the exposition."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        out[name] = {"type": fam.type, "samples": fam.samples}
    return out


def value(metrics: dict, name: str, suffix: str = "", **labels: str) -> float:
    """The sum of the samples of ``name`` (+ ``suffix``: _count, _sum) matching labels."""
    fam = metrics[name]
    sample_name = (name.removesuffix("_total") + "_total" if fam["type"] == "counter"
                   else name) + suffix
    return sum(s.value for s in fam["samples"] if s.name == sample_name
               and all(s.labels.get(k) == v for k, v in labels.items()))


def services_in(directory: Path, **overrides):
    directory.mkdir(parents=True, exist_ok=True)
    return make_services(directory, **overrides)


def wait_for(condition, timeout: float = 30.0) -> None:
    eventually(condition, timeout=timeout, message="condition")


def documented() -> dict[str, tuple[str, set[str]]]:
    """The table of docs/observability.md: name -> (type, labels)."""
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `(ttsframe_\w+)` \| (\w+) \|([^|]*)\|", line)
        if m:
            labels = {x.strip() for x in m.group(3).split(",") if x.strip()}
            rows[m.group(1)] = (m.group(2), labels)
    return rows


@pytest.fixture
def client(tmp_path):
    with TestClient(app=create_app(make_services(tmp_path))) as c:
        yield c


def test_the_docs_table_lists_exactly_what_is_served(client):
    # Make every labelled series appear: speech of each mode, a failure, a cancel.
    assert client.post("/generate", json=SAY).status_code == 200
    assert client.post("/generate", json={**SAY, "stream": True}).status_code == 200
    assert client.post("/generate", json={**SAY, "voice_id": "nobody"}).status_code == 404
    job = client.post("/generate?async_mode=true",
                      json={**SAY, "text": "[S1] (slow) a long one."}).json()
    client.delete(f"/jobs/{job['job_id']}")
    wait_for(lambda: client.get(f"/jobs/{job['job_id']}").json()["status"] == "cancelled")
    wait_for(lambda: value(scrape(client), "ttsframe_cancellations_total") == 1)
    served = scrape(client)
    table = documented()
    for name, fam in served.items():
        assert name in table, f"{name} is served but not in docs/observability.md"
        kind, labels = table[name]
        assert fam["type"] == kind, name
        seen = {k for s in fam["samples"] for k in s.labels} - {"le"}
        # Families with samples show their labels; the tone backend has no prompt cache
        # and nothing here is cut by its budget, so those two are checked in other tests.
        if fam["samples"]:
            assert seen == labels, f"{name}: served {seen}, documented {labels}"
    assert set(table) == set(served), set(table) ^ set(served)


def test_speech_requests_generation_and_audio_are_counted(client):
    r = client.post("/generate", json=SAY)
    assert r.status_code == 200
    s = client.post("/v1/audio/speech", json={"model": "tts-1", "input": SAY["text"],
                                             "voice": "alloy", "stream": True,
                                             "response_format": "mp3"})
    assert s.status_code == 200

    def counted() -> dict | None:
        """The metrics once both generations are counted: a stream is counted when it
        has ended, which its client can see (the last bytes) a moment before."""
        m = scrape(client)
        return m if value(m, "ttsframe_generations_total", outcome="completed") == 2 else None

    m = eventually(counted, message="both generations counted")
    assert value(m, "ttsframe_speech_requests_total", route="/generate", backend="tone",
                 format="wav", mode="sync", status_class="2xx") == 1
    assert value(m, "ttsframe_speech_requests_total", route="/v1/audio/speech",
                 format="mp3", mode="stream", status_class="2xx") == 1
    # One time-to-first-audio observation per request, in its mode.
    assert value(m, "ttsframe_time_to_first_audio_seconds", "_count", mode="sync") == 1
    assert value(m, "ttsframe_time_to_first_audio_seconds", "_count", mode="stream",
                 route="/v1/audio/speech") == 1
    assert value(m, "ttsframe_generations_total", outcome="completed") == 2
    # The bytes produced are the bytes the clients received.
    assert value(m, "ttsframe_audio_bytes_total", format="wav") == len(r.content)
    assert value(m, "ttsframe_audio_bytes_total", format="mp3") == len(s.content)
    assert value(m, "ttsframe_audio_seconds_total") == pytest.approx(
        2 * float(r.headers["X-Audio-Duration"]), abs=0.01)
    for hist in ("ttsframe_generation_seconds", "ttsframe_queue_wait_seconds",
                 "ttsframe_realtime_factor", "ttsframe_chunks_per_request"):
        assert value(m, hist, "_count", backend="tone") == 2, hist
    assert value(m, "ttsframe_chunks_per_request", "_sum") == 2  # one chunk each
    assert value(m, "ttsframe_batch_size", "_count") == 2
    assert value(m, "ttsframe_decoding_steps_per_second", "_count") == 2
    assert value(m, "ttsframe_active_streams") == 0  # both replies are over
    assert value(m, "ttsframe_http_requests_total", path="/generate", status_code="200") == 1
    assert value(m, "ttsframe_model_state", backend="tone", state="ready") == 1
    assert value(m, "ttsframe_model_state", backend="tone", state="loading") == 0


def test_a_long_text_counts_its_chunks(client):
    text = " ".join(f"[S1] Sentence number {i} of a text long enough to be split." for i in
                    range(40))
    r = client.post("/generate", json={**SAY, "text": text})
    assert r.status_code == 200
    chunks = int(r.headers["X-Text-Chunks"])
    assert chunks > 1
    m = scrape(client)
    assert value(m, "ttsframe_chunks_per_request", "_sum") == chunks
    assert value(m, "ttsframe_batch_size", "_sum") == chunks  # every chunk ran once


def test_a_429_counts_as_queue_full_and_gauges_show_the_queue(tmp_path):
    services = make_services(tmp_path, generation={"queue_size": 1, "workers": 1},
                             plugins={"tone-plugin": {"step_delay_s": 0.02}})
    with TestClient(app=create_app(services)) as client:
        slow = {**SAY, "text": "[S1] (slow) this one runs long."}
        running = client.post("/generate?async_mode=true", json=slow).json()["job_id"]
        wait_for(lambda: client.get(f"/jobs/{running}").json()["status"] == "processing")
        waiting = client.post("/generate?async_mode=true", json=slow).json()["job_id"]
        r = client.post("/generate", json=SAY)
        assert r.status_code == 429
        m = scrape(client)
        assert value(m, "ttsframe_speech_failures_total", kind="queue_full",
                     route="/generate") == 1
        assert value(m, "ttsframe_speech_requests_total", mode="sync",
                     status_class="4xx") == 1
        assert value(m, "ttsframe_speech_requests_total", mode="job",
                     status_class="2xx") == 2
        assert value(m, "ttsframe_queue_depth", backend="tone") == 1
        assert value(m, "ttsframe_queue_capacity") == 1
        assert value(m, "ttsframe_running_batches", backend="tone") == 1
        assert value(m, "ttsframe_jobs", state="processing") == 1
        assert value(m, "ttsframe_jobs", state="pending") == 1
        for job in (running, waiting):
            client.delete(f"/jobs/{job}")
        wait_for(lambda: value(scrape(client), "ttsframe_cancellations_total",
                               reason="request") == 2)
        m = scrape(client)
        assert value(m, "ttsframe_generations_total", outcome="cancelled") == 2
        assert value(m, "ttsframe_jobs", state="cancelled") == 2
        assert value(m, "ttsframe_running_batches") == 0


def test_failed_generations_and_failed_models_are_counted(tmp_path):
    services = make_services(tmp_path)
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={**SAY, "text": "[S1] (explode) now."})
        assert r.status_code == 500
        m = scrape(client)
        assert value(m, "ttsframe_generations_total", outcome="failed") == 1
        assert value(m, "ttsframe_speech_failures_total", kind="internal") + value(
            m, "ttsframe_speech_failures_total", kind="generation_failed") == 1
        assert value(m, "ttsframe_speech_requests_total", status_class="5xx") == 1
    broken = services_in(tmp_path / "b", plugins={"tone-plugin": {"fail_load": "no weights"}})
    with TestClient(app=create_app(broken)) as client:
        wait_for(lambda: value(scrape(client), "ttsframe_model_state", state="failed") == 1)
        r = client.post("/generate", json=SAY)
        assert r.status_code == 503
        m = scrape(client)
        assert value(m, "ttsframe_model_state", state="ready") == 0
        assert value(m, "ttsframe_speech_failures_total",
                     kind="backend_unavailable") == 1


def test_data_dir_size_follows_the_files(client, tmp_path):
    before = value(scrape(client), "ttsframe_data_dir_bytes")
    job = client.post("/generate?async_mode=true", json=SAY).json()["job_id"]
    wait_for(lambda: client.get(f"/jobs/{job}").json()["status"] == "completed")
    size = client.get(f"/jobs/{job}").json()["result_bytes"]
    after = value(scrape(client), "ttsframe_data_dir_bytes")
    assert after >= before + size
    assert value(scrape(client), "ttsframe_jobs", state="completed") == 1


def test_budget_limits_steps_and_batches_from_backend_results():
    metrics = Metrics()
    done = SynthesisResult(samples=np.zeros(10, np.float32), sample_rate=10,
                           tokens=50, info={"steps": 100, "budget_limited": True})
    natural = SynthesisResult(samples=done.samples, sample_rate=10, tokens=20,
                              info={"steps": 100})
    on_replica = types.SimpleNamespace(worker="dia-1")  # a ticket run by replica 1
    metrics.batch_done("dia", [on_replica] * 3, [done, natural, RuntimeError("x")], 0.5)
    reg = metrics.registry
    assert reg.get_sample_value("ttsframe_budget_limited_generations_total",
                                {"backend": "dia"}) == 1
    where = {"backend": "dia", "replica": "dia-1"}
    assert reg.get_sample_value("ttsframe_batch_size_sum", where) == 3
    assert reg.get_sample_value("ttsframe_decoding_steps_per_second_sum", where) == 200


def test_cancel_reasons_come_from_the_cause_never_the_words():
    assert cancel_reason(asyncio.CancelledError()) == "client_disconnect"
    for cause in CancelCause:
        assert cancel_reason(Cancelled("Abgebrochen.", cause=cause)) == cause.value
    # The old wording counts for nothing: no cause, no token, the default.
    assert cancel_reason(Cancelled("the client disconnected; server stopping")) == "request"
    # A backend's error without a cause: its task's token says why.
    token = CancelToken()
    token.cancel("Arrêt du serveur", CancelCause.SHUTDOWN)
    assert cancel_reason(Cancelled("Arrêt du serveur"), token) == "shutdown"
    assert cancel_reason(asyncio.CancelledError(), token) == "shutdown"
    assert cancel_reason(Cancelled("x"), CancelToken()) == "request"  # not cancelled


def test_a_cancellation_in_other_words_is_counted_under_its_cause():
    """The metrics observer reads the cause from the error, else from the ticket's token."""
    metrics = Metrics()
    token = CancelToken()
    token.cancel("la connexion est fermée", CancelCause.CLIENT_DISCONNECT)
    ticket = types.SimpleNamespace(started_at=None, finished_at=None,
                                   task=types.SimpleNamespace(cancel=token))
    prepared = types.SimpleNamespace(backend="tone")
    for error in (Cancelled("la connexion est fermée"),  # a backend's, words only
                  Cancelled("Feierabend", cause=CancelCause.SHUTDOWN)):
        asyncio.run(metrics.generation_ended(types.SimpleNamespace(
            prepared=prepared, ticket=ticket, output=None, error=error,
            streamed_bytes=None)))
    reg = metrics.registry
    for reason in ("client_disconnect", "shutdown"):
        assert reg.get_sample_value("ttsframe_cancellations_total",
                                    {"backend": "tone", "reason": reason}) == 1, reason
    assert reg.get_sample_value("ttsframe_cancellations_total",
                                {"backend": "tone", "reason": "request"}) is None


def test_each_app_counts_alone(tmp_path):
    with TestClient(app=create_app(services_in(tmp_path / "a"))) as a, \
            TestClient(app=create_app(services_in(tmp_path / "b"))) as b:
        assert a.post("/generate", json=SAY).status_code == 200
        assert value(scrape(a), "ttsframe_speech_requests_total") == 1
        assert value(scrape(b), "ttsframe_speech_requests_total") == 0
        assert value(scrape(b), "ttsframe_http_requests_total", path="/generate") == 0


def test_metrics_keys_and_settings(tmp_path):
    keys = {"api_keys": ["user-key"], "admin_keys": ["admin-key"],
            "metrics_keys": ["scrape-key"]}
    with TestClient(app=create_app(make_services(tmp_path, security=keys))) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer user-key"}
                     ).status_code == 403
        for key in ("admin-key", "scrape-key"):
            assert c.get("/metrics", headers={"Authorization": f"Bearer {key}"}
                         ).status_code == 200
        # A metrics key opens nothing else.
        r = c.post("/generate", json=SAY, headers={"Authorization": "Bearer scrape-key"})
        assert r.status_code == 401
    moved = services_in(tmp_path / "m", metrics={"path": "/internal/prom"})
    with TestClient(app=create_app(moved)) as c:
        assert c.get("/metrics").status_code == 404
        assert "ttsframe_jobs" in c.get("/internal/prom").text
    off = services_in(tmp_path / "off", metrics={"enabled": False})
    with TestClient(app=create_app(off)) as c:
        assert c.get("/metrics").status_code == 404
        assert c.post("/generate", json=SAY).status_code == 200


def test_metrics_are_not_in_the_api_schema(client):
    assert "/metrics" not in client.get("/schema/openapi.json").json()["paths"]


def test_openmetrics_when_asked(client):
    r = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


class CachingTone:
    """A plugin whose backend reports a prompt cache, as Dia does in ``describe()``."""

    class Backend(FakeBackend):
        name = "caching"
        lookups: ClassVar[list[bool]] = []

        def generate(self, tasks):
            for task in tasks:
                self.lookups.append(task.voice_id in {t for t in self.seen})
                self.seen.add(task.voice_id)
            return super().generate(tasks)

        def describe(self):
            hits = sum(self.lookups)
            return {"prompt_cache": {"entries": len(self.seen), "hits": hits,
                                     "misses": len(self.lookups) - hits}}

    @hookimpl
    def register_backends(self, register):
        def build(ctx):
            backend = CachingTone.Backend(TONE)
            backend.seen, backend.lookups = set(), []
            return backend
        register("caching", build)


def test_prompt_cache_hits_and_misses_come_from_the_backend(tmp_path):
    services = make_services(tmp_path, extra_plugins=(("caching-plugin", CachingTone()),),
                             generation={"default_backend": "caching"})
    with TestClient(app=create_app(services)) as client:
        for voice in ("alloy", "alloy", "echo"):
            assert client.post("/generate", json={**SAY, "voice_id": voice}
                               ).status_code == 200
        m = scrape(client)
        assert value(m, "ttsframe_prompt_cache_hits_total", backend="caching") == 1
        assert value(m, "ttsframe_prompt_cache_misses_total", backend="caching") == 2
        assert {k for s in m["ttsframe_prompt_cache_hits_total"]["samples"]
                for k in s.labels} == documented()["ttsframe_prompt_cache_hits_total"][1]
