"""Plugin loading, the registry of what each plugin provides, and the context a
plugin's factories receive.

Plugins are found through the ``ttsframe`` entry-point group by pluggy's own loader; the
built-ins are found the same way, and a disabled plugin is blocked, so it is never
imported. Each hook receives a ``register`` callback bound to the calling plugin, so the
registry knows who registered what and refuses duplicate names.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pluggy

from ttsframe.core.config.settings import Settings, convert
from ttsframe.core.errors import PluginError
from ttsframe.core.interfaces import hookspecs

ENTRY_POINT_GROUP = "ttsframe"
KINDS = {
    "register_backends": "backend",
    "register_preprocessors": "preprocessor",
    "register_voice_stores": "voice_store",
    "register_encoders": "encoder",
    "register_routes": "routes",
    "register_commands": "command",
    "register_quality_checks": "quality_check",
}


class PluginContext(msgspec.Struct, kw_only=True):
    """What a factory receives: its own config section and the server's paths."""

    plugin: str
    config: Any
    data_dir: Path
    settings: Any


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    factory: Any
    config: type | None
    plugin: str


@dataclass(frozen=True)
class Command:
    """A CLI subcommand a plugin adds (``register_commands``)."""

    configure: Callable[[Any], None]
    run: Callable[[Any], int]
    help: str = ""


@dataclass
class PluginInfo:
    name: str
    source: str
    version: str
    hooks: list[str]
    provides: list[str] = field(default_factory=list)


@dataclass
class Registry:
    """Named registrations per kind; built once at startup."""

    items: dict[str, dict[str, Registration]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS.values()}
    )
    routes: list[Registration] = field(default_factory=list)

    def add(self, reg: Registration) -> None:
        if reg.kind == "routes":
            self.routes.append(reg)
            return
        if not isinstance(reg.name, str) or not reg.name:
            raise PluginError(f"plugin {reg.plugin!r} registered a {reg.kind} without a name")
        existing = self.items[reg.kind].get(reg.name)
        if existing is not None:
            raise PluginError(
                f"{reg.kind} {reg.name!r} is registered by both plugin {existing.plugin!r} "
                f"and plugin {reg.plugin!r}; disable one with "
                f"'[plugins.{reg.plugin}] enabled = false' in ttsframe.toml"
            )
        self.items[reg.kind][reg.name] = reg

    def names(self, kind: str) -> list[str]:
        return sorted(self.items[kind])

    def get(self, kind: str, name: str) -> Registration | None:
        return self.items[kind].get(name)


def new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("ttsframe")
    pm.add_hookspecs(hookspecs)
    return pm


def load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register the ``ttsframe`` entry points with pluggy's own loader (blocked names are
    skipped, never imported); an import error names the plugin and how to turn it off."""
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:
        # pluggy loads in discovery order and stops at the failure: the first entry point
        # neither registered nor blocked is the one that failed.
        failed = next((ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
                       if not pm.has_plugin(ep.name) and not pm.is_blocked(ep.name)), None)
        name, value = (failed.name, failed.value) if failed else ("?", "?")
        raise PluginError(
            f"plugin {name!r} ({value}) failed to import: {exc}; fix or uninstall "
            f"it, or set '[plugins.{name}] enabled = false'"
        ) from exc


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook, one plugin at a time, so names can be attributed."""
    pm.check_pending()
    registry = Registry()
    for hook_name, kind in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name

            def register(name: Any, factory: Any = None, config: Any = None, help: str = "",
                         *, _kind: str = kind, _plugin: str = plugin) -> None:
                if _kind == "command":  # register(name, configure, run, help="")
                    if not (callable(factory) and callable(config)):
                        raise PluginError(f"plugin {_plugin!r}: command {name!r} needs "
                                          "configure(parser) and run(args) callables")
                    registry.add(Registration(_kind, name, Command(factory, config, help),
                                              None, _plugin))
                elif _kind == "routes":
                    registry.add(Registration(_kind, _route_name(name), name, config,
                                              _plugin))
                else:
                    if not callable(factory):
                        raise PluginError(f"plugin {_plugin!r}: {_kind} {name!r} needs a factory")
                    registry.add(Registration(_kind, name, factory, config, _plugin))

            impl.function(register=register)
    return registry


def _route_name(handler: Any) -> str:
    """What ``ttsframe plugins`` shows for a route: its path(s), or a router's path."""
    paths = getattr(handler, "paths", None) or [getattr(handler, "path", "?")]
    return "|".join(sorted(paths))


def describe_plugins(pm: pluggy.PluginManager, registry: Registry) -> list[PluginInfo]:
    """What ``ttsframe plugins`` prints: each plugin, where it comes from, what it provides."""
    sources = {pm.get_name(plugin): (dist.project_name, dist.version)
               for plugin, dist in pm.list_plugin_distinfo()}
    provided: dict[str, list[str]] = {}
    for kind_items in registry.items.values():
        for reg in kind_items.values():
            provided.setdefault(reg.plugin, []).append(f"{reg.kind}:{reg.name}")
    for reg in registry.routes:
        provided.setdefault(reg.plugin, []).append(f"routes:{reg.name}")
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:  # blocked: disabled in the config
            continue
        dist, version = sources.get(name, ("", ""))
        if dist == "ttsframe":
            source = "built-in"
        elif dist:
            source = f"distribution {dist}"
        else:
            source = f"registered in code ({getattr(plugin, '__name__', type(plugin).__name__)})"
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        infos.append(PluginInfo(name, source, version, hooks, sorted(provided.get(name, []))))
    return infos


def load_plugins(
    enabled: Callable[[str], bool],
    extra: Iterable[tuple[str, object]] = (),
    *,
    entry_points: bool = True,
) -> tuple[pluggy.PluginManager, Registry, list[PluginInfo]]:
    """Load entry points (unless disabled) plus ``extra`` (name, plugin) pairs. A plugin
    that is not ``enabled`` is blocked in pluggy, so it is neither imported nor registered."""
    pm = new_manager()
    extra = list(extra)
    names = {name for name, _ in extra}
    if entry_points:
        names |= {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    for name in names:
        if not enabled(name):
            pm.set_blocked(name)
    if entry_points:
        load_entry_points(pm)
    for name, plugin in extra:
        pm.register(plugin, name=name)  # registers nothing when the name is blocked
    registry = build_registry(pm)
    return pm, registry, describe_plugins(pm, registry)


def plugin_config(reg: Registration, settings: Settings) -> Any:
    """The plugin's section, validated by its config Struct when it registered one."""
    section = settings.plugin_section(reg.plugin)
    if reg.config is not None:
        return convert(section, reg.config, prefix=f"plugins.{reg.plugin}")
    return section
