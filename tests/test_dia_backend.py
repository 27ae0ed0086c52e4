"""DiaBackend generation on the tiny checkpoint, compared with transformers used directly."""

from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.dia_fixtures import dia_options, ok  # noqa: E402
from ttsframe.core.errors import CancelCause, Cancelled, InvalidInput  # noqa: E402
from ttsframe.core.interfaces.speech_types import GenerationParams  # noqa: E402
from ttsframe.core.interfaces.synthesis import SynthesisTask  # noqa: E402
from ttsframe.core.voices.voice import AudioPrompt  # noqa: E402
from ttsframe.plugins.dia.backend import DiaCodes  # noqa: E402

pytest_plugins = ["tests.dia_fixtures"]

HOP = 512
# The reference's temperature 0: argmax with guidance and the CFG filter (the
# checkpoint's guidance_scale 3.0 and top_k 45).
GREEDY = {"do_sample": False}


def make_task(text: str, *, task_id: str | None = None, prompt: AudioPrompt | None = None,
              transcript: str | None = None, **params) -> SynthesisTask:
    options = dia_options(params)
    return SynthesisTask(task_id=task_id or text, text=text, params=GenerationParams(**params),
                         options=options, prompt=prompt, prompt_transcript=transcript)


def noise_prompt(seconds: float, seed: int = 0, rate: int = 44100) -> AudioPrompt:
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(int(seconds * rate)) * 0.1).astype(np.float32)
    return AudioPrompt(prompt_id=f"noise{seed}", samples=samples, sample_rate=rate)


def codes_of(backend, tasks):
    return [ok(out).codes for out in backend.generate_codes(tasks)]


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    """Model and processor loaded the plain transformers way."""
    from transformers import DiaForConditionalGeneration, DiaProcessor

    cwd = os.getcwd()
    os.chdir(tiny_model_dir)  # the saved processor names its codec relative to the model
    try:
        processor = DiaProcessor.from_pretrained(str(tiny_model_dir))
    finally:
        os.chdir(cwd)
    model = DiaForConditionalGeneration.from_pretrained(tiny_model_dir).eval()
    return model, processor


def row_seeded_multinomial(seeds, channels=9):
    """``torch.multinomial`` as the backend's per-row sampling should amount to: row r of
    the batch (``channels`` rows of probabilities) drawn with a generator seeded ``seeds[r]``.
    """
    original = torch.multinomial
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def multinomial(probs, num_samples, **kwargs):
        per_row = probs.view(len(generators), channels, -1)
        return torch.cat([original(per_row[r], num_samples, generator=g)
                          for r, g in enumerate(generators)])

    return multinomial


def reference_run(reference, text, *, prompt=None, transcript=None, max_new=60, seed=None,
                  **generate_kwargs):
    """Cloning as the notes describe it: transcript + text, prompt audio, batch_decode.
    With a seed, plain transformers samples, only its final draw taken from the row's own
    generator (``row_seeded_multinomial``)."""
    model, processor = reference
    if prompt is None:
        inputs = processor(text=[text], padding=True, return_tensors="pt")
        prompt_len = None
    else:
        inputs = processor(text=[transcript + " " + text], audio=[prompt.samples],
                           sampling_rate=44100, padding=True, return_tensors="pt")
        prompt_len = processor.get_audio_prompt_len(inputs["decoder_attention_mask"])
    if seed is None:
        sequences = model.generate(**inputs, max_new_tokens=max_new, **generate_kwargs)
    else:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(torch, "multinomial", row_seeded_multinomial([seed]))
            sequences = model.generate(**inputs, max_new_tokens=max_new, **generate_kwargs)
    audio = processor.batch_decode(sequences, audio_prompt_len=prompt_len)[0].numpy()
    # Frame t of channel c sits at step start + t + delay[c] of the delayed output.
    delay = np.array(model.config.delay_pattern)
    frames = audio.shape[-1] // HOP
    steps = (prompt_len or 1) + np.arange(frames)[:, None] + delay[None, :]
    codes = sequences[0].numpy()[steps, np.arange(len(delay))[None, :]]
    return codes, audio


