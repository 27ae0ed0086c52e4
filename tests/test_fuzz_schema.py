"""Schema fuzzing: schemathesis runs every operation of the served OpenAPI schema against a
real server (the tone backend, a throwaway data directory) and holds each reply to the
schema: no 5xx, every status declared, every body and media type as declared, declared
headers present, stateful sequences (create -> read -> delete) consistent.

Three of schemathesis' checks are left out, each for a stated reason:

* ``positive_data_acceptance``: schema-valid requests may still be refused on meaning
  (an unknown voice is 404, ``[S3]`` is 400, the text limit is runtime configuration).
* ``negative_data_rejection``: Litestar converts numbers and booleans sent as strings
  (``"1.5"``, ``"true"``, ``0``) instead of refusing them; ttsframe keeps that leniency
  for clients that send form-ish JSON. Every other kind of bad input is a 400
  (``docs/bad-input.md``, ``tests/test_bad_input.py``).
* ``allow_header_conformance``: Litestar 2 answers a plain ``OPTIONS`` with an ``Allow``
  header naming only the first handler of a path (litestar-org/litestar#4169, fixed in
  Litestar 3); CORS preflights are answered by the CORS middleware and are unaffected.

``TTSFRAME_FUZZ_EXAMPLES`` raises the number of cases per operation (default 25) for a
longer run; docs/reliability.md gives the command.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.job_helpers import submit, tone_server, wait_for
from tests.voice_fixtures import sine_wav

EXCLUDED_CHECKS = "positive_data_acceptance,negative_data_rejection,allow_header_conformance"
SERVER = """\
[generation]
default_backend = "tone"
batch_wait_ms = 0

[storage]
max_upload_mb = 1

[logging]
save_outputs = true
show_prompts = true

[plugins.tone]
steps = 1
"""


def seed_state(c: httpx.Client) -> dict[str, list[str]]:
    """Voices, a prompt, finished jobs and saved logs, so that lookups by id reach the
    code behind them instead of answering 404 to random ids."""
    r = c.post("/audio_prompts/upload", data={"prompt_id": "fuzz_prompt"},
               files={"audio_file": ("sample.wav", sine_wav(), "audio/wav")})
    assert r.status_code == 201, r.text
    for body in ({"voice_id": "fuzz_plain", "style": "calm"},
                 {"voice_id": "fuzz_cloned", "audio_prompt": "fuzz_prompt",
                  "audio_prompt_transcript": "[S1] A sample."}):
        assert c.post("/voice_mappings", json=body).status_code == 201
    jobs = [submit(c, "[S1] Finished."), submit(c, "[S1] Also finished.", response_format="mp3"),
            submit(c, "[S1] (explode)")]
    for job in jobs:
        wait_for(c, job, "completed", "failed")
    cancelled = submit(c, "[S1] Cancelled.")
    c.delete(f"/jobs/{cancelled}")
    assert c.post("/generate", json={"text": "Saved output."}).status_code == 200
    logs = [entry["log_id"] for entry in c.get("/logs").json()["logs"]]
    return {"voice_ids": ["fuzz_plain", "fuzz_cloned", "alloy"], "prompt_ids": ["fuzz_prompt"],
            "job_ids": [*jobs, cancelled], "log_ids": logs}


def schemathesis_config(ids: dict[str, list[str]]) -> str:
    """Known ids are offered half of the time for each id-valued parameter."""
    bindings = {"path.voice_id": "voice_ids", "path.prompt_id": "prompt_ids",
                "path.job_id": "job_ids", "path.log_id": "log_ids", "body.voice_id": "voice_ids",
                "body.voice": "voice_ids", "body.audio_prompt": "prompt_ids"}
    lines = []
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}'
              for key, name in bindings.items()]
    return "\n".join(lines) + "\n"


def operations(schema: dict) -> dict[tuple[str, re.Pattern], str]:
    """Each operation's method and a regex matching its concrete paths."""
    out = {}
    for path, methods in schema["paths"].items():
        regex = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
        for method in methods:
            out[(method.upper(), regex)] = f"{method.upper()} {path}"
    return out


def run_schemathesis(url: str, config: Path, report: Path, examples: int,
                     *selection: str) -> None:
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
           f"{url}/schema/openapi.json", "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
           "--max-examples", str(examples), "--seed", "20261125", "--workers", "1",
           "--request-timeout", "60", "--report", "har", "--report-dir", str(report),
           "--no-color", *selection]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=config.parent)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]


def test_every_operation_survives_fuzzing(tmp_path):
    examples = int(os.environ.get("TTSFRAME_FUZZ_EXAMPLES", "25"))
    with tone_server(tmp_path, SERVER) as srv:
        ids = seed_state(srv.client)
        config = tmp_path / "schemathesis.toml"
        config.write_text(schemathesis_config(ids))
        schema = srv.client.get("/schema/openapi.json").json()
        # Deletions last, so that the lookups meet the stored objects first, and the
        # deletions by id before those that clear whole collections; then sequences of
        # calls (stateful), which delete too.
        single = ["--phases", "examples,coverage,fuzzing"]
        deletes = sorted(label for label in operations(schema).values()
                         if label.startswith("DELETE"))
        by_id = [arg for label in deletes if "{" in label for arg in ("--include-name", label)]
        whole = [arg for label in deletes if "{" not in label
                 for arg in ("--include-name", label)]
        for n, selection in enumerate(([*single, "--exclude-method", "DELETE"],
                                       [*single, *by_id], [*single, *whole],
                                       ["--phases", "stateful"])):
            run_schemathesis(srv.url, config, tmp_path / "report" / str(n), examples,
                             *selection)
        assert srv.client.get("/health").json()["status"] == "healthy"
        assert srv.proc is not None and srv.proc.poll() is None

    entries = [entry for har in sorted((tmp_path / "report").glob("*/har-*.json"))
               for entry in json.loads(har.read_text())["log"]["entries"]]
    seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    ops = operations(schema)
    for entry in entries:
        method = entry["request"]["method"]
        path = httpx.URL(entry["request"]["url"]).path
        status = entry["response"]["status"]
        assert status < 500, f"{method} {path} answered {status}"
        for (op_method, regex), label in ops.items():
            if method == op_method and regex.match(path):
                seen[label][status] += 1
    assert set(seen) == set(ops.values()), f"never exercised: {set(ops.values()) - set(seen)}"
    # Lookups by id reached stored objects, not only 404s for random ids.
    for label in ("GET /jobs/{job_id}", "GET /jobs/{job_id}/result", "GET /logs/{log_id}",
                  "GET /logs/{log_id}/download", "GET /voice_mappings/{voice_id}",
                  "PUT /voice_mappings/{voice_id}", "DELETE /jobs/{job_id}",
                  "DELETE /voice_mappings/{voice_id}", "POST /generate",
                  "POST /v1/audio/speech"):
        assert any(200 <= s < 300 for s in seen[label]), (label, seen[label])
    total = sum(sum(c.values()) for c in seen.values())
    print(f"\nfuzzed {len(seen)} operations with {total} requests "
          f"({len(entries)} in all, {examples} examples per operation)")
    for label in sorted(seen):
        print(f"  {label}: {dict(sorted(seen[label].items()))}")
