"""``ttsframe serve`` on a port that is taken: one clear message, exit status 3, and
nothing started (no backend loading, no log lines after it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.job_helpers import tone_server
from tests.server import (
    ServerProcess,
    builtin_plugin_names,
    inherited_environment,
    install_fake_backend,
)
from ttsframe.http.listen import CannotListen, bind_listeners, listens_on


def serve_on(port: int, cwd: Path, config: str = "") -> subprocess.CompletedProcess:
    """The real command a user runs, with the shipped defaults (Dia enabled: it would
    start loading if the server got that far)."""
    (cwd / "ttsframe.toml").write_text(config)
    env = {**inherited_environment(), "TTSFRAME_LOAD_PLUGINS": ",".join(builtin_plugin_names())}
    return subprocess.run([sys.executable, "-m", "ttsframe", "serve", "--port", str(port)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_port_in_use_is_the_only_error(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = serve_on(port, tmp_path)
    assert proc.returncode == 3
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"ttsframe: error: port {port} on 127.0.0.1 is already in use by pid {os.getpid()} "
        f"({' '.join(_cmdline(os.getpid()))[:200]}); stop it, or choose another port with "
        "--port or [server] port in ttsframe.toml"]
    assert not (tmp_path / "data").exists()  # nothing was started or created


@pytest.mark.parametrize(("config", "key", "allowed"), [
    ('[plugins.dia]\ndtype = "float8"\n', "plugins.dia.dtype", "'float32'"),
    ('[generation]\ndefault_backend = "nope"\n', "generation.default_backend", "dia"),
    ('[generation]\ndefault_format = "xyz"\n', "generation.default_format", "wav"),
    ('[voices]\naliases = {narrator = "teller", teller = "alloy"}\n', "voices.aliases",
     "an alias itself"),
])
def test_a_config_error_is_reported_even_when_the_port_is_taken(tmp_path, config, key,
                                                                 allowed):
    """Config errors, each plugin's section included, are found before the port is
    bound: a busy port (another server on 7860) must not hide them behind exit 3."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        proc = serve_on(holder.getsockname()[1], tmp_path, config)
    assert proc.returncode == 2, proc.stderr
    message = proc.stderr.strip()
    assert message.startswith("ttsframe: error: ") and "\n" not in message
    assert key in message and allowed in message
    assert "in use" not in message
    assert not (tmp_path / "data").exists()  # nothing was started or created


def test_the_message_names_the_server_that_holds_the_port(tmp_path):
    site = install_fake_backend(tmp_path / "site", "tone", "TONE")
    first = tmp_path / "first"
    first.mkdir()
    cfg = first / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "tone"\n[plugins.dia]\nenabled = false\n')
    with ServerProcess(cfg, env={"PYTHONPATH": str(site)}, plugins=["tone"]) as running:
        second = tmp_path / "second"
        second.mkdir()
        proc = serve_on(running.port, second)
        assert proc.returncode == 3
        message = proc.stderr.strip()
        assert message.startswith(f"ttsframe: error: port {running.port} on 127.0.0.1 is "
                                  f"already in use by pid {running.proc.pid} (")
        assert "-m ttsframe serve" in message
        assert "\n" not in message
        # the running server was not disturbed
        assert running.client.get("/health").status_code == 200


def _cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]


def test_listeners_are_tcp_sockets_asyncio_can_tune():
    """asyncio turns Nagle's algorithm off only on sockets that say IPPROTO_TCP; a socket
    made with protocol 0 made every small reply wait ~40 ms for a delayed ACK."""
    sockets = bind_listeners("127.0.0.1", 0)
    try:
        assert [s.proto for s in sockets] == [socket.IPPROTO_TCP]
    finally:
        for s in sockets:
            s.close()


def test_an_unknown_host_is_one_clear_message():
    with pytest.raises(CannotListen) as err:
        bind_listeners("no-such-host.invalid", 7860)
    assert str(err.value).startswith(
        "cannot listen on no-such-host.invalid:7860: no-such-host.invalid is not an address "
        "of this machine")


def test_listens_on_tells_which_process_holds_a_port():
    with socket.socket() as mine:
        mine.bind(("127.0.0.1", 0))
        mine.listen()
        port = mine.getsockname()[1]
        assert listens_on(os.getpid(), port) is True
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            assert listens_on(child.pid, port) is False
        finally:
            child.kill()
            child.wait()
    assert listens_on(os.getpid(), port) is None  # nothing listens there any more


class _Healthy(BaseHTTPRequestHandler):
    """Another server's /health: ready, as a ttsframe already running there says."""

    def do_GET(self):
        body = json.dumps({"default_backend": "x", "backends": {"x": {"state": "ready"}}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_a_test_server_whose_port_was_taken_meanwhile_starts_on_another(tmp_path):
    """Two test runs at once: the free port a ServerProcess picked is taken (here by a
    healthy-looking server) before its server binds it. Its server is not mistaken for
    the other one, and starts on a fresh port."""
    srv = tone_server(tmp_path)
    other = ThreadingHTTPServer(("127.0.0.1", srv.port), _Healthy)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    taken = srv.port
    try:
        with srv:
            assert srv.port != taken
            assert listens_on(srv.proc.pid, srv.port) is True
            assert [m["id"] for m in srv.client.get("/models").json()["models"]] == ["tone"]
    finally:
        other.shutdown()
        other.server_close()


def test_the_shells_ttsframe_settings_do_not_reach_the_servers_tests_start(tmp_path,
                                                                         monkeypatch):
    """Someone who runs their own server from this shell (an API key, a config file, a
    port set in the environment) and then the tests: the tests' servers are as configured
    by the tests."""
    monkeypatch.setenv("TTSFRAME_SECURITY__API_KEYS", '["only-mine"]')
    monkeypatch.setenv("TTSFRAME_SERVER__PORT", "7860")
    monkeypatch.setenv("TTSFRAME_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.setenv("TTSFRAME_FUZZ_EXAMPLES", "3")  # not a setting: kept
    env = inherited_environment()
    assert not {"TTSFRAME_SECURITY__API_KEYS", "TTSFRAME_SERVER__PORT",
                "TTSFRAME_CONFIG"} & set(env)
    assert env["TTSFRAME_FUZZ_EXAMPLES"] == "3" and env["PATH"] == os.environ["PATH"]
    with tone_server(tmp_path) as srv:
        assert srv.client.get("/models").status_code == 200  # no key asked for
