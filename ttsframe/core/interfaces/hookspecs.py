"""Hook specifications: the whole plugin contract.

Each hook hands the plugin a ``register`` callback. The core's registry owns naming, so
two plugins claiming one name is a startup error instead of a silent override.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("ttsframe")
hookimpl = pluggy.HookimplMarker("ttsframe")


@hookspec
def register_backends(register):
    """Register backends: ``register(name, factory, config=StructType | None)``.

    ``factory(ctx: PluginContext) -> Backend``; ``config`` is a msgspec Struct type that
    the plugin's ``[plugins.<plugin>]`` section is validated against.
    """


@hookspec
def register_preprocessors(register):
    """Register text preprocessors: ``register(name, factory, config=None)``.

    ``factory(ctx) -> TextPreprocessor``; they run in ascending ``order``.
    """


@hookspec
def register_voice_stores(register):
    """Register voice stores: ``register(name, factory, config=None)``; one is active."""


@hookspec
def register_encoders(register):
    """Register output encoders: ``register(format, factory, config=None)``."""


@hookspec
def register_quality_checks(register):
    """Register checks of each take: ``register(name, factory, config=None)``.

    ``factory(ctx) -> check``; ``check(take: Take) -> CheckResult | None`` looks at one
    take of one chunk (its text, audio, sample rate, backend, voice) and returns whether
    it passes, a score in [0, 1] and a reason (None: it does not apply). A failed take is
    generated again, as for the built-in checks (``[quality]``).
    """


@hookspec
def register_routes(register):
    """Add HTTP routes: ``register(handler, config=StructType | None)`` with a Litestar
    route handler, Controller or Router.

    Handlers may declare a ``services`` parameter to receive the server's ``Services`` and
    a ``plugin_config`` parameter to receive the plugin's validated section.
    """


@hookspec
def register_commands(register):
    """Add ``ttsframe`` subcommands: ``register(name, configure, run, help="")``.

    ``configure(parser)`` adds arguments to the command's ``argparse.ArgumentParser``;
    ``run(args) -> int`` runs it and returns the exit status.
    """
