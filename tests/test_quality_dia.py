"""The quality stage on the tiny Dia model: a checkpoint that never ends speech gives
runaway takes; they are caught, retried with the documented seeds and reported, in whole
replies, streams and jobs alike."""

from __future__ import annotations

import base64
import json

import pytest
from litestar.testing import TestClient

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.conftest import make_services
from ttsframe.core.quality import retry_seed
from ttsframe.http.app import create_app
from ttsframe.plugins.dia.tiny import write_tiny_checkpoint
from ttsframe.testing.waiting import eventually

BODY = {"text": "[S1] This take never ends on its own.", "seed": 5, "max_tokens": 100}


@pytest.fixture(scope="module")
def runaway(tmp_path_factory):
    model = write_tiny_checkpoint(tmp_path_factory.mktemp("dia") / "endless", eos_scale=0.0)
    services = make_services(tmp_path_factory.mktemp("quality-dia"),
                             generation={"default_backend": "dia"},
                             plugins={"dia": {"model": str(model), "device": "cpu",
                                              "cpu_threads": 1}})
    backend = services.backends["dia"]
    seeds: list[int] = []
    generate = backend.generate

    def recording(tasks):
        seeds.extend(task.params.seed for task in tasks)
        return generate(tasks)

    backend.generate = recording
    with TestClient(app=create_app(services), timeout=120) as client:
        eventually(lambda: client.get("/health").json()["backends"]["dia"]["state"]
                   != "loading", timeout=120, interval=0.1, message="Dia loaded")
        yield client, seeds


def test_runaway_takes_are_caught_retried_with_the_documented_seeds_and_reported(runaway):
    client, seeds = runaway
    seeds.clear()
    r = client.post("/generate", json=BODY)
    assert r.status_code == 200, r.text
    assert r.headers["x-quality"].startswith("attempts=3; retried=1; failed=1; reasons=")
    assert "budget" in r.headers["x-quality"]
    assert seeds == [5, retry_seed(5, 1), retry_seed(5, 2)]
    warnings = r.headers["x-ttsframe-warnings"]
    assert f"generated again (seeds {retry_seed(5, 1)}, {retry_seed(5, 2)})" in warnings
    assert "kept despite a failed check (budget: it ran out of its budget" in warnings


def test_a_streamed_runaway_is_reported_in_the_stream(runaway):
    """Dia streams the take while generating it: the stream cannot take it back, so its
    last event names the failed check and why it was kept; the whole reply of the same
    request retried it. They agree on the audio, or the stream says why not."""
    client, seeds = runaway
    seeds.clear()
    whole = client.post("/v1/audio/speech", json={**BODY, "input": BODY["text"],
                                                  "response_format": "pcm",
                                                  "stream": False})
    sse = client.post("/v1/audio/speech", json={**BODY, "input": BODY["text"],
                                                "response_format": "pcm",
                                                "stream_format": "sse"})
    events = [json.loads(line[6:]) for line in sse.content.split(b"\n\n")
              if line.startswith(b"data: ")]
    *deltas, done = events
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    quality = done["quality"]
    assert quality["failed"] == 1 and "budget" in quality["reasons"]
    if audio != whole.content:
        assert any("already been streamed" in note for note in quality["notes"])
    assert any("speech was cut" in note for note in quality["notes"])
