"""Start a real ``ttsframe serve`` process on 127.0.0.1 for end-to-end tests.

The helpers live in the plugin authors' testing kit (``ttsframe.testing.server``), so
this suite and third-party plugins start servers the same way.
"""

from __future__ import annotations

from pathlib import Path

from ttsframe.testing.server import (
    ServerProcess,
    builtin_plugin_names,
    free_port,
    inherited_environment,
    install_fake_backend,
    install_fake_distribution,
)

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "ServerProcess", "builtin_plugin_names", "free_port",
           "inherited_environment", "install_fake_backend", "install_fake_distribution"]
