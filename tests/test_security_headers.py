"""Security headers on every reply (``http/security_headers.py``): the API explorers, the
``/`` redirect, JSON answers and errors, refusals before routing; audio keeps playable;
the web page keeps its own stricter policy. In Chromium, the explorers' policy blocks
nothing they load."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.server import ServerProcess, install_fake_backend
from ttsframe.http.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
EXPLORERS = ["/schema", "/schema/swagger", "/schema/redoc", "/schema/elements",
             "/schema/rapidoc", "/schema/oauth2-redirect.html"]


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[TestClient]:
    services = make_services(tmp_path_factory.mktemp("headers"))
    with TestClient(app=create_app(services)) as c:
        yield c


def assert_common(reply) -> None:
    assert reply.headers["x-content-type-options"] == "nosniff", reply.request.url
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["referrer-policy"] == "no-referrer"


def csp(reply) -> dict[str, str]:
    policy = reply.headers["content-security-policy"]
    return {d.split()[0]: d.strip() for d in policy.split(";") if d.strip()}


@pytest.mark.parametrize("path", EXPLORERS)
def test_explorer_pages_carry_a_policy(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert_common(r)
    policy = csp(r)
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["object-src"] == "object-src 'none'"
    assert "'self'" in policy["script-src"]


@pytest.mark.parametrize("call", [
    lambda c: c.get("/", follow_redirects=False),  # the redirect to /ui/
    lambda c: c.get("/health"),
    lambda c: c.get("/schema/openapi.json"),
    lambda c: c.get("/nothing/here"),  # an unrouted 404
    lambda c: c.post("/generate", json={"text": ""}),  # a 400
    lambda c: c.post("/generate", content=b"{}", headers={"content-type": "text/plain"}),
    lambda c: c.post("/generate", json={"text": "hi"}, headers={"origin": "http://x.example"}),
    lambda c: c.get("/health", headers={"host": "rebind.example"}),  # 421 before routing
    lambda c: c.options("/generate", headers={"origin": "http://localhost:8000",
                                              "access-control-request-method": "POST"}),
], ids=["redirect", "health", "openapi-json", "404", "400", "415", "403", "421", "preflight"])
def test_json_and_other_replies_carry_a_closed_policy(client, call):
    r = call(client)
    assert_common(r)
    assert csp(r)["default-src"] == "default-src 'none'", r.headers
    assert csp(r)["frame-ancestors"] == "frame-ancestors 'none'"


def test_audio_gets_no_policy_and_the_web_page_keeps_its_own(client):
    r = client.post("/generate", json={"text": "[S1] Hello there."})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert_common(r)
    assert "content-security-policy" not in r.headers  # a browser's player stays usable
    page = client.get("/ui/")
    assert_common(page)
    assert page.headers["content-security-policy"].startswith("default-src 'none'; "
                                                              "script-src 'self'")
    assert len(page.headers.get_list("content-security-policy")) == 1


def test_streamed_replies_carry_them(client):
    with client.stream("POST", "/v1/audio/speech",
                       json={"input": "Hello.", "voice": "alloy", "response_format": "mp3",
                             "stream_format": "sse"}) as r:
        assert r.status_code == 200
        assert_common(r)
        assert csp(r)["default-src"] == "default-src 'none'"


WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("headers-e2e")
    site = install_fake_backend(directory / "site", "beeper", "BEEPER")
    cfg = directory / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "beeper"\n')
    path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    with ServerProcess(cfg, plugins=["beeper"], wait_for="up",
                       env={"PYTHONPATH": path,
                            "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}) as srv:
        yield srv


def test_explorers_break_no_rule_of_their_policy_in_chromium(server):
    """Their bundles may not download here (no network), but nothing they load or run is
    refused by the policy."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: run scripts/ensure-chromium.sh")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.add_init_script(WATCH_CSP)
            for path in EXPLORERS[:5]:
                page.goto(server.url + path, wait_until="load")
                assert page.evaluate("window.__csp") == [], path
                framed = page.evaluate("""(url) => new Promise((done) => {
                    const f = document.createElement('iframe');
                    f.onload = () => { try { done(f.contentDocument === null ||
                        f.contentDocument.body === null ||
                        f.contentDocument.body.innerHTML === ''); }
                        catch (e) { done(true); } };
                    f.src = url; document.body.appendChild(f); })""", server.url + "/health")
                assert framed, "a reply was shown in a frame"
        finally:
            browser.close()
