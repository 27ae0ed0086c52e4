"""The scheduler: bounded queue, batching, cancellation, failures isolated per task."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from ttsframe.core.errors import (
    BackendUnavailable,
    CancelCause,
    Cancelled,
    QueueFull,
    ShuttingDown,
)
from ttsframe.core.interfaces.speech_types import GenerationParams
from ttsframe.core.interfaces.synthesis import SynthesisTask
from ttsframe.core.speech.scheduler import BackendWorker, Scheduler
from ttsframe.testing.fake_backend import TONE, FakeBackend, FakeConfig
from ttsframe.testing.waiting import eventually_async


def task(text: str) -> SynthesisTask:
    return SynthesisTask(task_id=text, text=text, params=GenerationParams())


def tone(**knobs) -> FakeConfig:
    """The kit's fake backend set up as a batching tone, with ``knobs`` changed."""
    return msgspec.structs.replace(TONE, **knobs)


async def started(config: FakeConfig, **kw) -> tuple[Scheduler, FakeBackend]:
    backend = FakeBackend(config, name="tone")
    sched = Scheduler({"tone": BackendWorker("tone", backend)}, **kw)
    await sched.start()
    await eventually_async(lambda: sched.workers["tone"].state != "loading",
                           message="the tone backend loaded")
    return sched, backend


def run(coro):
    return asyncio.run(coro)


def test_close_requests_are_batched_and_split_back():
    async def main():
        sched, backend = await started(tone(), queue_size=10, max_batch=4,
                                       batch_wait_s=0.05)
        tickets = [sched.submit("tone", task(f"text number {i}")) for i in range(6)]
        results = await asyncio.gather(*(t.future for t in tickets))
        await sched.stop()
        return backend, results

    backend, results = run(main())
    assert [len(c) for c in backend.calls] == [4, 2]
    lengths = [len(r.samples) for r in results]
    assert lengths == [int(len(f"text number {i}") * 0.01 * 24000) for i in range(6)]


def test_queue_full_is_429_material():
    async def main():
        sched, _ = await started(tone(step_delay_s=0.05), queue_size=2, max_batch=1,
                                 batch_wait_s=0)
        first = sched.submit("tone", task("a"))
        await eventually_async(lambda: first.started_at, message='"a" running')  # queue empty
        sched.submit("tone", task("b"))
        sched.submit("tone", task("c"))
        with pytest.raises(QueueFull) as err:
            sched.submit("tone", task("d"))
        assert err.value.headers["Retry-After"]
        for t in ("a", "b", "c"):
            sched.cancel(t)
        await asyncio.gather(first.future, return_exceptions=True)
        await sched.stop()

    run(main())


def test_cancel_pending_and_running():
    async def main():
        sched, backend = await started(tone(step_delay_s=0.05, steps=100),
                                       queue_size=10, max_batch=1, batch_wait_s=0)
        running = sched.submit("tone", task("running"))
        await eventually_async(lambda: running.started_at, message='"running" started')
        pending = sched.submit("tone", task("pending"))
        assert sched.stats()["queued_tasks"] == 1
        assert sched.cancel("pending")
        with pytest.raises(Cancelled) as cancelled:
            await pending.future
        assert cancelled.value.cause == CancelCause.REQUEST  # the default
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert sched.cancel("running", "Verbindung getrennt", CancelCause.CLIENT_DISCONNECT)
        with pytest.raises(Cancelled) as cancelled:
            await running.future
        elapsed = loop.time() - t0
        # The fake answers as third-party backends do, Cancelled(task.cancel.reason):
        # words only. The scheduler takes the cause from the task's token.
        assert cancelled.value.message == "Verbindung getrennt"
        assert cancelled.value.cause == CancelCause.CLIENT_DISCONNECT
        after = sched.submit("tone", task("after"))
        # the freed worker picks the next task up at once
        await eventually_async(lambda: after.started_at, timeout=5.0, message='"after" started')
        assert after.started_at and after.status == "processing"
        sched.cancel("after")
        await asyncio.gather(after.future, return_exceptions=True)
        await sched.stop()
        return elapsed, backend

    elapsed, backend = run(main())
    assert elapsed < 1.0  # 100 steps x 50 ms would be 5 s: the worker stopped early
    assert ["pending"] not in backend.texts()


