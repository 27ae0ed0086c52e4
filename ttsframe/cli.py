"""Command line: ``ttsframe serve``, ``ttsframe plugins``, and the commands plugins add.

Plugin commands (``register_commands``) come from every installed plugin that
``TTSFRAME_LOAD_PLUGINS`` allows and ``[plugins.<name>] enabled`` does not switch off; the
Dia plugin adds ``make-tiny-model`` this way. The CLI itself imports no plugin.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ttsframe import __version__
from ttsframe.core.config.settings import Settings, load_settings
from ttsframe.core.errors import ConfigError, PluginError

# Exit statuses of ``serve``: 2 for a bad configuration, 3 when the address is unusable,
# 4 when a directory it writes or its database cannot be used (read-only, damaged).
EXIT_CANNOT_LISTEN = 3
EXIT_STORAGE = 4


# ``serve`` flags that set one config key to their value (argparse dest -> section, key).
VALUE_FLAGS = {
    "workers": ("generation", "workers"),
    "retention_hours": ("logging", "output_retention_hours"),
    "host": ("server", "host"),
    "port": ("server", "port"),
    "cluster": ("cluster", "engine"),
    "ray_address": ("cluster", "address"),
    "replicas": ("cluster", "replicas"),
}


def _serve_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags of the guide's start script, mapped onto config keys (flags win)."""
    over: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        over.setdefault(section, {})[key] = value

    if args.production:
        put("server", "debug_mode", False)
        put("server", "log_level", "warning")
        put("logging", "save_outputs", False)
        put("logging", "show_prompts", False)
    if args.dev:
        put("server", "debug_mode", True)
        put("server", "log_level", "debug")
        put("logging", "save_outputs", True)
        put("logging", "show_prompts", True)
    if args.debug:
        put("server", "debug_mode", True)
        put("server", "log_level", "debug")
    if args.save_outputs:
        put("logging", "save_outputs", True)
    for flag, (section, key) in VALUE_FLAGS.items():
        if getattr(args, flag) is not None:
            put(section, key, getattr(args, flag))
    return over


