"""Dia (nari-labs) through Hugging Face transformers, as the ``dia`` backend.

Importing this module stays cheap: torch and transformers are imported by the factory's
backend module only, so ``ttsframe plugins`` and the HTTP layer never pay for them.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from ttsframe import Backend, PluginContext, hookimpl
from ttsframe.plugins.dia.config import DiaConfig


def _local_path(value: str | None, ctx: PluginContext) -> str | None:
    """Resolve a relative directory against the config file's directory, as the server
    does for its own paths; anything else (a hub id) is kept as written."""
    if not value or value.startswith(("/", "~")):
        return value
    base = Path(ctx.settings.base_dir) if ctx.settings is not None else Path.cwd()
    if value.startswith(("./", "../", ".\\", "..\\")) or (base / value).is_dir():
        return str((base / value).resolve())
    return value


def make_backend(ctx: PluginContext) -> Backend:
    """Build the backend; its module (torch, transformers) is imported only now."""
    from ttsframe.plugins.dia.backend import DiaBackend

    config: DiaConfig = ctx.config
    config = msgspec.structs.replace(
        config,
        model=_local_path(config.model, ctx),
        codec=_local_path(config.codec, ctx),
        cache_dir=_local_path(config.cache_dir, ctx))
    return DiaBackend(config)


@hookimpl
def register_backends(register):
    register("dia", make_backend, config=DiaConfig)


@hookimpl
def register_commands(register):
    from ttsframe.plugins.dia import commands

    register("make-tiny-model", commands.configure, commands.run, help=commands.HELP)
