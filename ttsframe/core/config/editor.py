"""``GET``/``PUT /config``: the settings that can change while the server runs.

A change is validated as a whole (an unknown key or a wrong type changes nothing), then
written to the config file (``core/config/file.py``, which keeps its comments), then
applied to the live ``Settings`` (shared by reference, so the next request sees it) and
to the scheduler. Writing first means a failed write leaves both the file and the running
server as they were. Secrets (``[security]``, plugin sections) are never shown.
"""

from __future__ import annotations

import asyncio
import logging
import typing
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec

from ttsframe.core.config.file import write_config
from ttsframe.core.config.settings import DEFAULT_CONFIG_NAME, Settings, describe_invalid
from ttsframe.core.errors import InvalidInput
from ttsframe.core.speech.scheduler import Scheduler

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
    "chunk_continuity": ("generation", "chunk_continuity"),
    # The quality stage's switches and bounds, read at each take (``core/speech/quality``).
    **{f"quality_{key}": ("quality", key) for key in (
        "enabled", "max_retries", "retry_budget_s", "check_budget", "check_rate",
        "check_silence", "check_clipping", "check_loop", "rate_min_chars", "rate_slack_s",
        "calibration_takes", "max_leading_silence_s", "max_trailing_silence_s",
        "max_inner_silence_s", "silence_dbfs", "max_clipped_share", "max_loop_s")},
}
# Shown read-only: these take effect only at a restart.
RESTART_REQUIRED: dict[str, tuple[str, ...]] = {
    "server": ("host", "port", "shutdown_grace_s", "header_timeout_s", "body_timeout_s",
               "max_connections", "max_requests", "umask", "allowed_hosts"),
    "storage": ("data_dir", "audio_prompts_dir", "audio_outputs_dir", "max_upload_mb",
                "max_prompts_mb", "max_voices"),
    "generation": ("default_backend", "voice_store", "unknown_nonverbals"),
}

# Every name a body might use for those, bare or with its section.
RESTART_ONLY_NAMES = frozenset(name for section, keys in RESTART_REQUIRED.items()
                               for key in keys for name in (key, f"{section}.{key}"))


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
        for name in body:
            if name in RESTART_ONLY_NAMES:
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
