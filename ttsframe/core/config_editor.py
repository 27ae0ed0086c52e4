"""``GET``/``PUT /config``: the settings that can change while the server runs.

A change is validated as a whole (an unknown key or a wrong type changes nothing), then
written to the config file, then applied to the live ``Settings`` (shared by reference,
so the next request sees it) and to the scheduler. Writing first means a failed write
leaves both the file and the running server as they were.

The file is edited line by line where a key already has a plain ``key = value`` line,
keeping comments and every other setting; the result is parsed back and compared with
the intended settings, and only if that differs is the whole file rewritten by tomli-w
(same settings, comments lost). Secrets (``[security]``, plugin sections) are never
shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fcntl
import logging
import os
import re
import stat
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import anyio.to_thread
import msgspec
import tomli_w

from ttsframe.core.atomic import atomic_write
from ttsframe.core.config import DEFAULT_CONFIG_NAME, Settings, describe_invalid
from ttsframe.core.errors import Conflict, InvalidInput
from ttsframe.core.scheduler import Scheduler

log = logging.getLogger("ttsframe.config")

# Flat name (the API guide's) -> (section, key) in ttsframe.toml.
EDITABLE: dict[str, tuple[str, str]] = {
    "debug_mode": ("server", "debug_mode"),
    "log_level": ("server", "log_level"),
    "save_outputs": ("logging", "save_outputs"),
    "show_prompts": ("logging", "show_prompts"),
    "output_retention_hours": ("logging", "output_retention_hours"),
    "job_retention_hours": ("logging", "job_retention_hours"),
    "max_text_chars": ("generation", "max_text_chars"),
    "default_format": ("generation", "default_format"),
    "workers": ("generation", "workers"),
    "queue_size": ("generation", "queue_size"),
    "batch_wait_ms": ("generation", "batch_wait_ms"),
}
# Shown read-only: these take effect only at a restart.
RESTART_REQUIRED: dict[str, tuple[str, ...]] = {
    "server": ("host", "port", "shutdown_grace_s", "header_timeout_s", "body_timeout_s",
               "max_connections", "max_requests"),
    "storage": ("data_dir", "audio_prompts_dir", "audio_outputs_dir", "max_upload_mb",
                "max_prompts_mb", "max_voices"),
    "generation": ("default_backend", "voice_store", "unknown_nonverbals"),
}


def _editable_types() -> dict[str, Any]:
    """Each editable key's type, exactly as declared in ``Settings``."""
    sections = typing.get_type_hints(Settings)
    return {name: typing.get_type_hints(sections[section], include_extras=True)[key]
            for name, (section, key) in EDITABLE.items()}


EDITABLE_TYPES = _editable_types()
# A Struct with every editable key optional.
ConfigUpdate = msgspec.defstruct(
    "ConfigUpdate", [(name, hint | msgspec.UnsetType, msgspec.UNSET)
                     for name, hint in EDITABLE_TYPES.items()],
    kw_only=True, forbid_unknown_fields=True)


