"""Dia streams audio during generation on the real transformers path (tiny checkpoint):
what it streams is the audio it would have returned, early, for every format and for
long text; a client that hangs up frees the worker."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from litestar.testing import TestClient  # noqa: E402

from tests.audio_checks import decode  # noqa: E402
from tests.conftest import make_services  # noqa: E402
from tests.dia_fixtures import count_codec_encodes, dia_options, ok  # noqa: E402
from tests.server import ServerProcess  # noqa: E402
from tests.test_streaming import aligned_correlation  # noqa: E402
from ttsframe.core.errors import Cancelled  # noqa: E402
from ttsframe.core.interfaces.speech_types import GenerationParams  # noqa: E402
from ttsframe.core.interfaces.synthesis import SynthesisTask  # noqa: E402
from ttsframe.core.voices.voice import AudioPrompt  # noqa: E402
from ttsframe.http.app import create_app  # noqa: E402
from ttsframe.plugins.dia import DiaConfig  # noqa: E402
from ttsframe.plugins.dia.backend import DiaBackend  # noqa: E402
from ttsframe.plugins.dia.planning import DiaOptions  # noqa: E402
from ttsframe.plugins.dia.prompt_cache import PromptCache  # noqa: E402
from ttsframe.plugins.dia.tiny import write_tiny_checkpoint  # noqa: E402
from ttsframe.testing.waiting import eventually  # noqa: E402

pytest_plugins = ["tests.dia_fixtures"]

HOP = 512
# Window decodes equal one whole decode up to float rounding in the codec's convolutions.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def endless_model(tmp_path_factory) -> Path:
    """A tiny checkpoint that never ends speech itself: max_tokens decides the length
    (the default tiny model often stops after a few frames when given a prompt)."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("dia") / "endless", eos_scale=0.0)


@pytest.fixture(scope="module")
def endless_backend(endless_model):
    backend = DiaBackend(DiaConfig(model=str(endless_model), device="cpu", cpu_threads=1))
    backend.load()
    yield backend
    backend.close()


def task(text: str, *, stream: bool, prompt: AudioPrompt | None = None, **params):
    pieces: list[np.ndarray] = []
    options = dia_options(params)
    t = SynthesisTask(task_id=f"{text}-{stream}", text=text,
                      params=GenerationParams(greedy=True, **params), options=options,
                      prompt=prompt,
                      prompt_transcript="[S1] The prompt says this." if prompt else None)
    if stream:
        t.on_audio = pieces.append
    return t, pieces


def noise_prompt(seconds: float) -> AudioPrompt:
    rng = np.random.default_rng(1)
    return AudioPrompt("noise", (rng.standard_normal(int(seconds * 44100)) * 0.1)
                       .astype(np.float32), 44100)


@pytest.mark.parametrize("prompt", [None, noise_prompt(0.8)], ids=["plain", "cloned"])
def test_streamed_audio_is_the_whole_decode(endless_backend, prompt):
    plain, _ = task("[S1] Streaming is the same audio.", stream=False, prompt=prompt,
                    max_tokens=300)
    streamed, pieces = task("[S1] Streaming is the same audio.", stream=True, prompt=prompt,
                            max_tokens=300)
    (want,) = endless_backend.generate([plain])
    (got,) = endless_backend.generate([streamed])
    want, got = ok(want), ok(got)
    assert len(pieces) > 5
    joined = np.concatenate(pieces)
    assert np.array_equal(joined, got.samples)  # the result is what was streamed
    assert joined.size == want.samples.size == got.tokens * HOP
    assert got.tokens == want.tokens > 200
    assert np.abs(joined - want.samples).max() < TOLERANCE


def test_streaming_rows_in_a_batch_ending_at_different_steps(tiny_eos_backend):
    texts = ["[S1] hi there. [S1] more", "[S2] a longer text here to check padding",
             "[S1] third"]
    singles = [ok(tiny_eos_backend.generate([task(t, stream=False, max_tokens=300)[0]])[0])
               for t in texts]
    made = [task(t, stream=i != 1, max_tokens=300) for i, t in enumerate(texts)]
    results = tiny_eos_backend.generate([t for t, _ in made])
    assert len({r.samples.size for r in singles}) > 1  # rows really end apart
    for (t, pieces), result, single in zip(made, results, singles, strict=True):
        result = ok(result)
        assert np.abs(result.samples - single.samples).max() < TOLERANCE
        if t.on_audio is not None:
            assert np.array_equal(np.concatenate(pieces), result.samples)
        else:
            assert np.array_equal(result.samples, single.samples)  # not streamed: exact