def _settings(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Settings:
    return load_settings(args.config, overrides=overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    from ttsframe.assembly import build_services, check_config
    from ttsframe.core.config.file import keys_readable_by_others, remove_stale_temps_of
    from ttsframe.core.errors import StorageUnusable
    from ttsframe.core.storage.data_lock import DataDirLock
    from ttsframe.core.storage.database import DATABASE_NAME, check_database
    from ttsframe.http.app import create_app
    from ttsframe.http.auth import every_key_is_admin
    from ttsframe.http.listen import CannotListen, bind_listeners
    from ttsframe.http.server import serve
    from ttsframe.log_format import configure_logging

    settings = _settings(args, _serve_overrides(args))
    level = "debug" if settings.server.debug_mode else settings.server.log_level
    configure_logging(level, settings.server.log_format)
    # Config errors first (exit 2), plugins' sections included: a taken port must not
    # hide them. Nothing here loads a model or touches the data directory.
    checked = check_config(settings)
    try:  # then the port: when it is taken, that is all there is to say
        sockets = bind_listeners(settings.server.host, settings.server.port)
    except CannotListen as exc:
        print(f"ttsframe: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    os.umask(settings.server.umask)  # before anything is created
    # Before anything reads or sweeps them: one server owns the directories it writes.
    lock = DataDirLock.for_settings(settings)
    try:
        lock.acquire()
        check_database(settings.data_dir / DATABASE_NAME)
    except StorageUnusable as exc:
        lock.release()
        print(f"ttsframe: error: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    logger = logging.getLogger("ttsframe")
    for note in lock.notes:
        logger.warning(note)
    try:
        if settings.config_path:
            for path in remove_stale_temps_of(Path(settings.config_path)):
                logger.info("removed %s, a copy of the config left by a write that was "
                            "cut off", path)
        services = build_services(settings, checked=checked)
        app = create_app(services)
        where = settings.config_path or "built-in defaults"
        logger.info("config: %s; data: %s", where, settings.data_dir)
        if settings.config_path and keys_readable_by_others(Path(settings.config_path)):
            logger.warning("%s holds API keys and other users can read it; make it private: "
                           "chmod 600 %s", settings.config_path, settings.config_path)
        if note := every_key_is_admin(settings.security):
            logger.warning(note)
        serve(app, services, sockets=sockets, log_level=level)
    finally:
        lock.release()
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from ttsframe.core.interfaces.plugins import load_plugins

    settings = _settings(args)
    _, _, infos = load_plugins(settings.plugin_enabled)
    for info in infos:
        version = f" {info.version}" if info.version else ""
        print(f"{info.name}{version}  [{info.source}]")
        print(f"    hooks: {', '.join(info.hooks) or '-'}")
        print(f"    provides: {', '.join(info.provides) or '-'}")
    disabled = [name for name in settings.plugins if not settings.plugin_enabled(name)]
    if disabled:
        print(f"disabled in config: {', '.join(sorted(disabled))}")
    return 0


BUILT_IN_COMMANDS = ("serve", "plugins")


def plugin_commands(argv: list[str]) -> dict[str, Any]:
    """``name -> Command`` from the enabled plugins; a broken plugin or config only warns
    here (``serve`` and ``plugins`` report it as an error)."""
    from ttsframe.core.interfaces.plugins import load_plugins

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    try:
        enabled = _settings(known).plugin_enabled
    except ConfigError:
        enabled = lambda name: True  # noqa: E731 - the command itself reports the config
    try:
        _, registry, _ = load_plugins(enabled)
    except PluginError as exc:
        print(f"ttsframe: warning: plugin commands unavailable: {exc}", file=sys.stderr)
        return {}
    commands = {}
    for name, reg in sorted(registry.items["command"].items()):
        if name in BUILT_IN_COMMANDS:
            print(f"ttsframe: warning: plugin {reg.plugin!r} registers command {name!r}, "
                  "which is built in; ignored", file=sys.stderr)
            continue
        commands[name] = reg.factory
    return commands


def build_parser(commands: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ttsframe", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ttsframe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="path to ttsframe.toml (default: $TTSFRAME_CONFIG, "
                                        "then ./ttsframe.toml)")
        return p

    serve = with_config(sub.add_parser("serve", help="run the HTTP server"))
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--dev", action="store_true",
                      help="debug logging, save outputs, show prompts")
    mode.add_argument("--production", action="store_true",
                      help="warning-level logs, no saved outputs or prompts")
    serve.add_argument("--debug", action="store_true", help="debug mode and logging")
    serve.add_argument("--save-outputs", action="store_true",
                       help="keep generated audio in the outputs directory")
    serve.add_argument("--workers", type=int,
                       help="how many requests may be generating (batched) at once")
    serve.add_argument("--retention-hours", type=float,
                       help="delete generation logs and saved outputs older than this")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 7860)")
    serve.add_argument("--cluster", choices=["local", "ray"],
                       help="where backends run: this process, or Ray actors (cluster.engine)")
    serve.add_argument("--ray-address",
                       help="Ray cluster to join: an address, 'auto', or '' to start one here "
                            "(cluster.address)")
    serve.add_argument("--replicas", type=int,
                       help="Ray actors per backend, each with its own GPU (cluster.replicas)")
    serve.set_defaults(func=cmd_serve)

    plugins = with_config(sub.add_parser("plugins", help="list plugins and what they provide"))
    plugins.set_defaults(func=cmd_plugins)

    for name, command in (commands or {}).items():
        p = sub.add_parser(name, help=command.help)
        command.configure(p)
        p.set_defaults(func=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(plugin_commands(argv)).parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, PluginError) as exc:
        print(f"ttsframe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
