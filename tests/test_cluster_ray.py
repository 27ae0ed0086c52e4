"""The server with ``[cluster] engine = "ray"`` on a real two-node Ray cluster, serving
the tiny Dia model from two replicas (one per node, one CPU each).

Ray binds the machine's external address unless the only interface is loopback, so
these tests run only inside a private network namespace with nothing but ``lo``:
``scripts/test-cluster.sh`` runs them that way, and the main run skips them. One
cluster and one server serve the whole module.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.dia_fixtures import tiny_model_dir  # noqa: F401  (fixture)
from tests.server import ServerProcess
from tests.voice_fixtures import wav_bytes

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

# The interfaces of this process's network namespace (/sys/class/net shows the host's).
only_loopback = [name for _, name in socket.if_nameindex()] == ["lo"]
pytestmark = pytest.mark.skipif(
    not only_loopback, reason="Ray tests run in a network namespace with only loopback "
                              "(scripts/test-cluster.sh)")


def config(path: Path, model: Path, address: str, *, replicas: int = 2) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    cfg = path / "ttsframe.toml"
    cfg.write_text(f"""
[generation]
batch_wait_ms = 50

[cluster]
engine = "ray"
address = "{address}"
replicas = {replicas}
cpus_per_replica = 1

[plugins.dia]
model = "{model}"
device = "cpu"
cpu_threads = 1
""")
    return cfg


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def server(cluster, tiny_model_dir, tmp_path_factory):  # noqa: F811
    cfg = config(tmp_path_factory.mktemp("ray-server"), tiny_model_dir, cluster.address)
    srv = ServerProcess(cfg, ready_timeout=240)
    srv.start()
    wait_replicas(srv.client, "ready", "ready")
    yield srv
    srv.stop()


def replicas(client: httpx.Client) -> list[dict]:
    return client.get("/health").json()["backends"]["dia"]["replicas"]


def wait_replicas(client: httpx.Client, *states: str, timeout: float = 180.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        now = replicas(client)
        if [r["state"] for r in now] == list(states):
            return now
        assert time.monotonic() < deadline, f"replicas never became {states}: {now}"
        time.sleep(0.2)


def thread_niceness(pid: int) -> set[int]:
    """The nice values of a process's threads (the 19th field of each thread's stat)."""
    values = set()
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            values.add(int(stat.read_text().rsplit(")", 1)[1].split()[16]))
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
            continue
    return values


def submit(client: httpx.Client, **body) -> str:
    r = client.post("/generate?async_mode=true", json={"voice_id": "alloy", **body})
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def wait_job(client: httpx.Client, job_id: str, *statuses: str, progress: bool = False,
             timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in statuses and (not progress or job["progress"]):
            return job
        assert time.monotonic() < deadline, f"job never became {statuses}: {job}"
        time.sleep(0.05)


def generate(client: httpx.Client, **body) -> httpx.Response:
    r = client.post("/generate", json={"voice_id": "alloy", "response_format": "wav", **body})
    assert r.status_code == 200, r.text
    return r


def test_health_shows_two_replicas_on_two_nodes(server):
    health = server.client.get("/health").json()
    assert health["status"] == "healthy"
    dia = health["backends"]["dia"]
    assert dia["info"]["device"] == "cpu"
    reps = dia["replicas"]
    assert [r["state"] for r in reps] == ["ready", "ready"]
    assert len({r["node_id"] for r in reps}) == 2  # one replica per node
    assert all(r["pid"] and r["pid"] != server.proc.pid for r in reps)
    # Replicas run at the server's priority, not at the nice 15 Ray gives its workers.
    for r in reps:
        assert thread_niceness(r["pid"]) == {os.getpriority(os.PRIO_PROCESS, server.proc.pid)}
    assert health["queue"]["total_workers"] == 2 * 4  # generation.workers per replica


def test_requests_spread_over_replicas_and_seeds_hold(server):
    client = server.client
    body = {"text": "[S1] Spread over the cluster.", "max_tokens": 120, "seed": 11,
            "temperature": 1.2}
    # Seeded requests batch together, up to generation.workers (4) a batch: 8 jobs make at
    # least two batches, and a batch goes to whichever replica is idle.
    jobs = [submit(client, **body) for _ in range(8)]
    done = [wait_job(client, j, "completed") for j in jobs]
    assert {job["worker"] for job in done} == {"dia-0", "dia-1"}
    # The per-call metrics name the replica that ran each batch.
    counted = {line.split('replica="', 1)[1].split('"', 1)[0]
               for line in client.get("/metrics").text.splitlines()
               if line.startswith("ttsframe_batch_size_count{")}
    assert {"dia-0", "dia-1"} <= counted
    results = [client.get(f"/jobs/{j}/result").content for j in jobs]
    assert len(set(results)) == 1  # same seed, same audio, whichever replica ran it
    sync = generate(client, **body)
    assert sync.content == results[0]
    audio, rate = sf.read(io.BytesIO(sync.content))
    assert rate == 44100 and len(audio) == int(sync.headers["x-generated-tokens"]) * 512
    # Dia's max_tokens (an option of the backend) reached the replica: the tiny model
    # never ends speech itself, so the budget ends it.
    assert int(sync.headers["x-generated-tokens"]) <= 120


def test_cloning_ships_the_prompt_once_per_replica(server):
    client = server.client
    rng = np.random.default_rng(5)
    wav = wav_bytes((rng.standard_normal(44100) * 0.1).clip(-1, 1).astype(np.float32))
    r = client.post("/audio_prompts/upload", data={"prompt_id": "ray_sample"},
                    files={"audio_file": ("sample.wav", wav, "audio/wav")})
    assert r.status_code == 201, r.text
    r = client.post("/voice_mappings", json={
        "voice_id": "ray_cloned", "primary_speaker": "S1", "audio_prompt": "ray_sample",
        "audio_prompt_transcript": "[S1] This is my voice."})
    assert r.status_code == 201, r.text
    body = {"text": "And this is new speech.", "voice_id": "ray_cloned", "max_tokens": 200,
            "seed": 5}
    sent_before = sum(r["prompts_sent"] for r in replicas(client))
    first = generate(client, **body)
    second = generate(client, **body)  # round robin: the other replica
    third = generate(client, **body)  # the first again, the prompt cached there
    fourth = generate(client, **body)
    assert first.content == second.content == third.content == fourth.content
    now = replicas(client)
    assert sum(r["prompts_sent"] for r in now) - sent_before == 2  # once per replica
    # The prompt conditions the audio: the same text without it is different speech.
    plain = generate(client, **{**body, "voice_id": "alloy"})
    assert plain.content != first.content


def test_streaming_through_ray(server):
    client = server.client
    body = {"text": "[S1] Streaming over the cluster.", "max_tokens": 400, "seed": 3,
            "voice_id": "alloy", "response_format": "pcm"}
    chunks = []
    started = time.monotonic()
    first_at = None
    with client.stream("POST", "/generate", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            if chunk and first_at is None:
                first_at = time.monotonic() - started
            chunks.append(chunk)
    total = time.monotonic() - started
    streamed = b"".join(chunks)
    whole = generate(client, **body).content
    a = np.frombuffer(streamed, np.int16).astype(np.float64)
    b = np.frombuffer(whole, np.int16).astype(np.float64)
    # The stream is the audio the request returns (decoded in windows, so not bit-exact).
    assert len(a) == len(b) > 0
    assert np.corrcoef(a, b)[0, 1] > 0.99
    assert first_at is not None and first_at < total


def test_cancel_stops_remote_generation(server):
    client = server.client
    job = submit(client, text="[S1] A long one to cancel.", max_tokens=3000, seed=1)
    running = wait_job(client, job, "processing", progress=True)
    busy = [r for r in replicas(client) if r["busy"]]
    assert len(busy) == 1 and f"dia-{busy[0]['replica']}" == running["worker"]
    r = client.delete(f"/jobs/{job}")
    assert r.status_code == 200, r.text
    final = wait_job(client, job, "cancelled")
    deadline = time.monotonic() + 30
    while any(r["busy"] for r in replicas(client)):  # the replica stopped generating
        assert time.monotonic() < deadline, replicas(client)
        time.sleep(0.05)
    assert (final["progress"] or 0) < 1


def test_a_request_joins_a_replicas_running_loop(server):
    """Each replica runs Dia's decoding loop: with both replicas generating long
    requests, a short one joins one of those loops (it ran beside another row) instead
    of waiting for a replica to be free."""
    client = server.client
    longs = [submit(client, text=f"[S1] Long number {k}.", max_tokens=3000, seed=k)
             for k in range(2)]
    running = [wait_job(client, j, "processing", progress=True) for j in longs]
    assert {job["worker"] for job in running} == {"dia-0", "dia-1"}  # the most room
    sent = time.time()
    short = generate(client, text="[S2] Short.", max_tokens=100, seed=5)
    assert short.headers["x-batch-size"] == "2"  # it shared a replica's loop
    # It was sent while both long ones ran (the tiny checkpoint may end them early, so
    # they may have finished since).
    still = []
    for j in longs:
        job = client.get(f"/jobs/{j}").json()
        if job["status"] == "processing":
            still.append(j)
        else:
            assert job["status"] == "completed", job
            assert datetime.fromisoformat(job["completed_at"]).timestamp() >= sent, job
    for job in still:
        client.delete(f"/jobs/{job}")
    for job in still:
        wait_job(client, job, "cancelled", "completed")


def test_replica_killed_mid_batch(server):
    client = server.client
    body = {"text": "[S1] Survive a lost replica.", "max_tokens": 1500, "seed": 21,
            "temperature": 1.1}
    job = submit(client, **body)
    answers: list[httpx.Response] = []
    sync = threading.Thread(target=lambda: answers.append(
        httpx.post(f"{server.url}/generate", json={"voice_id": "alloy", **body}, timeout=300)))
    sync.start()
    running = wait_job(client, job, "processing", progress=True)
    victim = next(r for r in replicas(client) if f"dia-{r['replica']}" == running["worker"])
    os.kill(victim["pid"], signal.SIGKILL)

    wait_job(client, job, "completed", timeout=240)
    sync.join(240)
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    # The replica comes back under a new process and rejoins.
    back = wait_replicas(client, "ready", "ready")
    again = next(r for r in back if r["replica"] == victim["replica"])
    assert again["pid"] != victim["pid"] and again["restarts"] == 1
    # Every answer is the audio its seed gives, not something mixed up by the loss.
    reference = generate(client, **body).content
    assert answers[0].content == reference
    assert client.get(f"/jobs/{job}/result").content == reference


def test_stream_whose_replica_dies_ends_with_an_error(server):
    client = server.client
    body = {"text": "[S1] A stream that loses its replica.", "max_tokens": 2000,
            "stream": True, "voice_id": "alloy", "response_format": "pcm"}
    with httpx.Client(base_url=server.url, timeout=120) as c, \
            c.stream("POST", "/generate", json=body) as r:
        assert r.status_code == 200
        pieces = r.iter_raw()
        assert next(pieces)  # audio has been sent
        victim = next(x for x in replicas(client) if x["busy"])
        os.kill(victim["pid"], signal.SIGKILL)
        with pytest.raises(httpx.RemoteProtocolError):  # no clean end: the client knows
            for _ in pieces:
                pass
    logs = client.get("/logs").json()["logs"]
    lost = next(entry for entry in logs if entry["status"] == "failed")
    assert "after sending part of the audio" in lost["error"]
    wait_replicas(client, "ready", "ready")  # it rejoins


def test_unreachable_cluster_is_a_clear_503(tmp_path, tiny_model_dir):  # noqa: F811
    cfg = config(tmp_path, tiny_model_dir, "127.0.0.1:1", replicas=1)
    with ServerProcess(cfg, wait_for="failed", ready_timeout=180) as srv:
        health = srv.client.get("/health").json()
        assert health["status"] == "unhealthy"
        error = health["backends"]["dia"]["error"]
        assert "cannot connect to the Ray cluster at '127.0.0.1:1'" in error
        r = srv.client.post("/generate", json={"text": "[S1] hi"})
        assert r.status_code == 503
        assert "cluster.address" in r.json()["detail"]
        assert srv.client.get("/voices").status_code == 200  # the rest of the API is up
