"""The README's curl tour runs as written against a real server, cloning step included,
with the sample shipped in ``docs/examples/``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import soundfile as sf

from tests.audio_checks import decode
from tests.server import ROOT
from tests.test_e2e_clients import doc_section
from ttsframe.testing.server import (
    ServerProcess,
    builtin_plugin_names,
    install_fake_backend,
)

SAMPLE = ROOT / "docs" / "examples" / "sample.wav"
TRANSCRIPT = ROOT / "docs" / "examples" / "sample.txt"


def test_the_shipped_sample_is_small_and_has_its_transcript():
    assert SAMPLE.stat().st_size < 200_000
    info = sf.info(SAMPLE)
    assert info.channels == 1 and 3.0 <= info.duration <= 10.0  # what cloning wants
    transcript = TRANSCRIPT.read_text().strip()
    assert transcript.startswith("[S1] ")
    assert transcript in (ROOT / "README.md").read_text()  # the tour names its words


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_readme_curl_tour_runs_as_written(tmp_path):
    section = doc_section(ROOT / "README.md", "curl")
    script = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    assert "@docs/examples/sample.wav" in script

    site = tmp_path / "site"
    install_fake_backend(site, "speaker", "STREAMING")  # a backend that clones
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "speaker"\n')
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "TTSFRAME_LOAD_PLUGINS": ",".join([*builtin_plugin_names(), "speaker"]),
           "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}
    work = tmp_path / "checkout"  # the reader runs it from the checkout's root
    (work / "docs").mkdir(parents=True)
    (work / "docs" / "examples").symlink_to(SAMPLE.parent)
    with ServerProcess(cfg, env=env) as srv:
        run = subprocess.run(["bash", "-e", "-c",
                              script.replace("127.0.0.1:7860", f"127.0.0.1:{srv.port}")],
                             cwd=work, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        # the JSON replies of the upload and of the new voice, printed by curl
        replies, text, decoder = [], run.stdout.strip(), json.JSONDecoder()
        while text:  # curl prints them back to back
            reply, end = decoder.raw_decode(text)
            replies.append(reply)
            text = text[end:].strip()
        assert [("detail" in r, r.get("prompt_id"), r.get("voice_config", {}).get("voice_id"))
                for r in replies] == [(False, "character_voice", None),
                                      (False, None, "my_character")], run.stdout
        voice = srv.client.get("/voice_mappings/my_character").json()
        assert voice["audio_prompt"] == "character_voice"
        assert voice["audio_prompt_transcript"] == TRANSCRIPT.read_text().strip()
    for name in ("speech.wav", "dialogue.mp3", "cloned.wav"):
        data = (work / name).read_bytes()
        samples, rate, _ = decode(data, name.rsplit(".", 1)[1])
        assert len(samples) / rate > 0.2, name
