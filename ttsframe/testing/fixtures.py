"""pytest fixtures for plugin tests, registered through the ``pytest11`` entry point.

Each fixture is a factory, so a test says what it wants loaded and how it is configured;
everything it starts is stopped when the test ends.

    def test_my_backend_speaks(ttsframe_client):
        client = ttsframe_client({"generation": {"default_backend": "mine"}},
                                 entry_points=["my-plugin"])
        assert client.post("/generate", json={"text": "Hi"}).status_code == 200
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from typing import Any

import pytest


@pytest.fixture
def ttsframe_services(tmp_path):
    """``ttsframe_services(config=None, *, plugins=None, entry_points=())`` -> an
    ``AssembledServer``, built but not started: a test reads its ``backends`` and
    ``preprocessors`` and may hand it to ``app_client`` (``docs/plugin-testing.md``)."""
    from ttsframe.testing.app import assemble

    counter = itertools.count()

    def build(config: Mapping[str, Any] | None = None, *,
              plugins: Mapping[str, object] | None = None, entry_points: Iterable[str] = ()):
        return assemble(tmp_path / f"services-{next(counter)}", config, plugins=plugins,
                        entry_points=entry_points)

    return build


@pytest.fixture
def ttsframe_client(ttsframe_services) -> Iterator:
    """``ttsframe_client(config=None, *, plugins=None, entry_points=())`` -> a started
    Litestar ``TestClient`` over the whole app (backends loaded)."""
    from ttsframe.testing.app import app_client

    with ExitStack() as stack:
        def build(config=None, *, plugins=None, entry_points=()):
            services = ttsframe_services(config, plugins=plugins, entry_points=entry_points)
            return stack.enter_context(app_client(services))

        yield build


@pytest.fixture
def ttsframe_server(tmp_path) -> Iterator:
    """``ttsframe_server(config=None, *, plugins=(), env=None, wait_for="ready")`` -> a
    running ``ServerProcess``; ``config`` is written to its ``ttsframe.toml`` (Dia off
    unless it says otherwise)."""
    import tomli_w

    from ttsframe.testing.app import with_test_defaults
    from ttsframe.testing.server import ServerProcess

    counter = itertools.count()
    with ExitStack() as stack:
        def start(config: Mapping[str, Any] | None = None, *, plugins: Iterable[str] = (),
                  env: dict[str, str] | None = None, wait_for: str = "ready"):
            directory = tmp_path / f"server-{next(counter)}"
            directory.mkdir()
            path = directory / "ttsframe.toml"
            path.write_text(tomli_w.dumps(with_test_defaults(config)))
            server = ServerProcess(path, plugins=plugins, env=env, wait_for=wait_for)
            return stack.enter_context(server)

        yield start
