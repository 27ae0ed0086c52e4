"""A real ``ttsframe serve`` process on 127.0.0.1, and installing a plugin without pip.

End-to-end tests start the server exactly as a user does, with only the plugins they
name: ``TTSFRAME_LOAD_PLUGINS`` is set to ttsframe's built-ins plus ``plugins``, so
whatever else happens to be installed cannot change the result.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import httpx

from ttsframe.cli import EXIT_CANNOT_LISTEN
from ttsframe.http.listen import listens_on
from ttsframe.testing.waiting import eventually


class _PortTaken(Exception):
    """The server exited because its port was taken."""


def builtin_plugin_names() -> list[str]:
    """Entry-point names of the plugins that ship with ttsframe itself."""
    return sorted(ep.name for ep in importlib.metadata.entry_points(group="ttsframe")
                  if ep.dist is not None and ep.dist.name == "ttsframe")


def inherited_environment() -> dict[str, str]:
    """This process's environment less what would configure ttsframe: a shell where
    someone runs their own server (``TTSFRAME_CONFIG``, ``TTSFRAME_SECURITY__API_KEYS``,
    ...) must not change the servers the tests start."""
    return {name: value for name, value in os.environ.items()
            if not (name == "TTSFRAME_CONFIG"
                    or (name.startswith("TTSFRAME_") and "__" in name))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install_fake_distribution(site: Path, dist: str, module: str, entry_points: dict[str, str],
                              source: str | None = None) -> Path:
    """Lay out a distribution on a path entry exactly as pip would: module + dist-info
    with an ``entry_points.txt`` in the ``ttsframe`` group. Put ``site`` on PYTHONPATH."""
    site.mkdir(parents=True, exist_ok=True)
    if source is not None:
        (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ttsframe]\n{lines}\n")
    return site


def install_fake_backend(site: Path, name: str = "fake", preset: str = "BEEPER", *,
                         dist: str | None = None, **knobs: object) -> Path:
    """Install the kit's ``FakeBackend`` as an outside distribution (``ttsframe-<name>``
    unless ``dist`` says) whose entry point ``name`` registers backend ``name``, set up
    as the preset named (``"BEEPER"``, ``"TONE"``, ``"STREAMING"`` or ``"FLAKY"``) with ``knobs``
    replaced. A server started with ``plugins=[name]`` and ``PYTHONPATH=site`` loads it;
    its ``[plugins.<name>]`` section overrides any knob."""
    if preset not in ("BEEPER", "TONE", "STREAMING", "FLAKY"):
        raise ValueError(f"unknown preset {preset!r}: use 'BEEPER', 'TONE', 'STREAMING' "
                         "or 'FLAKY'")
    module = f"{name.replace('-', '_')}_fake_backend"
    knob_args = "".join(f", {key}={value!r}" for key, value in knobs.items())
    source = (f"from ttsframe.testing.fake_backend import {preset}, fake_backend_plugin\n\n"
              f"plugin = fake_backend_plugin({name!r}, {preset}{knob_args})\n")
    return install_fake_distribution(site, dist or f"ttsframe-{name}", module,
                                     {name: f"{module}:plugin"}, source=source)


class ServerProcess:
    """``with ServerProcess(config_path, plugins=["mine"]) as srv: srv.client.get("/health")``.

    The server listens on a free port of its own (``srv.port``, ``srv.url``). ``plugins``
    are entry-point names loaded besides the built-ins; ``env`` overrides the environment
    (``TTSFRAME_LOAD_PLUGINS`` included), which is this process's less its ttsframe
    config variables (``inherited_environment``). ``wait_for`` is the state of
    the default backend to wait for: ``"ready"`` (or ``"failed"``), or ``"up"``.
    """

    # Starts on a fresh port this many times when the one chosen was taken meanwhile.
    PORT_TRIES = 3

    def __init__(self, config: Path, *, env: dict[str, str] | None = None,
                 args: list[str] | None = None, ready_timeout: float = 90.0,
                 wait_for: str = "ready", plugins: Iterable[str] = ()) -> None:
        self.config = config
        allow = ",".join([*builtin_plugin_names(), *plugins])
        self.env = {**inherited_environment(), "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                    "TTSFRAME_LOAD_PLUGINS": allow, **(env or {})}
        self.args = args or []
        self.ready_timeout = ready_timeout
        self.wait_for = wait_for
        self.proc: subprocess.Popen | None = None
        self.client: httpx.Client | None = None
        self._use_port(free_port())

    def _use_port(self, port: int) -> None:
        if self.client is not None:
            self.client.close()
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = self.config.parent / f"server-{port}.log"
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def start(self) -> ServerProcess:
        for attempt in range(1, self.PORT_TRIES + 1):
            cmd = [sys.executable, "-m", "ttsframe", "serve", "--config", str(self.config),
                   "--port", str(self.port), *self.args]
            self.proc = subprocess.Popen(cmd, stdout=self.log.open("wb"),
                                         stderr=subprocess.STDOUT, env=self.env,
                                         cwd=self.config.parent)
            try:
                eventually(self._reached_wait_for, timeout=self.ready_timeout, interval=0.2)
                return self
            except _PortTaken:
                # Another process (a parallel test run) took the free port between our
                # look and the server's bind: ``ttsframe serve`` exits 3, try another.
                if attempt == self.PORT_TRIES:
                    raise RuntimeError(f"server exited with 3:\n{self.output()}") from None
                self._use_port(free_port())
            except AssertionError:
                self.stop()
                raise TimeoutError(f"server not {self.wait_for} in {self.ready_timeout}s:\n"
                                   f"{self.output()}") from None
        raise AssertionError("unreachable")

    def _reached_wait_for(self) -> bool:
        if self.proc.poll() is not None:
            if self.proc.returncode == EXIT_CANNOT_LISTEN:
                raise _PortTaken
            raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
        try:
            health = self.client.get("/health", timeout=2).json()
        except httpx.HTTPError:
            return False  # not listening yet
        if not self._listening_here():
            return False  # another server answers on the port ours could not bind
        state = health["backends"][health["default_backend"]]["state"]
        return self.wait_for == "up" or state == self.wait_for or state == "failed"

    def _listening_here(self) -> bool:
        """Whether our server is the one listening on our port (or it cannot be told)."""
        return listens_on(self.proc.pid, self.port) is not False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.client.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
