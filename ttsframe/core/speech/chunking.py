"""Long text: how a request's text becomes the generations a backend runs.

Splitting: boundaries are chosen in order of preference: speaker turns, sentence ends,
clause punctuation, then whitespace. Every chunk starts with the speaker tag in force at
that point, so a turn split across chunks keeps its speaker and a tag is never separated
from its text. Planning (below ``plan_chunks``): how much text one generation gets, the
chunks of a plain, captioned or continued text, their tasks, and the prompt a continued
text's later chunks take from the first chunk's audio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.backend import Backend
from ttsframe.core.interfaces.synthesis import Capabilities, SynthesisResult, SynthesisTask
from ttsframe.core.live.segmenter import Segmenter
from ttsframe.core.speech.captions import FORMATS as CAPTION_FORMATS
from ttsframe.core.text.tags import ANY_TAG
from ttsframe.core.voices.voice import AudioPrompt

if TYPE_CHECKING:
    from ttsframe.core.speech.prepared import PreparedSpeech

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:—–-])\s+")  # noqa: RUF001 (em and en dashes end clauses)


def _turns(text: str) -> list[tuple[str | None, str]]:
    """``[S1] a [S2] b`` -> ``[("S1", "a"), ("S2", "b")]``; text before any tag has None."""
    turns: list[tuple[str | None, str]] = []
    pos, speaker = 0, None
    for match in ANY_TAG.finditer(text):
        body = text[pos:match.start()].strip()
        if body:
            turns.append((speaker, body))
        speaker, pos = f"S{int(match.group(1))}", match.end()
    body = text[pos:].strip()
    if body:
        turns.append((speaker, body))
    return turns


def _split_to_fit(piece: str, limit: int) -> list[str]:
    """Split one over-long piece at clause punctuation, then whitespace, then bytes."""
    if len(piece.encode()) <= limit:
        return [piece]
    for pattern in (_CLAUSE_END, re.compile(r"\s+")):
        parts = [p for p in pattern.split(piece) if p]
        if len(parts) > 1:
            return _pack(parts, limit)
    out, current = [], ""
    for char in piece:  # one unbroken "word" longer than the limit
        if len((current + char).encode()) > limit:
            out.append(current)
            current = ""
        current += char
    return [*out, current] if current else out


def _pack(parts: list[str], limit: int) -> list[str]:
    out: list[str] = []
    current = ""
    for part in parts:
        for piece in _split_to_fit(part, limit):
            candidate = f"{current} {piece}" if current else piece
            if len(candidate.encode()) <= limit:
                current = candidate
            else:
                if current:
                    out.append(current)
                current = piece
    if current:
        out.append(current)
    return out


def split_text(text: str, max_bytes: int, *, tag_speakers: bool = True) -> list[str]:
    """Chunks of at most ``max_bytes`` UTF-8 bytes, each with its speaker tag.

    Joining the chunks' words in order gives back every word of ``text``.
    """
    if max_bytes < 16:
        raise ValueError("max_bytes must leave room for a speaker tag and some text")
    chunks: list[str] = []
    current_speaker: str | None = None
    current = ""
    for speaker, body in _turns(text):
        tag = f"[{speaker}] " if speaker and tag_speakers else ""
        budget = max_bytes - len(tag.encode())
        sentences = [s for s in _SENTENCE_END.split(body) if s.strip()]
        for sentence in _pack(sentences, budget):
            piece = f"{tag}{sentence}"
            if current and speaker != current_speaker:
                candidate = f"{current} {piece}"
            elif current:
                candidate = f"{current} {sentence}"
            else:
                candidate = piece
            if current and len(candidate.encode()) <= max_bytes:
                current = candidate
            else:
                if current:
                    chunks.append(current)
                current = piece
            current_speaker = speaker
    if current:
        chunks.append(current)
    return chunks


def chunk_text(text: str, preferred_bytes: int, *, tag_speakers: bool = True) -> list[str]:
    """Chunks of at most ``preferred_bytes``, as few as :func:`split_text` makes, but of
    even size: a greedy split can leave a last chunk of a few words, and a backend like
    Dia speaks such a short text unnaturally (rushed, or padded with noise).

    The smallest limit that still gives the greedy number of chunks is found by bisection
    (the count only grows as the limit shrinks), so the chunks come out about equal.
    """
    chunks = split_text(text, preferred_bytes, tag_speakers=tag_speakers)
    if len(chunks) < 2:
        return chunks
    total = sum(len(c.encode()) for c in chunks)
    low, high = max(16, total // len(chunks)), preferred_bytes
    best = chunks
    while low < high:
        middle = (low + high) // 2
        candidate = split_text(text, middle, tag_speakers=tag_speakers)
        if len(candidate) <= len(chunks):
            best, high = candidate, middle
        else:
            low = middle + 1
    return best


def split_first(text: str, max_bytes: int, *, tag_speakers: bool = True) -> tuple[str, str]:
    """The opening chunk of at most ``max_bytes`` (a sentence or two, as :func:`split_text`
    packs them) and the rest of the text, every word in one of the two ("" when the text
    fits in one chunk). The rest keeps its speaker tags, so it can be split again."""
    first, *rest = split_text(text, max_bytes, tag_speakers=tag_speakers) or [""]
    return first, " ".join(rest)


def speakers_of(text: str) -> list[str]:
    """The speakers of ``text``'s tags, in order of first appearance."""
    return list(dict.fromkeys(f"S{int(m.group(1))}" for m in ANY_TAG.finditer(text)))


