"""Memory stays bounded: the scheduler forgets every finished request, however it ended
(Dia's bounded prompt cache and inference mode are tested in test_dia_streaming.py)."""

from __future__ import annotations

from litestar.testing import TestClient

from tests.conftest import make_services, pieces_plugin
from ttsframe.core.speech.scheduler import Scheduler, Ticket
from ttsframe.http.app import create_app
from ttsframe.testing.waiting import eventually


def handed_out(scheduler: Scheduler) -> list[Ticket]:
    """Every ticket ``submit`` and ``submit_parts`` return from now on (parts included)."""
    tickets: list[Ticket] = []

    def recording(submit):
        def call(*args, **kwargs) -> Ticket:
            ticket = submit(*args, **kwargs)
            tickets.extend([ticket, *ticket.parts])
            return ticket
        return call

    scheduler.submit = recording(scheduler.submit)
    scheduler.submit_parts = recording(scheduler.submit_parts)
    return tickets


def test_the_scheduler_forgets_every_finished_request(tmp_path):
    services = make_services(tmp_path, extra_plugins=(("pieces-plugin", pieces_plugin()),),
                             generation={"default_backend": "pieces", "batch_wait_ms": 5})
    scheduler = services.scheduler
    tickets = handed_out(scheduler)
    long_text = " ".join(f"[S1] Sentence {i} goes on for a while here." for i in range(20))
    with TestClient(app=create_app(services)) as client:
        for i in range(10):
            assert client.post("/generate", json={"text": f"[S1] short {i}"}).status_code == 200
            assert client.post("/generate", json={"text": long_text, "stream": i % 2 == 0,
                                                  "response_format": "pcm"}).status_code == 200
            assert client.post("/generate", json={"text": "[S1] (explode)"}).status_code == 500
            assert client.post("/generate", json={"text": "[S1] (refuse)",
                                                  "stream": True}).status_code == 400
            with client.stream("POST", "/generate", json={"text": long_text,
                                                          "stream": True}) as r:
                next(r.iter_bytes())  # and hang up
        assert any(t.parts for t in tickets) and len(tickets) > 40

        def known() -> list[str]:
            return [t.task.task_id for t in tickets if scheduler.get(t.task.task_id)]

        def forgotten() -> bool:  # the hung-up request stops at its backend's next step
            stats = scheduler.stats()
            return stats["queued_tasks"] == stats["running_tasks"] == 0 and not known()

        eventually(forgotten, message=lambda: f"every request forgotten: {scheduler.stats()}, "
                                              f"still known: {known()}")
        assert scheduler.pending_count == 0 and all(t.future.done() for t in tickets)
