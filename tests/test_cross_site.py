"""Pages of other sites cannot change anything, and other host names get no answer.

A real ``ttsframe serve`` (keys off, the default) and a real Chromium: an attacker's page
served from a second origin (another port on 127.0.0.1) posts a ``<form
enctype="text/plain">`` holding JSON, a form-encoded form, ``fetch`` calls with
``mode: "no-cors"`` (text, typeless and multipart bodies): every one is refused with 403
and nothing is stored. A page from an origin listed in ``security.cors_origins`` still
creates a voice and reads the reply; a DNS-rebinding page (a name the server does not
know resolving to 127.0.0.1) is refused with 421, reads included. Without a browser:
JSON only as ``application/json`` (415), ``server.allowed_hosts`` and its startup check.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.conftest import make_services
from tests.server import ServerProcess, install_fake_backend
from tests.voice_fixtures import sine_wav
from ttsframe.http.app import create_app
from ttsframe.http.hosts import HostRule, split_host

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        # "rebind.test" is an attacker's name that now resolves to this machine.
        "--host-resolver-rules=MAP rebind.test 127.0.0.1",
        # Chromium's own guard against public pages calling loopback addresses, off: the
        # server must hold on its own (other browsers have no such guard).
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
        "PrivateNetworkAccessSendPreflights"]


class PageServer:
    """A tiny HTTP server on its own 127.0.0.1 port serving one page: another origin."""

    def __init__(self) -> None:
        self.html = b""
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page.html)))
                self.end_headers()
                self.wfile.write(page.html)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pages() -> Iterator[tuple[PageServer, PageServer]]:
    """The attacker's origin and a friendly one (listed in cors_origins)."""
    with PageServer() as evil, PageServer() as friend:
        yield evil, friend