def split_first_speakers(text: str, max_bytes: int, most_bytes: int, *,
                         tag_speakers: bool = True) -> tuple[str, str]:
    """:func:`split_first`, but an opening that holds every speaker of ``text`` up to the
    first sentence of the last one to speak, when that fits in ``most_bytes``: a first
    chunk that becomes the voice prompt of the rest must carry each of their voices.
    Otherwise the plain opening (the caller can tell: a speaker is missing from it)."""
    first, rest = split_first(text, max_bytes, tag_speakers=tag_speakers)
    wanted = speakers_of(text)
    if not tag_speakers or set(wanted) <= set(speakers_of(first)):
        return first, rest
    turns = _turns(text)
    have: set[str] = set()
    taken: list[str] = []
    for k, (speaker, body) in enumerate(turns):
        tag = f"[{speaker}] " if speaker else ""
        if speaker is not None:
            have.add(speaker)
        if have >= set(wanted):  # the last voice: its first sentence is enough
            sentences = [p for p in _SENTENCE_END.split(body) if p.strip()]
            taken.append(f"{tag}{sentences[0]}")
            left = " ".join(sentences[1:])
            remainder = [f"{tag}{left}"] if left else []
            remainder += [f"[{s}] {b}" if s else b for s, b in turns[k + 1:]]
            opening = " ".join(taken)
            if len(opening.encode()) > most_bytes:
                break
            return opening, " ".join(remainder)
        taken.append(f"{tag}{body}")
    return first, rest


# -- planning a request's generations ----------------------------------------------------
#
# Everything that decides how a long text becomes generations lives below: how much text
# one generation gets (``chunk_bytes``), the chunks of a plain, captioned or continued
# text (``plan_chunks``), the tasks that generate them (``part_tasks``) and the prompt a
# continued text's later chunks take from its first (``continue_voice``). A backend's own
# limits (Dia's decoder steps) stay with the backend (``Backend.check``).

# No chunk of a long text is made smaller than this (UTF-8 bytes).
MIN_CHUNK_BYTES = 64
# Speech runs at about 13-17 bytes of text per second; planning with fewer errs on the
# long side, so the room a chunk's audio takes in a decoder is not underestimated.
SPEECH_BYTES_PER_SECOND = 12.0
# The first chunk of a text whose later chunks are cloned from it: a sentence or two.
FIRST_CHUNK_BYTES = 128


