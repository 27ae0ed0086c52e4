"""Text logs cannot be forged: what a client sends reaches a log line with its control
characters escaped, so a line break in a field name cannot start a line that looks like
the server's own and an escape sequence never reaches the reader's terminal. Run against
a real server writing the default text log."""

from __future__ import annotations

import logging
import os
import re

import pytest

from tests.job_helpers import TONE
from tests.server import ROOT, ServerProcess, install_fake_backend
from ttsframe.log_format import TextFormatter, escape_controls
from ttsframe.testing.waiting import eventually

FORGED = "fake\nINFO ttsframe.auth [-]: FORGED admin login ok\u001b[31m"
# The start of every line the server writes: "2026-12-07 19:03:40,954 LEVEL logger [id]: "
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+ \[[^\]]*\]: ")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("text-log")
    (root / "ttsframe.toml").write_text(TONE)
    site = install_fake_backend(root / "site", "tone", "TONE")
    with ServerProcess(root / "ttsframe.toml", plugins=["tone"],
                       env={"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
                            "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}) as srv:
        yield srv


def test_a_field_name_with_a_line_break_and_an_escape_cannot_forge_a_log_line(server):
    srv = server
    r = srv.client.post("/generate", json={"text": "Hello.", "voice_id": "alloy", FORGED: 1},
                        headers={"X-Request-ID": "forge-1"})
    assert r.status_code == 200, r.text
    r = srv.client.get("/nothing%0AINFO%20ttsframe.auth%20[-]:%20FORGED%20path%1B[31m",
                       headers={"X-Request-ID": "forge-2"})
    assert r.status_code == 404

    def logged() -> str | None:
        text = srv.output()
        return text if "forge-1" in text and "forge-2" in text and "FORGED" in text else None

    text = eventually(logged, message=lambda: srv.output()[-3000:])
    assert "\x1b" not in text
    for line in text.splitlines():  # every line is a record's own start or indented
        assert RECORD_START.match(line) or line.startswith(" "), repr(line)
        assert not line.lstrip().startswith("INFO ttsframe.auth"), repr(line)
    assert any("fake\\nINFO ttsframe.auth [-]: FORGED admin login ok\\x1b[31m" in line
               for line in text.splitlines())  # shown, escaped, on the request's line


def test_the_text_formatter_escapes_every_record_and_indents_its_traceback():
    record = logging.LogRecord("ttsframe.x", logging.ERROR, __file__, 1,
                               "got %s", ("a\r\nb\x00\x1b[2J\x85\u2028\u202e",), None)
    try:
        raise ValueError("bad\nINFO forged")
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    record.request_id = "r\n1"
    lines = TextFormatter().format(record).splitlines()
    assert lines[0].endswith(r"[r\n1]: got a\r\nb\x00\x1b[2J\x85\u2028\u202e")
    assert all(line.startswith("  ") for line in lines[1:])
    assert lines[-1] == "  INFO forged"
    assert escape_controls("plain é 中 😀") == "plain é 中 😀"
