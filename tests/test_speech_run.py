"""A request's run (``core/speech/run.py``): one report to the observers however it ends
(done, failed, cancelled, client gone), and the voice continuity of a long text: the
later chunks are queued only once the first has succeeded."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import make_services, pieces_plugin
from ttsframe.core.errors import CancelCause, Cancelled
from ttsframe.core.interfaces.speech_types import SpeechRequest
from ttsframe.testing.waiting import eventually_async

pytestmark = pytest.mark.app


def long_dialogue(sentences: int = 16, first: str = "") -> str:
    parts = []
    for i in range(sentences):
        speaker = "[S1]" if (i // 4) % 2 == 0 else "[S2]"
        parts.append(f"{speaker} {first if i == 0 else ''}Sentence {i} talks about item "
                     f"{i * 7}, then stops.")
    return " ".join(parts)


def services_with_events(tmp_path, **knobs):
    """Services over the fake ``pieces`` backend (streams, clones, 200-byte chunks), with
    an observer that keeps every event it is given."""
    services = make_services(
        tmp_path, extra_plugins=(("pieces-plugin", pieces_plugin()),),
        generation={"default_backend": "pieces", "voice_store": "filesystem"},
        plugins={"pieces-plugin": knobs})
    events = []

    async def observe(event):
        events.append(event)

    services.speech.observers.append(observe)
    return services, events


def run(services, main):
    async def wrapped():
        await services.start()
        try:
            return await main()
        finally:
            await services.stop()
    return asyncio.run(wrapped())


def request(text: str, **fields) -> SpeechRequest:
    return SpeechRequest(text=text, voice_id="alloy", normalize=False, **fields)


def texts_run(services) -> list[str]:
    return [task.text for call in services.backends["pieces"].calls for task in call]


def test_a_run_that_is_done_is_reported_once(tmp_path):
    services, events = services_with_events(tmp_path)
    speech = services.speech

    async def main():
        started = speech.run(await speech.prepare(request("[S1] Hello there."))).start()
        output = await started.output()
        await started.finish(error=RuntimeError("a second report is not made"))
        return started, output

    started, output = run(services, main)
    assert output.audio and output.duration_s > 0
    (event,) = events
    assert event.output is output and event.error is None
    assert event.ticket is started.ticket and event.prepared is started.prepared


def test_a_run_that_fails_is_reported_once(tmp_path):
    services, events = services_with_events(tmp_path)
    speech = services.speech

    async def main():
        started = speech.run(await speech.prepare(request("[S1] (explode) Hello."))).start()
        with pytest.raises(RuntimeError):
            await started.output()

    run(services, main)
    (event,) = events
    assert isinstance(event.error, RuntimeError) and event.output is None


def test_a_cancelled_run_is_reported_once_with_its_cause(tmp_path):
    services, events = services_with_events(tmp_path, step_delay_s=0.01)
    speech = services.speech

    async def main():
        started = speech.run(await speech.prepare(request("[S1] (slow) Hello."))).start()
        waiting = asyncio.create_task(started.output())
        await eventually_async(lambda: started.ticket.started_at, message="it runs")
        assert started.cancel("stopped by the test", CancelCause.REQUEST)
        with pytest.raises(Cancelled):
            await waiting
        return started

    started = run(services, main)
    (event,) = events
    assert isinstance(event.error, Cancelled) and event.error.cause == CancelCause.REQUEST
    assert started.prepared.task.cancel.reason == "stopped by the test"


def test_a_whole_reply_whose_client_left_is_cancelled_and_reported_once(tmp_path):
    services, events = services_with_events(tmp_path, step_delay_s=0.01)
    speech = services.speech

    async def main():
        started = speech.run(await speech.prepare(request("[S1] (slow) Hello."))).start()
        waiting = asyncio.create_task(started.output())
        await eventually_async(lambda: started.ticket.started_at, message="it runs")
        waiting.cancel()  # what a disconnect does to the handler awaiting the reply
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await eventually_async(lambda: events, message="the run is reported")
        outcome = (await asyncio.gather(started.ticket.future, return_exceptions=True))[0]
        return outcome

    outcome = run(services, main)
    (event,) = events
    assert isinstance(event.error, asyncio.CancelledError)
    assert isinstance(outcome, Cancelled) and outcome.cause == CancelCause.CLIENT_DISCONNECT


def test_a_stream_whose_client_left_is_reported_once(tmp_path):
    """... and only once its generation has stopped, so that the report's times say how
    long the worker was held."""
    services, events = services_with_events(tmp_path, step_delay_s=0.01)
    speech = services.speech
    stopped_when_reported = []

    async def observe(event):
        stopped_when_reported.append(event.ticket.future.done()
                                     and event.ticket.finished_at is not None)

    speech.observers.append(observe)

    async def main():
        prepared = await speech.prepare(request("[S1] (slow) Hello.", stream=True))
        started = speech.run(prepared, streamed=True).start()
        stream = await started.open()
        assert speech.open_streams["pieces"] == 1
        body = aiter(stream)
        assert await anext(body)
        await body.aclose()  # the reply's body is dropped: the client went
        await eventually_async(lambda: events, message="the run is reported")
        started.cancel()  # after its end: nothing more is reported
        await asyncio.gather(started.ticket.future, return_exceptions=True)
        return speech.open_streams["pieces"]

    still_open = run(services, main)
    (event,) = events
    assert isinstance(event.error, Cancelled)
    assert event.error.cause == CancelCause.CLIENT_DISCONNECT
    assert event.streamed_bytes and still_open == 0
    assert stopped_when_reported == [True]


def test_a_long_text_runs_its_later_chunks_after_the_first_as_its_voice(tmp_path):
    services, events = services_with_events(tmp_path)
    speech = services.speech

    async def main():
        prepared = await speech.prepare(request(long_dialogue()))
        started = speech.run(prepared).start()
        assert services.scheduler.pending_count == 1  # only the first chunk is queued
        await started.output()
        return prepared

    prepared = run(services, main)
    assert prepared.continued and len(prepared.chunks) > 2
    calls = services.backends["pieces"].calls
    assert [t.text for t in calls[0]] == [prepared.chunks[0]]
    later = [task for call in calls[1:] for task in call]
    assert [t.text for t in later] == prepared.chunks[1:]
    assert all(t.prompt is not None and t.prompt.transient
               and t.prompt_transcript == prepared.chunks[0] for t in later)
    (event,) = events
    assert event.error is None


@pytest.mark.parametrize("how", ["first fails", "cancelled"])
def test_the_later_chunks_do_not_run_when_the_first_does_not_succeed(tmp_path, how):
    services, events = services_with_events(tmp_path, step_delay_s=0.01)
    speech = services.speech
    opening = "(explode) " if how == "first fails" else "(slow) "

    async def main():
        prepared = await speech.prepare(request(long_dialogue(first=opening)))
        started = speech.run(prepared).start()
        waiting = asyncio.create_task(started.output())
        if how == "cancelled":
            await eventually_async(lambda: started.ticket.started_at, message="it runs")
            started.cancel("stopped by the test")
        outcome = (await asyncio.gather(waiting, return_exceptions=True))[0]
        parts = await asyncio.gather(*(p.future for p in started.ticket.parts),
                                     return_exceptions=True)
        return prepared, outcome, parts, dict(services.scheduler._tickets)

    prepared, outcome, parts, left = run(services, main)
    assert prepared.continued and len(prepared.chunks) > 2
    assert texts_run(services) == [prepared.chunks[0]]
    expected = RuntimeError if how == "first fails" else Cancelled
    assert isinstance(outcome, expected), outcome
    assert all(isinstance(part, BaseException) for part in parts)
    assert left == {}
    (event,) = events
    assert isinstance(event.error, expected)