@pytest.fixture(scope="module")
def server(tmp_path_factory, pages) -> Iterator[ServerProcess]:
    _, friend = pages
    directory = tmp_path_factory.mktemp("xsite")
    site = install_fake_backend(directory / "site", "beeper", "BEEPER")
    cfg = directory / "ttsframe.toml"
    cfg.write_text(f'[security]\ncors_origins = ["{friend.origin}"]\n\n'
                   '[generation]\ndefault_backend = "beeper"\n')
    with ServerProcess(cfg, plugins=["beeper"],
                       env={"PYTHONPATH": os.pathsep.join(
                                [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
                            "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: run scripts/ensure-chromium.sh")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def stored(srv: ServerProcess) -> dict[str, set[str]]:
    """What the server holds, asked as curl would (no Origin)."""
    c = srv.client
    return {"voices": {v for v, info in c.get("/voice_mappings").json().items()
                       if not info["builtin"]},
            "prompts": set(c.get("/audio_prompts").json()),
            "jobs": {j["job_id"] for j in c.get("/jobs").json()["jobs"]}}


ATTACK_PAGE = """<!doctype html><html><body>
<iframe name="s1"></iframe><iframe name="s2"></iframe><iframe name="s3"></iframe>
<form id="f1" method="POST" enctype="text/plain" action="{t}/voice_mappings" target="s1">
<input name='{{"voice_id": "xsite_form", "x": "' value='"}}'></form>
<form id="f2" method="POST" enctype="text/plain" action="{t}/generate?async_mode=true"
 target="s2"><input name='{{"text": "[S1] Hello from another site.", "x": "' value='"}}'>
</form>
<form id="f3" method="POST" action="{t}/cleanup" target="s3"><input name="a" value="b">
</form>
<script>
const T = "{t}";
const wav = Uint8Array.from(atob("{wav}"), (c) => c.charCodeAt(0));
function submitted(form, frame) {{
  return new Promise((done) => {{
    document.querySelector(`iframe[name=${{frame}}]`).onload = done;
    document.getElementById(form).submit();
  }});
}}
async function attack() {{
  const post = (path, body) => fetch(T + path, {{method: "POST", mode: "no-cors", body}})
    .catch(() => null);
  const upload = new FormData();
  upload.append("prompt_id", "xsite_prompt");
  upload.append("audio_file", new Blob([wav], {{type: "audio/wav"}}), "a.wav");
  await Promise.all([
    post("/voice_mappings", JSON.stringify({{voice_id: "xsite_fetch"}})),
    post("/voice_mappings", new Blob([JSON.stringify({{voice_id: "xsite_blob"}})])),
    post("/generate?async_mode=true", JSON.stringify({{text: "[S1] Hi there."}})),
    post("/v1/audio/speech", JSON.stringify({{input: "Hi there.", voice: "alloy"}})),
    post("/audio_prompts/upload", upload),
    post("/cleanup", ""),
  ]);
  for (const [form, frame] of [["f1", "s1"], ["f2", "s2"], ["f3", "s3"]]) {{
    await submitted(form, frame);
  }}
  document.title = "done";
}}
attack();
</script></body></html>"""


def test_another_sites_page_changes_nothing(server, pages, browser):
    evil, _ = pages
    before = stored(server)
    evil.html = ATTACK_PAGE.format(
        t=server.url, wav=base64.b64encode(sine_wav(0.5)).decode()).encode()
    context = browser.new_context()
    try:
        page = context.new_page()
        answers: list[tuple[str, int]] = []
        page.on("response", lambda r: r.url.startswith(server.url)
                and answers.append((r.request.method + " " + r.url, r.status)))
        page.goto(evil.origin + "/")
        page.wait_for_function("document.title === 'done'", timeout=60_000)
    finally:
        context.close()
    # Each write reached the server and was refused there (not lost in the browser).
    assert len(answers) == 9, answers
    assert {status for _, status in answers} == {403}, answers
    assert stored(server) == before
    assert "refused a browser request from origin " + evil.origin in server.output()


FRIEND_PAGE = """<!doctype html><html><body><script>
fetch("{t}/voice_mappings", {{method: "POST", headers: {{"content-type": "application/json"}},
  body: JSON.stringify({{voice_id: "friend_voice"}})}})
  .then(async (r) => {{
    document.title = r.status + " " + (await r.json()).voice_config.voice_id; }})
  .catch((e) => {{ document.title = "failed " + e; }});
</script></body></html>"""


def test_a_page_from_an_origin_in_cors_origins_still_writes(server, pages, browser):
    _, friend = pages
    friend.html = FRIEND_PAGE.format(t=server.url).encode()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(friend.origin + "/")
        page.wait_for_function("document.title !== ''", timeout=60_000)
        assert page.title() == "201 friend_voice"
    finally:
        context.close()
    assert "friend_voice" in stored(server)["voices"]


def test_dns_rebinding_page_is_refused(server, browser):
    """A name the attacker controls, first serving the attacker's page, then resolving to
    127.0.0.1: the page's requests to "its own origin" reach the server, which refuses
    them by name, reads included."""
    port = server.url.rsplit(":", 1)[1]
    before = stored(server)
    context = browser.new_context()
    try:
        page = context.new_page()
        # The page came from the attacker's server before the name was rebound.
        page.route("**/attack", lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><p>hello</p>"))
        page.goto(f"http://rebind.test:{port}/attack")
        answers = page.evaluate("""async () => {
            const read = await fetch('/voice_mappings');
            const write = await fetch('/voice_mappings', {method: 'POST',
              headers: {'content-type': 'application/json'},
              body: JSON.stringify({voice_id: 'rebound'})});
            return [read.status, write.status, (await read.json()).detail];
        }""")
        assert answers[:2] == [421, 421], answers
        assert "allowed_hosts" in answers[2]
        reply = page.goto(f"http://rebind.test:{port}/voice_mappings")
        assert reply.status == 421
    finally:
        context.close()
    assert stored(server) == before
    # The server's own address and loopback names keep working.
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
        assert server.client.get("/health", headers={"host": host}).status_code == 200, host


def test_unknown_host_names_are_refused_before_anything_runs(server):
    before = stored(server)
    for host in ("attacker.example", "attacker.example:80", "localhost.attacker.example",
                 "127.0.0.1.nip.io"):
        for method, path, body in (("GET", "/voice_mappings", None), ("GET", "/health", None),
                                   ("OPTIONS", "/generate", None), ("GET", "/nothing", None),
                                   ("POST", "/voice_mappings", {"voice_id": "by_name"})):
            r = server.client.request(method, path, json=body, headers={"host": host})
            assert r.status_code == 421, (host, method, path, r.text)
            assert "server] allowed_hosts" in r.json()["detail"]
            assert r.headers["x-content-type-options"] == "nosniff"
    assert stored(server) == before


def test_clients_without_origin_keep_writing(server):
    """curl, the SDKs and SillyTavern's server send no Origin: nothing changes for them."""
    r = server.client.post("/voice_mappings", json={"voice_id": "from_curl"})
    assert r.status_code == 201, r.text
    r = server.client.post("/generate", json={"text": "[S1] Hello.", "voice_id": "from_curl"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    r = server.client.post("/audio_prompts/upload", data={"prompt_id": "curl_prompt"},
                           files={"audio_file": ("a.wav", sine_wav(0.5), "audio/wav")})
    assert r.status_code == 201, r.text


def test_cross_site_writes_without_a_browser_are_refused_by_their_headers(server):
    """The rule, header by header (what the browser test shows end to end)."""
    url = server.url
    cases = [
        ({"origin": "http://attacker.example"}, 403),
        ({"origin": "http://attacker.example", "sec-fetch-site": "cross-site"}, 403),
        ({"origin": "http://127.0.0.1:1", "sec-fetch-site": "same-site"}, 403),
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"origin": "null"}, 403),
        ({"origin": url, "sec-fetch-site": "same-origin"}, 201),  # the web page
        ({"origin": url}, 201),  # an older browser, same origin
        ({"sec-fetch-site": "none"}, 201),
    ]
    for i, (headers, status) in enumerate(cases):
        r = server.client.post("/voice_mappings", json={"voice_id": f"hdr_{i}"},
                               headers=headers)
        assert r.status_code == status, (headers, r.text)
        if status == 403:
            assert "cors_origins" in r.json()["detail"] or "no usable Origin" in \
                r.json()["detail"]
    # Reads are never refused: CORS decides what a page may read.
    r = server.client.get("/voice_mappings", headers={"origin": "http://attacker.example"})
    assert r.status_code == 200


# ---------------------------------------------------------------- without a server process


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    with TestClient(app=create_app(make_services(tmp_path))) as c:
        yield c


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None])
def test_json_routes_take_json_only_as_application_json(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    for path, body in (("/voice_mappings", b'{"voice_id": "typed"}'),
                       ("/generate", b'{"text": "[S1] Hi."}'),
                       ("/v1/audio/speech", b'{"input": "Hi.", "voice": "alloy"}'),
                       ("/config", b'{"debug_mode": true}')):
        method = "PUT" if path == "/config" else "POST"
        r = client.request(method, path, content=body, headers=headers)
        assert r.status_code == 415, (path, r.text)
        assert "Content-Type: application/json" in r.json()["detail"]
    assert client.get("/voice_mappings/typed").status_code == 404
    assert client.get("/config").json()["debug_mode"] is False


def test_json_with_charset_or_a_json_suffix_is_accepted(client):
    for i, kind in enumerate(("application/json; charset=utf-8", "application/ld+json")):
        r = client.post("/voice_mappings", content=f'{{"voice_id": "ok_{i}"}}'.encode(),
                        headers={"content-type": kind})
        assert r.status_code == 201, r.text


def test_host_rule():
    rule = HostRule(["tts.lan", "proxy.example:8443", "*.corp.example"], ["box", "box.local"])
    for host in ("127.0.0.1", "127.0.0.1:7860", "192.168.1.20:7860", "[::1]:7860",
                 "localhost", "LOCALHOST:7860", "localhost.", "box:7860", "box.local",
                 "tts.lan", "tts.lan:1", "proxy.example:8443", "a.corp.example", ""):
        assert rule.allows(host), host
    for host in ("evil.example", "proxy.example", "proxy.example:443", "corp.example",
                 "tts.lan.evil.example", "localhost.evil.example", "boxx", "[::1"):
        assert not rule.allows(host), host
    assert HostRule(["*"], []).allows("anything.example")
    assert split_host("[::1]:80") == ("[::1]", "80")


def test_allowed_hosts_is_checked_at_startup_and_restart_only(tmp_path):
    from ttsframe.core.config.settings import load_settings
    from ttsframe.core.errors import ConfigError

    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[server]\nallowed_hosts = ["tts lan"]\n')
    with pytest.raises(ConfigError, match=r"server\.allowed_hosts"):
        load_settings(str(cfg))
    services = make_services(tmp_path, server={"allowed_hosts": ["testserver.local",
                                                                 "tts.lan"]})
    with TestClient(app=create_app(services)) as c:
        view = c.get("/config").json()
        assert view["restart_required"]["server.allowed_hosts"] == ["testserver.local",
                                                                     "tts.lan"]
        r = c.put("/config", json={"allowed_hosts": ["*"]})
        assert r.status_code == 400 and "restart" in r.json()["detail"]
        assert c.get("/health", headers={"host": "tts.lan:7860"}).status_code == 200
        assert c.get("/health", headers={"host": "other.lan"}).status_code == 421


def test_allowed_hosts_from_the_environment(tmp_path):
    """A LAN user sets the name without editing the file."""
    from ttsframe.core.config.settings import load_settings

    cfg = tmp_path / "ttsframe.toml"
    cfg.touch()
    settings = load_settings(str(cfg), environ={
        "TTSFRAME_SERVER__ALLOWED_HOSTS": '["tts.lan", "*"]'})
    assert settings.server.allowed_hosts == ["tts.lan", "*"]
    assert load_settings(str(cfg), environ={}).server.allowed_hosts == []


def test_guard_answers_are_plain_json(tmp_path):
    """Refusals come from one place with the project's error body."""
    with TestClient(app=create_app(make_services(tmp_path))) as c:
        r = c.post("/generate", json={"text": "hi"}, headers={"origin": "http://x.example"})
        assert r.status_code == 403
        body = r.json()
        assert set(body) == {"detail", "request_id"}
        assert r.headers["x-request-id"] == body["request_id"]
        r = c.post("/v1/audio/speech", json={"input": "hi", "voice": "alloy"},
                   headers={"origin": "http://x.example"})
        assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"



def test_the_web_page_and_the_openai_sdk_keep_working(server, browser):
    """The page under /ui/ writes as same-origin; the SDK sends no Origin."""
    openai = pytest.importorskip("openai")
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        page.goto("/")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        status = page.evaluate("""() => fetch('/voice_mappings', {method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({voice_id: 'from_the_page'})}).then((r) => r.status)""")
        assert status == 201
        page.get_by_label("Text", exact=True).fill("[S1] Hello from the page.")
        page.get_by_role("button", name="Generate").click()
        page.wait_for_selector(".take[data-state=done]", timeout=60_000)
    finally:
        context.close()
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.",
                                       response_format="wav").read()
    assert audio[:4] == b"RIFF"


def test_startup_names_the_accepted_hosts(caplog):
    import logging

    caplog.set_level(logging.INFO, logger="ttsframe.hosts")
    HostRule([], ["box", "box.local"]).log_startup("127.0.0.1")
    assert caplog.records == []  # loopback: nothing to say
    HostRule([], ["box", "box.local"]).log_startup("0.0.0.0")
    assert "IP addresses, localhost, box, box.local" in caplog.text
    assert "allowed_hosts" in caplog.text
    HostRule(["*"], []).log_startup("127.0.0.1")
    assert caplog.records[-1].levelname == "WARNING" and "DNS rebinding" in caplog.text
