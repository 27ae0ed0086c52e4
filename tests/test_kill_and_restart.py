"""SIGKILL in the middle of uploads, voice writes and job submissions on a real server:
after a restart every acknowledged prompt, voice and job is there, intact, and whatever
was in flight is either absent or whole (never half a WAV, never a torn voice file)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from tests.job_helpers import tone_server, wait_for
from tests.voice_fixtures import sine_wav
from ttsframe.testing.waiting import eventually

CONFIG = """\
[generation]
default_backend = "tone"
workers = 2
batch_wait_ms = 0

[plugins.tone]
step_delay_s = 0.01
steps = 5
"""


class Load:
    """Three clients writing as fast as they can; each remembers what the server
    acknowledged and what was still in flight when the connection died."""

    def __init__(self, url: str, round_: int) -> None:
        self.url, self.round = url, round_
        self.prompts: dict[str, float] = {}  # acknowledged: prompt id -> seconds sent
        self.voices: dict[str, dict] = {}  # acknowledged: voice id -> body sent
        self.jobs: list[str] = []  # accepted job ids
        self.in_flight: dict[str, object] = {}
        self.errors: list[str] = []  # replies other than the expected ones
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=fn) for fn in
                        (self._upload, self._voices, self._jobs)]

    def _loop(self, step) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            n = 0
            while not self.stop.is_set():
                try:
                    step(c, n)
                except httpx.HTTPError:
                    return  # the server is gone
                except AssertionError as exc:
                    self.errors.append(str(exc))
                    return
                n += 1

    def _upload(self) -> None:
        def step(c: httpx.Client, n: int) -> None:
            prompt_id, seconds = f"p{self.round}_{n}", 0.6 + (n % 7) * 0.3
            self.in_flight[prompt_id] = seconds
            r = c.post("/audio_prompts/upload", data={"prompt_id": prompt_id},
                       files={"audio_file": ("s.wav", sine_wav(seconds, 22050), "audio/wav")})
            assert r.status_code == 201, r.text
            self.prompts[prompt_id] = seconds
        self._loop(step)

    def _voices(self) -> None:
        def step(c: httpx.Client, n: int) -> None:
            body = {"voice_id": f"v{self.round}_{n}", "style": f"style {n}", "seed": n}
            if self.prompts:
                body["audio_prompt"] = next(iter(self.prompts))
            self.in_flight[body["voice_id"]] = body
            r = c.post("/voice_mappings", json=body)
            assert r.status_code == 201, r.text
            self.voices[body["voice_id"]] = body
        self._loop(step)

    def _jobs(self) -> None:
        def step(c: httpx.Client, n: int) -> None:
            r = c.post("/generate?async_mode=true",
                       json={"text": f"[S1] Job {n} of round {self.round}."})
            if r.status_code == 429:  # the queue is full: as a client should, wait
                time.sleep(float(r.headers["retry-after"]) / 20)
                return
            assert r.status_code == 202, r.text
            self.jobs.append(r.json()["job_id"])
        self._loop(step)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def check_intact(c: httpx.Client, root: Path, loads: list[Load]) -> None:
    stored_voices = {f.stem: json.loads(f.read_text())  # never torn
                     for f in (root / "data" / "voices").glob("*.json")}
    voices = c.get("/voice_mappings").json()
    prompts = c.get("/audio_prompts").json()
    listed_jobs = {j["job_id"] for j in c.get("/jobs?limit=1000").json()["jobs"]}
    for load in loads:
        for voice_id, body in load.voices.items():
            stored = voices[voice_id]
            assert {k: stored[k] for k in body} == body, (voice_id, stored)
            assert stored_voices[voice_id]["style"] == stored["style"]
        for prompt_id, seconds in load.prompts.items():
            assert prompts[prompt_id]["duration"] == pytest.approx(seconds, abs=0.01)
        assert set(load.jobs) <= listed_jobs
    for entry in (root / "audio_prompts").iterdir():  # every WAV whole, in flight or not
        assert not entry.name.startswith("."), f"temporary file left: {entry.name}"
        info = sf.info(entry)
        assert info.samplerate == 44100 and info.frames > 0.5 * 44100
        assert entry.stem in prompts
    for voice_id in stored_voices:
        assert voice_id in voices


def test_acknowledged_writes_survive_sigkill(tmp_path):
    loads: list[Load] = []
    for round_, kill_after in enumerate((0.8, 1.5)):
        srv = tone_server(tmp_path, CONFIG)
        with srv:
            if loads:  # what the last run acknowledged survived its kill
                check_intact(srv.client, tmp_path, loads)
            with Load(srv.url, round_) as load:
                eventually(lambda: load.errors or (load.prompts and load.voices and load.jobs),
                           message="each client had a write acknowledged")
                time.sleep(kill_after)  # then the load runs on, and is cut in the middle
                srv.kill()  # SIGKILL: no shutdown code runs
            loads.append(load)
            assert not load.errors
            assert load.prompts and load.voices and load.jobs, "the load did not get going"

    with tone_server(tmp_path, CONFIG) as srv:
        c = srv.client
        check_intact(c, tmp_path, loads)
        # Every accepted job runs to completion after the restarts.
        for job in (j for load in loads for j in load.jobs):
            done = wait_for(c, job, "completed", timeout=60)
            assert c.get(done["result_url"]).status_code == 200
        total = {"prompts": sum(len(ld.prompts) for ld in loads),
                 "voices": sum(len(ld.voices) for ld in loads),
                 "jobs": sum(len(ld.jobs) for ld in loads)}
        print(f"\nacknowledged before the kills and intact after: {total}")
