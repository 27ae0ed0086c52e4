"""Startup assembly: settings + plugins -> the objects the HTTP layer is given.

Everything stateful is built here once and injected; there are no module-level singletons.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from ttsframe.core.config.editor import ConfigEditor
from ttsframe.core.config.settings import Settings
from ttsframe.core.errors import ConfigError, NotFound
from ttsframe.core.interfaces.backend import Backend
from ttsframe.core.interfaces.encoder import Encoder
from ttsframe.core.interfaces.plugins import (
    PluginContext,
    PluginInfo,
    Registration,
    Registry,
    load_plugins,
    plugin_config,
)
from ttsframe.core.interfaces.preprocessor import TextPreprocessor
from ttsframe.core.interfaces.voice_store import VoiceStore
from ttsframe.core.jobs.service import JobService
from ttsframe.core.jobs.store import JobStore
from ttsframe.core.live.session import LiveSessions
from ttsframe.core.observability.metrics import Metrics
from ttsframe.core.observability.tracing import Tracing, build_tracing
from ttsframe.core.speech.catalogue import ModelCatalogue
from ttsframe.core.speech.scheduler import BackendWorker, Scheduler
from ttsframe.core.speech.service import SpeechService
from ttsframe.core.storage.database import DATABASE_NAME, Database
from ttsframe.core.storage.generation_log import GenerationLog
from ttsframe.core.storage.retention import Retention
from ttsframe.core.text.pronunciations import PronunciationStore
from ttsframe.core.voices.async_store import AsyncVoices

log = logging.getLogger("ttsframe")


@dataclass
class Services:
    """Everything ``build_services`` made, handed to the app; starts and stops it in order."""

    settings: Settings
    plugin_manager: pluggy.PluginManager
    registry: Registry
    plugins: list[PluginInfo]
    backends: dict[str, Backend]
    preprocessors: list[TextPreprocessor]
    voices: VoiceStore
    encoders: dict[str, Encoder]
    scheduler: Scheduler
    speech: SpeechService
    database: Database
    jobs: JobService
    generation_log: GenerationLog
    retention: Retention
    config_editor: ConfigEditor
    metrics: Metrics
    tracing: Tracing
    # The backends, their state and every model listing (core/speech/catalogue.py).
    catalogue: ModelCatalogue
    # Validated ``[plugins.<name>]`` config of each plugin that registered routes; the
    # app hands it to that plugin's handlers as the ``plugin_config`` dependency.
    route_configs: dict[str, Any] = field(default_factory=dict)
    # The voice store for the event loop: every call awaited, run in a worker thread.
    async_voices: AsyncVoices = field(init=False)
    # The pronunciation dictionary the /pronunciations routes manage (the preprocessor
    # reads the same file through its own store).
    pronunciations: PronunciationStore = field(init=False)
    # The Ray connection when ``cluster.engine`` is "ray" (closed after the scheduler).
    cluster: Any = None
    # Open live sessions (text in, audio out: core/live/session.py).
    live: LiveSessions | None = None

    def __post_init__(self) -> None:
        self.async_voices = AsyncVoices(self.voices)
        self.pronunciations = PronunciationStore(self.settings.data_dir)

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.database.open()
        await self.scheduler.start()
        await self.generation_log.start()
        await self.jobs.start()  # accounts for the jobs of the last run before new ones
        self.retention.start()

    def begin_stop(self) -> None:
        """A stop signal arrived (called on the event loop before the server drains its
        connections): take no new work, give what is generating the grace period."""
        self.scheduler.close(self.settings.server.shutdown_grace_s)

    async def stop(self) -> None:
        if self.scheduler.closing:  # stopped by a signal: let the grace period run out
            await self.scheduler.drain()
        await self.retention.stop()
        await self.jobs.stop()
        await self.scheduler.stop()
        if self.cluster is not None:
            self.cluster.shutdown()
        await self.database.close()
        self.tracing.shutdown()


@dataclass
class CheckedConfig:
    """The loaded plugins and every section a factory will be given, validated.

    ``check_config`` makes it before ``ttsframe serve`` binds its port, so a bad key is
    reported (exit 2) even where the port is taken; nothing here touches the data
    directory or imports a backend's model code.
    """

    plugin_manager: pluggy.PluginManager
    registry: Registry
    plugins: list[PluginInfo]
    backends: dict[str, Registration]
    voice_store: Registration
    preprocessors: list[Registration]
    encoders: dict[str, Registration]
    # Each registration's validated ``[plugins.<name>]`` section, by (kind, name).
    configs: dict[tuple[str, str], Any]
    route_configs: dict[str, Any]

    def instantiate(self, reg: Registration, settings: Settings) -> Any:
        ctx = PluginContext(plugin=reg.plugin, config=self.configs[reg.kind, reg.name],
                            data_dir=settings.data_dir, settings=settings)
        return reg.factory(ctx)


def check_voice_aliases(aliases: dict[str, str]) -> None:
    """``voices.aliases``: an alias of an alias, or a blank name, is a config error."""
    for alias, target in aliases.items():
        if not alias.strip() or not target.strip():
            raise ConfigError(f"invalid value for 'voices.aliases': '{alias}' = '{target}'; "
                              "both the alias and its voice need a name")
        if target in aliases:
            raise ConfigError(
                f"invalid value for 'voices.aliases': '{alias}' names '{target}', which is "
                f"an alias itself; point '{alias}' at the voice '{target}' stands for")


def warn_of_missing_alias_targets(aliases: dict[str, str], store: VoiceStore) -> None:
    """A ``voices.aliases`` target the store does not have is a warning, not an error: it
    may be created through the API."""
    for alias, target in aliases.items():
        try:
            store.get_voice(target)
        except NotFound:
            log.warning("voices.aliases: '%s' names voice '%s', which does not exist (yet); "
                        "requests for '%s' get a 'voice not found' error until it is created",
                        alias, target, alias)


def check_config(
    settings: Settings,
    *,
    extra_plugins: Iterable[tuple[str, object]] = (),
    entry_points: bool = True,
) -> CheckedConfig:
    """Load plugins and validate what depends on them: each ``[plugins.<name>]`` section
    a factory will receive and the ``[generation]`` names of a backend, voice store and
    format. A ``ConfigError`` (or ``PluginError``) names the key."""
    pm, registry, infos = load_plugins(settings.plugin_enabled, extra_plugins,
                                       entry_points=entry_points)
    gen = settings.generation
    backends = registry.items["backend"]
    if gen.default_backend not in backends:
        raise ConfigError(
            f"invalid value for 'generation.default_backend': no backend named "
            f"'{gen.default_backend}' is registered; allowed values: "
            f"{', '.join(sorted(backends)) or '(none: install or enable a backend plugin)'}")
    store_reg = registry.get("voice_store", gen.voice_store)
    if store_reg is None:
        raise ConfigError(
            f"invalid value for 'generation.voice_store': '{gen.voice_store}'; allowed "
            f"values: {', '.join(registry.names('voice_store')) or '(none registered)'}")
    if gen.default_format not in registry.items["encoder"]:
        raise ConfigError(
            f"invalid value for 'generation.default_format': '{gen.default_format}'; "
            f"allowed values: {', '.join(registry.names('encoder'))}")
    check_voice_aliases(settings.voices.aliases)
    preprocessors = list(registry.items["preprocessor"].values())
    encoders = registry.items["encoder"]
    used = [*backends.values(), store_reg, *preprocessors, *encoders.values(),
            *registry.items["quality_check"].values()]
    configs = {(reg.kind, reg.name): plugin_config(reg, settings) for reg in used}
    route_configs: dict[str, Any] = {}
    for reg in registry.routes:  # a config type given with any of its routes applies
        if reg.config is not None or reg.plugin not in route_configs:
            route_configs[reg.plugin] = plugin_config(reg, settings)
    return CheckedConfig(plugin_manager=pm, registry=registry, plugins=infos,
                         backends=dict(backends), voice_store=store_reg,
                         preprocessors=preprocessors, encoders=dict(encoders),
                         configs=configs, route_configs=route_configs)


def build_services(
    settings: Settings,
    *,
    checked: CheckedConfig | None = None,
    extra_plugins: Iterable[tuple[str, object]] = (),
    entry_points: bool = True,
) -> Services:
    """Build backends, stores, encoders and scheduler from the ``check_config`` result
    (made here when not given)."""
    if checked is None:
        checked = check_config(settings, extra_plugins=extra_plugins,
                               entry_points=entry_points)
    pm, registry, infos = checked.plugin_manager, checked.registry, checked.plugins
    route_configs = checked.route_configs
    gen = settings.generation

    backends = {name: checked.instantiate(reg, settings)
                for name, reg in checked.backends.items()}
    voices = checked.instantiate(checked.voice_store, settings)
    warn_of_missing_alias_targets(settings.voices.aliases, voices)
    # In the order they run (``order``, then name), as the speech service applies them.
    preprocessors = sorted((checked.instantiate(reg, settings) for reg in checked.preprocessors),
                           key=lambda p: (p.order, p.name))
    encoders = {name: checked.instantiate(reg, settings)
                for name, reg in checked.encoders.items()}
    cluster = None
    if settings.cluster.engine == "ray":  # backends run as Ray actors (ttsframe/cluster)
        from ttsframe.cluster import build_ray_workers

        cluster, workers = build_ray_workers(settings, backends)
        backends = {name: pool.backend for name, pool in workers.items()}
    else:
        workers = {name: BackendWorker(name, backend) for name, backend in backends.items()}
    scheduler = Scheduler(workers, queue_size=gen.queue_size, max_batch=gen.workers,
                          batch_wait_s=gen.batch_wait_ms / 1000)
    speech = SpeechService(settings, backends, preprocessors, voices, encoders, scheduler)
    speech.quality.extra.update({name: checked.instantiate(reg, settings) for name, reg
                                 in registry.items["quality_check"].items()})
    database = Database(settings.data_dir / DATABASE_NAME)
    generation_log = GenerationLog(settings, database,
                                   settings.path(settings.storage.audio_outputs_dir))
    speech.observers.append(generation_log.record)
    jobs = JobService(settings, JobStore(database), speech, settings.data_dir / "jobs")
    retention = Retention(jobs, generation_log)
    config_editor = ConfigEditor(settings, scheduler, list(encoders))
    metrics = Metrics()  # this server's own registry, whether or not it is served
    scheduler.on_batch = metrics.batch_done
    speech.observers.append(metrics.generation_ended)
    speech.quality.on_failed, speech.quality.on_retry = metrics.check_failed, metrics.retried
    metrics.watch(scheduler, speech.open_streams, settings.data_dir, jobs.store.counts)
    catalogue = ModelCatalogue(settings, backends, scheduler.workers,
                               {name: reg.plugin for name, reg in checked.backends.items()})
    live = LiveSessions(settings, speech)
    metrics.watch_live(live)
    tracing = speech.tracing = build_tracing(settings)
    if tracing.enabled:
        speech.observers.append(tracing.generation_ended)
    return Services(settings=settings, plugin_manager=pm, registry=registry, plugins=infos,
                    backends=backends, preprocessors=preprocessors, voices=voices,
                    encoders=encoders, scheduler=scheduler, speech=speech, database=database,
                    jobs=jobs, generation_log=generation_log, retention=retention,
                    config_editor=config_editor, metrics=metrics, tracing=tracing,
                    catalogue=catalogue, route_configs=route_configs, cluster=cluster,
                    live=live)
