"""Taking the server's port before anything else starts.

``ttsframe serve`` checks its config (exit 2), then binds its socket and hands it to
uvicorn. A port that is taken (or not ours to take) is then the only thing reported,
before any backend starts loading, instead of a bind error buried among the messages of
a shutdown that began while backends were still loading; a config error is never hidden
behind it.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path


class CannotListen(Exception):
    """The configured address cannot be listened on (in use, not permitted, unknown)."""


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Bound TCP sockets for ``host:port``, one per address it resolves to, as asyncio
    would bind them (uvicorn listens on them), or ``CannotListen`` saying why and what to
    do."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CannotListen(_why(exc, host, port)) from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            # The protocol number matters: asyncio turns Nagle's algorithm off only for
            # sockets that say IPPROTO_TCP (else small replies wait for delayed ACKs).
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            # As uvicorn does: a restart can reuse a port with connections in TIME_WAIT;
            # a port another socket listens on is still refused.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise CannotListen(_why(exc, host, port)) from None
    return sockets


def _why(exc: OSError, host: str, port: int) -> str:
    fix = "stop it, or choose another port with --port or [server] port in ttsframe.toml"
    if exc.errno == errno.EADDRINUSE:
        holder = port_holder(port)
        by = f" by {holder}" if holder else ""
        return f"port {port} on {host} is already in use{by}; {fix}"
    if exc.errno == errno.EACCES:
        return (f"not permitted to listen on {host}:{port} (ports below 1024 need "
                "privileges); choose a port of 1024 or more with --port or [server] port")
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return (f"cannot listen on {host}:{port}: {host} is not an address of this machine "
                "(use 127.0.0.1, 0.0.0.0 or one of its addresses: --host or [server] host)")
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _listening_sockets(port: int, proc: Path) -> set[str]:
    """``socket:[INODE]`` of every socket listening on TCP ``port`` (Linux's ``/proc``)."""
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address "ADDR:PORT" in hex, state 0A = LISTEN, inode in field 9
            if len(fields) > 9 and fields[3] == "0A" and \
                    int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    return inodes


def listens_on(pid: int, port: int, proc: Path = Path("/proc")) -> bool | None:
    """Whether process ``pid`` holds a socket listening on TCP ``port``; ``None`` where
    that cannot be known (another OS, nothing listening, the process gone)."""
    inodes = _listening_sockets(port, proc)
    try:
        fds = os.listdir(proc / str(pid) / "fd")
    except OSError:
        return None
    if not inodes:
        return None
    for fd in fds:
        try:
            if os.readlink(proc / str(pid) / "fd" / fd) in inodes:
                return True
        except OSError:
            continue
    return False


def port_holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """``pid N (command line)`` of a process listening on TCP ``port``, read from Linux's
    ``/proc``; ``None`` where that cannot be known (another OS, another user's process)."""
    inodes = _listening_sockets(port, proc)
    if not inodes:
        return None
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = os.listdir(proc / pid / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(proc / pid / "fd" / fd)
            except OSError:
                continue
            if target in inodes:
                return f"pid {pid} ({_command(proc / pid)})"
    return None


def _command(pid_dir: Path) -> str:
    try:
        raw = (pid_dir / "cmdline").read_bytes()
    except OSError:
        return "?"
    command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return command[:200] or "?"
