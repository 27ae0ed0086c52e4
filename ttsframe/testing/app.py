"""In-process servers for plugin tests: settings, an assembled server and a started test
client. ``assemble`` gives plugin tests a server to look at; ``make_services`` gives the
repository's own tests and the contract suites the whole assembly.

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
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from litestar.testing import TestClient

from ttsframe.assembly import Services, build_services
from ttsframe.core.config.settings import Settings, _deep_merge, load_settings
from ttsframe.testing.fake_backend import fake_backend_plugin
from ttsframe.testing.server import builtin_plugin_names
from ttsframe.testing.waiting import eventually

if TYPE_CHECKING:
    from ttsframe import Backend, TextPreprocessor

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


class AssembledServer:
    """A server built from its configuration and plugins, not started: what a plugin test
    looks at (its backends by name, its text preprocessors in the order they run) and
    hands to :func:`app_client`. The assembly behind it is the server's own and changes
    between versions; these two views do not."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @property
    def backends(self) -> Mapping[str, Backend]:
        return MappingProxyType(self._services.backends)

    @property
    def preprocessors(self) -> tuple[TextPreprocessor, ...]:
        return tuple(self._services.preprocessors)


def assemble(directory: Path, config: Mapping[str, Any] | None = None, *,
             plugins: Mapping[str, object] | None = None,
             entry_points: Iterable[str] = ()) -> AssembledServer:
    """:func:`make_services`, seen as a plugin test sees it; a bad plugin configuration
    raises ``ConfigError`` here, as ``ttsframe serve`` exits on it."""
    return AssembledServer(make_services(directory, config, plugins=plugins,
                                         entry_points=entry_points))


@contextmanager
def app_client(services: AssembledServer | Services, *,
               load_timeout: float = 120.0) -> Iterator[TestClient]:
    """A Litestar test client over the full app, entered once every backend has
    finished loading (ready or failed), so the first request is never a 503."""
    from ttsframe.http.app import create_app

    if isinstance(services, AssembledServer):
        services = services._services

    with TestClient(app=create_app(services)) as client:
        workers = services.scheduler.workers.values()
        eventually(lambda: all(w.state != "loading" for w in workers), timeout=load_timeout,
                   interval=0.01, message="every backend loaded (ready or failed)")
        yield client
