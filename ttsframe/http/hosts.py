"""Which ``Host`` names the server answers (``server.allowed_hosts``): against DNS rebinding.

A page on a site the attacker controls can point its own DNS name at 127.0.0.1 (or a LAN
address) and then call this server as "the same origin", reading every reply. The only
trace of that is the ``Host`` header, which then carries the attacker's name. So a
request whose ``Host`` is a name nobody configured is refused (421) before anything runs.

Accepted without configuration, because none of them can be an attacker's DNS name:
IP-address literals (``127.0.0.1``, ``192.168.1.20``, ``[::1]``), ``localhost`` and
this machine's own host name (with its ``.local`` mDNS form). That keeps every loopback
setup, a LAN client using the server's address, Kubernetes probes (the pod's IP) and
``kubectl port-forward`` (``localhost``) working; any other name (a reverse proxy's
domain, a Docker service name) is listed in ``server.allowed_hosts``, or ``"*"`` turns
the check off. A request without ``Host`` (HTTP/1.0 tools) is not from a browser and
is let through.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

log = logging.getLogger("ttsframe.hosts")


def split_host(value: str) -> tuple[str, str | None]:
    """``(name, port)`` of a Host header, lowercased, without a trailing dot."""
    value = value.strip().lower()
    if value.startswith("["):  # [v6]:port
        end = value.find("]")
        if end < 0:
            return value, None
        rest = value[end + 1:]
        return value[:end + 1], rest[1:] if rest.startswith(":") else None
    name, colon, port = value.partition(":")
    return name.rstrip("."), port if colon else None


def is_ip_literal(name: str) -> bool:
    if name.startswith("["):
        if not name.endswith("]"):
            return False
        name = name[1:-1]
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def machine_names() -> list[str]:
    """This machine's host name and, for a bare name, its ``.local`` form."""
    name = socket.gethostname().strip().lower().rstrip(".")
    if not name:
        return []
    return [name] if "." in name else [name, f"{name}.local"]


class HostRule:
    """The names accepted: built-in ones plus ``server.allowed_hosts``."""

    def __init__(self, configured: list[str], machine: list[str]) -> None:
        self.configured = list(configured)
        self.machine = machine
        self.any = "*" in configured
        self.names = {"localhost", *machine}
        self.with_port: set[str] = set()  # "name:port" entries: that port only
        self.suffixes: list[str] = []  # "*.example.com" entries, as ".example.com"
        for entry in configured:
            entry = entry.lower()
            if entry.startswith("*."):
                self.suffixes.append(entry[1:])
            elif entry != "*":
                name, port = split_host(entry)
                if port:
                    self.with_port.add(f"{name}:{port}")
                else:
                    self.names.add(name)

    def allows(self, host: str) -> bool:
        if self.any or not host:
            return True
        name, port = split_host(host)
        return (is_ip_literal(name) or name in self.names
                or (port is not None and f"{name}:{port}" in self.with_port)
                or any(name.endswith(s) for s in self.suffixes))

    def described(self) -> str:
        """What is accepted, in words, for messages."""
        names = ", ".join(["localhost", *self.machine])
        listed = f" and allowed_hosts = {_toml_list(self.configured)}" if self.configured else ""
        return f"IP addresses, {names}{listed}"

    def refusal(self, host: str) -> str | None:
        """The 421's detail for a ``Host`` not accepted, else ``None``."""
        if self.allows(host):
            return None
        name, _ = split_host(host)
        suggestion = [*self.configured, name]
        return (f"this server does not answer to the host name '{name}' (the Host header); "
                f"it accepts {self.described()}. If clients reach the server by that name, "
                f"add it in ttsframe.toml: [server] allowed_hosts = "
                f"{_toml_list(suggestion)} (restart after), or [\"*\"] to accept any name")

    def log_startup(self, bind_host: str) -> None:
        """One line at startup when the server listens beyond loopback, where a client may
        well use a name the check refuses."""
        if self.any:
            log.warning("server.allowed_hosts = [\"*\"]: any Host name is accepted, so a web "
                        "page using DNS rebinding can reach this server through a visitor's "
                        "browser")
        elif not _is_loopback(bind_host):
            log.info("clients must reach this server by %s; to use another name (a reverse "
                     "proxy's domain, a Docker service name), list it in [server] "
                     "allowed_hosts", self.described())


def _is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def host_rule(configured: list[str]) -> HostRule:
    return HostRule(configured, machine_names())
