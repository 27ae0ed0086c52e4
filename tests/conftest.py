"""Shared fixtures: in-process apps over the kit's fake backend as ``tone``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.server import builtin_plugin_names
from ttsframe.assembly import Services, build_services
from ttsframe.core.config.settings import load_settings
from ttsframe.http.app import create_app
from ttsframe.testing.fake_backend import STREAMING, TONE, FakeBackendPlugin, fake_backend_plugin


def tone_plugin(**knobs: Any) -> FakeBackendPlugin:
    """The fake backend as ``tone``: a sine tone per text, batching, no streaming."""
    return fake_backend_plugin("tone", TONE, **knobs)


def pieces_plugin(**knobs: Any) -> FakeBackendPlugin:
    """The fake backend as ``pieces``: speech-like audio streamed in parts, cloning,
    preferring 200-byte chunks."""
    return fake_backend_plugin("pieces", STREAMING, **knobs)


def make_services(tmp_path, *, extra_plugins: tuple[tuple[str, object], ...] = (),
                  **overrides: Any) -> Services:
    """Services over the ``tone`` fake backend (plugin ``tone-plugin``); ``extra_plugins``
    are ``(name, module or plugin object)`` pairs."""
    base: dict[str, Any] = {
        "generation": {"default_backend": "tone", "batch_wait_ms": 0},
        "plugins": {"dia": {"enabled": False}},
        # Litestar's TestClient sends "Host: testserver.local" (http/hosts.py).
        "server": {"allowed_hosts": ["testserver.local"]},
    }
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    cfg = tmp_path / "ttsframe.toml"
    cfg.touch()
    allow = ",".join([*builtin_plugin_names(), "tone-plugin", *(n for n, _ in extra_plugins)])
    settings = load_settings(str(cfg), environ={"TTSFRAME_LOAD_PLUGINS": allow}, overrides=base)
    return build_services(settings, extra_plugins=[("tone-plugin", tone_plugin()),
                                                     *extra_plugins])


@pytest.fixture
def app_client(tmp_path) -> Iterator[TestClient]:
    with TestClient(app=create_app(make_services(tmp_path))) as client:
        yield client