@dataclass
class ChunkPlan:
    """A request's generations: their text and the silence after each, whether the later
    ones are cloned from the first (``continued``), and what the reply should say."""

    pieces: list[tuple[str, float]]
    continued: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def chunks(self) -> list[str]:
        return [chunk for chunk, _ in self.pieces]

    @property
    def pauses(self) -> list[float]:
        return [pause for _, pause in self.pieces]


def plan_chunks(backend_name: str, backend: Backend, task: SynthesisTask,
                pieces: list[tuple[str, float]], *, captions: str | None,
                continuity: bool, most: int) -> ChunkPlan:
    """The generations of ``task`` (its text is ``pieces`` joined; each piece's silence
    after it): one per chunk of at most ``chunk_bytes``, or one per sentence for
    ``captions``, the later ones cloned from the first where ``continuity`` is wanted and
    the backend can. Raises ``InvalidInput`` when it takes more than ``most`` generations
    or a generation is more than the backend holds, before anything is queued."""
    caps = backend.capabilities
    text = task.text
    transcript = task.prompt_transcript if task.prompt is not None else None
    budget = chunk_bytes(backend_name, caps, task.prompt, transcript)
    plan = ChunkPlan(split_pieces(pieces, budget, caps.speaker_tags))
    if captions is not None:
        if captions not in CAPTION_FORMATS:
            raise InvalidInput(f"captions '{captions}' is not a format; use one "
                               f"of {', '.join(CAPTION_FORMATS)}")
        plan.pieces = []
        for piece, pause in pieces:  # each piece's sentences, its pause after the last
            sentences = sentence_chunks(piece, budget, tag_speakers=caps.speaker_tags)
            plan.pieces += [(s, 0.0) for s in sentences[:-1]] + [(sentences[-1], pause)]
    chunks = plan.chunks
    if len(chunks) > 1 and task.prompt is None and caps.supports_cloning and continuity:
        unable = None
        try:
            planned = (check_continued(backend, task, plan.pieces) if captions is not None
                       else continuity_chunks(backend_name, backend, task, budget, pieces))
        except InvalidInput as exc:  # the backend cannot take this plan
            unable = exc.message
        else:
            if len(planned) <= most or len(chunks) > most:
                plan.pieces, plan.continued = planned, True
                chunks = plan.chunks
                unanchored = [s for s in speakers_of(text) if s not in speakers_of(chunks[0])]
                if unanchored:
                    plan.warnings.append(
                        f"the first chunk, whose audio the later chunks are cloned "
                        f"from, holds no turn of {', '.join(unanchored)} (its first "
                        "words come too late to fit in it), so that voice may change "
                        "between chunks")
            else:
                unable = (f"that would take {len(planned)} generations, more than "
                          f"generation.max_generations ({most})")
        if unable:
            plan.warnings.append(f"each chunk is generated on its own (the voice may "
                                 f"change between chunks): {unable}")
    if len(chunks) > most:
        raise InvalidInput(
            f"text is {len(text.encode())} bytes of UTF-8, which takes {len(chunks)} "
            f"generations of backend '{backend_name}'; the limit is {most} "
            "(generation.max_generations): send a shorter text")
    # The backend's own limits, before anything is queued (an async job is then never
    # accepted only to fail): each generation it will run is checked.
    if not plan.continued:  # (continuity_chunks checked its own)
        for chunk in chunks:
            backend.check(task if chunk == text else msgspec.structs.replace(task, text=chunk))
    return plan


def chunk_bytes(backend: str, caps: Capabilities, prompt: AudioPrompt | None,
                transcript: str | None) -> int:
    """How much text one generation gets: the backend's preferred size, shrunk in
    proportion to the decoder steps an audio prompt takes, and never more than the
    backend holds once the prompt's transcript is prepended."""
    hard = caps.max_text_bytes
    if transcript:
        hard -= len(transcript.encode()) + 1
        if hard < MIN_CHUNK_BYTES:
            raise InvalidInput(
                f"the voice's prompt transcript is {len(transcript.encode())} bytes; "
                f"backend '{backend}' reads at most {caps.max_text_bytes} bytes per "
                "generation including the transcript, which leaves no room for text: "
                "shorten audio_prompt_transcript")
    budget = caps.preferred_text_bytes or hard
    if (prompt is not None and caps.preferred_text_bytes and caps.max_decoder_steps
            and caps.frames_per_second):
        frames = prompt.samples.shape[-1] / prompt.sample_rate * caps.frames_per_second
        budget = int(budget * max(0.0, 1.0 - frames / caps.max_decoder_steps))
    return min(max(budget, MIN_CHUNK_BYTES), hard)


