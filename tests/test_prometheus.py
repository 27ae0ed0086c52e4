"""A real Prometheus (Debian's ``prometheus``, installed by ``scripts/ensure-prometheus.sh``)
scrapes a real ttsframe server on 127.0.0.1; its HTTP API must see the speech metrics
with the values the requests made, and every PromQL expression of the Grafana dashboard
must run there without error."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.job_helpers import TONE, tone_server
from tests.server import ROOT, free_port

DASHBOARD = ROOT / "docs" / "grafana" / "ttsframe-dashboard.json"
SCRAPE_KEY = "prometheus-scrape-key"
API_KEY = "user-key"
# Grafana's template variables, as Grafana would fill them in for "All" backends.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$backend": ".*"}
# Expressions over series the tone backend never makes (no prompt cache, never cut by
# max_tokens) or that nothing here fails: they must run, but may be empty.
MAY_BE_EMPTY = ("prompt_cache", "budget_limited", "cancellations", "failures",
                "outcome!=", "active_streams")


def dashboard_expressions() -> list[str]:
    exprs = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(json.loads(DASHBOARD.read_text()))
    return exprs


def grafana_to_promql(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


class Prometheus:
    """``prometheus`` on 127.0.0.1 with a temporary config and data directory."""

    def __init__(self, workdir: Path, target: str, metrics_path: str = "/metrics") -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("the prometheus server is not installed: run "
                        "scripts/ensure-prometheus.sh (scripts/test.sh does)")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "key").write_text(SCRAPE_KEY)
        config = workdir / "prometheus.yml"
        config.write_text(f"""\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ttsframe
    metrics_path: {metrics_path}
    static_configs:
      - targets: ["{target}"]
    authorization:
      type: Bearer
      credentials_file: {workdir / "key"}
""")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log.read_text()}")
            try:
                if self.client.get("/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready:\n{self.log.read_text()}")

    def query(self, promql: str) -> list[dict]:
        r = self.client.get("/api/v1/query", params={"query": promql})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (promql, body)
        return body["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, expected: float, timeout: float = 60.0) -> None:
        """Poll until Prometheus has scraped what the requests made."""
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.scalar(promql)
            if got == expected:
                return
            time.sleep(0.25)
        targets = self.client.get("/api/v1/targets").json()
        raise AssertionError(f"{promql} = {got}, expected {expected}; targets: {targets}")

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def prometheus_and_server(tmp_path):
    config = TONE + f"""
[security]
api_keys = ["{API_KEY}"]
metrics_keys = ["{SCRAPE_KEY}"]
"""
    with tone_server(tmp_path, config) as srv:
        prom = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{srv.port}")
        try:
            prom.wait_ready()
            yield prom, srv
        finally:
            prom.stop()


def test_prometheus_scrapes_the_speech_metrics(prometheus_and_server):
    prom, srv = prometheus_and_server
    key = {"Authorization": f"Bearer {API_KEY}"}
    say = {"text": "[S1] Hello from the metrics test.", "voice_id": "alloy"}
    with httpx.Client(base_url=srv.url, headers=key, timeout=60) as client:
        sizes = []
        for _ in range(3):
            r = client.post("/generate", json=say)
            assert r.status_code == 200
            sizes.append(len(r.content))
        for _ in range(2):
            r = client.post("/generate", json={**say, "stream": True, "response_format": "pcm"})
            assert r.status_code == 200
            sizes.append(len(r.content))
        assert client.post("/generate", json={**say, "voice_id": "nobody"}).status_code == 404
        # An API key cannot read the metrics; Prometheus's scrape key can (it is scraping).
        assert client.get("/metrics").status_code == 403

    prom.wait_for('sum(ttsframe_speech_requests_total{route="/generate"})', 6)
    assert prom.scalar('up{job="ttsframe"}') == 1
    assert prom.scalar('sum(ttsframe_speech_requests_total{status_class="2xx", mode="sync"})'
                       ) == 3
    assert prom.scalar('sum(ttsframe_speech_requests_total{status_class="4xx"})') == 1
    assert prom.scalar('sum(ttsframe_speech_failures_total{kind="not_found"})') == 1
    # One time-to-first-audio observation per streamed request, and per buffered one.
    assert prom.scalar('sum(ttsframe_time_to_first_audio_seconds_count{mode="stream"})') == 2
    assert prom.scalar('sum(ttsframe_time_to_first_audio_seconds_count{mode="sync"})') == 3
    assert prom.scalar('sum(ttsframe_generations_total{outcome="completed"})') == 5
    assert prom.scalar("sum(ttsframe_audio_bytes_total)") == sum(sizes)
    assert prom.scalar('ttsframe_model_state{backend="tone", state="ready"}') == 1
    assert prom.scalar("sum(ttsframe_batch_size_count)") == 5
    assert prom.scalar("ttsframe_queue_capacity") == 64
    assert prom.scalar('sum(ttsframe_http_requests_total{path="/generate"})') == 6

    # Every dashboard expression runs; those over series this run made return data. rate()
    # needs two scrapes after the requests: wait for the first panel to have a value.
    exprs = dashboard_expressions()
    assert len(exprs) >= 20
    deadline = time.monotonic() + 60
    while not prom.query(grafana_to_promql(exprs[0])) and time.monotonic() < deadline:
        time.sleep(0.5)
    empty = []
    for expr in exprs:
        result = prom.query(grafana_to_promql(expr))
        if not result and not any(part in expr for part in MAY_BE_EMPTY):
            empty.append(expr)
    assert not empty, f"dashboard expressions with no data: {empty}"
