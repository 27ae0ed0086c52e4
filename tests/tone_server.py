"""A real server process on the tone backend (installed as an outside distribution)."""

from __future__ import annotations

from pathlib import Path

from tests.server import ServerProcess, install_fake_distribution

FAKES = Path(__file__).with_name("fakes.py")
# One request generating at a time; a plain job takes 10 x 50 ms, one whose text holds
# "(slow)" takes slow_factor times longer (50 s by default): long enough to cancel.
TONE = """\
[generation]
default_backend = "tone"
workers = 1
batch_wait_ms = 0

[plugins.tone]
step_delay_s = 0.05
steps = 10
"""


def tone_server(tmp_path: Path, config: str = TONE) -> ServerProcess:
    """A server on the tone backend, installed as an outside distribution. The config file
    is written once, so a restarted server reads what the last one left there."""
    cfg = tmp_path / "ttsframe.toml"
    if not cfg.exists():
        cfg.write_text(config)
    site = tmp_path / "site"
    if not site.exists():
        install_fake_distribution(site, "ttsframe-tone", "tone_plugin", {"tone": "tone_plugin"},
                                  source=FAKES.read_text())
    return ServerProcess(cfg, env={"PYTHONPATH": str(site),
                                   "TTSFRAME_PLUGINS__DIA__ENABLED": "false"},
                         plugins=["tone"])
