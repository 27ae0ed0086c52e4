"""Long text: split into chunks the backend speaks well, every chunk a task with the
request's voice, prompt and seed, the audio joined with crossfades, nothing lost."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
from litestar.testing import TestClient

from tests.audio_checks import decode
from tests.conftest import make_services, pieces_plugin
from ttsframe.core import audio_math
from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.speech_types import GenerationParams, SpeechRequest
from ttsframe.core.interfaces.synthesis import Capabilities, SynthesisResult
from ttsframe.core.speech.chunking import chunk_bytes, continue_voice, part_tasks
from ttsframe.core.voices.voice import AudioPrompt, Voice
from ttsframe.http.app import create_app
from ttsframe.testing.fake_backend import FakeBackend, speech_like
from ttsframe.testing.waiting import eventually

TAG = re.compile(r"\[S\d\]")
RATE = 24000


def words(text: str) -> list[str]:
    return TAG.sub(" ", text).split()


def long_dialogue(sentences: int = 60) -> str:
    parts = []
    for i in range(sentences):
        speaker = "[S1]" if (i // 4) % 2 == 0 else "[S2]"
        parts.append(f"{speaker} Sentence {i} talks about item {i * 7} (laughs), then stops.")
    return " ".join(parts)


def pieces_services(tmp_path, *, plugin: dict | None = None, **generation):
    return make_services(
        tmp_path, extra_plugins=(("pieces-plugin", pieces_plugin()),),
        generation={"default_backend": "pieces", "voice_store": "filesystem", **generation},
        plugins={"pieces-plugin": plugin or {}})


def tasks_given(services) -> list:
    return [task for call in services.backends["pieces"].calls for task in call]


def test_every_word_reaches_a_chunk_under_the_preferred_size(tmp_path):
    text = long_dialogue()
    services = pieces_services(tmp_path)
    with TestClient(app=create_app(services)) as client:
        # normalize off: the test follows sentences by their numbers
        r = client.post("/generate", json={"text": text, "voice_id": "alloy", "seed": 5,
                                           "normalize": False})
        assert r.status_code == 200, r.text
    tasks = tasks_given(services)
    chunks = int(r.headers["x-text-chunks"])
    assert chunks == len(tasks) > 5
    for task in tasks:
        assert len(task.text.encode()) <= 200
        assert TAG.match(task.text), task.text  # each chunk starts with its speaker
        assert task.params.seed == 5 and task.voice_id == "alloy"
    ordered = sorted(tasks, key=lambda t: int(t.task_id.rsplit(".", 1)[1]))
    assert words(" ".join(t.text for t in ordered)) == words(text)
    # Turns keep their speaker: a sentence said by S2 is in a chunk under an [S2] tag.
    for task in tasks:
        for tag, body in re.findall(r"(\[S\d\])([^\[]*)", task.text):
            for n in re.findall(r"Sentence (\d+)", body):
                assert tag == ("[S1]" if (int(n) // 4) % 2 == 0 else "[S2]")


def test_chunks_are_joined_with_crossfades(tmp_path):
    text = long_dialogue(30)
    services = pieces_services(tmp_path)
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={"text": text, "response_format": "wav"})
    samples, rate, _ = decode(r.content, "wav")
    tasks = sorted(tasks_given(services), key=lambda t: int(t.task_id.rsplit(".", 1)[1]))
    parts = [services.backends["pieces"].audio_for(t) for t in tasks]
    want = audio_math.crossfade_concat(parts, RATE, 10.0)
    assert rate == RATE and len(tasks) > 1
    assert len(samples) == len(want)
    assert np.abs(samples - want).max() < 1e-4  # 16-bit rounding only
    assert float(r.headers["x-audio-duration"]) == pytest.approx(len(want) / RATE, abs=1e-3)


def test_speed_applies_to_the_joined_chunks(tmp_path):
    """A buffered reply joins the chunks first, then changes the tempo of the whole."""
    services = pieces_services(tmp_path)
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={"text": long_dialogue(12), "speed": 1.5,
                                           "response_format": "wav"})
    assert r.status_code == 200, r.text
    samples, _, _ = decode(r.content, "wav")
    tasks = sorted(tasks_given(services), key=lambda t: int(t.task_id.rsplit(".", 1)[1]))
    parts = [services.backends["pieces"].audio_for(t) for t in tasks]
    want = audio_math.time_stretch(audio_math.crossfade_concat(parts, RATE), RATE, 1.5)
    assert len(tasks) > 1 and len(samples) == len(want)
    assert np.abs(samples - want).max() < 1e-4  # 16-bit rounding only


def test_chunks_may_share_batches_and_progress_covers_them_all(tmp_path):
    services = pieces_services(tmp_path, workers=4, batch_wait_ms=50)
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={"text": long_dialogue(30)})
    calls = services.backends["pieces"].calls
    assert r.status_code == 200
    assert max(len(c) for c in calls) > 1  # chunks of one request batched together
    assert int(r.headers["x-batch-size"]) == max(len(c) for c in calls)


def test_voice_prompt_and_transcript_go_with_every_chunk(tmp_path):
    services = pieces_services(tmp_path)
    store = services.voices
    samples = speech_like("prompt", 2 * 44100, 44100)
    store.save_prompt("narrator", samples, 44100)
    transcript = "[S1] This is how I sound when I read a story aloud."
    store.create_voice(Voice(voice_id="narrator-voice", audio_prompt="narrator",
                             audio_prompt_transcript=transcript, seed=99))
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={"text": long_dialogue(30), "voice_id": "narrator-voice"})
        assert r.status_code == 200, r.text
    tasks = tasks_given(services)
    assert len(tasks) > 1
    for task in tasks:
        assert task.prompt is not None and task.prompt.prompt_id == "narrator"
        assert task.prompt_transcript == transcript
        assert task.params.seed == 99
        # The chunk and the transcript the backend prepends fit its text limit together.
        assert len(task.text.encode()) + len(transcript.encode()) + 1 <= 1024


def test_chunk_budget_rules():
    caps = Capabilities(sample_rate=44100, max_text_bytes=1024, preferred_text_bytes=256,
                        max_decoder_steps=3072, frames_per_second=44100 / 512)
    budget = chunk_bytes
    assert budget("dia", caps, None, None) == 256
    ten_s = AudioPrompt("p", np.zeros(441000, np.float32), 44100)
    # A 10 s prompt takes 861 of 3072 decoder steps: chunks shrink in proportion.
    assert budget("dia", caps, ten_s, "[S1] hi.") == int(256 * (1 - 861.328125 / 3072))
    huge = AudioPrompt("p", np.zeros(44100 * 40, np.float32), 44100)
    assert budget("dia", caps, huge, None) == 64  # never below the minimum
    # Without a preferred size the backend's limit less the transcript is the chunk.
    plain = Capabilities(sample_rate=24000, max_text_bytes=500)
    assert budget("x", plain, ten_s, "a" * 99) == 400
    with pytest.raises(InvalidInput, match="leaves no room for text"):
        budget("x", plain, ten_s, "a" * 470)


def test_text_limit_stays_and_is_configurable(tmp_path):
    services = pieces_services(tmp_path)
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={"text": "word " * 1000})  # 5000 characters
        assert r.status_code == 400
        assert "the limit is 4096 (generation.max_text_chars)" in r.json()["detail"]
    (tmp_path / "more").mkdir()
    services = pieces_services(tmp_path / "more", max_text_chars=8000)
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={"text": "word " * 1000, "response_format": "pcm"})
        assert r.status_code == 200, r.text
    assert sum(len(words(t.text)) for t in tasks_given(services)) == 1000


def test_one_failing_chunk_fails_the_request_and_stops_the_rest(tmp_path):
    services = pieces_services(tmp_path, workers=1,
                               plugin={"step_delay_s": 0.01, "max_batch_size": 1})
    text = "[S1] " + "Fine words here. " * 15 + "This one will (explode) now. " + \
           "More words after it. " * 40
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={"text": text})
        assert r.status_code == 500
        assert "asked to fail" in r.json()["detail"]
        assert client.post("/generate", json={"text": "[S1] Still working."}).status_code == 200
    calls = services.backends["pieces"].calls
    texts = [t.text for call in calls for t in call]
    exploded = next(i for i, t in enumerate(texts) if "(explode)" in t)
    # The parts queued after the failing one were cancelled instead of generated.
    assert len(texts) - 1 <= exploded + 2


def test_async_job_of_a_long_text_and_its_cancellation(tmp_path):
    services = pieces_services(tmp_path, workers=1,
                               plugin={"step_delay_s": 0.02, "max_batch_size": 1})
    with TestClient(app=create_app(services)) as client:
        job = client.post("/generate?async_mode=true",
                          json={"text": long_dialogue(20), "response_format": "wav"}).json()
        info = eventually(lambda: finished(client, job["job_id"]), message="the job completed")
        assert info["status"] == "completed", info
        result = client.get(f"/jobs/{job['job_id']}/result")
        samples, _, _ = decode(result.content, "wav")
        assert len(samples) / RATE == pytest.approx(info["duration_s"], abs=1e-3)

        calls_before = len(services.backends["pieces"].calls)
        job = client.post("/generate?async_mode=true", json={"text": long_dialogue(40)}).json()
        eventually(lambda: client.get(f"/jobs/{job['job_id']}").json()["status"] == "processing",
                   message="the second job started")
        cancelled = client.delete(f"/jobs/{job['job_id']}").json()
        assert cancelled["status"] == "cancelled"
        eventually(lambda: services.scheduler.stats()["running_tasks"] == 0,
                   message="the running part of the cancelled job stopped")
        assert services.scheduler.pending_count == 0
    # Every part of the cancelled job was dropped: at most the running one was generated.
    assert len(services.backends["pieces"].calls) - calls_before <= 2


def finished(client: TestClient, job_id: str) -> dict | None:
    info = client.get(f"/jobs/{job_id}").json()
    return info if info["status"] in ("completed", "failed", "cancelled") else None


def test_prepare_reports_the_chunks_it_will_run(tmp_path):
    services = pieces_services(tmp_path)
    request = SpeechRequest(text=long_dialogue(12), voice_id="alloy")
    prepared = asyncio.run(services.speech.prepare(request))
    tasks = part_tasks(prepared)
    assert [t.text for t in tasks] == prepared.chunks
    assert all(t.cancel is prepared.task.cancel for t in tasks)
    assert words(" ".join(prepared.chunks)) == words(prepared.task.text)
    short = asyncio.run(services.speech.prepare(SpeechRequest(text="[S1] Hi.", voice_id="alloy")))
    assert short.chunks == ["[S1] Hi."]
    assert part_tasks(short) == [short.task]


def test_chunks_carry_their_largest_size_so_dia_estimates_them_alike(tmp_path):
    services = pieces_services(tmp_path)
    prepared = asyncio.run(services.speech.prepare(
        SpeechRequest(text=long_dialogue(12), voice_id="alloy",
                      params=GenerationParams(chunk_continuity=False))))
    tasks = part_tasks(prepared)
    sizes = [len(t.text.encode()) for t in tasks]
    assert len(set(sizes)) > 1
    assert {t.text_bytes_hint for t in tasks} == {max(sizes)}
    # Continued: the short first chunk runs alone with its own estimate; the rest, which
    # run together after it, share theirs.
    prepared = asyncio.run(services.speech.prepare(
        SpeechRequest(text=long_dialogue(12), voice_id="alloy")))
    first, *later = part_tasks(prepared)
    assert prepared.continued and first.text_bytes_hint is None
    assert {t.text_bytes_hint for t in later} == {max(len(t.text.encode()) for t in later)}


def test_joined_result_reports_each_note_once():
    from ttsframe.core.interfaces.synthesis import SynthesisResult
    from ttsframe.core.speech.output_pipeline import OutputPipeline
    from ttsframe.core.speech.service import join_results
    from ttsframe.plugins.encoders import PcmEncoder

    clamp = "max_tokens 10000 was lowered to 3071: the model holds 3072 decoder steps"
    parts = [SynthesisResult(samples=np.full(1000, 0.1 * i, np.float32), sample_rate=RATE,
                             tokens=10, notes=[clamp, f"part {i}"]) for i in range(3)]
    joined = join_results(parts)
    assert joined.notes == [clamp, "part 0", "part 1", "part 2"]
    assert joined.tokens == 30 and joined.info["chunks"] == 3
    # The audio is joined by the reply's pipeline, part by part.
    pipeline = OutputPipeline(PcmEncoder(), RATE, 1.0, parts=3, whole=True)
    assert not b"".join(pipeline.end_part(part.samples) for part in parts)
    assert len(pipeline.finish()) // 2 == 3000 - 2 * 240  # two 10 ms joins at 24 kHz


def continued_calls(services) -> tuple:
    """The first chunk's task and the later ones, as the backend was given them."""
    (first, *alone), *rest = services.backends["pieces"].calls
    assert alone == []  # the first chunk runs on its own, before the others
    return first, [task for call in rest for task in call], rest


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
def test_later_chunks_are_cloned_from_the_first_chunk(tmp_path, stream):
    """A voice without an audio prompt: chunks 2..n get chunk 1's audio as their prompt and
    its text as their transcript (as a cloned voice), and run together in one batch."""
    services = pieces_services(tmp_path, workers=8, batch_wait_ms=50,
                               plugin={"max_batch_size": 8})
    text = long_dialogue(16)
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json={"text": text, "seed": 5, "normalize": False,
                                           "stream": stream,
                                           "response_format": "pcm"})
        assert r.status_code == 200, r.text
    first, later, calls = continued_calls(services)
    assert first.prompt is None and len(first.text.encode()) <= 100  # half the 200 chunk
    assert len(later) >= 2 and len(calls) == 1  # the rest: one batch
    heard = services.backends["pieces"].audio_for(first)  # chunk 1's audio
    for task in later:
        assert task.prompt_transcript == first.text
        assert task.prompt.sample_rate == RATE and np.array_equal(task.prompt.samples, heard)
        assert task.params.seed == 5 and len(task.text.encode()) <= 200
    assert int(r.headers["x-text-chunks"]) == 1 + len(later)
    ordered = [first, *sorted(later, key=lambda t: int(t.task_id.rsplit(".", 1)[1]))]
    assert words(" ".join(t.text for t in ordered)) == words(text)
    samples = np.frombuffer(r.content, "<i2") / 32768
    parts = [services.backends["pieces"].audio_for(t) for t in ordered]
    assert np.abs(samples - audio_math.crossfade_concat(parts, RATE, 10.0)).max() < 1e-3