class ConfigEditor:
    def __init__(self, settings: Settings, scheduler: Scheduler, formats: list[str]) -> None:
        self.settings = settings
        self.scheduler = scheduler
        self.formats = sorted(formats)
        self._lock = asyncio.Lock()

    @property
    def config_file(self) -> Path:
        """The file the server started with, else ``ttsframe.toml`` in its directory."""
        if self.settings.config_path:
            return Path(self.settings.config_path)
        return self.settings.base_dir / DEFAULT_CONFIG_NAME

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(getattr(self.settings, section), key)
                               for name, (section, key) in EDITABLE.items()}
        out["config_file"] = str(self.config_file)
        out["restart_required"] = {
            f"{section}.{key}": getattr(getattr(self.settings, section), key)
            for section, keys in RESTART_REQUIRED.items() for key in keys}
        return out

    def validate(self, body: Any) -> dict[str, Any]:
        """The changes as ``{flat name: value}``; ``InvalidInput`` names what is wrong."""
        if not isinstance(body, dict):
            raise InvalidInput("send a JSON object of settings, e.g. {\"debug_mode\": true}")
        restart_only = {name for section, keys in RESTART_REQUIRED.items()
                        for key in keys for name in (key, f"{section}.{key}")}
        for name in body:
            if name in restart_only:
                raise InvalidInput(
                    f"'{name}' cannot change while the server runs; edit it in "
                    f"{self.config_file} and restart. Editable keys: {', '.join(EDITABLE)}")
        try:
            update = msgspec.convert(body, ConfigUpdate, strict=True)
        except msgspec.ValidationError:
            raise InvalidInput(self._describe(body)) from None
        changes = {name: value for name in EDITABLE
                   if (value := getattr(update, name)) is not msgspec.UNSET}
        fmt = changes.get("default_format")
        if fmt is not None and fmt not in self.formats:
            raise InvalidInput(f"invalid value for 'default_format': '{fmt}'; allowed "
                               f"values: {', '.join(self.formats)}")
        return changes

    @staticmethod
    def _describe(body: dict[str, Any]) -> str:
        """Name the first rejected key, described against its own section's type."""
        for name, value in body.items():
            if name not in EDITABLE:
                return (f"unknown config key '{name}'; known keys: "
                        f"{', '.join(EDITABLE)}")
            hint = EDITABLE_TYPES[name]
            try:
                msgspec.convert(value, hint, strict=True)
            except msgspec.ValidationError:
                return describe_invalid(value, hint, name, strict=True)
        return "invalid settings"

    async def update(self, body: Any) -> dict[str, Any]:
        changes = self.validate(body)
        if not changes:
            return self.view()
        async with self._lock:
            path = self.config_file
            grouped: dict[str, dict[str, Any]] = {}
            for name, value in changes.items():
                section, key = EDITABLE[name]
                grouped.setdefault(section, {})[key] = value
            await anyio.to_thread.run_sync(write_config, path, grouped)
            self.settings.config_path = str(path)
            for name, value in changes.items():
                section, key = EDITABLE[name]
                setattr(getattr(self.settings, section), key, value)
            self._apply()
        log.info("configuration changed in %s: %s", path,
                 ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return self.view()

    def _apply(self) -> None:
        """Push settings that live outside ``Settings`` into their owners."""
        server, gen = self.settings.server, self.settings.generation
        level = "debug" if server.debug_mode else server.log_level
        logging.getLogger().setLevel(level.upper())
        self.scheduler.queue_size = gen.queue_size
        self.scheduler.max_batch = gen.workers
        self.scheduler.batch_wait_s = gen.batch_wait_ms / 1000


def write_config(path: Path, changes: dict[str, dict[str, Any]]) -> None:
    """Set ``changes`` (section -> key -> value) in the TOML file at ``path``, atomically.

    A symlinked config is written where the link points (the link stays a link). The new
    file keeps the old one's mode and owner: it may hold API keys, and a rewrite must not
    open it to other users. The read-modify-write holds an ``flock`` on the file, so two
    processes editing one file never lose each other's change.
    """
    target = path.resolve()
    with _file_lock(target):
        text = target.read_text(encoding="utf-8") if target.exists() else ""
        try:
            new_text = update_toml_text(text, changes)
        except tomllib.TOMLDecodeError as exc:
            raise Conflict(f"{path} is not valid TOML now ({exc}); fix the file, then "
                           "send the change again") from None
        old = target.stat() if target.exists() else None

        def write(fh: BinaryIO) -> None:
            fh.write(new_text.encode("utf-8"))
            if old is not None:
                os.fchmod(fh.fileno(), stat.S_IMODE(old.st_mode))
                with contextlib.suppress(PermissionError):  # only root may give a file away
                    os.fchown(fh.fileno(), old.st_uid, old.st_gid)

        atomic_write(target, write)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An ``flock`` on the config file itself (no lock file to leave behind). A writer
    replaces the file by rename, so a lock won on a file that has since been replaced
    is dropped and taken again on the current one."""
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # no file yet: the first write creates it
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # drops the lock


def keys_readable_by_others(path: Path) -> bool:
    """Whether the config file names API or admin keys and others may read it."""
    try:
        mode = path.stat().st_mode
        security = tomllib.loads(path.read_text(encoding="utf-8")).get("security", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    has_keys = bool(security.get("api_keys") or security.get("admin_keys"))
    return has_keys and bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def update_toml_text(text: str, changes: dict[str, dict[str, Any]]) -> str:
    """``text`` with ``changes`` applied: edited in place when that parses back to the
    intended settings, else the intended settings dumped by tomli-w."""
    expected = copy.deepcopy(tomllib.loads(text))
    for section, values in changes.items():
        expected.setdefault(section, {}).update(values)
    edited = _edit_in_place(text, changes)
    try:
        if edited is not None and tomllib.loads(edited) == expected:
            return edited
    except tomllib.TOMLDecodeError:
        pass
    return tomli_w.dumps(expected)


_HEADER = re.compile(r"\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?")
_KEY_LINE = re.compile(r"(\s*)([A-Za-z0-9_-]+)(\s*=\s*)(.*?)(\r?\n)?")


def _format(value: Any) -> str:
    return tomli_w.dumps({"v": value})[len("v = "):].rstrip("\n")


def _split_value(rest: str) -> tuple[str, str] | None:
    """``"true   # note"`` -> ``("true", "   # note")``; None if no prefix parses."""
    for end in [i for i, ch in enumerate(rest) if ch == "#"] + [len(rest)]:
        value = rest[:end].rstrip()
        try:
            tomllib.loads(f"v = {value}")
        except tomllib.TOMLDecodeError:
            continue
        return value, rest[len(value):]
    return None


def _edit_in_place(text: str, changes: dict[str, dict[str, Any]]) -> str | None:
    lines = text.splitlines(keepends=True)
    todo = {section: dict(values) for section, values in changes.items()}
    section: str | None = ""  # "" is the top level; None inside an array of tables
    last_line: dict[str, int] = {}  # section -> index of its header or last key line
    for i, line in enumerate(lines):
        if line.lstrip().startswith("[["):
            section = None
            continue
        if header := _HEADER.fullmatch(line.rstrip("\r\n")):
            section = header.group(1)
            last_line[section] = i
            continue
        match = _KEY_LINE.fullmatch(line)
        if section is None or match is None:
            continue
        last_line[section] = i
        indent, key, eq, rest, newline = match.groups()
        if key not in todo.get(section, {}):
            continue
        split = _split_value(rest)
        if split is None:
            return None  # a multi-line value: leave it to tomli-w
        old_value, tail = split
        value = _format(todo[section].pop(key))
        if tail.strip():  # keep the comment in its column
            tail = " " * max(1, len(tail) - len(tail.lstrip()) + len(old_value) - len(value)) \
                + tail.lstrip()
        lines[i] = f"{indent}{key}{eq}{value}{tail}{newline or ''}"
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    appended: list[str] = []
    # Insert missing keys bottom-up so earlier indexes stay valid.
    for section in sorted(todo, key=lambda s: -last_line.get(s, -1)):
        new = [f"{key} = {_format(value)}\n" for key, value in todo[section].items()]
        if not new:
            continue
        if section in last_line:
            lines[last_line[section] + 1:last_line[section] + 1] = new
        else:
            appended += ["\n", f"[{section}]\n", *new]
    return "".join(lines + appended)