def test_audio_is_44k_float_and_as_long_as_its_frames(tiny_backend):
    (result,) = tiny_backend.generate([make_task("[S1] Hello there.", greedy=True,
                                                 max_tokens=60)])
    result = ok(result)
    assert result.sample_rate == 44100
    assert result.samples.dtype == np.float32 and result.samples.ndim == 1
    assert result.tokens == result.info["frames"] == 60 - 16  # EOS is forced 16 steps early
    assert result.samples.size == result.tokens * HOP
    assert np.abs(result.samples).max() <= 1.0
    assert np.sqrt(np.mean(result.samples ** 2)) > 0.01
    assert result.info["steps"] == 60
    assert result.info["budget_limited"] is True  # this model never ends speech itself


def test_greedy_is_deterministic(tiny_backend):
    tasks = [make_task("[S1] Same every time.", greedy=True, max_tokens=50)]
    first, second = tiny_backend.generate(tasks)[0], tiny_backend.generate(tasks)[0]
    assert np.array_equal(ok(first).samples, ok(second).samples)
    assert np.array_equal(codes_of(tiny_backend, tasks)[0], codes_of(tiny_backend, tasks)[0])


def test_seed_makes_sampling_reproducible_without_touching_the_global_rng(tiny_backend):
    def run(seed):
        return codes_of(tiny_backend, [make_task("[S1] Seeded.", seed=seed, max_tokens=60)])[0]

    state = torch.get_rng_state()
    assert np.array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))
    assert torch.equal(state, torch.get_rng_state())


def test_sampling_parameters_reach_transformers(tiny_backend, reference):
    params = {"temperature": 1.4, "top_p": 0.9, "top_k": 30}
    ours = codes_of(tiny_backend, [make_task("[S1] Mapped.", seed=11, max_tokens=60,
                                             cfg_scale=2.0, **params)])[0]
    theirs, _ = reference_run(reference, "[S1] Mapped.", seed=11, do_sample=True,
                              guidance_scale=2.0, **params)
    assert np.array_equal(ours, theirs)
    # No parameters: the checkpoint's generation config (1.2, 0.95, 45, CFG 3.0).
    ours = codes_of(tiny_backend, [make_task("[S1] Defaults.", seed=3, max_tokens=60)])[0]
    theirs, _ = reference_run(reference, "[S1] Defaults.", seed=3)
    assert np.array_equal(ours, theirs)
    (result,) = tiny_backend.generate([make_task("[S1] Defaults.", seed=3, max_tokens=60)])
    assert {k: ok(result).info[k] for k in ("temperature", "top_p", "top_k", "cfg_scale")} == {
        "temperature": 1.2, "top_p": 0.95, "top_k": 45, "cfg_scale": 3.0}


def test_cfg_scale_one_still_guides(tiny_backend, reference):
    """The reference guides at every scale: ``cond + 1.0 * (cond - uncond)`` at 1.0, where
    transformers switches guidance off. Compared with transformers' own CFG processor
    run at scale 1.0."""
    from transformers.generation.logits_process import (
        DiaClassifierFreeGuidanceLogitsProcessor as CFG,
    )

    ours = codes_of(tiny_backend, [make_task("[S1] Guided.", seed=9, max_tokens=60,
                                             cfg_scale=1.0)])[0]
    unguided, _ = reference_run(reference, "[S1] Guided.", seed=9, guidance_scale=1.0)
    assert not np.array_equal(ours, unguided)
    original = CFG.__call__

    def at_scale_one(self, input_ids, scores):
        self.guidance_scale = 1.0
        return original(self, input_ids, scores)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CFG, "__call__", at_scale_one)
        guided, _ = reference_run(reference, "[S1] Guided.", seed=9, guidance_scale=2.0)
    assert np.array_equal(ours, guided)