def test_one_failing_task_fails_alone():
    async def main():
        sched, _ = await started(tone(), queue_size=10, max_batch=4, batch_wait_s=0.05)
        ok = sched.submit("tone", task("fine"))
        bad = sched.submit("tone", task("(explode)"))
        res = await asyncio.gather(ok.future, bad.future, return_exceptions=True)
        stats = sched.stats()
        await sched.stop()
        return res, stats

    (ok, bad), stats = run(main())
    assert ok.sample_rate == 24000
    assert isinstance(bad, RuntimeError)
    assert (stats["completed_tasks"], stats["failed_tasks"]) == (1, 1)


def test_failed_load_is_reported():
    async def main():
        sched, _ = await started(tone(fail_load="weights missing"), queue_size=1,
                                 max_batch=1, batch_wait_s=0)
        worker = sched.workers["tone"]
        with pytest.raises(BackendUnavailable, match="weights missing"):
            sched.submit("tone", task("x"))
        await sched.stop()
        return worker

    worker = run(main())
    assert (worker.state, worker.error) == ("failed", "weights missing")


def joined(results):
    return results  # the parts' results, in order, as the parent ticket's value


def submit_held(sched, parts, after_first):
    """Queue ``parts`` with the later ones held; once the first is done, ``after_first``
    prepares them from its result and they are released, as a ``SpeechRun`` does for a
    continued text (``core/speech/run.py``)."""
    ticket = sched.submit_parts("tone", task("whole"), parts, joined, hold_rest=True)

    def first_done(first):
        error = None
        if not first.cancelled() and first.exception() is None and not sched.closing:
            try:
                after_first(first.result())
            except Exception as exc:
                error = exc
        sched.release_rest(ticket, error)

    ticket.parts[0].future.add_done_callback(first_done)
    return ticket


def test_parts_held_for_the_first_run_together_after_it():
    seen = []

    def after_first(result):
        # The later tasks are not queued yet: whatever this sets, they run with it.
        seen.append((result, backend.texts()))
        for part in parts[1:]:
            part.prompt_transcript = "first"

    async def main():
        nonlocal backend, parts
        sched, backend = await started(tone(), queue_size=10, max_batch=4,
                                       batch_wait_s=0.05)
        parts = [task(f"part {i}") for i in range(4)]
        ticket = submit_held(sched, parts, after_first)
        results = await ticket.future
        await sched.stop()
        return results, ticket

    backend = parts = None
    results, ticket = run(main())
    assert backend.texts() == [["part 0"], ["part 1", "part 2", "part 3"]]
    ((first, calls_then),) = seen
    assert first is results[0] and calls_then == [["part 0"]]
    assert [p.prompt_transcript for p in parts] == [None, "first", "first", "first"]
    assert ticket.batch_size == 3 and ticket.status == "completed"


