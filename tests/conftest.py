"""Shared fixtures: in-process apps over the torch-free tone backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests import fakes
from tests.server import builtin_plugin_names
from ttsframe.core.assembly import Services, build_services
from ttsframe.core.config import load_settings
from ttsframe.http.app import create_app


def make_services(tmp_path, *, extra_plugins: tuple[tuple[str, object], ...] = (),
                  **overrides: Any) -> Services:
    """Services over the tone backend; ``extra_plugins`` are ``(name, module)`` pairs."""
    base: dict[str, Any] = {
        "generation": {"default_backend": "tone", "batch_wait_ms": 0},
        "plugins": {"dia": {"enabled": False}},
    }
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    cfg = tmp_path / "ttsframe.toml"
    cfg.touch()
    allow = ",".join([*builtin_plugin_names(), "tone-plugin", *(n for n, _ in extra_plugins)])
    settings = load_settings(str(cfg), environ={"TTSFRAME_LOAD_PLUGINS": allow}, overrides=base)
    return build_services(settings, extra_plugins=[("tone-plugin", fakes), *extra_plugins])


@pytest.fixture
def app_client(tmp_path) -> Iterator[TestClient]:
    with TestClient(app=create_app(make_services(tmp_path))) as client:
        yield client