def test_first_audio_comes_after_a_small_part_of_the_steps(endless_backend):
    t, pieces = task("[S1] Early audio please.", stream=True, max_tokens=600)
    steps: list[int] = []
    first: list[int] = []
    t.on_progress = lambda step, total: steps.append(step)
    t.on_audio = lambda samples: (first or first.append(max(steps, default=0)),
                                  pieces.append(samples))
    ok(endless_backend.generate([t])[0])
    # 16 frames + 10 of right context + 15 of codebook delay: before step 48 of 600.
    assert first and first[0] <= 48
    assert len(pieces) >= 20


def test_cancelling_from_on_audio_stops_generation(endless_backend):
    t, pieces = task("[S1] Stop when the audio starts.", stream=True, max_tokens=2000)
    steps: list[int] = []
    t.on_progress = lambda step, total: steps.append(step)
    t.on_audio = lambda samples: (pieces.append(samples), t.cancel.cancel("client gone"))
    (result,) = endless_backend.generate([t])
    assert isinstance(result, Cancelled) and "client gone" in str(result)
    assert len(pieces) == 1 and max(steps) < 100


def test_prompt_cache_is_bounded_and_keyed_by_content():
    cache = PromptCache(2)
    encoded: list[str] = []

    def encode(samples):
        encoded.append(str(samples[0]))
        return {"codes": samples[0]}

    a, b, c = (np.full(10, v, np.float32) for v in (1.0, 2.0, 3.0))
    for prompt_id, samples in [("a", a), ("a", a), ("b", b), ("c", c), ("a", a)]:
        cache.get(prompt_id, samples, encode)
    assert encoded == ["1.0", "2.0", "3.0", "1.0"]  # "a" was evicted by "c", then re-encoded
    assert len(cache) == 2 and (cache.hits, cache.misses) == (1, 4)
    cache.get("a", b, encode)  # same id, new audio (a re-uploaded prompt): never stale
    assert encoded[-1] == "2.0"


def test_a_cloned_voice_is_encoded_once(tiny_backend, monkeypatch):
    prompt = noise_prompt(0.6)
    encoded = count_codec_encodes(tiny_backend, monkeypatch)
    for text in ("[S1] First use.", "[S1] Second use.", "[S1] Third use."):
        ok(tiny_backend.generate([task(text, stream=False, prompt=prompt, max_tokens=40)[0]])[0])
    assert len(encoded) <= 1


def test_model_and_codec_run_in_inference_mode(tiny_backend):
    seen: dict[str, list[bool]] = {}
    codec = tiny_backend.processor.audio_tokenizer
    patched = {"forward": tiny_backend.model, "decode": codec, "encode": codec}
    originals = {name: getattr(obj, name) for name, obj in patched.items()}

    def spy(name):
        def call(*args, **kwargs):
            seen.setdefault(name, []).append(torch.is_inference_mode_enabled())
            return originals[name](*args, **kwargs)
        return call

    for name, obj in patched.items():
        setattr(obj, name, spy(name))
    try:
        rng = np.random.default_rng(5)
        prompt = AudioPrompt("inference-mode", (rng.standard_normal(30000) * 0.1)
                             .astype(np.float32), 44100)
        streamed = SynthesisTask(task_id="s", text="[S1] Streamed.", prompt=prompt,
                                 prompt_transcript="[S1] Hi.",
                                 params=GenerationParams(greedy=True),
                                 options=DiaOptions(max_tokens=120))
        streamed.on_audio = lambda samples: None
        plain = SynthesisTask(task_id="p", text="[S1] Plain.",
                              params=GenerationParams(greedy=True),
                              options=DiaOptions(max_tokens=120))
        tiny_backend.generate([streamed])
        tiny_backend.generate([plain])
    finally:
        for name, obj in patched.items():
            delattr(obj, name)
    assert set(seen) == {"forward", "decode", "encode"}
    assert all(all(flags) for flags in seen.values()), seen


# ----------------------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def dia_client(tmp_path_factory, endless_model):
    tmp = tmp_path_factory.mktemp("dia-http")
    services = make_services(
        tmp, generation={"default_backend": "dia", "voice_store": "builtin"},
        plugins={"dia": {"enabled": True, "model": str(endless_model), "device": "cpu",
                         "cpu_threads": 1}})
    with TestClient(app=create_app(services), timeout=120) as client:
        eventually(lambda: client.get("/health").json()["backends"]["dia"]["state"] != "loading",
                   timeout=120, interval=0.1, message="the Dia backend loaded")
        yield client


