"""``[cluster]`` settings, the serve flags that set them, and what crosses to a replica.
These run in the main suite, without a Ray cluster."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from ttsframe.cli import _serve_overrides, build_parser
from ttsframe.cluster.wire import (
    decode_outcome,
    encode_outcome,
    payload_fields,
    prompt_key,
    to_payload,
)
from ttsframe.core.config.settings import load_settings
from ttsframe.core.errors import ConfigError, GenerationFailed, InvalidInput
from ttsframe.core.interfaces.speech_types import GenerationParams
from ttsframe.core.interfaces.synthesis import SynthesisResult, SynthesisTask
from ttsframe.core.voices.voice import AudioPrompt
from ttsframe.plugins.dia.planning import DiaOptions


def test_flags_set_the_cluster_keys(tmp_path):
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[cluster]\nengine = "local"\nreplicas = 1\ncpus_per_replica = 2\n')
    args = build_parser().parse_args(["serve", "--cluster", "ray", "--ray-address", "auto",
                                      "--replicas", "3"])
    settings = load_settings(str(cfg), environ={}, overrides=_serve_overrides(args))
    assert settings.cluster.engine == "ray"
    assert settings.cluster.address == "auto"
    assert settings.cluster.replicas == 3
    assert settings.cluster.cpus_per_replica == 2  # from the file
    assert settings.cluster.gpus_per_replica is None  # decided from the cluster's GPUs


def test_defaults_and_bad_values(tmp_path):
    settings = load_settings(None, environ={})
    assert settings.cluster.engine == "local" and settings.cluster.replicas == 1
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[cluster]\nengine = "k8s"\n')
    with pytest.raises(ConfigError, match=r"'cluster\.engine'.*'local', 'ray'"):
        load_settings(str(cfg), environ={})
    cfg.write_text("[cluster]\nreplicas = 0\n")
    with pytest.raises(ConfigError, match=r"'cluster\.replicas'"):
        load_settings(str(cfg), environ={})


def test_local_engine_never_imports_ray(tmp_path):
    code = ("import sys; from tests.conftest import make_services; import pathlib; "
            f"make_services(pathlib.Path({str(tmp_path)!r})); "
            "assert 'ray' not in sys.modules, 'ray was imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr


def test_payload_carries_the_task_but_not_its_callbacks():
    prompt = AudioPrompt("p", np.linspace(-0.5, 0.5, 441, dtype=np.float32), 44100)
    task = SynthesisTask(task_id="t1", text="[S1] Hi.", params=GenerationParams(seed=4),
                         options=DiaOptions(max_tokens=300, cfg_scale=2.0),
                         prompt=prompt, prompt_transcript="[S1] Me.", voice_id="v",
                         text_bytes_hint=12)
    task.on_audio = lambda samples: None
    key = prompt_key(prompt)
    sent = to_payload(task, send_prompt=True, key=key)
    cached = to_payload(task, send_prompt=False, key=key)
    assert sent.prompt is prompt and cached.prompt is None and cached.prompt_key == key
    assert sent.stream and not sent.progress and sent.params.seed == 4
    # The backend's options cross the wire (Ray pickles the payload) and come back whole.
    arrived = pickle.loads(pickle.dumps(cached))
    rebuilt = SynthesisTask(**payload_fields(arrived, None))
    assert rebuilt.options == DiaOptions(max_tokens=300, cfg_scale=2.0)
    # The same audio under another id is the same prompt; other audio is not.
    assert prompt_key(AudioPrompt("other", prompt.samples.copy(), 44100)) == key
    assert prompt_key(AudioPrompt("p", prompt.samples * 0.5, 44100)) != key


def test_outcomes_keep_their_kind():
    result = SynthesisResult(samples=np.zeros(3, np.float32), sample_rate=44100)
    assert decode_outcome(encode_outcome(result)) is result
    bad = decode_outcome(encode_outcome(InvalidInput("temperature must be above 0")))
    assert isinstance(bad, InvalidInput) and bad.message == "temperature must be above 0"
    crash = decode_outcome(encode_outcome(ValueError("boom")))
    assert isinstance(crash, GenerationFailed) and "ValueError: boom" in crash.message
