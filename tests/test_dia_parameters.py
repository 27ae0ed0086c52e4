"""Dia's request parameters over HTTP on the tiny model: seeds, parameter names, fields
nobody reads, budget cuts, checks before queueing, one voice across chunks."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.conftest import make_services
from tests.dia_fixtures import tiny_model_dir  # noqa: F401  (fixture)
from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.speech_types import GenerationParams
from ttsframe.core.interfaces.synthesis import SynthesisTask
from ttsframe.core.voices.voice import AudioPrompt, Voice
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually


@pytest.fixture(scope="module")
def dia(tmp_path_factory, tiny_model_dir) -> Iterator[tuple[TestClient, object]]:  # noqa: F811
    root = tmp_path_factory.mktemp("dia-params")
    services = make_services(root, generation={"default_backend": "dia"},
                             plugins={"dia": {"model": str(tiny_model_dir), "device": "cpu",
                                              "cpu_threads": 1}})
    with TestClient(app=create_app(services), timeout=120) as client:
        eventually(lambda: client.get("/health").json()["status"] == "healthy", timeout=120,
                   interval=0.1, message=lambda: f"healthy: {client.get('/health').json()}")
        yield client, services


def warnings_of(reply) -> str:
    return reply.headers.get("x-ttsframe-warnings", "")


def last_log(client: TestClient) -> dict:
    return client.get("/logs", params={"limit": 1}).json()["logs"][0]


def test_every_reply_names_its_seed_and_the_seed_reproduces_the_take(dia, monkeypatch):
    client, services = dia
    # A voice store whose voices carry no seed: the server draws one and says which.
    get_voice = services.voices.get_voice
    monkeypatch.setattr(services.voices, "get_voice", lambda voice_id: msgspec.structs.replace(
        get_voice(voice_id), seed=None))
    body = {"text": "[S1] Which seed?", "voice_id": "alloy", "max_tokens": 100}
    first = client.post("/generate", json=body)
    assert first.status_code == 200, first.text
    seed = int(first.headers["x-seed"])
    assert last_log(client)["params"]["seed"] == seed
    again = client.post("/generate", json={**body, "seed": seed})
    assert again.headers["x-seed"] == str(seed) and again.content == first.content
    other = client.post("/generate", json=body)
    assert other.headers["x-seed"] != str(seed)  # a fresh draw each time
    monkeypatch.undo()

    # OpenAI route and a built-in voice (its fixed seed), then a job's record.
    openai = client.post("/v1/audio/speech", json={"input": "[S1] Hi.", "voice": "alloy",
                                                   "max_tokens": 100})
    alloy = client.get("/voice_mappings/alloy").json()
    assert openai.headers["x-seed"] == str(alloy["seed"])
    job = client.post("/generate", params={"async_mode": "true"}, json=body).json()
    assert isinstance(job["seed"], int)
    deadline = time.monotonic() + 120
    while (state := client.get(f"/jobs/{job['job_id']}").json())["status"] != "completed":
        assert state["status"] in ("pending", "processing") and time.monotonic() < deadline
        time.sleep(0.1)
    assert state["seed"] == job["seed"]
    result = client.get(f"/jobs/{job['job_id']}/result").content
    assert result == client.post("/generate", json={**body, "seed": job["seed"]}).content


def test_greedy_replies_carry_no_seed(dia):
    client, _ = dia
    reply = client.post("/generate", json={"text": "[S1] Greedy.", "voice_id": "alloy",
                                           "greedy": True, "max_tokens": 100})
    assert reply.status_code == 200 and "x-seed" not in reply.headers


def test_cfg_filter_top_k_is_top_k(dia):
    client, _ = dia
    body = {"text": "[S1] Filtered.", "voice_id": "alloy", "seed": 4, "max_tokens": 100}
    alias = client.post("/generate", json={**body, "cfg_filter_top_k": 7})
    assert last_log(client)["params"]["top_k"] == 7
    plain = client.post("/generate", json={**body, "top_k": 7})
    assert alias.status_code == plain.status_code == 200
    assert alias.content == plain.content and "cfg_filter_top_k" not in warnings_of(alias)
    openai = client.post("/v1/audio/speech", json={"input": "[S1] x", "voice": "alloy",
                                                   "cfg_filter_top_k": 9, "max_tokens": 100})
    assert openai.status_code == 200 and last_log(client)["params"]["top_k"] == 9
    clash = client.post("/generate", json={**body, "top_k": 5, "cfg_filter_top_k": 6})
    assert clash.status_code == 400 and "cfg_filter_top_k" in clash.json()["detail"]


def test_fields_nobody_reads_are_named_in_the_warnings(dia):
    client, _ = dia
    reply = client.post("/generate", json={"text": "[S1] Typo.", "voice_id": "alloy",
                                           "max_tokens": 100, "temprature": 0.5,
                                           "client_extra": {"a": 1}})
    assert reply.status_code == 200
    warnings = warnings_of(reply)
    assert "'temprature' is not a field this server reads" in warnings
    assert "did you mean 'temperature'?" in warnings
    assert "'client_extra'" in warnings
    assert any("temprature" in w for w in last_log(client)["warnings"])
    openai = client.post("/v1/audio/speech", json={"input": "[S1] x", "voice": "alloy",
                                                   "max_tokens": 100, "sped": 2})
    assert "did you mean 'speed'?" in warnings_of(openai)
    clean = client.post("/generate", json={"text": "[S1] Clean.", "voice_id": "alloy",
                                           "max_tokens": 100})
    assert "not a field" not in warnings_of(clean)


def test_limits_only_dia_knows_are_checked_before_queueing(dia):
    """A 40 s prompt leaves Dia's decoder no room: an async job is refused with 400 at
    once, never accepted (202) and failed later, and nothing is queued or stored."""
    client, services = dia
    samples = (np.random.default_rng(1).standard_normal(40 * 44100) * 0.1).astype(np.float32)
    services.voices.save_prompt("forty_seconds", samples, 44100)
    services.voices.create_voice(Voice(voice_id="long_prompt", audio_prompt="forty_seconds",
                                       audio_prompt_transcript="[S1] A long prompt."))
    jobs_before = client.get("/jobs").json()
    reply = client.post("/generate", params={"async_mode": "true"},
                        json={"text": "[S1] Too late.", "voice_id": "long_prompt"})
    assert reply.status_code == 400, reply.text
    assert "'forty_seconds' is 40.0 s long" in reply.json()["detail"]
    assert client.get("/jobs").json() == jobs_before
    assert client.get("/queue/stats").json()["queued_requests"] == 0
    # The same check, straight on the backend, for a task of any origin.
    backend = services.backends["dia"]
    task = SynthesisTask(task_id="t", text="[S1] x", params=GenerationParams(),
                         prompt=AudioPrompt("p", samples, 44100), prompt_transcript="[S1] y")
    with pytest.raises(InvalidInput, match="no room left for speech"):
        backend.check(task)
    with pytest.raises(InvalidInput, match="1024 bytes"):
        backend.check(msgspec.structs.replace(task, prompt=AudioPrompt("p", samples[:44100],
                                                                        44100),
                                              prompt_transcript="y" * 1020))
    backend.check(msgspec.structs.replace(task, prompt=None))  # fine


def test_the_decoding_loop_shows_in_queue_stats_health_and_metrics(dia):
    client, _ = dia
    before = client.get("/queue/stats").json()["loop_joins"]
    r = client.post("/generate", json={"text": "[S1] Counted.", "max_tokens": 100,
                                       "greedy": True})
    assert r.status_code == 200, r.text
    assert r.headers["x-batch-size"] == "1"
    stats = client.get("/queue/stats").json()
    assert stats["loop_joins"] == before + 1
    assert (stats["loop_rows"], stats["loop_waiting"]) == (0, 0)
    loop = client.get("/health").json()["backends"]["dia"]["info"]["loop"]
    assert loop["joins"] == stats["loop_joins"] and loop["rows"] == 0
    metrics = client.get("/metrics").text
    assert 'ttsframe_loop_rows{backend="dia",state="running"} 0.0' in metrics
    assert 'ttsframe_loop_joins_total{backend="dia",into="idle"}' in metrics
