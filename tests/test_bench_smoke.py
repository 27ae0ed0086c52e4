"""The benchmark script runs end to end (tiny workload; no timing is asserted)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]


def test_bench_server_prints_the_four_figures():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_server.py"), "--quick"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if re.match(r"\(\d\)", line)]
    assert [line[:3] for line in lines] == ["(1)", "(2)", "(3)", "(4)"]
    for line in lines[:3]:
        assert re.search(r"= \d+\.\d{3}", line), line  # a ratio was computed
    assert re.search(r"\d+ MB", lines[3])
    assert "3-chunk stream" in lines[2]


def test_observability_cost_prints_its_figures():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "observability_cost.py"),
                          "--quick"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    figures = dict(re.findall(r"^\s+(\S[^\n]*?)\s+(\d+\.\d) us", run.stdout, re.M))
    assert {"request ids", "HTTP metrics", "speech metrics", "total"} <= set(figures)


def test_openai_first_audio_bench_prints_a_row_per_format():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "openai_first_audio.py"),
                          "--quick"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [line.split()[0] for line in run.stdout.splitlines()
            if re.fullmatch(r"\w+( +\d+\.\d{3} s / \d+\.\d{3} s){2} +\d+\.\d{3} s", line)]
    assert rows == ["mp3", "pcm", "wav", "opus"]


def test_voice_store_bench_prints_each_operation_per_count():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "voice_store.py"),
                          "--counts", "20", "50", "--writes", "3"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.findall(r"^(\d+) voices \(store opened", run.stdout, re.M) == ["20", "50"]
    ops = re.findall(r"^\s+(\w+)\s+p50\s+\d+\.\d\d\s+p90\s+\d+\.\d\d$", run.stdout, re.M)
    assert ops == ["create", "update", "delete", "get", "list"] * 2


def test_text_normalization_bench_prints_each_step():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "text_normalization.py"),
                          "--chars", "500", "--entries", "0", "20", "--repeat", "2"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    for step in ("normalize (en)", "normalize (de)", "SSML parse", "dictionary, 20 entries"):
        assert step in run.stdout


def test_soak_bench_reports_resources_latency_and_nothing_lost(tmp_path):
    out = tmp_path / "soak.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--seconds", "4",
                          "--sample-s", "1", "--idle-s", "0", "--concurrency", "3",
                          "--json", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "per 1,000 requests after the first window" in run.stdout
    report = json.loads(out.read_text())
    assert report["requests"] > 0 and report["failures"] == {}
    assert report["lost"] == {"jobs": [], "voices": []}
    assert report["jobs"] > 0 and report["voices"] > 0
    assert len(report["samples"]) >= 3
    assert {"rss_mb", "threads", "fds", "p50_ms", "p95_ms", "p99_ms"} <= set(report["samples"][0])
    assert set(report["latency_by_kind"]) == {"sync", "stream", "abandon", "job", "cancel",
                                              "voice", "list"}


def test_quality_bench_prints_the_checks_share_of_generation():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "quality.py"), "--quick"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "| checks / generate |" in run.stdout
    assert "% |" in run.stdout.strip().splitlines()[-1]
