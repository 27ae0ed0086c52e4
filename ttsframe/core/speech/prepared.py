"""A request before and after its run: ``PreparedSpeech`` and ``GenerationEvent``.

``SpeechService.prepare`` makes a ``PreparedSpeech`` (every 4xx raised first); a
``SpeechRun`` (``core/speech/run.py``) generates it and, when it ends, tells the observers
(generation log, metrics, traces) with one ``GenerationEvent``. Both live here, apart from
the service and the run, so the stream, the planning of chunks (``core/speech/chunking.py``) and
the observers read them without importing the speech path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ttsframe.core.interfaces.speech_types import SpeechRequest
from ttsframe.core.interfaces.synthesis import SynthesisTask
from ttsframe.core.speech.quality import ReplyWatch
from ttsframe.core.voices.voice import Voice

if TYPE_CHECKING:
    from ttsframe.core.interfaces.speech_types import SpeechOutput
    from ttsframe.core.speech.scheduler import Ticket


@dataclass
class PreparedSpeech:
    """Everything decided before the scheduler: the task and how to finish it."""

    task: SynthesisTask
    backend: str
    voice: Voice
    request: SpeechRequest
    warnings: list[str]
    # The text of each generation, in order: ``[task.text]`` unless a long text was split.
    chunks: list[str] = field(default_factory=list)
    # Seconds of silence after each chunk (SSML breaks; empty: none), and before the first.
    pauses: list[float] = field(default_factory=list)
    lead_s: float = 0.0
    # The reply's tempo: the request's speed times an SSML document's <prosody rate>
    # (kept here, not written back, so a stored job read again is not sped up twice).
    speed: float = 1.0
    # Chunks 2..n wait for the first and take its audio and text as their prompt
    # (``chunking.continue_voice``), so the speaker stays the same.
    continued: bool = False
    # The scheduler's token for this request on its way to the scheduler (see
    # ``Scheduler.announce_request``): open batch windows wait for it until its run
    # submits it.
    announcement: int | None = None
    # Whether each take is checked (``core/speech/quality``), and the stream's say in whether
    # a part's take may still be replaced.
    checked: bool = False
    watch: ReplyWatch = field(default_factory=ReplyWatch)


@dataclass
class GenerationEvent:
    """One generation that ended (completed, failed or cancelled), for observers such as
    the generation log. ``job_id`` is set for asynchronous jobs."""

    prepared: PreparedSpeech
    ticket: Ticket
    output: SpeechOutput | None = None
    error: BaseException | None = None
    job_id: str | None = None
    # Encoded bytes a streamed reply produced (its ``output.audio`` is kept only when
    # ``logging.save_outputs`` is on).
    streamed_bytes: int | None = None
