"""Loading the Dia backend through the real resolution and transformers code paths."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import types

import msgspec
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from ttsframe.core.interfaces.plugins import PluginContext
from ttsframe.core.interfaces.speech_types import GenerationParams
from ttsframe.core.interfaces.synthesis import SynthesisTask
from ttsframe.plugins import dia
from ttsframe.plugins.dia import DiaConfig
from ttsframe.plugins.dia import backend as dia_backend
from ttsframe.plugins.dia.backend import DiaBackend
from ttsframe.plugins.dia.loading import ModelUnavailable
from ttsframe.plugins.dia.planning import DiaOptions

pytest_plugins = ["tests.dia_fixtures"]

GREEDY = GenerationParams(greedy=True)
SHORT = DiaOptions(max_tokens=40)


@pytest.fixture
def offline_cache(monkeypatch, tmp_path):
    """An empty hub cache with downloads off, read from the environment at load time."""
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def speak(backend: DiaBackend):
    (result,) = backend.generate([SynthesisTask(task_id="t", text="[S1] hi.", params=GREEDY,
                                                options=SHORT)])
    assert not isinstance(result, BaseException), result
    return result


def test_plain_directory_loads_by_path_and_after_a_move(tmp_path, tiny_model_dir):
    first = tmp_path / "a" / "dia"
    shutil.copytree(tiny_model_dir, first)
    backend = DiaBackend(DiaConfig(model=str(first)))
    backend.load()
    before = speak(backend)
    assert backend.describe()["codec_dir"] == str(first / "codec")

    moved = tmp_path / "b" / "elsewhere"
    shutil.move(first, moved)
    backend = DiaBackend(DiaConfig(model=str(moved)))
    backend.load()
    assert backend.describe()["codec_dir"] == str(moved / "codec")
    assert (speak(backend).samples == before.samples).all()


def test_hub_cache_loads_by_repo_id_offline(monkeypatch, tiny_hub_cache):
    monkeypatch.setenv("HF_HUB_CACHE", str(tiny_hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = DiaBackend(DiaConfig())  # the default: nari-labs/Dia-1.6B-0626
    started = time.perf_counter()
    backend.load()
    assert time.perf_counter() - started < 20
    facts = backend.describe()
    assert facts["model"] == "nari-labs/Dia-1.6B-0626"
    assert "models--nari-labs--Dia-1.6B-0626" in facts["model_dir"]
    assert facts["codec"] == "descript/dac_44khz"
    assert "models--descript--dac_44khz" in facts["codec_dir"]
    assert speak(backend).sample_rate == 44100


def test_missing_model_offline_names_the_fix(offline_cache):
    backend = DiaBackend(DiaConfig())
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable) as err:
        backend.load()
    assert time.perf_counter() - started < 5
    message = str(err.value)
    assert "'nari-labs/Dia-1.6B-0626' is not in the Hugging Face cache" in message
    assert "hf download nari-labs/Dia-1.6B-0626" in message
    assert "hf download descript/dac_44khz" in message
    assert "HF_HUB_OFFLINE" in message and "local directory" in message


def test_missing_model_with_downloads_allowed_fails_fast(monkeypatch, tmp_path):
    """Without HF_HUB_OFFLINE the loader asks the hub once, bounded by hub_timeout_s: here
    the hub is unreachable (or, online, the repo does not exist); either way it fails
    quickly instead of retrying for ~40 s."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    backend = DiaBackend(DiaConfig(model="ttsframe-tests/no-such-dia-model", hub_timeout_s=5))
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable) as err:
        backend.load()
    assert time.perf_counter() - started < 40
    message = str(err.value)
    assert "ttsframe-tests/no-such-dia-model" in message
    assert ("unreachable" in message and "local directory" in message) or "check" in message


def test_local_files_only_never_downloads(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    backend = DiaBackend(DiaConfig(local_files_only=True))
    with pytest.raises(ModelUnavailable, match="local_files_only is set"):
        backend.load()


def test_missing_codec_is_named(monkeypatch, tmp_path, tiny_hub_cache):
    cache = tmp_path / "cache"
    shutil.copytree(tiny_hub_cache, cache)
    shutil.rmtree(cache / "models--descript--dac_44khz")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as err:
        DiaBackend(DiaConfig()).load()
    message = str(err.value)
    assert "codec 'descript/dac_44khz'" in message
    assert "hf download descript/dac_44khz" in message
    assert "hf download nari-labs" not in message


def test_codec_override_and_bad_directories(tmp_path, tiny_model_dir):
    backend = DiaBackend(DiaConfig(model=str(tiny_model_dir),
                                   codec=str(tiny_model_dir / "codec")))
    backend.load()
    assert backend.describe()["codec_dir"] == str(tiny_model_dir / "codec")

    with pytest.raises(ModelUnavailable, match="does not exist"):
        DiaBackend(DiaConfig(model=str(tmp_path / "nowhere"))).load()
    with pytest.raises(ModelUnavailable, match=r"no config\.json"):
        DiaBackend(DiaConfig(model=str(tmp_path))).load()


def test_load_without_torch_names_the_extra(monkeypatch):
    monkeypatch.setattr(dia_backend, "torch", None)
    with pytest.raises(RuntimeError, match=r"pip install 'ttsframe\[dia\]'"):
        DiaBackend(DiaConfig()).load()


def test_plugin_import_stays_light():
    code = ("import sys, ttsframe.plugins.dia as d; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules; "
            "print(d.DiaConfig().model)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "nari-labs/Dia-1.6B-0626"


def test_registration_config_and_factory(tmp_path, tiny_model_dir):
    registered = {}
    dia.register_backends(lambda name, factory, config=None: registered.update(
        {name: (factory, config)}))
    factory, config_type = registered["dia"]
    assert config_type is DiaConfig
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"modle": "x"}, DiaConfig)
    assert msgspec.convert({}, DiaConfig) == DiaConfig()

    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny")
    settings = types.SimpleNamespace(base_dir=tmp_path)
    config = msgspec.convert({"model": "./models/tiny", "device": "cpu"}, DiaConfig)
    backend = factory(PluginContext(plugin="dia", config=config, data_dir=tmp_path,
                                    settings=settings))
    assert isinstance(backend, DiaBackend)
    assert backend.config.model == str(tmp_path / "models" / "tiny")
    hub = factory(PluginContext(plugin="dia", config=DiaConfig(), data_dir=tmp_path,
                                settings=settings))
    assert hub.config.model == "nari-labs/Dia-1.6B-0626"


def test_tiny_checkpoint_is_deterministic_per_seed(tmp_path):
    from ttsframe.plugins.dia.tiny import write_tiny_checkpoint

    weights = [(write_tiny_checkpoint(tmp_path / name, seed=seed) / "model.safetensors")
               .read_bytes() for name, seed in (("a", 3), ("b", 3), ("c", 4))]
    assert weights[0] == weights[1] != weights[2]
