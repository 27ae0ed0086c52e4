"""A testing kit for plugin authors (and for ttsframe's own suite).

* ``ttsframe.testing.fake_backend``: ``FakeBackend``, one configurable stand-in
  backend (``FakeConfig``; presets ``BEEPER``, ``TONE``, ``STREAMING``, ``FLAKY``), and
  ``fake_backend_plugin`` registering it; exported here too.
* ``ttsframe.testing.contracts``: suites to subclass (``BackendContract``,
  ``VoiceStoreContract``, ``EncoderContract``, ``PreprocessorContract``,
  ``QualityCheckContract``).
* ``ttsframe.testing.app``: ``assemble`` / ``app_client`` for an in-process server
  with your plugin registered by name or by entry point.
* ``ttsframe.testing.server``: ``ServerProcess``, a real ``ttsframe serve`` on loopback.
* ``ttsframe.testing.audio``: ``decode`` bytes with PyAV, ``sine``, ``rms``.
* ``ttsframe.testing.waiting``: ``eventually`` (and ``eventually_async``), polling a
  state another thread or process reaches, with a timeout, instead of a fixed sleep.
* ``ttsframe.testing.fixtures``: pytest fixtures, loaded automatically through the
  ``pytest11`` entry point when ttsframe is installed.

It needs pytest (``pip install ttsframe[dev]``), except ``fake_backend``, which a plugin
installed into a test server imports; nothing here is imported by the server itself.
"""

from ttsframe.testing.fake_backend import (
    BEEPER,
    FLAKY,
    STREAMING,
    TONE,
    FakeBackend,
    FakeConfig,
    fake_backend_plugin,
)

__all__ = ["BEEPER", "FLAKY", "STREAMING", "TONE", "FakeBackend", "FakeConfig",
           "fake_backend_plugin"]
