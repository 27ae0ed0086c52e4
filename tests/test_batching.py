"""Dynamic batching end to end: close arrivals (sync and async) share one generate call,
greedy batched audio equals unbatched audio, one failure stays with its request, and
requests that cannot share a batch are grouped apart."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import msgspec
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.dia_fixtures import dia_options, tiny_backend, tiny_model_dir  # noqa: E402, F401
from tests.server import ServerProcess  # noqa: E402
from ttsframe.core.errors import InvalidInput  # noqa: E402
from ttsframe.core.interfaces.speech_types import GenerationParams  # noqa: E402
from ttsframe.core.interfaces.synthesis import SynthesisTask  # noqa: E402
from ttsframe.core.speech.scheduler import BackendWorker, Scheduler  # noqa: E402
from ttsframe.core.voices.voice import AudioPrompt  # noqa: E402
from ttsframe.testing.fake_backend import STREAMING, FakeBackend  # noqa: E402
from ttsframe.testing.waiting import eventually, eventually_async  # noqa: E402


def run(coro):
    return asyncio.run(coro)


def pieces(**knobs) -> FakeBackend:
    """The kit's fake backend as ``pieces``: speech-like, streaming, batching by params."""
    return FakeBackend(msgspec.structs.replace(STREAMING, **knobs), name="pieces")


class Spy:
    """Wraps a backend's generate to record the tasks of every call."""

    def __init__(self, backend) -> None:
        self.backend, self.calls = backend, []
        self._generate = backend.generate

    def __enter__(self):
        def generate(tasks):
            self.calls.append([t.task_id for t in tasks])
            return self._generate(tasks)
        self.backend.generate = generate
        return self

    def __exit__(self, *exc):
        del self.backend.generate


async def scheduled(backend, *, window: float, max_batch: int = 8,
                    loop: bool = False) -> Scheduler:
    """A scheduler over an already loaded backend; with ``loop``, a continuous backend
    runs its decoding loop, else it gets whole ``generate`` calls."""
    sched = Scheduler({"b": BackendWorker("b", backend)}, queue_size=64, max_batch=max_batch,
                      batch_wait_s=window)
    worker = sched.workers["b"]
    worker.state = "ready"  # loaded by the fixture, which also closes it at the end

    async def start() -> None:
        if loop:
            worker.open()

    def shutdown() -> None:  # stops the loop, keeps the backend for other tests
        if worker._feed is not None:
            worker._feed.close()
        worker._executor.shutdown(wait=True)

    worker.start = start  # type: ignore[method-assign]
    worker.shutdown = shutdown  # type: ignore[method-assign]
    await sched.start()
    return sched


def task(task_id: str, text: str, **params) -> SynthesisTask:
    options = dia_options(params)
    return SynthesisTask(task_id=task_id, text=text, params=GenerationParams(**params),
                         options=options)


# ----------------------------------------------------------------------------- in process


def test_failure_in_one_request_fails_only_that_request(tiny_backend):  # noqa: F811
    long_prompt = AudioPrompt("too-long", np.zeros(44100 * 40, np.float32), 44100)
    good = [task(f"good{i}", f"[S1] Request number {i} is fine.", greedy=True, max_tokens=80)
            for i in range(3)]
    bad = task("bad", "[S1] My prompt leaves no room.", greedy=True, max_tokens=80)
    bad.prompt, bad.prompt_transcript = long_prompt, "[S1] Forty seconds of talk."
    alone = [tiny_backend.generate([t])[0].samples for t in
             [task(f"a{i}", f"[S1] Request number {i} is fine.", greedy=True, max_tokens=80)
              for i in range(3)]]

    async def main():
        sched = await scheduled(tiny_backend, window=0.05)
        tickets = [sched.submit("b", t) for t in (good[0], bad, good[1], good[2])]
        out = await asyncio.gather(*(t.future for t in tickets), return_exceptions=True)
        await sched.stop()
        return out

    with Spy(tiny_backend) as spy:
        first, failed, second, third = run(main())
    assert spy.calls == [["good0", "bad", "good1", "good2"]]  # one batch
    assert isinstance(failed, InvalidInput) and "no room left for speech" in failed.message
    for got, want in zip((first, second, third), alone, strict=True):
        assert np.array_equal(got.samples, want)  # greedy: batched equals alone