@pytest.mark.parametrize("how", ["cancel", "fail", "after_first raises", "stop signal"])
def test_parts_held_for_the_first_end_with_it(how):
    """Cancelling the request while its first part runs, the first part failing, the
    callback failing, or a stop signal (the first part finishes within the grace period,
    the rest are not started, so a job stays pending for the next start): the held parts
    never reach the backend and nothing is left over."""
    calls = []

    def after_first(result):
        calls.append(result)
        if how == "after_first raises":
            raise RuntimeError("no prompt for you")

    async def main():
        sched, backend = await started(tone(step_delay_s=0.02, steps=20),
                                       queue_size=10, max_batch=4, batch_wait_s=0)
        first = "(explode) part 0" if how == "fail" else "part 0"
        parts = [task(first), task("part 1"), task("part 2")]
        ticket = submit_held(sched, parts, after_first)
        assert sched.pending_count == 1  # only the first part is queued
        if how in ("cancel", "stop signal"):
            await eventually_async(lambda: ticket.started_at, message="the first part runs")
        if how == "cancel":
            assert sched.cancel("whole")
        if how == "stop signal":
            sched.close(grace_s=30)
        outcome = (await asyncio.gather(ticket.future, return_exceptions=True))[0]
        part_outcomes = await asyncio.gather(*(p.future for p in ticket.parts),
                                             return_exceptions=True)
        left = (sched.pending_count, dict(sched._tickets))
        await sched.stop()
        return outcome, part_outcomes, backend.texts(), left

    outcome, part_outcomes, backend_calls, left = run(main())
    assert backend_calls == [[("(explode) " if how == "fail" else "") + "part 0"]]
    expected = {"cancel": Cancelled, "fail": RuntimeError,
                "after_first raises": RuntimeError, "stop signal": ShuttingDown}[how]
    assert isinstance(outcome, expected), outcome
    assert all(isinstance(o, BaseException) for o in part_outcomes[1:])
    assert left == (0, {})
    assert len(calls) == (1 if how == "after_first raises" else 0)


def test_parts_stopped_by_a_failing_part_say_so():
    """The first part fails: the others, queued or running, are cancelled with
    ``part_failed``, and the request fails with the part's own error."""
    async def main():
        sched, _ = await started(tone(step_delay_s=0.02, steps=20),
                                 queue_size=10, max_batch=1, batch_wait_s=0)
        parts = [task("(explode) part 0"), task("part 1"), task("part 2")]
        ticket = sched.submit_parts("tone", task("whole"), parts, joined)
        outcome = (await asyncio.gather(ticket.future, return_exceptions=True))[0]
        rest = await asyncio.gather(*(p.future for p in ticket.parts[1:]),
                                    return_exceptions=True)
        await sched.stop()
        return outcome, rest, parts

    outcome, rest, parts = run(main())
    assert isinstance(outcome, RuntimeError), outcome
    assert all(isinstance(o, Cancelled) and o.cause == CancelCause.PART_FAILED
               for o in rest), rest
    assert [p.cancel.cause for p in parts[1:]] == [CancelCause.PART_FAILED] * 2


def test_a_stop_cancels_with_the_shutdown_cause():
    """Past the grace period a running task's token is cancelled for ``shutdown`` (its
    ticket fails with ShuttingDown, a 503); a request still held when the scheduler
    stops ends Cancelled for ``shutdown``."""
    async def main():
        sched, _ = await started(tone(step_delay_s=0.05, steps=400),
                                 queue_size=10, max_batch=1, batch_wait_s=0)
        running = sched.submit("tone", task("running"))
        await eventually_async(lambda: running.started_at, message='"running" started')
        sched.close(grace_s=0)
        stopped = (await asyncio.gather(running.future, return_exceptions=True))[0]
        await sched.stop()

        sched, _ = await started(tone(step_delay_s=0.05, steps=400),
                                 queue_size=10, max_batch=1, batch_wait_s=0)
        parts = [task("part 0"), task("part 1")]
        held = submit_held(sched, parts, lambda _r: None)
        await eventually_async(lambda: held.started_at, message="the first part runs")
        await sched.stop()
        outcomes = [f.exception() for f in (held.future, *(p.future for p in held.parts))]
        return running, stopped, outcomes, parts

    running, stopped, outcomes, parts = run(main())
    assert isinstance(stopped, ShuttingDown)
    assert running.task.cancel.cause == CancelCause.SHUTDOWN
    assert all(isinstance(o, Cancelled) and o.cause == CancelCause.SHUTDOWN
               for o in outcomes), outcomes
    assert [p.cancel.cause for p in parts] == [CancelCause.SHUTDOWN] * 2
