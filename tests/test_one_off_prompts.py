"""One-off audio prompts (``AudioPrompt.transient``: a long text's first chunk, which its
later chunks continue from) are kept apart from voices' prompts, in Dia's cache of encoded
prompts and on a Ray replica, so a server speaking many long texts keeps its voices'
prompts; the rows of one batch still share one copy."""

from __future__ import annotations

import asyncio
import pickle

import msgspec
import numpy as np
import pytest

from ttsframe.cluster.replica import Replica
from ttsframe.cluster.wire import ONE_OFF_PROMPTS, PromptAreas, TaskPayload, prompt_key
from ttsframe.core.config.settings import load_settings
from ttsframe.core.interfaces.speech_types import GenerationParams
from ttsframe.core.interfaces.synthesis import SynthesisResult, SynthesisTask
from ttsframe.core.voices.voice import AudioPrompt
from ttsframe.plugins.dia.prompt_cache import ONE_OFF_SIZE, PromptCache
from ttsframe.testing.fake_backend import STREAMING, FakeBackend


def samples(value: float, n: int = 64) -> np.ndarray:
    return np.full(n, value, np.float32)


class CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, audio: np.ndarray) -> dict:
        self.calls.append(float(audio[0]))
        return {"codes": float(audio[0])}


# -- Dia's PromptCache ---------------------------------------------------------------------

def test_one_off_prompts_never_evict_a_voice_prompt():
    cache, encode = PromptCache(2), CountingEncoder()
    voice = samples(0.5)
    cache.get("narrator", voice, encode)
    for i in range(40):  # forty long texts, each with its own first chunk
        cache.get(f"task{i}.0", samples(1.0 + i), encode, transient=True)
    assert cache.get("narrator", voice, encode) == {"codes": 0.5}
    assert encode.calls.count(0.5) == 1  # a hit: not encoded again
    assert (len(cache), cache.hits, cache.misses) == (1, 1, 1)  # voices' figures only
    assert cache.one_off() == {"entries": ONE_OFF_SIZE, "max": ONE_OFF_SIZE, "hits": 0,
                               "misses": 40}


def test_rows_of_one_batch_share_a_one_off_prompt():
    cache, encode = PromptCache(2), CountingEncoder()
    first_chunk = samples(0.25)
    for _ in range(4):  # chunks 2..5 of one long text, one batch
        assert cache.get("t.0", first_chunk, encode, transient=True) == {"codes": 0.25}
    assert encode.calls == [0.25]
    assert cache.one_off()["hits"] == 3 and len(cache) == 0
    # Still shared when no voice prompt is kept at all.
    none_kept, encode = PromptCache(0), CountingEncoder()
    for _ in range(3):
        none_kept.get("t.0", first_chunk, encode, transient=True)
    assert encode.calls == [0.25]


def test_one_off_area_is_least_recently_used():
    cache, encode = PromptCache(2), CountingEncoder()
    kept = samples(7.0)
    cache.get("kept.0", kept, encode, transient=True)
    for i in range(ONE_OFF_SIZE * 3):  # the kept one stays in use between the others
        cache.get(f"t{i}.0", samples(10.0 + i), encode, transient=True)
        cache.get("kept.0", kept, encode, transient=True)
    assert encode.calls.count(7.0) == 1
    cache.clear()
    assert cache.one_off()["entries"] == 0


# -- the Ray path: what a replica keeps and what the API node remembers --------------------

def test_prompt_areas_bound_one_off_keys_and_keep_lasting_ones():
    areas = PromptAreas(lasting=2, one_off=3)
    areas.put("voice", "v", transient=False)
    for i in range(50):
        areas.put(f"once{i}", i, transient=True)
    assert "voice" in areas and areas.get("voice") == "v"
    assert areas.sizes() == (1, 3)
    assert "once49" in areas and "once0" not in areas
    # The same audio as a voice's prompt stays a lasting entry.
    areas.put("voice", "v2", transient=True)
    assert areas.sizes() == (1, 3) and areas.get("voice") == "v"
    areas.clear()
    assert areas.sizes() == (0, 0) and "voice" not in areas