@pytest.mark.parametrize("config,field,continued", [
    (True, False, False), (False, None, False), (False, True, True)])
def test_chunk_continuity_is_switched_by_config_and_request(tmp_path, config, field,
                                                            continued):
    services = pieces_services(tmp_path, chunk_continuity=config)
    body = {"text": long_dialogue(16)}
    if field is not None:
        body["chunk_continuity"] = field
    with TestClient(app=create_app(services)) as client:
        r = client.post("/generate", json=body)
        assert r.status_code == 200, r.text
        assert "ignored" not in r.headers.get("x-ttsframe-warnings", "")
    tasks = tasks_given(services)
    assert len(tasks) > 2
    prompted = [t for t in tasks if t.prompt is not None]
    assert len(prompted) == (len(tasks) - 1 if continued else 0)
    assert all(t.prompt.transient for t in prompted)


def test_chunk_continuity_changes_at_runtime_through_put_config(tmp_path):
    services = pieces_services(tmp_path)
    with TestClient(app=create_app(services)) as client:
        r = client.put("/config", json={"chunk_continuity": False})
        assert r.status_code == 200, r.text
        assert r.json()["chunk_continuity"] is False
        assert client.post("/generate", json={"text": long_dialogue(16)}).status_code == 200
        assert [t for t in tasks_given(services) if t.prompt is not None] == []
        r = client.put("/config", json={"chunk_continuity": "no"})
        assert r.status_code == 400 and "chunk_continuity" in r.text
    assert "chunk_continuity = false" in (tmp_path / "ttsframe.toml").read_text()