def test_greedy_keeps_guidance_and_the_cfg_filter(tiny_backend, reference):
    """Greedy is the reference's temperature 0: argmax of the CFG-filtered conditional
    logits, not transformers' unguided greedy."""
    task = make_task("[S1] Greedy but guided.", greedy=True, max_tokens=60, cfg_scale=2.5,
                     top_k=20)
    (ours,) = codes_of(tiny_backend, [task])
    guided, _ = reference_run(reference, task.text, do_sample=False, guidance_scale=2.5,
                              top_k=20)
    unguided, _ = reference_run(reference, task.text, do_sample=False, guidance_scale=None)
    assert np.array_equal(ours, guided)
    assert not np.array_equal(ours, unguided)
    (default,) = codes_of(tiny_backend, [make_task(task.text, greedy=True, max_tokens=60)])
    assert np.array_equal(default, reference_run(reference, task.text, **GREEDY)[0])


def test_cloning_matches_transformers(tiny_backend, reference):
    prompt = noise_prompt(0.6)
    transcript = "[S1] This is the prompt speaking."
    text = "[S1] And this is new speech."
    task = make_task(text, prompt=prompt, transcript=transcript, greedy=True, max_tokens=60)
    (codes,) = codes_of(tiny_backend, [task])
    (result,) = tiny_backend.generate([task])
    ref_codes, ref_audio = reference_run(reference, text, prompt=prompt,
                                         transcript=transcript, **GREEDY)
    assert np.array_equal(codes, ref_codes)
    np.testing.assert_allclose(ok(result).samples, ref_audio, atol=1e-6)
    assert result.info["prompt_frames"] == -(-prompt.samples.size // HOP)
    assert result.tokens == 60 - 16  # only audio after the prompt


def test_greedy_batch_with_a_prompt_equals_single_runs(tiny_backend):
    tasks = [make_task("[S1] First row.", greedy=True, max_tokens=60),
             make_task("[S2] The second row is a little longer.", greedy=True, max_tokens=60,
                       prompt=noise_prompt(0.5), transcript="[S1] Prompt words."),
             make_task("[S1] Third.", greedy=True, max_tokens=60)]
    assert len({tiny_backend.batch_key(t) for t in tasks}) == 1
    batch = tiny_backend.generate(tasks)
    assert all(ok(r).info["batch_size"] == 3 for r in batch)
    batch_codes = codes_of(tiny_backend, tasks)
    for task, result, codes in zip(tasks, batch, batch_codes, strict=True):
        (single,) = tiny_backend.generate([task])
        assert np.array_equal(codes, codes_of(tiny_backend, [task])[0])
        assert np.array_equal(ok(result).samples, ok(single).samples)


def test_rows_ending_at_different_steps_match_single_runs(tiny_eos_backend):
    texts = ["[S1] hi there. [S1] more", "[S2] a longer text here to check padding",
             "[S1] third"]
    tasks = [make_task(t, greedy=True, max_tokens=300) for t in texts]
    batch = codes_of(tiny_eos_backend, tasks)
    singles = [codes_of(tiny_eos_backend, [t])[0] for t in tasks]
    for got, want in zip(batch, singles, strict=True):
        assert np.array_equal(got, want)
    lengths = [c.shape[0] for c in batch]
    assert len(set(lengths)) > 1 and max(lengths) < 300 - 16
    ended = tiny_eos_backend.generate(tasks)
    assert [r.info["budget_limited"] for r in ended] == [False, False, False]


def test_cancel_mid_generation_stops_early(tiny_backend):
    seen: list[int] = []
    task = make_task("[S1] Cancel me.", greedy=True, max_tokens=2000)

    def progress(step, total):
        seen.append(step)
        if step >= 32:
            task.cancel.cancel("client went away", CancelCause.CLIENT_DISCONNECT)

    task.on_progress = progress
    (result,) = tiny_backend.generate([task])
    assert isinstance(result, Cancelled)
    assert "client went away" in str(result)
    assert result.cause == CancelCause.CLIENT_DISCONNECT
    assert max(seen) == 32  # stopped at the step it was cancelled, not at 2000


def test_cancelling_one_row_keeps_the_other(tiny_backend):
    keep = make_task("[S1] Keep me.", greedy=True, max_tokens=80)
    drop = make_task("[S1] Drop me.", greedy=True, max_tokens=80)
    gone = make_task("[S1] Already gone.", greedy=True, max_tokens=80)
    gone.cancel.cancel("stopping", CancelCause.SHUTDOWN)
    drop.on_progress = lambda step, total: drop.cancel.cancel() if step >= 16 else None
    kept, dropped, never = tiny_backend.generate([keep, drop, gone])
    assert ok(kept).tokens == 80 - 16
    assert isinstance(dropped, Cancelled) and isinstance(never, Cancelled)
    assert (dropped.cause, never.cause) == (CancelCause.REQUEST, CancelCause.SHUTDOWN)


def test_progress_is_reported_every_few_steps(tiny_backend):
    calls: list[tuple[int, int]] = []
    task = make_task("[S1] Progress.", greedy=True, max_tokens=100)
    task.on_progress = lambda step, total: calls.append((step, total))
    ok(tiny_backend.generate([task])[0])
    assert calls[-1] == (100, 100)
    assert all(total == 100 for _, total in calls)
    assert [s for s, _ in calls] == sorted({s for s, _ in calls})
    assert len(calls) <= 100 // 16 + 2


def test_cancel_from_another_thread(tiny_backend):
    task = make_task("[S1] Stop soon.", greedy=True, max_tokens=3000)
    started = threading.Event()
    seen: list[int] = []

    def progress(step, total):
        seen.append(step)
        started.set()

    task.on_progress = progress
    timer = threading.Thread(target=lambda: started.wait(5) and task.cancel.cancel("stop"))
    timer.start()
    (result,) = tiny_backend.generate([task])
    timer.join()
    assert isinstance(result, Cancelled)
    assert "of 3000 decoding steps" in str(result)
    assert max(seen) < 3000


def test_speech_ending_at_once_gives_empty_audio(tiny_backend):
    empty = DiaCodes(np.zeros((0, 9), np.int64), steps=16, notes=["n"], info={"frames": 0})
    result = tiny_backend._decode(empty)
    assert result.samples.shape == (0,) and result.samples.dtype == np.float32
    assert result.tokens == 0 and result.notes == ["n"]


def test_temperature_below_one_is_honoured(tiny_backend, monkeypatch):
    def sample(temperature):
        (out,) = tiny_backend.generate_codes([make_task("[S1] Cool.", seed=5, max_tokens=60,
                                                        temperature=temperature)])
        return ok(out)

    low, one = sample(0.5), sample(1.0)
    assert low.info["temperature"] == 0.5
    assert not any("temperature" in note for note in low.notes)
    assert not np.array_equal(low.codes, one.codes)  # a clamp to 1.0 would make them equal



def test_max_tokens_guard_and_clamps(tiny_backend):
    (small,) = tiny_backend.generate([make_task("[S1] Tiny.", greedy=True, max_tokens=10)])
    small = ok(small)
    assert any("max_tokens 10 was raised to 32" in note for note in small.notes)
    assert small.tokens == 16 and small.samples.size == 16 * HOP

    plan, notes = tiny_backend._plan(make_task("[S1] Huge.", max_tokens=5000))
    assert plan.max_new_tokens == 3071
    assert any("max_tokens 5000 was lowered to 3071" in note for note in notes)

    auto, notes = tiny_backend._plan(make_task("[S1] " + "word " * 40))
    assert auto.max_new_tokens % 128 == 0 and 256 <= auto.max_new_tokens <= 3071
    assert notes == []


def test_prompt_frames_count_against_the_decoder(tiny_backend):
    frames = 3000
    prompt = AudioPrompt("long", np.full(frames * HOP, 0.01, np.float32), 44100)
    (result,) = tiny_backend.generate([make_task("[S1] After a long prompt.", prompt=prompt,
                                                 transcript="[S1] Long.", greedy=True,
                                                 max_tokens=200)])
    result = ok(result)
    room = 3072 - (frames + 1)
    assert any(f"max_tokens 200 was lowered to {room}" in note for note in result.notes)
    assert result.tokens == room - 16

    too_long = AudioPrompt("too-long", np.zeros(3060 * HOP, np.float32), 44100)
    (failed,) = tiny_backend.generate([make_task("[S1] x", prompt=too_long, greedy=True)])
    assert isinstance(failed, InvalidInput) and "too-long" in str(failed)


def test_bad_input_fails_only_its_row(tiny_backend):
    empty = AudioPrompt("empty", np.zeros(0, np.float32), 44100)
    nan = AudioPrompt("nan", np.full(4096, np.nan, np.float32), 44100)
    results = tiny_backend.generate([
        make_task("[S1] Empty prompt.", prompt=empty, transcript="x", greedy=True,
                  max_tokens=40),
        make_task("[S1] Fine.", greedy=True, max_tokens=40),
        make_task("[S1] NaN prompt.", prompt=nan, transcript="x", greedy=True, max_tokens=40),
        make_task("[S1] " + "a" * 1100, greedy=True, max_tokens=40),
        make_task("[S1] short", prompt=noise_prompt(0.2), transcript="b" * 1020, greedy=True,
                  max_tokens=40),
    ])
    assert isinstance(results[0], InvalidInput) and "'empty'" in str(results[0])
    assert ok(results[1]).tokens == 40 - 16
    assert isinstance(results[2], InvalidInput) and "'nan'" in str(results[2])
    assert isinstance(results[3], InvalidInput) and "1024 bytes" in str(results[3])
    assert isinstance(results[4], InvalidInput) and "transcript" in str(results[4])


def test_prompt_at_another_rate_is_resampled(tiny_backend):
    (result,) = tiny_backend.generate([make_task(
        "[S1] Resampled.", prompt=noise_prompt(0.5, rate=22050), transcript="[S1] Hi.",
        greedy=True, max_tokens=40)])
    result = ok(result)
    assert any("resampled from 22050 Hz" in note for note in result.notes)
    assert result.info["prompt_frames"] == -(-44100 // 2 // HOP)


def test_compile_request_on_cpu_runs_eagerly_with_a_note(tiny_backend):
    (result,) = tiny_backend.generate([make_task("[S1] Compile?", greedy=True, max_tokens=40,
                                                 use_torch_compile=True)])
    result = ok(result)
    assert result.info["compiled"] is False
    assert any("only used on CUDA" in note for note in result.notes)


def test_compile_path_and_its_fallback(tiny_backend, monkeypatch):
    """The static-cache (compile) path gives the eager codes; when it raises, the batch is
    retried eagerly with a note, and compile stays off for the process."""
    task = make_task("[S1] Static cache.", greedy=True, max_tokens=60)
    (eager,) = codes_of(tiny_backend, [task])
    plan_of = tiny_backend._plan
    monkeypatch.setattr(tiny_backend, "_plan", lambda t: (
        dataclasses.replace(plan_of(t)[0], compile=True), plan_of(t)[1]))
    monkeypatch.setattr(tiny_backend, "compile_problem", None)
    (static,) = tiny_backend.generate_codes([task])
    assert ok(static).info["compiled"] is True and np.array_equal(static.codes, eager)

    call = tiny_backend._call

    def broken_compile(kwargs, plan, seeds, *, compile):
        if compile:
            raise RuntimeError("inductor failed")
        return call(kwargs, plan, seeds, compile=compile)

    monkeypatch.setattr(tiny_backend, "_call", broken_compile)
    (fallback,) = tiny_backend.generate_codes([task])
    assert ok(fallback).info["compiled"] is False and np.array_equal(fallback.codes, eager)
    assert "torch.compile failed, so this ran without it" in fallback.notes
    assert "inductor failed" in tiny_backend.compile_problem


def test_batch_key(tiny_backend):
    """Every uncompiled task shares the decoding loop, whatever its parameters."""
    key = tiny_backend.batch_key
    same = key(make_task("[S1] a", temperature=1.3, max_tokens=500))
    assert same == key(make_task("[S2] other text", temperature=1.3, max_tokens=500))
    assert same == key(make_task("[S1] a", temperature=1.4, max_tokens=500))
    assert same == key(make_task("[S1] a", greedy=True, cfg_scale=2.0, max_tokens=600))
    assert key(make_task("a", task_id="1", seed=1)) == key(make_task("b", task_id="2"))
    assert key(make_task("", task_id="bad", temperature=-1)) != same


def test_capabilities_and_description(tiny_backend):
    caps = tiny_backend.capabilities
    assert (caps.sample_rate, caps.max_text_bytes, caps.max_decoder_steps) == (44100, 1024, 3072)
    assert caps.frames_per_second == pytest.approx(44100 / 512)
    assert caps.supports_cloning and caps.supports_batching and caps.speaker_tags
    assert caps.max_batch_size == 8
    facts = tiny_backend.describe()
    assert facts["device"] == "cpu" and facts["dtype"] == "float32"
    assert facts["compile"] == "unavailable (CUDA only)"
    assert {"hits", "misses"} <= set(facts["prompt_cache"])
    assert torch.get_num_threads() == 1  # [plugins.dia] cpu_threads


def test_seeded_sampling_batch_equals_single_runs(tiny_backend):
    """Each sampled row draws from its own seeded stream: a batch of three gives every row
    the codes it gets alone, and a row's seed, not its place in the batch, decides them."""
    texts = ["[S1] First sampled row.", "[S2] The second one is a bit longer.", "[S1] Third."]
    tasks = [make_task(t, task_id=f"r{n}", seed=seed, max_tokens=60, temperature=1.3)
             for n, (t, seed) in enumerate(zip(texts, (11, 22, 33), strict=True))]
    assert len({tiny_backend.batch_key(t) for t in tasks}) == 1
    batch = [ok(out) for out in tiny_backend.generate_codes(tasks)]
    assert [out.info["batch_size"] for out in batch] == [3, 3, 3]
    assert [out.info["seed"] for out in batch] == [11, 22, 33]
    for task, out in zip(tasks, batch, strict=True):
        assert np.array_equal(out.codes, codes_of(tiny_backend, [task])[0])
    # Reordered, and the same text under another seed: still each row's own codes.
    again = codes_of(tiny_backend, tasks[::-1])
    for got, want in zip(again, batch[::-1], strict=True):
        assert np.array_equal(got, want.codes)
    other = make_task(texts[0], task_id="r0-other", seed=44, max_tokens=60, temperature=1.3)
    same, different = codes_of(tiny_backend, [tasks[0], other])
    assert np.array_equal(same, batch[0].codes)
    assert not np.array_equal(same, different)


def test_same_seed_in_one_batch_gives_the_same_codes(tiny_backend):
    twins = [make_task("[S1] Twins.", task_id=f"t{n}", seed=5, max_tokens=60) for n in (1, 2)]
    first, second = codes_of(tiny_backend, twins)
    assert np.array_equal(first, second)
    unseeded = codes_of(tiny_backend, [make_task("[S1] Twins.", task_id=f"u{n}", max_tokens=60)
                                       for n in (1, 2)])
    assert not np.array_equal(unseeded[0], unseeded[1])  # fresh streams differ


def test_low_temperature_and_filters_hold_in_a_batch(tiny_backend):
    """Temperature below 1.0, top_p and top_k reach the per-row sampler in a batch too."""
    params = {"temperature": 0.6, "top_p": 0.8, "top_k": 20, "max_tokens": 60}
    tasks = [make_task("[S1] Cool batch.", task_id="c1", seed=1, **params),
             make_task("[S2] Another cool row.", task_id="c2", seed=2, **params)]
    batch = [ok(out) for out in tiny_backend.generate_codes(tasks)]
    assert all(out.info["batch_size"] == 2 and out.info["temperature"] == 0.6
               for out in batch)
    for task, out in zip(tasks, batch, strict=True):
        assert np.array_equal(out.codes, codes_of(tiny_backend, [task])[0])
    warm = codes_of(tiny_backend, [make_task("[S1] Cool batch.", seed=1,
                                             **{**params, "temperature": 1.0})])[0]
    assert not np.array_equal(batch[0].codes, warm)


def test_builtin_voices_default_requests_share_a_batch(tiny_backend):
    from ttsframe.core.voices.builtin import BUILTIN_VOICES

    voices = {v.voice_id: v for v in BUILTIN_VOICES}
    tasks = [make_task("[S1] Hello.", task_id=name, seed=voices[name].seed)
             for name in ("alloy", "nova")]
    assert tasks[0].params.seed != tasks[1].params.seed
    assert tiny_backend.batch_key(tasks[0]) == tiny_backend.batch_key(tasks[1])


def test_a_budget_that_runs_out_is_always_reported(tiny_backend):
    """The tiny random model never ends speech greedily: a request's own max_tokens runs
    out, and the reply says the speech was cut and what to do."""
    (cut,) = tiny_backend.generate_codes([make_task("[S1] Cut short.", greedy=True,
                                                    max_tokens=60)])
    cut = ok(cut)
    assert cut.info["budget_limited"] is True
    assert any("speech was cut" in n and "larger max_tokens" in n for n in cut.notes)
    (forced,) = tiny_backend.generate_codes([make_task("[S1] Ends early.", greedy=True,
                                                       max_tokens=60)])
    assert ok(forced).codes.shape[0] == 60 - 16


def test_the_automatic_budget_never_cuts_speech(tiny_backend, monkeypatch):
    """Left out, max_tokens is an estimate: a row that uses all of it is generated again
    with twice the steps (the same take, longer), up to what the decoder holds, and the
    reply says so. The estimate is made tiny here so that this text outruns it."""
    from ttsframe.plugins.dia import planning as module

    for name, value in {"AUTO_BYTES_PER_SECOND": 1e9, "AUTO_MARGIN_S": 0.0,
                        "AUTO_BUCKET": 32, "AUTO_MIN_TOKENS": 32}.items():
        monkeypatch.setattr(module, name, value)
    task = make_task("[S1] Auto budget.", greedy=True)
    assert tiny_backend._plan(task)[0].max_new_tokens == 32
    (out,) = tiny_backend.generate_codes([task])
    out = ok(out)
    assert out.info["budget_limited"] is False  # it ended on its own EOS
    assert 64 - 16 < out.codes.shape[0] < out.info["max_new_tokens"] - 16
    assert any(f"automatic max_tokens (32 steps) ran out before the speech ended, so it was "
               f"generated again with {out.info['max_new_tokens']} steps" in n
               for n in out.notes)
    assert not any("speech was cut" in n for n in out.notes)
    # The same take, longer: frames decided before a budget's forced EOS (16 steps before
    # its end, then 15 steps of delayed channels) are those of the longer run.
    (short,) = tiny_backend.generate_codes([make_task(task.text, greedy=True, max_tokens=64)])
    assert np.array_equal(ok(short).codes[:64 - 31], out.codes[:64 - 31])

    # At the decoder's limit there is no more room: the cut is reported with what to do.
    monkeypatch.setattr(tiny_backend, "shape", dataclasses.replace(tiny_backend.shape,
                                                                   max_steps=60))
    (full,) = tiny_backend.generate_codes([task])
    full = ok(full)
    assert full.info["max_new_tokens"] == 59 and full.codes.shape[0] == 59 - 16
    assert any("speech was cut" in n and "all the model's decoder holds" in n
               for n in full.notes)