BODY = {"text": "[S1] Every format streams the same audio.", "greedy": True,
        "max_tokens": 260}


@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3", "opus", "aac", "flac"])
def test_each_format_streams_the_buffered_audio(dia_client, fmt):
    plain = dia_client.post("/generate", json={**BODY, "response_format": fmt})
    streamed = dia_client.post("/generate", json={**BODY, "response_format": fmt,
                                                  "stream": True})
    assert plain.status_code == streamed.status_code == 200, (plain.text, streamed.text)
    rate = int(plain.headers["x-sample-rate"])
    a, rate_a, _ = decode(plain.content, fmt, pcm_rate=rate)
    b, rate_b, _ = decode(streamed.content, fmt, pcm_rate=rate)
    assert rate_a == rate_b
    seconds = float(plain.headers["x-audio-duration"])
    if fmt in ("wav", "pcm", "flac"):
        assert len(a) == len(b)
        assert np.abs(a - b).max() <= 2 / 32768  # 16-bit rounding of ~1e-5 differences
    else:  # codec delay and padding differ between a whole file and a stream
        assert abs(len(b) / rate_b - seconds) < 0.1
        assert aligned_correlation(b, a) > 0.95


def test_long_text_streams_chunk_after_chunk(dia_client):
    text = " ".join(f"[S{1 + i % 2}] Line {i} of a long dialogue goes here." for i in range(16))
    body = {"text": text, "greedy": True, "max_tokens": 120, "response_format": "wav"}
    plain = dia_client.post("/generate", json=body)
    streamed = dia_client.post("/generate", json={**body, "stream": True})
    chunks = int(plain.headers["x-text-chunks"])
    assert chunks >= 3 and streamed.headers["x-text-chunks"] == str(chunks)
    a, _, _ = decode(plain.content, "wav")
    b, _, _ = decode(streamed.content, "wav")
    # Each chunk makes 120 - 16 frames; joins overlap by 10 ms (441 samples).
    assert len(a) == len(b) == chunks * (120 - 16) * HOP - (chunks - 1) * 441
    assert np.abs(a - b).max() <= 2 / 32768


# ----------------------------------------------------------------------------- real server


def test_disconnect_frees_the_worker(tmp_path, endless_model):
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text(f'[generation]\nvoice_store = "builtin"\n[plugins.dia]\n'
                   f'model = "{endless_model}"\ndevice = "cpu"\ncpu_threads = 1\n')
    long_body = {"text": "[S1] Talk for a long time.", "greedy": True, "max_tokens": 800,
                 "stream": True}
    with ServerProcess(cfg) as srv:
        with httpx.Client(base_url=srv.url, timeout=60) as c, \
                c.stream("POST", "/generate", json=long_body) as r:
            assert r.status_code == 200
            next(r.iter_raw())  # audio is flowing; hang up
        short = srv.client.post("/generate", json={"text": "[S1] Next.", "greedy": True,
                                                   "max_tokens": 100})
        assert short.status_code == 200
        assert short.headers["x-generated-tokens"] == str(100 - 16)

        # The hung-up stream is logged once its generation has stopped, with how far
        # it got: counted in decoding steps, so a busy machine does not change the test.
        def both_logged() -> list[dict] | None:
            rows = srv.client.get("/logs").json()["logs"]
            return rows if len(rows) == 2 else None

        short_log, hung_up = eventually(both_logged, message="both generations logged")
        assert (short_log["status"], hung_up["status"]) == ("completed", "cancelled")
        steps = re.match(r"cancelled after (\d+) of (\d+) decoding steps: ",
                         hung_up["error"] or "")
        assert steps, hung_up["error"]
        done, planned = int(steps[1]), int(steps[2])
        assert planned == 800 and done < planned / 2, (done, planned)
        assert hung_up["generation_s"] is not None


def test_chunks_of_one_text_share_dias_automatic_max_tokens(tiny_backend):
    short = SynthesisTask(task_id="a", text="[S1] Short chunk.", params=GenerationParams(),
                          text_bytes_hint=240)
    long = SynthesisTask(task_id="b", text="[S1] " + "A much longer chunk of text. " * 8,
                         params=GenerationParams(), text_bytes_hint=240)
    assert tiny_backend.batch_key(short) == tiny_backend.batch_key(long)
    alone = SynthesisTask(task_id="c", text="[S1] Short chunk.", params=GenerationParams())
    assert tiny_backend._plan(alone)[0].max_new_tokens < tiny_backend._plan(short)[0].max_new_tokens