def test_a_first_chunk_that_cannot_be_a_prompt_leaves_the_rest_on_their_own(tmp_path):
    services = pieces_services(tmp_path)
    speech = services.speech
    prepared = asyncio.run(speech.prepare(SpeechRequest(text=long_dialogue(16),
                                                        voice_id="alloy")))
    assert prepared.continued
    _first, *later = part_tasks(prepared)
    good = SynthesisResult(samples=np.full(RATE, 0.1, np.float32), sample_rate=RATE)
    cut = SynthesisResult(samples=good.samples, sample_rate=RATE,
                          info={"budget_limited": True})
    empty = SynthesisResult(samples=np.zeros(0, np.float32), sample_rate=RATE)
    for result, why in ((cut, "cut short"), (empty, "empty")):
        continue_voice(speech.backends[prepared.backend], prepared, later, result)
        assert all(t.prompt is None for t in later)
        assert why in prepared.task.notes[-1] and "generated on their own" in \
            prepared.task.notes[-1]
    continue_voice(speech.backends[prepared.backend], prepared, later, good)
    assert all(t.prompt.samples is good.samples for t in later)
    # Used by this request only: marked so that caches keep it apart from voices' prompts.
    assert all(t.prompt.transient for t in later)


def test_a_first_chunk_too_long_for_the_decoder_is_not_a_prompt(tmp_path, monkeypatch):
    """With a Dia-like decoder (3072 steps at 86 per second, about 35.7 s), a first chunk
    whose audio leaves no room for the next chunks' speech is not used as their prompt."""
    caps = Capabilities(sample_rate=RATE, max_text_bytes=1024, preferred_text_bytes=256,
                        max_decoder_steps=3072, frames_per_second=44100 / 512,
                        supports_cloning=True, speaker_tags=True)
    services = pieces_services(tmp_path)
    speech = services.speech
    monkeypatch.setattr(FakeBackend, "capabilities",
                        property(lambda self: caps))
    prepared = asyncio.run(speech.prepare(SpeechRequest(text=long_dialogue(16),
                                                        voice_id="alloy")))
    first, *later = part_tasks(prepared)
    assert len(first.text.encode()) <= 128
    # Later chunks shrink for the first one's audio, estimated at 12 bytes/s.
    budget = chunk_bytes("pieces", caps, AudioPrompt(
        "p", np.zeros(int(len(first.text.encode()) / 12 * RATE)), RATE), first.text)
    assert budget < 256 and all(len(t.text.encode()) <= budget for t in later)
    longest = max(len(t.text.encode()) for t in later) / 12
    fits = 3072 / (44100 / 512) - longest - 0.5
    for seconds, used in ((fits, True), (fits + 1.0, False)):
        for task in later:
            task.prompt = None
        result = SynthesisResult(samples=np.full(int(seconds * RATE), 0.1, np.float32),
                                 sample_rate=RATE)
        continue_voice(speech.backends[prepared.backend], prepared, later, result)
        assert all((t.prompt is not None) == used for t in later), seconds
    assert "too little room" in prepared.task.notes[-1]
