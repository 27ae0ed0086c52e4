"""In-process servers for plugin tests: settings, services and a started test client.

Only ttsframe's built-in plugins are loaded, plus what the test names: plugin modules
or objects registered by name (``plugins={"mine": my_module}``) and installed
entry-point plugins (``entry_points=["mine"]``). The Dia backend is off unless the
config turns it on, so no test downloads a model by accident; the default backend is
the kit's fake backend as ``beeper`` (``ttsframe.testing.fake_backend``: one beep per
word) unless the config names another.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from ttsframe.assembly import Services, build_services
from ttsframe.core.config.settings import Settings, _deep_merge, load_settings
from ttsframe.testing.fake_backend import fake_backend_plugin
from ttsframe.testing.server import builtin_plugin_names
from ttsframe.testing.waiting import eventually

TEST_DEFAULTS: dict[str, Any] = {
    "generation": {"batch_wait_ms": 0},
    "plugins": {"dia": {"enabled": False}},
    # Litestar's TestClient sends "Host: testserver.local"; the server answers only names
    # it knows (server.allowed_hosts).
    "server": {"allowed_hosts": ["testserver.local"]},
}


def with_test_defaults(config: Mapping[str, Any] | None) -> dict[str, Any]:
    return _deep_merge(TEST_DEFAULTS, dict(config or {}))


def make_settings(directory: Path, config: Mapping[str, Any] | None = None, *,
                  plugins: Iterable[str] = ()) -> Settings:
    """Settings as if ``ttsframe.toml`` in ``directory`` held ``config`` (a dict of
    sections); ``plugins`` are the names loaded besides the built-ins."""
    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / "ttsframe.toml"
    cfg.touch()
    allow = ",".join([*builtin_plugin_names(), *plugins])
    return load_settings(str(cfg), environ={"TTSFRAME_LOAD_PLUGINS": allow},
                         overrides=with_test_defaults(config))


def make_services(directory: Path, config: Mapping[str, Any] | None = None, *,
                  plugins: Mapping[str, object] | None = None,
                  entry_points: Iterable[str] = ()) -> Services:
    """Build the server's services with the built-ins, ``plugins`` (name -> module or
    object with hook implementations) and the installed ``entry_points`` named."""
    plugins = {"testing": fake_backend_plugin("beeper"), **(plugins or {})}
    config = _deep_merge({"generation": {"default_backend": "beeper"}}, dict(config or {}))
    settings = make_settings(directory, config, plugins=[*plugins, *entry_points])
    return build_services(settings, extra_plugins=plugins.items())


@contextmanager
def app_client(services: Services, *, load_timeout: float = 120.0) -> Iterator[TestClient]:
    """A Litestar test client over the full app, entered once every backend has
    finished loading (ready or failed), so the first request is never a 503."""
    from ttsframe.http.app import create_app

    with TestClient(app=create_app(services)) as client:
        workers = services.scheduler.workers.values()
        eventually(lambda: all(w.state != "loading" for w in workers), timeout=load_timeout,
                   interval=0.01, message="every backend loaded (ready or failed)")
        yield client
