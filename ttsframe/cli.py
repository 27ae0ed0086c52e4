"""Command line: ``ttsframe serve``, ``ttsframe plugins``, ``ttsframe make-tiny-model``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ttsframe import __version__
from ttsframe.core.config import Settings, load_settings
from ttsframe.core.errors import ConfigError, PluginError


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
    if args.workers is not None:
        put("generation", "workers", args.workers)
    if args.retention_hours is not None:
        put("logging", "output_retention_hours", args.retention_hours)
    if args.host is not None:
        put("server", "host", args.host)
    if args.port is not None:
        put("server", "port", args.port)
    return over


def _settings(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Settings:
    return load_settings(args.config, overrides=overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    from ttsframe.core.data_lock import DataDirLock
    from ttsframe.core.runtime_config import keys_readable_by_others
    from ttsframe.core.services import build_services
    from ttsframe.http.app import create_app
    from ttsframe.http.server import serve

    settings = _settings(args, _serve_overrides(args))
    level = "debug" if settings.server.debug_mode else settings.server.log_level
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Before anything reads or sweeps the data directory: one server owns it.
    lock = DataDirLock(settings.data_dir).acquire()
    try:
        services = build_services(settings)
        app = create_app(services)
        where = settings.config_path or "built-in defaults"
        logger = logging.getLogger("ttsframe")
        logger.info("config: %s; data: %s", where, settings.data_dir)
        if settings.config_path and keys_readable_by_others(Path(settings.config_path)):
            logger.warning("%s holds API keys and other users can read it; make it private: "
                           "chmod 600 %s", settings.config_path, settings.config_path)
        serve(app, services, host=settings.server.host, port=settings.server.port,
              log_level=level)
    finally:
        lock.release()
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from ttsframe.core.plugins import load_plugins

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


def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from ttsframe.plugins.dia.tiny import write_tiny_checkpoint

    dest = Path(args.directory)
    write_tiny_checkpoint(dest, seed=args.seed, layout=args.layout)
    print(f"wrote a tiny random Dia checkpoint to {dest}")
    if args.layout == "dir":
        print(f"use it with:  TTSFRAME_PLUGINS__DIA__MODEL='\"{dest.resolve()}\"' ttsframe serve")
    else:
        print(f"use it with:  HF_HUB_CACHE={dest.resolve()} HF_HUB_OFFLINE=1 ttsframe serve")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ttsframe", description=__doc__)
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
    serve.set_defaults(func=cmd_serve)

    plugins = with_config(sub.add_parser("plugins", help="list plugins and what they provide"))
    plugins.set_defaults(func=cmd_plugins)

    tiny = sub.add_parser("make-tiny-model",
                          help="write a tiny random Dia checkpoint (for tests and trials)")
    tiny.add_argument("directory")
    tiny.add_argument("--layout", choices=["dir", "hub-cache"], default="dir",
                      help="'dir': a folder to set as [plugins.dia] model; 'hub-cache': a "
                           "Hugging Face cache holding the real repo ids")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=cmd_make_tiny_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, PluginError) as exc:
        print(f"ttsframe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
