"""Tiny random Dia checkpoints and loaded backends, built once per test session.

Reuse them from any test module with ``from tests.dia_fixtures import tiny_model_dir``
(import each fixture you use so that pytest sees it), or for a whole directory with
``pytest_plugins = ["tests.dia_fixtures"]`` in a conftest. The module skips its importers
when torch or transformers is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from ttsframe.plugins.dia import DiaConfig
from ttsframe.plugins.dia.backend import DiaBackend
from ttsframe.plugins.dia.planning import DiaOptions
from ttsframe.plugins.dia.tiny import write_tiny_checkpoint


def dia_options(fields: dict) -> DiaOptions:
    """Dia's options taken out of ``fields`` (a test's keyword arguments for a task, the
    shared parameters left in it)."""
    return DiaOptions(**{name: fields.pop(name) for name in DiaOptions.__struct_fields__
                         if name in fields})


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A self-contained tiny checkpoint directory (``layout="dir"``, seed 0)."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("dia") / "tiny-dia")


@pytest.fixture(scope="session")
def tiny_hub_cache(tmp_path_factory) -> Path:
    """A Hugging Face cache holding the tiny model under the real repo ids; use it with
    ``HF_HUB_CACHE=<it>`` and ``HF_HUB_OFFLINE=1``."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("dia") / "hf-cache",
                                 layout="hub-cache")


@pytest.fixture(scope="session")
def tiny_eos_model_dir(tmp_path_factory) -> Path:
    """A tiny checkpoint whose EOS row is scaled so it stops on its own within tens of
    steps, at a different step for different texts."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("dia") / "tiny-dia-eos",
                                 eos_scale=1.5)


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir) -> Iterator[DiaBackend]:
    """A loaded DiaBackend on ``tiny_model_dir`` (CPU); tests must not change its config.

    One CPU thread: the tiny model gains nothing from more, and spinning threads slow it
    down many times over when other tests share the cores."""
    backend = DiaBackend(DiaConfig(model=str(tiny_model_dir), device="cpu", cpu_threads=1))
    backend.load()
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def tiny_eos_backend(tiny_eos_model_dir) -> Iterator[DiaBackend]:
    backend = DiaBackend(DiaConfig(model=str(tiny_eos_model_dir), device="cpu",
                                   cpu_threads=1))
    backend.load()
    yield backend
    backend.close()


def count_codec_encodes(backend: DiaBackend, monkeypatch) -> list[int]:
    """Make the backend's codec record each ``encode`` call (one 1 per call) in the list
    returned, so a test can count how often a prompt was encoded."""
    codec = backend.processor.audio_tokenizer
    encode, encoded = codec.encode, []

    def counting_encode(*args, **kwargs):
        encoded.append(1)
        return encode(*args, **kwargs)

    monkeypatch.setattr(codec, "encode", counting_encode)
    return encoded


def ok(result):
    """``result``, asserting it is a result and not an error (shown if it is)."""
    assert not isinstance(result, BaseException), repr(result)
    return result
