"""Dia's decoding loop: rows joining and leaving between steps get their solo codes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from tests.dia_fixtures import dia_options, ok
from ttsframe.core.errors import Cancelled
from ttsframe.core.interfaces.synthesis import GenerationParams, SynthesisTask
from ttsframe.core.voices.voice import AudioPrompt
from ttsframe.plugins.dia.loop import DecodingLoop, pick_joiners

pytest_plugins = ["tests.dia_fixtures"]


def task(text: str, *, prompt: AudioPrompt | None = None, **params) -> SynthesisTask:
    options = dia_options(params)
    return SynthesisTask(task_id=f"{text}-{id(params)}", text=text,
                         params=GenerationParams(**params), options=options, prompt=prompt,
                         prompt_transcript="[S1] Prompt words." if prompt else None)


def noise_prompt(seconds: float, seed: int = 0) -> AudioPrompt:
    rng = np.random.default_rng(seed)
    return AudioPrompt(f"noise{seed}", (rng.standard_normal(int(seconds * 44100)) * 0.1)
                       .astype(np.float32), 44100)


def solo(backend, t: SynthesisTask) -> np.ndarray:
    (out,) = backend.generate_codes([t])
    return ok(out).codes


def run_schedule(backend, joins: list[tuple[int, SynthesisTask]]) -> dict[str, np.ndarray]:
    """Drive one decoding loop: each task joins before step ``k`` of the loop (a row
    per step at most, as the schedule says); returns every task's codes."""
    loop = backend._new_loop()
    pending = sorted(joins, key=lambda j: j[0])
    out: dict[str, np.ndarray] = {}
    step = 0
    with torch.inference_mode():
        while pending or len(loop):
            joining = []
            while pending and pending[0][0] <= step:
                _, t = pending.pop(0)
                plan, notes = backend._plan(t)
                row = backend._prepare(0, t, notes)
                row.seed = t.params.seed
                joining.append(backend._loop_row(loop, row, plan))
            for done in loop.step(joining):
                out[done.task.task_id] = ok(backend._row_result(done)).codes
            step += 1
    return out


LONG = "[S1] A long running row that keeps the loop busy for a while."


@pytest.mark.parametrize("k", [1, 3, 16, 29, 60, 95])
def test_a_greedy_row_joining_at_step_k_gets_its_solo_codes(tiny_backend, k):
    first = task(LONG, greedy=True, max_tokens=120)
    joiner = task("[S2] Short one.", greedy=True, max_tokens=60)
    got = run_schedule(tiny_backend, [(0, first), (k, joiner)])
    assert np.array_equal(got[first.task_id], solo(tiny_backend, first))
    assert np.array_equal(got[joiner.task_id], solo(tiny_backend, joiner))


@pytest.mark.parametrize("k", [2, 40, 90])
def test_rows_with_prompts_and_mixed_parameters_join_anywhere(tiny_backend, k):
    """Prefixes longer and shorter than the running rows' (padding on either side),
    texts of other lengths, and every sampling parameter different per row."""
    rows = [
        (0, task(LONG, temperature=1.2, seed=11, max_tokens=140)),
        (1, task("[S1] Cloned.", prompt=noise_prompt(0.6), greedy=True, max_tokens=100)),
        (k, task("[S2] Sampled cooler, with a different filter and guidance.",
                 temperature=0.8, top_p=0.9, top_k=30, cfg_scale=2.0, seed=5,
                 max_tokens=70)),
        (k + 3, task("[S1] Another voice.", prompt=noise_prompt(0.3, seed=2),
                     temperature=1.5, top_k=20, cfg_scale=1.0, seed=9, max_tokens=90)),
    ]
    got = run_schedule(tiny_backend, rows)
    for _, t in rows:
        assert np.array_equal(got[t.task_id], solo(tiny_backend, t)), t.text


def test_rows_leaving_before_and_after_their_mates_and_joining_after_them(tiny_eos_backend):
    """Rows that end on their own EOS at different steps; later rows join a loop whose
    cache lost rows (and its common padding) in between."""
    texts = ["[S1] hi there. [S1] more", "[S2] a longer text here to check padding",
             "[S1] third", "[S2] fourth row joins late", "[S1] fifth"]
    rows = [(at, task(text, greedy=True, max_tokens=300))
            for at, text in zip([0, 0, 5, 40, 41], texts, strict=True)]
    rows.append((7, task("[S2] sampled too", temperature=1.3, seed=3, max_tokens=300)))
    got = run_schedule(tiny_eos_backend, rows)
    lengths = []
    for _, t in rows:
        want = solo(tiny_eos_backend, t)
        assert np.array_equal(got[t.task_id], want), t.text
        lengths.append(want.shape[0])
    assert len(set(lengths)) > 2 and max(lengths) < 300 - 16


def test_the_loop_matches_transformers_generate(tiny_backend):
    """The loop against transformers' own generate (the torch.compile path) on one
    batch: greedy and seeded, with and without a prompt."""
    import dataclasses

    for params in ({"greedy": True}, {"temperature": 1.1, "seed": 4}):
        tasks = [task("[S1] One.", max_tokens=80, **params),
                 task("[S2] Two, longer text.", prompt=noise_prompt(0.4), max_tokens=80,
                      **params)]
        plan, _ = tiny_backend._plan(tasks[0])
        rows = []
        for i, t in enumerate(tasks):
            row = tiny_backend._prepare(i, t, [])
            row.seed = t.params.seed
            rows.append(row)
        with torch.inference_mode():
            via_generate = {i: ok(r).codes for i, r in tiny_backend._run_generate(
                rows, dataclasses.replace(plan, compile=False))}
        for i, t in enumerate(tasks):
            assert np.array_equal(via_generate[i], solo(tiny_backend, t))


