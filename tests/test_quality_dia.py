"""The quality stage on the tiny Dia model: a checkpoint that never ends speech gives
runaway takes; they are caught, retried with the documented seeds and reported, in whole
replies, streams and jobs alike."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from litestar.testing import TestClient

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.conftest import make_services
from ttsframe.core.speech.quality import retry_seed
from ttsframe.http.app import create_app
from ttsframe.plugins.dia.tiny import write_tiny_checkpoint
from ttsframe.testing.waiting import eventually

pytest_plugins = ["tests.dia_fixtures"]

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
    admit = backend._admit

    def recording(loop, task, *args):  # each task as it joins the decoding loop
        seeds.append(task.params.seed)
        return admit(loop, task, *args)

    backend._admit = recording
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


def test_a_streamed_row_outrunning_the_automatic_budget_goes_on_as_the_buffered_one(
        tiny_backend, monkeypatch):
    """The automatic max_tokens that runs out is generated again with twice the steps,
    streamed or not: the stream goes on past the audio it already sent (never sent
    twice) and ends where the buffered take ends; only frames near the first budget's
    forced end may differ."""
    from ttsframe.core.interfaces.speech_types import GenerationParams
    from ttsframe.core.interfaces.synthesis import SynthesisTask
    from ttsframe.plugins.dia import planning

    for name, value in {"AUTO_BYTES_PER_SECOND": 1e9, "AUTO_MARGIN_S": 0.0,
                        "AUTO_BUCKET": 32, "AUTO_MIN_TOKENS": 32}.items():
        monkeypatch.setattr(planning, name, value)
    text = "[S1] Auto budget."
    (whole,) = tiny_backend.generate([SynthesisTask(
        task_id="whole", text=text, params=GenerationParams(greedy=True))])
    pieces: list = []
    (streamed,) = tiny_backend.generate([SynthesisTask(
        task_id="streamed", text=text, params=GenerationParams(greedy=True),
        on_audio=pieces.append)])
    assert any("ran out before the speech ended, so it was generated again" in n
               for n in streamed.notes)
    assert not streamed.info["budget_limited"]
    sent = np.concatenate(pieces)
    assert sent.size == streamed.samples.size == whole.samples.size
    # It ends as the take ends; the frames around each budget's forced end may differ.
    np.testing.assert_allclose(sent[-4 * 512:], whole.samples[-4 * 512:], atol=1e-4)
    assert np.mean(np.abs(sent - whole.samples) <= 1e-4) > 0.5
