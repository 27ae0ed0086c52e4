"""The quality stage: a bad take is caught, generated again with the documented seed and
the better take delivered; streamed and buffered replies agree on their audio or say why
not; what happened is reported in X-Quality, the SSE done event, warnings and jobs."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from litestar.testing import TestClient

from tests.audio_checks import decode
from tests.conftest import make_services
from ttsframe import CheckResult, hookimpl
from ttsframe.core.config.settings import QualityConfig
from ttsframe.core.speech.quality import BuiltinChecks, Take, retry_seed
from ttsframe.core.speech.quality.checks import audio_loop_seconds
from ttsframe.http.app import create_app
from ttsframe.testing.fake_backend import (
    FLAKY,
    bad_take,
    beeps,
    fake_backend_plugin,
    speech_like,
    tone,
)
from ttsframe.testing.waiting import eventually

TEXT = "[S1] The quick brown fox jumps over the lazy dog by the river bank."
RATE = FLAKY.sample_rate


def flaky_client(tmp_path, quality: dict | None = None, **knobs):
    services = make_services(
        tmp_path, extra_plugins=(("flaky-plugin", fake_backend_plugin("flaky", FLAKY,
                                                                      **knobs)),),
        generation={"default_backend": "flaky"}, quality=quality or {})
    return services, TestClient(app=create_app(services))


def backend_of(services):
    return services.scheduler.workers["flaky"].backend


def sse_events(body: bytes) -> list[dict]:
    return [json.loads(line[len(b"data: "):]) for line in body.split(b"\n\n")
            if line.startswith(b"data: ")]


@pytest.mark.parametrize("kind,check", [("silence", "silence"), ("loop", "loop"),
                                        ("racing", "rate"), ("runaway", "budget")])
def test_a_bad_first_take_is_generated_again_with_the_documented_seed(tmp_path, kind,
                                                                      check):
    services, client = flaky_client(tmp_path, first_take=kind)
    with client:
        r = client.post("/generate", json={"text": TEXT, "seed": 7,
                                           "response_format": "wav"})
        assert r.status_code == 200, r.text
        assert r.headers["x-quality"].startswith("attempts=2; retried=1; failed=0; reasons=")
        assert check in r.headers["x-quality"].split("reasons=")[1].split(",")
        backend = backend_of(services)
        first, retry = backend.tasks
        assert (first.attempt, first.params.seed) == (0, 7)
        assert (retry.attempt, retry.params.seed) == (1, retry_seed(7, 1))
        assert retry_seed(7, 1) == 7 + 1_000_003
        # The second take is what the reply holds.
        audio, _, _ = decode(r.content, "wav")
        expected = backend.audio_for(retry)
        assert audio.size == expected.size
        assert np.allclose(audio, expected, atol=1e-3)
        assert "was generated again (seeds 1000010); attempt 2 was kept" in \
            r.headers["x-ttsframe-warnings"]


def test_streamed_and_buffered_replies_agree_after_a_retry(tmp_path):
    """The stream holds a chunk's audio until its take is settled, so it sends the
    retried take, as the buffered reply does; the SSE done event says what happened."""
    _services, client = flaky_client(tmp_path, first_take="silence")
    with client:
        body = {"input": TEXT, "seed": 11, "response_format": "pcm", "model": "flaky"}
        whole = client.post("/v1/audio/speech", json={**body, "stream": False})
        streamed = client.post("/v1/audio/speech", json={**body, "stream": True})
        sse = client.post("/v1/audio/speech", json={**body, "stream_format": "sse"})
        assert whole.status_code == streamed.status_code == sse.status_code == 200
        assert streamed.content == whole.content
        *deltas, done = sse_events(sse.content)
        assert b"".join(base64.b64decode(e["audio"]) for e in deltas) == whole.content
        assert done["quality"]["attempts"] == 2 and done["quality"]["retried"] == 1
        assert done["quality"]["reasons"] == ["rate", "silence"]
        assert whole.headers["x-quality"] == "attempts=2; retried=1; failed=0; " \
                                             "reasons=rate,silence"
        assert "x-quality" not in streamed.headers  # not known when the headers leave


def test_a_streamed_take_that_was_sent_is_reported_not_replaced(tmp_path):
    """A backend that streams sends a chunk's audio while generating it: a failed check
    after that cannot replace it, and the stream's end says so; the buffered reply of
    the same request retried it. They agree on the audio or the stream names why not."""
    _services, client = flaky_client(tmp_path, first_take="loop", streaming=True, steps=8)
    with client:
        body = {"input": TEXT, "seed": 3, "response_format": "pcm", "model": "flaky"}
        whole = client.post("/v1/audio/speech", json={**body, "stream": False})
        sse = client.post("/v1/audio/speech", json={**body, "stream_format": "sse"})
        *deltas, done = sse_events(sse.content)
        audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
        quality = done["quality"]
        if audio != whole.content:
            assert quality["failed"] == 1 and quality["reasons"] == ["loop"]
            assert any("already been streamed" in note for note in quality["notes"])
        else:
            assert quality["retried"] == 1 and quality["failed"] == 0


def test_every_take_failing_keeps_the_best_and_says_so(tmp_path):
    services, client = flaky_client(tmp_path, sound="silence", first_take=None)
    with client:
        r = client.post("/generate", json={"text": TEXT, "seed": 5})
        assert r.status_code == 200
        assert r.headers["x-quality"] == "attempts=3; retried=1; failed=1; " \
                                         "reasons=rate,silence"
        assert "kept despite a failed check" in r.headers["x-ttsframe-warnings"]
        assert [t.params.seed for t in backend_of(services).tasks] == [
            5, retry_seed(5, 1), retry_seed(5, 2)]


def test_quality_off_per_request_and_in_config(tmp_path):
    services, client = flaky_client(tmp_path, first_take="silence")
    with client:
        r = client.post("/generate", json={"text": TEXT, "seed": 5, "quality": False})
        assert r.headers["x-quality"] == "off"
        assert len(backend_of(services).tasks) == 1
    (tmp_path / "b").mkdir()
    services, client = flaky_client(tmp_path / "b", {"enabled": False}, first_take="silence")
    with client:
        r = client.post("/generate", json={"text": TEXT, "seed": 5})
        assert r.headers["x-quality"] == "off"
        r = client.post("/generate", json={"text": TEXT, "seed": 5, "quality": True})
        assert r.headers["x-quality"].startswith("attempts=2")


def test_a_check_turned_off_is_not_run(tmp_path):
    _services, client = flaky_client(tmp_path, {"check_loop": False}, first_take="loop")
    with client:
        r = client.post("/generate", json={"text": TEXT, "seed": 5})
        assert r.headers["x-quality"] == "attempts=1; retried=0; failed=0"


def test_greedy_takes_are_reported_not_retried(tmp_path):
    _services, client = flaky_client(tmp_path, first_take="silence")
    with client:
        r = client.post("/generate", json={"text": TEXT, "greedy": True})
        assert r.headers["x-quality"].startswith("attempts=1; retried=0; failed=1")
        assert "greedy decoding would give the same take again" in \
            r.headers["x-ttsframe-warnings"]


def test_long_text_retries_only_the_failed_chunk_and_keeps_order(tmp_path):
    services, client = flaky_client(tmp_path, preferred_text_bytes=80, first_take="silence")
    text = " ".join([TEXT] * 3)
    with client:
        r = client.post("/generate", json={"text": text, "seed": 9,
                                           "chunk_continuity": False})
        assert r.status_code == 200
        chunks = int(r.headers["x-text-chunks"])
        assert chunks >= 2
        assert r.headers["x-quality"] == (f"attempts={2 * chunks}; retried={chunks}; "
                                          "failed=0; reasons=rate,silence")
        tasks = backend_of(services).tasks
        assert sorted(t.attempt for t in tasks) == [0] * chunks + [1] * chunks


def test_a_job_records_the_retries_and_replays_the_same_seeds(tmp_path):
    services, client = flaky_client(tmp_path, first_take="runaway")
    with client:
        r = client.post("/generate?async_mode=true", json={"text": TEXT, "seed": 21})
        assert r.status_code == 202, r.text
        job = r.json()["job_id"]
        info = eventually(lambda: (lambda j: j if j["status"] == "completed" else None)(
            client.get(f"/jobs/{job}").json()), timeout=30, message="job completed")
        assert any("was generated again" in w for w in info["warnings"]), info
        entry = eventually(lambda: next((e for e in client.get("/logs").json()["logs"]
                                         if e["job_id"] == job), None), timeout=30)
        assert any("was generated again" in w for w in entry["warnings"])
        seeds = [t.params.seed for t in backend_of(services).tasks]
        assert seeds == [21, retry_seed(21, 1)]


# -- the checks themselves -----------------------------------------------------------

def checks(**bounds) -> BuiltinChecks:
    return BuiltinChecks(lambda: QualityConfig(**bounds))


def verdicts(take: Take, **bounds) -> dict[str, str]:
    return {r.check: r.reason for c in checks(**bounds).checks()
            if (r := c(take)) is not None and not r.passed}


def test_good_fake_sounds_pass_every_check():
    n = int(len(TEXT) * 0.06 * RATE)
    for audio in (beeps(TEXT, n, RATE), tone(n, 300, RATE), speech_like(TEXT, n, RATE)):
        assert verdicts(Take(TEXT, audio, RATE, "x", speech_rate=(0.03, 0.2))) == {}


def test_each_bad_take_names_its_check_and_a_score():
    n = int(len(TEXT) * 0.06 * RATE)
    take = Take(TEXT, bad_take("loop", TEXT, n, RATE, 0), RATE, "x")
    assert set(verdicts(take)) == {"loop"}
    assert audio_loop_seconds(take.samples, RATE, -50.0, 3.0) > 3.0
    clipped = np.clip(beeps(TEXT, n, RATE) * 10, -1, 1)
    assert "clipping" in verdicts(Take(TEXT, clipped, RATE, "x"))
    gap = np.concatenate([beeps(TEXT, n, RATE), np.zeros(3 * RATE, np.float32),
                          beeps(TEXT, n, RATE)])
    assert verdicts(Take(TEXT, gap, RATE, "x"))["silence"].endswith("inside (at most 2.5 s)")
    late = np.concatenate([np.zeros(2 * RATE, np.float32), beeps(TEXT, n, RATE)])
    assert "at the start" in verdicts(Take(TEXT, late, RATE, "x"))["silence"]
    slow = Take(TEXT, np.resize(beeps(TEXT, n, RATE), 20 * RATE), RATE, "x",
                speech_rate=(0.03, 0.1))
    assert "too slow" in verdicts(slow)["rate"]
    assert verdicts(Take(TEXT, beeps(TEXT, n, RATE), RATE, "x",
                         info={"budget_limited": True}))["budget"]
    # A short text is not rate-checked: too few characters to judge.
    assert verdicts(Take("[S1] Hi.", np.zeros(10, np.float32) + 0.1, RATE, "x",
                         speech_rate=(0.03, 0.2))).get("rate") is None


class ShortTakes:
    """A plugin whose check fails any take under a second, as a speech-recognition check
    would fail a take whose words do not match its text."""

    def __init__(self) -> None:
        self.seen: list[Take] = []

    @hookimpl
    def register_quality_checks(self, register):
        register("short", lambda ctx: self.check)

    def check(self, take: Take) -> CheckResult:
        self.seen.append(take)
        passed = take.seconds >= 1.0
        return CheckResult("words", passed, 1.0 if passed else 0.2,
                           "" if passed else "the words do not match the text")


def test_a_plugins_check_runs_on_every_take_and_its_failure_is_retried(tmp_path):
    plugin = ShortTakes()
    services = make_services(
        tmp_path, extra_plugins=(("flaky-plugin", fake_backend_plugin("flaky", FLAKY,
                                                                      first_take=None)),
                                 ("words-plugin", plugin)),
        generation={"default_backend": "flaky"})
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={"text": "[S1] Hi.", "seed": 5})
        assert r.headers["x-quality"] == "attempts=3; retried=1; failed=1; reasons=words"
        take = plugin.seen[0]
        assert (take.text, take.backend, take.voice_id, take.sample_rate) == (
            "[S1] Hi.", "flaky", "alloy", RATE)
        assert take.samples.size


def test_put_config_changes_the_bounds_and_the_metrics_count_checks_and_retries(tmp_path):
    _services, client = flaky_client(tmp_path, first_take="silence")
    with client:
        r = client.put("/config", json={"quality_max_retries": 0,
                                        "quality_max_inner_silence_s": 4.0})
        assert r.status_code == 200, r.text
        assert r.json()["quality_max_retries"] == 0
        assert "max_retries = 0" in (tmp_path / "ttsframe.toml").read_text()
        r = client.post("/generate", json={"text": TEXT, "seed": 5})
        assert r.headers["x-quality"] == "attempts=1; retried=0; failed=1; " \
                                         "reasons=rate,silence"
        assert "retries are off (quality.max_retries = 0)" in r.headers["x-ttsframe-warnings"]
        r = client.put("/config", json={"quality_max_retries": 11})
        assert r.status_code == 400 and "quality_max_retries" in r.json()["detail"]
        client.put("/config", json={"quality_max_retries": 2})
        client.post("/generate", json={"text": TEXT, "seed": 6})
        metrics = client.get("/metrics").text
        assert 'ttsframe_quality_retries_total{backend="flaky"} 1.0' in metrics
        assert 'ttsframe_quality_checks_failed_total{backend="flaky",check="silence"} 2.0' \
            in metrics


def test_a_runaway_being_streamed_is_cut_at_its_slowest_rate_and_reported(tmp_path):
    """A take streamed while it is generated cannot be retried; one that runs on past
    what the slowest speaking rate allows for its text is not played to its end: the
    stream stops sending it there and says so, where the whole reply retried it."""
    _services, client = flaky_client(tmp_path, first_take="runaway", streaming=True)
    with client:
        body = {"input": TEXT, "seed": 3, "response_format": "pcm", "model": "flaky"}
        whole = client.post("/v1/audio/speech", json={**body, "stream": False})
        assert whole.headers["x-quality"].startswith("attempts=2; retried=1; failed=0")
        sse = client.post("/v1/audio/speech", json={**body, "stream_format": "sse"})
        *deltas, done = sse_events(sse.content)
        audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
        chars = len("The quick brown fox jumps over the lazy dog by the river bank.")
        limit_s = chars * 0.2 + 2.0  # FLAKY's slowest rate, [quality] rate_slack_s
        rate = int(sse.headers["x-sample-rate"])  # OpenAI's pcm: 24 kHz
        assert len(audio) / 2 / rate == pytest.approx(limit_s, abs=0.01)
        assert len(whole.content) < len(audio)
        notes = done["quality"]["notes"]
        assert any(f"was cut at {limit_s:.1f} s while it streamed" in n for n in notes)
        assert any("already been streamed" in n for n in notes)
        log = eventually(lambda: next((e for e in client.get("/logs").json()["logs"]
                                       if any("while it streamed" in w
                                              for w in e["warnings"])), None), timeout=10)
        assert log["request_id"] == sse.headers["x-request-id"]


def test_cancelling_a_job_stops_its_retry(tmp_path):
    services, client = flaky_client(tmp_path, first_take="silence", steps=40,
                                    step_delay_s=0.05)
    backend = backend_of(services)
    with client:
        r = client.post("/generate?async_mode=true", json={"text": TEXT, "seed": 4})
        job = r.json()["job_id"]
        eventually(lambda: len(backend.tasks) == 2, timeout=30,
                   message="the retry started")
        assert client.delete(f"/jobs/{job}").status_code == 200
        info = eventually(lambda: (lambda j: j if j["status"] == "cancelled" else None)(
            client.get(f"/jobs/{job}").json()), timeout=30, message="job cancelled")
        assert info["status"] == "cancelled"
        retry = backend.tasks[1]
        assert retry.attempt == 1 and retry.cancel.cancelled
        assert len(backend.tasks) == 2  # no third take


def test_configured_rates_and_a_voices_calibration_set_the_rate_bounds(tmp_path):
    from ttsframe.core.config.settings import Settings
    from ttsframe.core.interfaces.speech_types import GenerationParams
    from ttsframe.core.interfaces.synthesis import SynthesisResult, SynthesisTask
    from ttsframe.core.speech.quality import QualityStage
    from ttsframe.testing.fake_backend import FakeBackend

    settings = Settings()
    backend = FakeBackend(FLAKY, name="flaky")
    stage = QualityStage(settings, {"flaky": backend})
    assert stage.speech_rate("flaky", None, "alloy") == (0.03, 0.2)  # the backend's own
    settings.quality.speech_rates = {"flaky": [0.01, 0.5], "flaky:de": [0.02, 0.4]}
    assert stage.speech_rate("flaky", "en", "alloy") == (0.01, 0.5)
    assert stage.speech_rate("flaky", "de-AT", "alloy") == (0.02, 0.4)
    # Ten accepted takes of a voice at 0.1 s per character narrow its bounds around it.
    task = SynthesisTask(task_id="t", text=TEXT, params=GenerationParams(seed=1),
                         voice_id="alloy")
    n = int(len(TEXT) * 0.06 * RATE)
    for _ in range(10):
        stage._accepted("flaky", task, SynthesisResult(samples=beeps(TEXT, n, RATE),
                                                       sample_rate=RATE))
    fastest, slowest = stage.speech_rate("flaky", "en", "alloy")
    assert 0.02 < fastest < 0.05 and 0.05 < slowest < 0.15
    assert stage.speech_rate("flaky", "en", "other") == (0.01, 0.5)


def test_dia_loops_are_found_in_the_codes():
    from ttsframe.plugins.dia.loops import loop_seconds

    fps = 44100 / 512
    rng = np.random.default_rng(0)
    speech = rng.integers(0, 1024, (1700, 9))
    assert loop_seconds(speech, fps) == 0.0
    phrase = rng.integers(0, 1024, (100, 9))  # 1.2 s, five times over at the end
    looped = np.concatenate([speech[:800], np.tile(phrase, (5, 1))])
    noisy = looped.copy()
    noisy[::7, 3] = 0  # sampling changes a few codes between repeats
    assert loop_seconds(looped, fps) == pytest.approx(500 / fps, abs=0.1)
    assert loop_seconds(noisy, fps) > 4.0
