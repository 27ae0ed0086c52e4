"""A job as the job service reports it: its state, a cancel's outcome, the queue's counts
(the job routes answer with these records as they are)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class JobInfo(msgspec.Struct, kw_only=True):
    """What ``GET /jobs/{id}`` answers. Times are UTC; ``progress`` is 0-1 when the
    backend reports decoding steps."""

    job_id: str
    status: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    worker: str | None
    error_message: str | None
    progress: float | None
    model: str
    voice_id: str
    response_format: str
    retried: bool
    result_url: str | None
    result_bytes: int | None
    duration_s: float | None
    sample_rate: int | None
    warnings: list[str]
    request_id: str | None  # the X-Request-ID of the request that submitted it
    # The seed of a sampled take (drawn at submission when the request sent none):
    # send it back to generate the same audio again.
    seed: int | None = None


class JobCancelled(msgspec.Struct, kw_only=True):
    """What ``DELETE /jobs/{id}`` answers: the status the job has now."""

    job_id: str
    status: str
    detail: str


class QueueStats(msgspec.Struct, kw_only=True):
    """``GET /queue/stats``. The ``*_jobs`` counts are of asynchronous jobs in the
    database; the rest is the scheduler's live view, synchronous requests included."""

    pending_jobs: int
    processing_jobs: int
    completed_jobs: int
    failed_jobs: int
    cancelled_jobs: int
    total_workers: int  # requests that may be generating at once (one batch per backend)
    active_workers: int  # requests generating now
    queued_requests: int  # requests waiting in the scheduler's queue, sync and async
    queue_size: int  # the queue's bound; beyond it requests get 429
    # Decoding loops (backends that batch continuously, such as Dia): rows generating
    # in them now, rows handed over and waiting to join, joins since start, and joins
    # into a loop that was already running other rows.
    loop_rows: int = 0
    loop_waiting: int = 0
    loop_joins: int = 0
    loop_joins_while_running: int = 0
