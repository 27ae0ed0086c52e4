"""The testing kit's fake backend does what its knobs say (docs/plugin-testing.md, "Fake backend").

The backend contract itself is checked for each preset in test_contracts_builtin.py; the
server's use of it is what the rest of the suite runs on.
"""

from __future__ import annotations

import re
import subprocess
import sys

import msgspec
import numpy as np
import pytest

from tests.audio_checks import dominant_frequency
from tests.server import ROOT
from ttsframe import Cancelled, GenerationParams, InvalidInput, SynthesisTask
from ttsframe.core.errors import ConfigError
from ttsframe.testing import (
    BEEPER,
    STREAMING,
    TONE,
    FakeBackend,
    FakeConfig,
    fake_backend_plugin,
)
from ttsframe.testing.app import app_client, make_services
from ttsframe.testing.fake_backend import beep_pitch, tone_pitch

DOCS = ROOT / "docs"


def task(text: str, task_id: str = "t", **params) -> SynthesisTask:
    return SynthesisTask(task_id=task_id, text=text, params=GenerationParams(**params))


def knobs(config: FakeConfig = BEEPER, **changes) -> FakeConfig:
    return msgspec.structs.replace(config, **changes)


def generate_one(backend: FakeBackend, t: SynthesisTask):
    [result] = backend.generate([t])
    return result