class ScriptedFeed:
    """A TaskFeed handing tasks over on given calls of ``take`` (one per step)."""

    def __init__(self, script: dict[int, list[SynthesisTask]]) -> None:
        self.script, self.calls, self.answers = dict(script), 0, {}
        self.order: list[str] = []
        self.most_taken = 0
        self.expected = sum(len(v) for v in script.values())

    @property
    def closed(self) -> bool:
        return len(self.answers) == self.expected

    def take(self, limit: int, *, block: bool) -> list[SynthesisTask]:
        if block and self.script and self.calls not in self.script:
            self.calls = min(self.script)  # idle: the next arrival comes now
        tasks = self.script.pop(self.calls, [])
        self.calls += 1
        self.script.update({self.calls: tasks[limit:]} if tasks[limit:] else {})
        self.most_taken = max(self.most_taken, len(tasks[:limit]))
        return tasks[:limit]

    def done(self, task, outcome) -> None:
        self.answers[task.task_id] = outcome
        self.order.append(task.task_id)


def test_serve_answers_each_task_as_it_ends(tiny_backend):
    long = task(LONG, greedy=True, max_tokens=200)
    short = task("[S2] Quick.", greedy=True, max_tokens=40)
    bad = task("   ", greedy=True)
    feed = ScriptedFeed({0: [long], 10: [short, bad]})
    tiny_backend.serve(feed)
    assert feed.order[0] == bad.task_id and feed.order[1] == short.task_id
    assert "empty" in str(feed.answers[bad.task_id])
    for t in (long, short):
        (alone,) = tiny_backend.generate([t])
        got = ok(feed.answers[t.task_id])
        assert got.tokens == alone.tokens
        np.testing.assert_array_equal(got.samples, alone.samples)
    assert ok(feed.answers[short.task_id]).info["batch_size"] == 2
    stats = tiny_backend.loop_stats()
    assert stats["rows"] == 0 and stats["joins_while_running"] >= 1


def test_a_cancelled_row_leaves_at_once_and_its_mate_keeps_going(tiny_backend):
    keep = task(LONG, greedy=True, max_tokens=150)
    stop = task("[S2] Cancelled soon.", greedy=True, max_tokens=1000)
    steps: list[int] = []

    def progress(step, total):
        steps.append(step)
        if step >= 32:
            stop.cancel.cancel("client went away")

    stop.on_progress = progress
    feed = ScriptedFeed({0: [keep, stop]})
    tiny_backend.serve(feed)
    assert feed.order == [stop.task_id, keep.task_id]
    assert isinstance(feed.answers[stop.task_id], Cancelled)
    assert max(steps) < 60
    (alone,) = tiny_backend.generate([keep])
    assert ok(feed.answers[keep.task_id]).tokens == alone.tokens


def test_the_loop_holds_at_most_max_batch_size_rows(tiny_model_dir):
    from ttsframe.plugins.dia import DiaConfig
    from ttsframe.plugins.dia.backend import DiaBackend

    backend = DiaBackend(DiaConfig(model=str(tiny_model_dir), device="cpu", cpu_threads=1,
                                   max_batch_size=2))
    backend.load()
    tasks = [task(f"[S1] Row {n}.", greedy=True, max_tokens=40) for n in range(5)]
    feed = ScriptedFeed({0: tasks})
    seen: list[int] = []
    step = DecodingLoop.step

    def counting_step(self, joining):
        seen.append(len(self) + len(joining))
        return step(self, joining)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DecodingLoop, "step", counting_step)
        backend.serve(feed)
    assert max(seen) == 2 and feed.most_taken <= 2
    assert all(not isinstance(feed.answers[t.task_id], BaseException) for t in tasks)
    backend.close()


def test_joiners_are_taken_first_come_first_served_within_the_prefill_budget():
    class Row:
        def __init__(self, start):
            self.start = start

    rows = [Row(900), Row(300), Row(1), Row(1)]
    assert pick_joiners(rows, 8, 1024) == rows[:1]  # the next one would pass the budget
    assert pick_joiners(rows[1:], 8, 1024) == rows[1:]
    assert pick_joiners(rows[1:], 2, 1024) == rows[1:3]  # room
    big = Row(5000)
    assert pick_joiners([big, Row(1)], 8, 1024) == [big]  # always one, when there is room


def test_serve_returns_when_the_feed_closes(tiny_backend):
    feed = ScriptedFeed({})
    thread = threading.Thread(target=tiny_backend.serve, args=(feed,))
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


def test_a_step_that_raises_fails_its_rows_and_the_loop_goes_on(tiny_backend):
    first = task("[S1] In the failing step.", greedy=True, max_tokens=60)
    later = task("[S2] After it.", greedy=True, max_tokens=60)
    feed = ScriptedFeed({0: [first], 3: [later]})
    step, calls = DecodingLoop.step, []

    def failing_once(self, joining):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory, say")
        return step(self, joining)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DecodingLoop, "step", failing_once)
        tiny_backend.serve(feed)
    assert "out of memory, say" in str(feed.answers[first.task_id])
    (alone,) = tiny_backend.generate([later])
    assert ok(feed.answers[later.task_id]).tokens == alone.tokens
