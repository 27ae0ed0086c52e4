"""What metrics and request ids cost per request, in microseconds.

    python bench/observability_cost.py            # the figures in docs/observability.md
    python bench/observability_cost.py --quick    # a second, to check that it runs

Each piece ttsframe adds to a request is timed around an ASGI app that answers at once,
so the figure is that piece's own work, not the rest of the server's (whose run-to-run
spread on a busy machine is larger than these costs): the request-id middleware with its
``before_send`` hook and access line (logged at info level to a null stream), Litestar's
Prometheus middleware with this server's series, and the speech-only work (the outcome
counter, the time-to-first-audio histogram, one batch and the generation observer) called
with a finished generation. Rounds alternate, and each figure is the median over rounds.
Compare the sum with the framework overhead of ``bench/bench_server.py`` (figure 1, some
milliseconds per request).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from ttsframe.core.interfaces.speech_types import GenerationParams, SpeechOutput, SpeechRequest  # noqa: E402
from ttsframe.core.interfaces.synthesis import SynthesisResult, SynthesisTask  # noqa: E402
from ttsframe.core.observability.metrics import Metrics  # noqa: E402
from ttsframe.core.speech.prepared import GenerationEvent, PreparedSpeech  # noqa: E402
from ttsframe.core.speech.scheduler import Ticket  # noqa: E402
from ttsframe.core.voices.voice import Voice  # noqa: E402
from ttsframe.http.metrics import SpeechTracker, http_metrics_middleware  # noqa: E402
from ttsframe.http.request_ids import RequestIdMiddleware, add_request_id  # noqa: E402
from ttsframe.log_format import TEXT_FORMAT, RequestIdFilter  # noqa: E402
from ttsframe.testing.app import make_services  # noqa: E402


async def answer(scope, receive, send) -> None:
    """The innermost app: a 200 with a small body, as a route would send it."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})


def with_hook(app, hook):
    """What Litestar does with ``before_send``: every message passes the hook first."""
    async def wrapped(scope, receive, send):
        async def hooked(message):
            await hook(message, scope)
            await send(message)
        await app(scope, receive, hooked)
    return wrapped


def variants(metrics: Metrics) -> dict:
    prom = http_metrics_middleware(metrics)
    return {
        "bare": answer,
        "request ids": with_hook(RequestIdMiddleware(answer), add_request_id),
        "HTTP metrics": prom.middleware(answer, **prom.kwargs),
    }


def scope_for(path: str = "/generate") -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "path_template": path, "query_string": b"", "root_path": "",
            "headers": [(b"host", b"bench"), (b"x-request-id", b"bench-1")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}


async def time_calls(app, n: int) -> float:
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        return None

    started = time.perf_counter()
    for _ in range(n):
        await app(scope_for(), receive, send)
    return (time.perf_counter() - started) / n


def speech_event(services) -> tuple[GenerationEvent, SpeechRequest]:
    request = SpeechRequest(text="[S1] hi", voice_id="alloy", response_format="wav")
    task = SynthesisTask(task_id="bench", text="[S1] hi", params=GenerationParams())
    loop = asyncio.get_running_loop()
    ticket = Ticket(task, "beeper", loop.create_future())
    ticket.started_at, ticket.finished_at, ticket.batch_size = time.time(), time.time() + 0.3, 1
    prepared = PreparedSpeech(task, "beeper", Voice(voice_id="alloy"), request, [], ["x"])
    output = SpeechOutput(audio=b"\0" * 400_000, content_type="audio/wav", sample_rate=44100,
                          duration_s=4.6, text="x", voice_id="alloy", backend="beeper")
    return GenerationEvent(prepared, ticket, output=output), request


async def time_speech_work(services, n: int) -> float:
    event, request = speech_event(services)
    result = SynthesisResult(samples=np.zeros(4, np.float32), sample_rate=44100, tokens=400,
                             info={"steps": 400})
    metrics = services.metrics
    started = time.perf_counter()
    for _ in range(n):
        tracker = SpeechTracker(services, "/generate", request, "sync")
        tracker.first_audio()
        tracker.done(200)
        metrics.batch_done("beeper", [event.ticket], [result], 0.3)
        await metrics.generation_ended(event)
    return (time.perf_counter() - started) / n


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = 500, 1
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.getLogger().handlers = [handler]
    logging.getLogger().setLevel("INFO")  # the access line is formatted and written

    services = make_services(Path(tempfile.mkdtemp(prefix="ttsframe-obs-")))
    apps = variants(services.metrics)
    times: dict[str, list[float]] = {"request ids": [], "  of which the access line": [],
                                     "HTTP metrics": [], "speech metrics": []}
    access = logging.getLogger("ttsframe.access")
    for _ in range(args.rounds):
        for name, app in apps.items():
            if name != "bare":
                times[name].append(await time_calls(app, args.requests))
        times.setdefault("bare", []).append(await time_calls(apps["bare"], args.requests))
        access.setLevel("WARNING")  # the same middleware, no access line written
        quiet = await time_calls(apps["request ids"], args.requests)
        access.setLevel("NOTSET")
        times["  of which the access line"].append(times["request ids"][-1] - quiet)
        times["speech metrics"].append(await time_speech_work(services, args.requests))
    med = {name: statistics.median(t) * 1e6 for name, t in times.items()}
    bare = med.pop("bare")
    print(f"added per request, median of {args.rounds} rounds of {args.requests} calls "
          f"(an ASGI app answering at once: {bare:.1f} us):")
    added = 0.0
    for name, us in med.items():
        part = name.startswith(" ")
        cost = us if part or name == "speech metrics" else us - bare
        added += 0 if part else cost
        print(f"  {name:28s} {cost:7.1f} us")
    print(f"  {'total':28s} {added:7.1f} us per speech request")


if __name__ == "__main__":
    asyncio.run(main())
