"""The quality stage: every take of every chunk is checked between the backend and the
output pipeline, and a chunk that fails is generated again.

The scheduler hands each reviewed ticket's result to :meth:`QualityStage.review` before
its future completes (``Ticket.review``), so buffered replies, streams, jobs and every
route see only the kept take. A retry is an ordinary task on the same queue (it batches
like any other), with the same cancel token, and the seed ``retry_seed(seed, attempt)``:
a stored job run again replays the same attempts. What happened is in the kept result's
``info["quality"]`` and, when a take was retried or kept despite a check, its notes.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import msgspec
import numpy as np

from ttsframe.core.config.settings import QualityConfig, Settings
from ttsframe.core.errors import Cancelled, QueueFull, ShuttingDown
from ttsframe.core.interfaces.synthesis import SynthesisResult, SynthesisTask
from ttsframe.core.speech.quality.checks import (
    BuiltinChecks,
    CheckResult,
    QualityCheck,
    Take,
    spoken_chars,
    voiced_seconds,
)

if TYPE_CHECKING:
    from ttsframe.core.interfaces.backend import Backend
    from ttsframe.core.speech.scheduler import Scheduler, Ticket

log = logging.getLogger("ttsframe.quality")

# A retry's seed: the request's seed plus this much per attempt, modulo 2**32.
RETRY_SEED_STEP = 1_000_003
# A calibrated voice's bounds: its median seconds per character, divided and multiplied
# by this.
CALIBRATION_SPREAD = 1.8
CALIBRATION_KEPT = 50


def retry_seed(seed: int | None, attempt: int) -> int:
    """The seed of a chunk's ``attempt`` (0: the request's own): ``(seed + attempt x
    1000003) mod 2**32``, so sending that seed reproduces a retried take."""
    return ((seed or 0) + attempt * RETRY_SEED_STEP) % 2**32


@dataclass
class Verdict:
    """One take's checks."""

    attempt: int
    seed: int | None
    results: list[CheckResult]

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def score(self) -> float:
        return min((r.score for r in self.results), default=1.0)

    def reasons(self) -> str:
        return "; ".join(f"{r.check}: {r.reason}" for r in self.failed)

    def record(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "seed": self.seed, "passed": self.passed,
                "score": round(self.score, 3),
                "failed": {r.check: r.reason for r in self.failed}}


class ReplyWatch:
    """Whether a part's take may still be replaced by a retry: always in a whole reply;
    in a stream only while none of the part's audio has been sent (the stream sets
    ``claim`` to its own, which also holds the part's audio back until it is settled)."""

    def __init__(self) -> None:
        self.claim: Callable[[int], bool] = lambda index: True


@dataclass
class PartReview:
    """What the review of one part needs to know about its request."""

    backend: str
    index: int
    parts: int
    watch: ReplyWatch
    submitted: float = field(default_factory=time.monotonic)


