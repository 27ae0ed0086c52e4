"""The plugin author guide documents every hook (docs/plugins.md), and its tutorial
(docs/plugin-tutorial.md) works as written: its files are written, its commands run in
order in a fresh environment, and what it says they print is what they print.

Rules for the tutorial's markdown: a line ``**`path`**`` captions the code block below
it, which is written to that path; every ``bash`` block is run with bash in the work
folder (``ttsframe serve`` is started in the background); a ``text`` block is output
the last command printed (each of its lines must appear). The one change made to the
commands: port 7860 becomes a free port, so the test never collides with a real server.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server import ROOT, builtin_plugin_names, free_port
from ttsframe.core.interfaces import hookspecs
from ttsframe.testing.audio import decode, dominant_frequency
from ttsframe.testing.waiting import eventually

GUIDE = ROOT / "docs" / "plugins.md"
TUTORIAL = ROOT / "docs" / "plugin-tutorial.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
CAPTION = re.compile(r"^\*\*`([^`]+)`\*\*\s*$")


def hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "ttsframe_spec")]


def test_every_hook_is_documented():
    text = GUIDE.read_text()
    names = hook_names()
    assert len(names) >= 5
    for name in names:
        heading = f"### `{name}(register)`"
        assert heading in text, f"docs/plugins.md has no section '{heading}'"
        section = text.split(heading, 1)[1].split("\n### ", 1)[0]
        assert "`register(" in section, f"{name}: the section does not show register(...)"


def test_every_documented_hook_exists():
    documented = re.findall(r"^### `(\w+)\(register\)`", GUIDE.read_text(), flags=re.M)
    assert sorted(documented) == sorted(hook_names())


def test_tutorial_registers_one_of_each_hook():
    tutorial = TUTORIAL.read_text()
    for name in hook_names():
        assert f"def {name}(register)" in tutorial, name


@dataclass
class Step:
    kind: str  # "file", "bash" or "text"
    body: str
    path: str = ""


def tutorial_steps() -> list[Step]:
    tutorial = TUTORIAL.read_text()
    steps = []
    for match in FENCE.finditer(tutorial):
        before = tutorial[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        lang, body = match.group(1), match.group(2)
        caption = CAPTION.match(before)
        if caption:
            steps.append(Step("file", body, caption.group(1)))
        elif lang in ("bash", "text"):
            steps.append(Step(lang, body))
    return steps


def fresh_environment(root: Path) -> dict[str, str]:
    """A new virtual environment that sees this one's packages (ttsframe, pytest,
    setuptools) through a .pth file, with ``pip`` and ``ttsframe`` on its PATH."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "_parent_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    for tool, module in (("pip", "pip"), ("ttsframe", "ttsframe")):
        shim = venv / "bin" / tool
        shim.write_text(f'#!/bin/sh\nexec "{python}" -m {module} "$@"\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TTSFRAME_", "PYTEST_", "PYTHON"))}
    return {**env, "PATH": f"{venv / 'bin'}:{env['PATH']}", "VIRTUAL_ENV": str(venv),
            # Offline and quick: the dependencies are already there.
            "PIP_NO_INDEX": "1", "PIP_NO_DEPS": "1", "PIP_NO_BUILD_ISOLATION": "0",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            # Only ttsframe's own plugins and the tutorial's, whatever else is installed.
            "TTSFRAME_LOAD_PLUGINS": ",".join([*builtin_plugin_names(), "hello"])}


def test_tutorial_runs_as_written(tmp_path):
    steps = tutorial_steps()
    kinds = [s.kind for s in steps]
    assert kinds.count("file") >= 9 and kinds.count("bash") >= 5 and "text" in kinds
    env = fresh_environment(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    port = free_port()
    server: subprocess.Popen | None = None
    output = ""
    try:
        for step in steps:
            if step.kind == "file":
                path = work / step.path
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(step.body)
            elif step.kind == "bash" and step.body.strip() == "ttsframe serve":
                server = serve(work, {**env, "TTSFRAME_SERVER__PORT": str(port)}, port)
            elif step.kind == "bash":
                script = step.body.replace("7860", str(port))
                done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script],
                                      cwd=work, env=env, capture_output=True, text=True,
                                      timeout=300)
                output = done.stdout + done.stderr
                assert done.returncode == 0, f"{script}\n{output}"
            else:
                printed = {line.strip() for line in output.replace("\r", "").splitlines()}
                for line in step.body.splitlines():
                    assert line.strip() in printed, f"{line!r} not in:\n{output}"
        assert server is not None, "the tutorial never starts the server"
        audio = decode((work / "hello.wav").read_bytes())
        assert audio.codec == "pcm_mulaw"
        assert audio.duration == pytest.approx(5 * 0.225, abs=0.01)
        assert dominant_frequency(audio.samples, audio.sample_rate) == pytest.approx(330, abs=5)
        # The backend's own option reached it: 0.3 s chirps instead of the configured 0.15.
        long = decode((work / "long.wav").read_bytes())
        assert long.duration == pytest.approx(2 * 0.45, abs=0.01)
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)


def serve(work: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    """``ttsframe serve`` exactly as typed (the shim on PATH, ttsframe.toml from the
    folder), in the background; returns once the server is healthy."""
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(["bash", "-c", "exec ttsframe serve"], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT)

    def healthy() -> bool:
        assert proc.poll() is None, (work / "server.log").read_text()
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        except httpx.HTTPError:
            return False  # not listening yet
        return health["status"] == "healthy"

    try:
        eventually(healthy, timeout=60, interval=0.2)
    except AssertionError:
        proc.kill()
        raise
    return proc