def test_requests_with_any_parameters_share_the_decoding_loop(tiny_backend):  # noqa: F811
    tasks = [
        task("warm-1", "[S1] a", temperature=1.3, max_tokens=200, seed=1),
        task("cool-1", "[S1] b", temperature=1.1, max_tokens=200, seed=2),
        task("long-1", "[S1] d", temperature=1.3, max_tokens=300, seed=3),
        task("filtered", "[S1] e", temperature=0.9, top_p=0.8, top_k=20, cfg_scale=2.0,
             max_tokens=150, seed=4),
        task("greedy-1", "[S1] h", greedy=True, max_tokens=200),
        task("greedy-2", "[S1] i", greedy=True, max_tokens=120, cfg_scale=1.0),
    ]
    joins = tiny_backend.loop_stats()["joins"]

    async def main():
        sched = await scheduled(tiny_backend, window=0.05, loop=True)
        tickets = [sched.submit("b", t) for t in tasks]
        out = await asyncio.gather(*(t.future for t in tickets))
        stats = sched.loop_stats()
        await sched.stop()
        return out, stats

    with Spy(tiny_backend) as spy:
        results, stats = run(main())
    assert spy.calls == []  # no generate call: every task joined the loop
    assert tiny_backend.loop_stats()["joins"] == joins + len(tasks)
    assert stats["loop_rows"] == 0 and stats["loop_joins"] >= len(tasks)
    assert max(r.info["batch_size"] for r in results) == len(tasks)
    for t, got in zip(tasks, results, strict=True):
        (alone,) = tiny_backend.generate([task("again", t.text, **msgspec.structs.asdict(
            t.params), **msgspec.structs.asdict(t.options))])
        assert got.tokens == alone.tokens and np.array_equal(got.samples, alone.samples)


def test_a_short_request_finishes_while_a_long_one_runs(tiny_backend):  # noqa: F811
    long = task("long", "[S1] A long text that keeps generating.", greedy=True,
                max_tokens=2000)
    steps: list[int] = []
    long.on_progress = lambda step, total: steps.append(step)
    short = task("short", "[S2] Quick.", greedy=True, max_tokens=40)

    async def main():
        sched = await scheduled(tiny_backend, window=0.05, loop=True)
        first = sched.submit("b", long)
        await eventually_async(lambda: steps and steps[-1] >= 32)
        second = sched.submit("b", short)
        quick = await second.future
        still_running = not first.future.done()
        sched.cancel("long")
        await asyncio.gather(first.future, return_exceptions=True)
        await sched.stop()
        return quick, still_running

    quick, still_running = run(main())
    assert still_running
    (alone,) = tiny_backend.generate([task("short-alone", "[S2] Quick.", greedy=True,
                                           max_tokens=40)])
    assert quick.tokens == alone.tokens and np.array_equal(quick.samples, alone.samples)
    assert quick.info["batch_size"] == 2


def test_a_lone_request_does_not_wait_for_the_whole_window():
    backend = pieces()

    async def main():
        sched = await scheduled(backend, window=2.0)
        started = time.perf_counter()
        ticket = sched.submit("b", task("lone", "[S1] alone"))
        await ticket.future
        elapsed = time.perf_counter() - started
        await sched.stop()
        return elapsed

    assert run(main()) < 1.0  # only the quiet tenth (0.2 s) of the 2 s window


def test_a_burst_keeps_the_window_open_while_requests_keep_coming():
    backend = pieces(max_batch_size=8)

    async def main():
        sched = await scheduled(backend, window=2.0)  # quiet after 0.2 s
        tickets = []
        for i in range(5):  # arrivals 0.1 s apart: the window stays open
            tickets.append(sched.submit("b", task(f"t{i}", f"[S1] text {i}")))
            await asyncio.sleep(0.1)
        await asyncio.gather(*(t.future for t in tickets))
        await sched.stop()

    run(main())
    assert [len(c) for c in backend.calls] == [5]


def test_the_window_waits_for_a_request_still_on_its_way():
    """A request still being validated (say, loading its voice prompt) is waited for."""
    backend = pieces(max_batch_size=8)

    async def main():
        sched = await scheduled(backend, window=2.0)
        with sched.announcing_request():
            first = sched.submit("b", task("first", "[S1] first"))
            await asyncio.sleep(0.6)  # three times the quiet gap
            second = sched.submit("b", task("second", "[S1] second"))
        await asyncio.gather(first.future, second.future)
        await sched.stop()

    run(main())
    assert [[t.task_id for t in c] for c in backend.calls] == [["first", "second"]]


# ----------------------------------------------------------------------------- real server