class QualityStage:
    """The built-in checks and the plugins' (``quality_checks``), the retries, and each
    voice's calibration from its accepted takes."""

    def __init__(self, settings: Settings, backends: dict[str, Backend],
                 extra: dict[str, QualityCheck] | None = None) -> None:
        self.settings = settings
        self.backends = backends
        self.builtin = BuiltinChecks(lambda: self.settings.quality)
        self.extra = dict(extra or {})
        self._rates: dict[tuple[str, str], deque[float]] = defaultdict(
            lambda: deque(maxlen=CALIBRATION_KEPT))
        # Metrics: called with (backend, check) per failed check, (backend,) per retry.
        self.on_failed: Callable[[str, str], None] | None = None
        self.on_retry: Callable[[str], None] | None = None
        self.scheduler: Scheduler | None = None  # set by ``build_services``

    @property
    def config(self) -> QualityConfig:
        return self.settings.quality

    def wanted(self, asked: bool | None) -> bool:
        """Whether a request's takes are checked: its ``quality``, else ``[quality]``."""
        return self.config.enabled if asked is None else asked

    # -- one take ----------------------------------------------------------------------

    def speech_rate(self, backend: str, language: str | None,
                    voice_id: str | None) -> tuple[float, float] | None:
        """Seconds per character for a take: ``[quality] speech_rates`` for the backend
        and language, else the backend's own, narrowed by the voice's calibration."""
        rates = self.config.speech_rates
        lang = (language or "").lower().split("-")[0].split("_")[0]
        bounds = rates.get(f"{backend}:{lang}") or rates.get(backend)
        rate = (tuple(bounds[:2]) if bounds and len(bounds) >= 2
                else self.backends[backend].capabilities.speech_rate)
        if rate is None:
            return None
        known = self._rates.get((backend, voice_id or ""))
        if known and self.config.calibration_takes and len(known) >= self.config.calibration_takes:
            median = statistics.median(known)
            rate = (max(rate[0], median / CALIBRATION_SPREAD),
                    min(rate[1], median * CALIBRATION_SPREAD))
        return rate  # type: ignore[return-value]

    def stream_limit(self, backend: str, task: SynthesisTask, rate: int) -> int | None:
        """The most samples (at ``rate``) of ``task``'s take a stream sends: what the
        rate check's slowest rate allows for its text; None when it is not checked."""
        config = self.config
        bounds = self.speech_rate(backend, task.language, task.voice_id)
        chars = spoken_chars(task.text)
        if not config.check_rate or bounds is None or chars < config.rate_min_chars:
            return None
        return int((chars * bounds[1] + config.rate_slack_s) * rate)

    def judge(self, take: Take) -> list[CheckResult]:
        """Every check on one take; a plugin's check that raises is logged and skipped."""
        results = []
        for name, check in [*((c.__name__, c) for c in self.builtin.checks()),
                            *self.extra.items()]:
            try:
                result = check(take)
            except Exception:
                log.exception("quality check %s failed on a take", name)
                continue
            if result is not None:
                results.append(result)
        return results

    def take_of(self, backend: str, task: SynthesisTask, result: SynthesisResult) -> Take:
        return Take(text=task.text, samples=np.asarray(result.samples, np.float32),
                    sample_rate=result.sample_rate, backend=backend, voice_id=task.voice_id,
                    language=task.language, info=result.info,
                    speech_rate=self.speech_rate(backend, task.language, task.voice_id))

    def _verdict(self, backend: str, task: SynthesisTask, result: SynthesisResult,
                 attempt: int) -> Verdict:
        take = self.take_of(backend, task, result)
        verdict = Verdict(attempt, task.params.seed, self.judge(take))
        for failed in verdict.failed:
            if self.on_failed is not None:
                self.on_failed(backend, failed.check)
        return verdict

    def _accepted(self, backend: str, task: SynthesisTask, result: SynthesisResult) -> None:
        """A take that passed: its speaking rate calibrates its voice."""
        take = self.take_of(backend, task, result)
        if take.chars >= self.config.rate_min_chars and take.seconds:
            voiced = voiced_seconds(take.samples, take.sample_rate, self.config.silence_dbfs)
            if voiced:
                self._rates[(backend, task.voice_id or "")].append(voiced / take.chars)

    # -- a part of a request -----------------------------------------------------------

    def reviewer(self, review: PartReview):
        """``Ticket.review`` for one part."""
        async def run(ticket: Ticket, result: SynthesisResult) -> SynthesisResult:
            return await self.review(review, ticket, result)
        return run

    async def review(self, part: PartReview, ticket: Ticket,
                     result: SynthesisResult) -> SynthesisResult:
        """The take to keep for ``ticket``'s task: the first that passes every check,
        else the best-scoring of at most ``1 + max_retries`` takes."""
        task = ticket.task
        takes: list[tuple[Verdict, SynthesisResult, SynthesisTask]] = []
        stopped = None
        attempt = 0
        while True:
            verdict = await anyio.to_thread.run_sync(self._verdict, part.backend, task,
                                                     result, attempt)
            takes.append((verdict, result, task))
            if verdict.passed:
                break
            stopped = self._no_retry(part, ticket, attempt)
            if stopped:
                break
            attempt += 1
            retry = msgspec.structs.replace(
                task, task_id=f"{ticket.task.task_id}.q{attempt}", attempt=attempt,
                params=msgspec.structs.replace(
                    task.params, seed=retry_seed(ticket.task.params.seed, attempt)),
                on_audio=None, on_progress=None, notes=[])
            try:
                assert self.scheduler is not None
                retried = self.scheduler.submit(part.backend, retry)
            except QueueFull:
                stopped = "the queue was full"
                break
            if self.on_retry is not None:
                self.on_retry(part.backend)
            ticket.retry = retried
            try:
                result = await asyncio.shield(retried.future)
            except asyncio.CancelledError:
                self.scheduler.cancel(retry.task_id, "server stopping")
                raise
            except Exception as exc:
                if isinstance(exc, Cancelled | ShuttingDown) or task.cancel.cancelled:
                    raise
                stopped = f"the retry failed ({getattr(exc, 'message', exc)})"
                break
            finally:
                ticket.retry = None
            task = retry
        return self._keep(part, takes, stopped)

    def _no_retry(self, part: PartReview, ticket: Ticket, attempt: int) -> str | None:
        """Why a failed take is not generated again, or None."""
        config = self.config
        if ticket.task.cancel.cancelled:
            return "the request was cancelled"
        if attempt >= config.max_retries:
            return (f"all {attempt + 1} takes failed" if attempt
                    else "retries are off (quality.max_retries = 0)")
        if ticket.task.params.greedy:
            return "greedy decoding would give the same take again"
        if time.monotonic() - part.submitted > config.retry_budget_s:
            return f"the retry time budget ({config.retry_budget_s:g} s) was spent"
        if not part.watch.claim(part.index):
            return "its audio had already been streamed"
        return None

    def _keep(self, part: PartReview,
              takes: list[tuple[Verdict, SynthesisResult, SynthesisTask]],
              stopped: str | None) -> SynthesisResult:
        verdict, kept, task = takes[-1]
        if not verdict.passed:
            verdict, kept, task = max(takes, key=lambda t: (t[0].score, -t[0].attempt))
        what = f"chunk {part.index + 1}" if part.parts > 1 else "the take"
        notes = list(kept.notes)
        first = takes[0][0]
        if len(takes) > 1:
            seeds = ", ".join(str(v.seed) for v, _, _ in takes[1:])
            notes.append(f"quality: {what} failed a check ({first.reasons()}) and was "
                         f"generated again (seeds {seeds}); attempt {verdict.attempt + 1} "
                         "was kept")
        if not verdict.passed:
            notes.append(f"quality: {what} was kept despite a failed check "
                         f"({verdict.reasons()}): {stopped}")
        else:
            self._accepted(part.backend, task, kept)
        info = {**kept.info, "quality": {
            "attempts": len(takes), "kept": verdict.attempt, "passed": verdict.passed,
            "takes": [v.record() for v, _, _ in takes],
            **({"not_retried": stopped} if stopped else {})}}
        return msgspec.structs.replace(kept, notes=notes, info=info)


def quality_summary(results: list[SynthesisResult]) -> dict[str, Any] | None:
    """The reply's quality in short, from its parts' results: takes generated, chunks
    retried, chunks kept despite a failed check and the checks that failed (None: the
    takes were not checked)."""
    reports = [r.info.get("quality") for r in results]
    if not reports or any(q is None for q in reports):
        return None
    reasons = sorted({check for q in reports for t in q["takes"] for check in t["failed"]})
    return {"attempts": sum(q["attempts"] for q in reports),
            "retried": sum(q["attempts"] > 1 for q in reports),
            "failed": sum(not q["passed"] for q in reports),
            "reasons": reasons}


def quality_header(summary: dict[str, Any] | None) -> str:
    """``X-Quality``: ``attempts=3; retried=1; failed=0; reasons=silence`` (``off``:
    not checked)."""
    if summary is None:
        return "off"
    text = (f"attempts={summary['attempts']}; retried={summary['retried']}; "
            f"failed={summary['failed']}")
    if summary["reasons"]:
        text += f"; reasons={','.join(summary['reasons'])}"
    return text