def test_the_mark_travels_to_a_replica():
    once = AudioPrompt("t.0", samples(0.5), 44100, transient=True)
    sent = pickle.loads(pickle.dumps(payload("t.1", once, send=True)))  # as Ray ships it
    assert sent.prompt.transient and sent.prompt.prompt_id == "t.0"
    assert not AudioPrompt("voice", samples(0.5), 44100).transient  # lasting by default


def settings_json(tmp_path) -> bytes:
    cfg = tmp_path / "ttsframe.toml"
    cfg.touch()
    return msgspec.json.encode(load_settings(str(cfg), environ={}))


def payload(task_id: str, prompt: AudioPrompt, *, send: bool) -> TaskPayload:
    return TaskPayload(task_id=task_id, text="[S1] Hi.", params=GenerationParams(),
                       prompt_key=prompt_key(prompt), prompt=prompt if send else None)


def test_replica_keeps_a_voice_prompt_while_one_off_prompts_pass(tmp_path):
    replica = Replica(settings_json(tmp_path), "fake")
    voice = AudioPrompt("narrator", samples(0.5), 44100)
    assert replica._prompt(payload("v1", voice, send=True)) is voice
    for i in range(100):  # more than the replica keeps of any kind
        once = AudioPrompt(f"t{i}.0", samples(1.0 + i), 44100, transient=True)
        for row in range(3):  # the rows of one batch: sent with each, kept once
            assert replica._prompt(payload(f"t{i}.{row + 1}", once, send=True)) is once
    assert replica._prompt(payload("v2", voice, send=False)) is voice
    assert replica._prompts.sizes() == (1, ONE_OFF_PROMPTS)


class _Remote:
    """``actor.method.remote`` / ``.options(...).remote`` of an in-process Replica."""

    def __init__(self, fn, streaming: bool = False) -> None:
        self.fn, self.streaming = fn, streaming

    def options(self, **_: object) -> _Remote:
        return _Remote(self.fn, streaming=True)

    def remote(self, *args):
        if not self.streaming:
            return self.fn(*args)
        return _stream(self.fn(*args))


async def _stream(gen):
    while True:
        item = await asyncio.to_thread(next, gen, None)
        if item is None:
            return
        yield _ready(item)


async def _ready(item):
    return item


class InProcessActor:
    def __init__(self, replica: Replica) -> None:
        self.generate = _Remote(replica.generate)
        self.cancel = _Remote(replica.cancel)


def test_pool_ships_a_voice_prompt_once_and_forgets_one_off_keys(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from ttsframe.cluster.pool import RayWorkerPool

    settings_bytes = settings_json(tmp_path)
    settings = msgspec.json.decode(settings_bytes, type=type(load_settings(None, environ={})))
    backend = FakeBackend(STREAMING)
    pool = RayWorkerPool("fake", backend, settings, cluster=None)
    replica = Replica(settings_bytes, "fake")
    replica.backend = backend
    slot = pool.slots_list[0]
    slot.actor, slot.state = InProcessActor(replica), "ready"
    voice = AudioPrompt("narrator", samples(0.5, 1600), 16000)

    def task(task_id: str, prompt: AudioPrompt) -> SynthesisTask:
        return SynthesisTask(task_id=task_id, text="[S1] Some words.",
                             params=GenerationParams(), prompt=prompt,
                             prompt_transcript="[S1] Before.")

    def call(tasks: list[SynthesisTask]) -> list:
        results = asyncio.run(pool._call(slot, tasks, set()))
        assert all(isinstance(r, SynthesisResult) for r in results), results
        return results

    call([task("v1", voice)])
    assert slot.prompts_sent == 1
    for i in range(80):  # eighty long texts: chunks 2..4 of each in one batch
        once = AudioPrompt(f"t{i}.0", samples(1.0 + i, 1600), 16000, transient=True)
        call([task(f"t{i}.{row}", once) for row in (1, 2, 3)])
        assert slot.prompts_sent == 2 + i  # shipped once for its batch's three rows
    assert slot.prompts.sizes() == (1, ONE_OFF_PROMPTS)
    call([task("v2", voice)])
    assert slot.prompts_sent == 81  # the voice's prompt was still on the replica
    assert backend.tasks[-1].prompt.prompt_id == "narrator"