def split_pieces(pieces: list[tuple[str, float]], budget: int,
                 tag_speakers: bool) -> list[tuple[str, float]]:
    """Each piece's text in chunks of at most ``budget`` bytes (split at turns,
    sentences, clauses, words), the piece's silence after its last chunk."""
    planned: list[tuple[str, float]] = []
    for text, pause in pieces:
        parts = (chunk_text(text, budget, tag_speakers=tag_speakers)
                 if len(text.encode()) > budget else [text])
        planned += [(part, 0.0) for part in parts[:-1]] + [(parts[-1], pause)]
    return planned


def sentence_chunks(text: str, budget: int, *, tag_speakers: bool) -> list[str]:
    """A captioned text: one chunk per sentence (``core/live/segmenter.py``'s rules, speaker
    tags carried), a sentence over ``budget`` bytes split as a long text is."""
    segmenter = Segmenter(clause_chars=10**9, max_chars=max(16, budget))
    out: list[str] = []
    for sentence in [*segmenter.feed(text), *segmenter.flush()]:
        if len(sentence.encode()) > budget:
            out += chunk_text(sentence, budget, tag_speakers=tag_speakers)
        else:
            out.append(sentence)
    return out or [text]


def continuity_chunks(backend_name: str, backend: Backend, task: SynthesisTask,
                      budget: int, pieces: list[tuple[str, float]] | None = None,
                      ) -> list[tuple[str, float]]:
    """Chunks for a long text whose later chunks are conditioned on the first.

    The first chunk is short (a sentence or two: ``FIRST_CHUNK_BYTES``, at most half
    the usual size), since its audio becomes a prompt that takes decoder room and its
    text a transcript that takes text room; the rest are sized as for a
    cloned voice whose prompt is that chunk, its audio estimated from its length.
    Each generation is checked with the backend, the later ones behind that estimate.
    ``pieces`` (text, silence after) are kept apart, as SSML's breaks and paragraphs
    ask; the chunks come back with the silence after each.
    """
    caps = backend.capabilities
    pieces = pieces or [(task.text, 0.0)]
    first_bytes = max(MIN_CHUNK_BYTES, min(FIRST_CHUNK_BYTES, budget // 2))
    # The first chunk's audio is the later chunks' prompt: it holds every speaker's
    # first words when they fit in a chunk, so each voice is anchored.
    first, rest = split_first_speakers(pieces[0][0], first_bytes, budget,
                                       tag_speakers=caps.speaker_tags)
    estimate = _estimated_prompt(first, caps)
    later = chunk_bytes(backend_name, caps, estimate, first)
    planned = [(first, 0.0 if rest.strip() else pieces[0][1])]
    if rest.strip():
        planned += split_pieces([(rest, pieces[0][1])], later, caps.speaker_tags)
    planned += split_pieces(pieces[1:], later, caps.speaker_tags)
    replace = msgspec.structs.replace
    backend.check(replace(task, text=first))
    for chunk, _ in planned[1:]:
        backend.check(replace(task, text=chunk, prompt=estimate, prompt_transcript=first))
    return planned


def check_continued(backend: Backend, task: SynthesisTask,
                    planned: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """``planned`` as it is (a captioned text's sentences and pauses), checked with
    the backend as ``continuity_chunks`` checks its own: the later chunks behind the
    first's estimated audio."""
    chunks = [chunk for chunk, _ in planned]
    estimate = _estimated_prompt(chunks[0], backend.capabilities)
    replace = msgspec.structs.replace
    backend.check(replace(task, text=chunks[0]))
    for chunk in chunks[1:]:
        backend.check(replace(task, text=chunk, prompt=estimate, prompt_transcript=chunks[0]))
    return planned


def _estimated_prompt(first: str, caps: Capabilities) -> AudioPrompt:
    """Silence as long as ``first`` takes to say: the first chunk's audio, planned for."""
    return AudioPrompt("first-chunk-estimate",
                       np.zeros(int(speech_seconds(first) * caps.sample_rate), np.float32),
                       caps.sample_rate)


def part_tasks(prepared: PreparedSpeech) -> list[SynthesisTask]:
    """The tasks that generate ``prepared``: its own task, or one per text chunk with
    the same voice, prompt, transcript, parameters (seed included) and cancel token."""
    task = prepared.task
    if len(prepared.chunks) <= 1:
        return [task]
    progress = _PartsProgress(task, len(prepared.chunks))
    # Chunks that can share a batch carry their largest size (the short first chunk
    # of a continued text runs alone, so it keeps its own).
    batched = prepared.chunks[1:] if prepared.continued else prepared.chunks
    largest = max(len(chunk.encode()) for chunk in batched)
    return [
        SynthesisTask(task_id=f"{task.task_id}.{i}", text=chunk, params=task.params,
                      options=task.options,
                      prompt=task.prompt, prompt_transcript=task.prompt_transcript,
                      cancel=task.cancel, on_progress=partial(progress.update, i),
                      voice_id=task.voice_id, language=task.language,
                      text_bytes_hint=None if prepared.continued and i == 0 else largest)
        for i, chunk in enumerate(prepared.chunks)
    ]


def continue_voice(backend: Backend, prepared: PreparedSpeech, later: list[SynthesisTask],
                   first: SynthesisResult) -> None:
    """Give the later chunks the first chunk's audio and text as their prompt and
    transcript, exactly as a cloned voice's, so they speak in the voice the first
    chunk found. Runs when the first chunk is done, before the rest are queued. When its
    audio cannot serve, they run on their own and the reply says why."""
    caps = backend.capabilities
    samples = np.asarray(first.samples, dtype=np.float32)
    seconds = samples.size / first.sample_rate
    prompt = AudioPrompt(f"{prepared.task.task_id}.0", samples, first.sample_rate,
                         transient=True)
    transcript = prepared.chunks[0]
    longest = max(speech_seconds(task.text) for task in later)
    holds = (caps.max_decoder_steps / caps.frames_per_second
             if caps.max_decoder_steps and caps.frames_per_second else None)
    reason = None
    if samples.size == 0:
        reason = "the first chunk's audio is empty"
    elif first.info.get("budget_limited"):
        reason = "the first chunk's audio was cut short, so it does not match its text"
    elif holds is not None and seconds + longest > holds:
        reason = (f"the first chunk's audio ({seconds:.1f} s) leaves the model too little "
                  "room for the next chunks")
    else:
        try:
            for task in later:
                backend.check(msgspec.structs.replace(task, prompt=prompt,
                                                      prompt_transcript=transcript))
        except InvalidInput as exc:
            reason = exc.message
    if reason is not None:
        prepared.task.notes.append(f"the chunks after the first were generated on their "
                                   f"own (the voice may change between chunks): {reason}")
        return
    for task in later:
        task.prompt, task.prompt_transcript = prompt, transcript


class _PartsProgress:
    """Progress of a split request: the mean of its parts' progress, out of 1000."""

    def __init__(self, task: SynthesisTask, parts: int) -> None:
        self.task = task
        self.done = [0.0] * parts

    def update(self, index: int, done: int, total: int) -> None:
        self.done[index] = min(done / total, 1.0) if total else 0.0
        if self.task.on_progress is not None:
            self.task.on_progress(round(1000 * sum(self.done) / len(self.done)), 1000)


def speech_seconds(text: str) -> float:
    """About how long ``text`` takes to speak, on the long side."""
    return len(text.encode()) / SPEECH_BYTES_PER_SECOND