def test_sync_and_async_requests_share_one_call_and_match_single_runs(
        tmp_path, tiny_model_dir):  # noqa: F811
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text(f'[generation]\nvoice_store = "builtin"\nbatch_wait_ms = 1000\nworkers = 4\n'
                   f'[plugins.dia]\nmodel = "{tiny_model_dir}"\ndevice = "cpu"\n'
                   'cpu_threads = 1\n')
    texts = [f"[S1] Request {i} speaks its own words, number {i}." for i in range(4)]
    body = {"greedy": True, "max_tokens": 160, "response_format": "pcm"}
    with ServerProcess(cfg) as srv:
        alone = []
        for text in texts:
            r = srv.client.post("/generate", json={**body, "text": text})
            assert r.status_code == 200 and r.headers["x-batch-size"] == "1"
            alone.append(r.content)

        def sync(text):
            return srv.client.post("/generate", json={**body, "text": text})

        def async_job(text):
            return srv.client.post("/generate?async_mode=true",
                                   json={**body, "text": text}).json()["job_id"]

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(sync, texts[0]), pool.submit(async_job, texts[1]),
                       pool.submit(sync, texts[2]), pool.submit(async_job, texts[3])]
            replies = [f.result() for f in futures]
        for index in (0, 2):
            assert replies[index].status_code == 200
            # Both sync replies came from a call holding all four requests.
            assert replies[index].headers["x-batch-size"] == "4"
            assert replies[index].content == alone[index]
        for index in (1, 3):
            job_id = replies[index]
            eventually(lambda job_id=job_id: srv.client.get(f"/jobs/{job_id}").json()["status"]
                       == "completed", timeout=60, interval=0.05, message=f"job {job_id} done")
            result = srv.client.get(f"/jobs/{job_id}/result")
            assert result.content == alone[index]


def test_a_prepared_request_is_waited_for_until_it_is_submitted(tmp_path):
    """Between validation and the queue (a job's row being written, say) a request still
    holds the window open; one that is never submitted stops holding it."""
    from tests.conftest import make_services, pieces_plugin
    from ttsframe.core.interfaces.speech_types import SpeechRequest

    services = make_services(tmp_path, extra_plugins=(("pieces-plugin", pieces_plugin()),),
                             generation={"default_backend": "pieces", "batch_wait_ms": 2000})
    speech, backend = services.speech, services.backends["pieces"]

    async def main():
        await services.start()
        try:
            first = await speech.prepare(SpeechRequest(text="[S1] first", voice_id="alloy"))
            second = await speech.prepare(SpeechRequest(text="[S1] second", voice_id="alloy"))
            ticket = speech.run(first).start().ticket
            await asyncio.sleep(0.6)  # three times the quiet gap
            other = speech.run(second).start().ticket
            await asyncio.gather(ticket.future, other.future)
            await speech.prepare(SpeechRequest(text="[S1] never sent", voice_id="alloy"))
            started = time.perf_counter()
            await speech.run(await speech.prepare(
                SpeechRequest(text="[S1] alone", voice_id="alloy"))).start().ticket.future
            return time.perf_counter() - started
        finally:
            await services.stop()

    waited = run(main())
    assert [[t.text for t in c] for c in backend.calls][:2] == [
        ["[S1] first", "[S1] second"], ["[S1] alone"]]
    # The abandoned one held the window at most until it closed (2 s, its announcement's
    # lifetime too); the margin is for a busy machine.
    assert waited < 5


def test_builtin_voices_with_default_sampling_share_one_call(tmp_path, tiny_model_dir):  # noqa: F811
    """The common case: different built-in voices (each with its own fixed seed), default
    sampling. They share a call, and each voice's audio is what it gives alone."""
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text(f'[generation]\nvoice_store = "builtin"\nbatch_wait_ms = 1000\nworkers = 4\n'
                   f'[plugins.dia]\nmodel = "{tiny_model_dir}"\ndevice = "cpu"\n'
                   'cpu_threads = 1\n')
    voices = ["alloy", "echo", "fable", "nova"]
    body = {"text": "[S1] Every voice says this.", "max_tokens": 120, "response_format": "pcm"}
    with ServerProcess(cfg) as srv:
        alone = []
        for voice in voices:
            r = srv.client.post("/generate", json={**body, "voice_id": voice})
            assert r.status_code == 200 and r.headers["x-batch-size"] == "1"
            alone.append(r.content)
        assert len(set(alone)) == len(voices)  # each voice's seed gives its own take

        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(
                lambda v: srv.client.post("/generate", json={**body, "voice_id": v}), voices))
    for reply, want in zip(replies, alone, strict=True):
        assert reply.status_code == 200 and reply.headers["x-batch-size"] == "4"
        assert reply.content == want