def test_importing_the_kit_loads_neither_torch_nor_pytest():
    """A plugin installed into a test server imports the fake; that server has neither."""
    code = ("import sys; from ttsframe.testing import FakeBackend; "
            "print(sorted({'torch', 'pytest'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_beeper_says_one_beep_per_word_at_the_word_s_pitch():
    backend = FakeBackend()
    samples = generate_one(backend, task("[S1] low high")).samples
    assert samples.dtype == np.float32
    assert len(samples) == 3 * 3200  # 0.2 s per word at 16 kHz
    for i, word in enumerate(["[S1]", "low", "high"]):
        share = samples[i * 3200:(i + 1) * 3200]
        beep, gap = share[:1920], share[1920:]
        assert dominant_frequency(beep, 16000) == pytest.approx(beep_pitch(word), abs=2)
        assert not gap.any()  # silence after each beep


def test_length_follows_the_unit():
    text = "héllo wörld"  # 11 characters, 13 UTF-8 bytes, 2 words
    for unit, count in (("char", 11), ("byte", 13), ("word", 2)):
        backend = FakeBackend(knobs(TONE, length_unit=unit, seconds_per_unit=0.05))
        assert len(generate_one(backend, task(text)).samples) == int(count * 0.05 * 24000)


def test_tone_pitch_follows_the_text():
    backend = FakeBackend(TONE)
    for text in ("[S1] One.", "[S1] Another text entirely."):
        samples = generate_one(backend, task(text)).samples
        assert dominant_frequency(samples, 24000) == pytest.approx(tone_pitch(text), abs=2)


def test_audio_is_deterministic_per_text_and_with_seeded_per_seed():
    plain, seeded = FakeBackend(STREAMING), FakeBackend(knobs(STREAMING, seeded=True))
    same = [generate_one(plain, task("[S1] Same words.", seed=s)).samples for s in (1, 2)]
    assert np.array_equal(same[0], same[1])  # the seed is ignored unless seeded
    other = generate_one(plain, task("[S1] Other words.")).samples
    n = min(len(same[0]), len(other))
    assert abs(np.corrcoef(same[0][:n], other[:n])[0, 1]) < 0.5
    one, again, two = (generate_one(seeded, task("[S1] Same words.", seed=s)).samples
                       for s in (1, 1, 2))
    assert np.array_equal(one, again)
    assert len(one) == len(two) and not np.array_equal(one, two)
    assert not np.array_equal(one, same[0])


def test_streaming_sends_each_step_s_share_then_returns_the_whole():
    backend = FakeBackend(knobs(STREAMING, steps=5))
    pieces, progress = [], []
    t = task("[S1] Streamed in parts.")
    t.on_audio = pieces.append
    t.on_progress = lambda done, total: progress.append((done, total))
    result = generate_one(backend, t)
    assert len(pieces) == 5 and progress == [(i, 5) for i in range(1, 6)]
    assert np.array_equal(np.concatenate(pieces), result.samples)
    assert result.notes == ["note from 1-task batch"]

    quiet = FakeBackend(knobs(STREAMING, streaming=False))
    t = task("[S1] Streamed in parts.")
    t.on_audio = pieces.append
    before = len(pieces)
    assert np.array_equal(generate_one(quiet, t).samples, result.samples)
    assert len(pieces) == before and not quiet.capabilities.supports_streaming


def test_slow_text_takes_slow_factor_times_the_steps():
    backend = FakeBackend(knobs(steps=3, slow_factor=7))
    totals = []
    t = task("[S1] This is (slow).")
    t.on_progress = lambda done, total: totals.append(total)
    generate_one(backend, t)
    assert len(totals) == 21 and set(totals) == {21}


def test_cancelling_stops_at_the_next_step():
    backend = FakeBackend(knobs(steps=100))
    steps = []
    t = task("[S1] Cancel me.")

    def progress(done, total):
        steps.append(done)
        if done == 3:
            t.cancel.cancel("the client went away")

    t.on_progress = progress
    result = generate_one(backend, t)
    assert isinstance(result, Cancelled) and "went away" in str(result)
    assert steps == [1, 2, 3]


def test_failures_on_request():
    backend = FakeBackend(STREAMING, name="pieces")
    streamed = []
    refused, exploded, fine = (task(f"[S1] {x}", task_id=x) for x in
                               ("(refuse)", "(explode)", "fine"))
    refused.on_audio = lambda samples: streamed.append("refused")
    exploded.on_audio = lambda samples: streamed.append("exploded")
    results = backend.generate([refused, exploded, fine])
    assert isinstance(results[0], InvalidInput)
    assert str(results[0]) == "pieces backend refuses this text"
    assert isinstance(results[1], RuntimeError)
    assert str(results[1]) == "pieces backend was asked to fail"
    assert streamed == ["exploded"] * STREAMING.steps  # refused before any audio
    assert results[2].samples.size and backend.texts() == [
        ["[S1] (refuse)", "[S1] (explode)", "[S1] fine"]]
    with pytest.raises(RuntimeError, match="no weights"):
        FakeBackend(knobs(fail_load="no weights")).load()


def test_capabilities_and_batch_keys_follow_the_knobs():
    caps = FakeBackend(STREAMING).capabilities
    assert (caps.sample_rate, caps.max_text_bytes, caps.preferred_text_bytes) == (24000, 1024,
                                                                                  200)
    assert caps.supports_cloning and caps.supports_streaming and caps.supports_batching
    beeper = FakeBackend()
    assert not beeper.capabilities.supports_batching
    assert beeper.batch_key(task("a", "1")) != beeper.batch_key(task("a", "2"))
    tone = FakeBackend(TONE)
    assert tone.batch_key(task("a", "1", temperature=1.0)) == \
        tone.batch_key(task("b", "2", temperature=1.5))
    spy = FakeBackend(knobs(sound="silence", speaker_tags=False, languages=("en", "de")))
    assert spy.capabilities.languages == ("en", "de") and not spy.capabilities.speaker_tags
    silent = generate_one(spy, task("[S1] Not a sound.")).samples
    assert len(silent) == 4 * 3200 and not silent.any()
    assert [t.text for t in spy.tasks] == ["[S1] Not a sound."]
    pieces = FakeBackend(STREAMING)
    assert pieces.batch_key(task("a", "1", temperature=1.0)) != \
        pieces.batch_key(task("a", "2", temperature=1.5))
    assert pieces.batch_key(task("a", "1", temperature=1.0)) == \
        pieces.batch_key(task("b", "2", temperature=1.0))


def test_the_plugin_s_config_section_overrides_its_knobs(tmp_path):
    plugin = fake_backend_plugin("quick", TONE, steps=3)
    services = make_services(tmp_path / "a", {"generation": {"default_backend": "quick"},
                                              "plugins": {"mine": {"sample_rate": 8000}}},
                             plugins={"mine": plugin})
    config = services.backends["quick"].config
    assert (config.sample_rate, config.steps, config.sound) == (8000, 3, "tone")
    with app_client(services) as client:
        r = client.post("/generate", json={"text": "Quick.", "response_format": "pcm"})
        assert r.status_code == 200 and r.headers["x-model"] == "quick"
        assert len(r.content) == 2 * int(len("[S1] Quick.") * 0.01 * 8000)
    with pytest.raises(ConfigError, match=r"unknown config key 'plugins\.mine\.bogus'"):
        make_services(tmp_path / "b", {"plugins": {"mine": {"bogus": 1}}},
                      plugins={"mine": fake_backend_plugin("quick", TONE)})
    with pytest.raises(ConfigError, match=r"invalid value for 'plugins\.mine\.steps'"):
        make_services(tmp_path / "c", {"plugins": {"mine": {"steps": 0}}},
                      plugins={"mine": fake_backend_plugin("quick", TONE)})


def test_the_documented_example_passes(tmp_path):
    """The fake backend's example in the plugin docs runs as an author's test file."""
    section = next(text.split("## Fake backend", 1)[1]
                   for text in (page.read_text() for page in sorted(DOCS.rglob("*.md")))
                   if "## Fake backend" in text)
    example = re.search(r"^```python\n(.*?)^```$", section, re.M | re.S).group(1)
    (tmp_path / "test_example.py").write_text(example)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_example.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
