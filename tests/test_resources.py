"""Memory stays bounded: the scheduler forgets every finished request, however it ended
(Dia's bounded prompt cache and inference mode are tested in test_dia_streaming.py)."""

from __future__ import annotations

from litestar.testing import TestClient

from tests import streaming_fakes
from tests.conftest import make_services
from ttsframe.http.app import create_app


def test_the_scheduler_forgets_every_finished_request(tmp_path):
    services = make_services(tmp_path, extra_plugins=(("pieces-plugin", streaming_fakes),),
                             generation={"default_backend": "pieces", "batch_wait_ms": 5})
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
        scheduler = services.scheduler
        assert scheduler._tickets == {} and scheduler._running == {}
        assert scheduler.pending_count == 0 and not scheduler._joins
