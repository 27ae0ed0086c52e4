"""Real clients against a real ``ttsframe serve`` process on loopback.

SillyTavern's request is replayed byte for byte as recorded in the client notes, the
official OpenAI SDK is used as a client, browsers' CORS preflights are sent, and the API
key rules are exercised, all over TCP against the server process, with the torch-free
tone backend (and a routes plugin) installed as outside distributions.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import openai
import pytest

from tests.audio_checks import decode, dominant_frequency, tone_frequency
from tests.server import (
    ROOT,
    ServerProcess,
    builtin_plugin_names,
    inherited_environment,
    install_fake_backend,
    install_fake_distribution,
)

API_KEY = "st-key-8f2b1c"
ADMIN_KEY = "adm-key-77d0e4"
BUILTIN_SPEAKERS = {"alloy": "S1", "echo": "S1", "fable": "S2", "nova": "S2", "onyx": "S1",
                    "shimmer": "S2"}

ROUTES_PLUGIN = '''
from litestar import delete, get
from litestar.params import FromPath
from ttsframe import hookimpl


@get("/extra/ping", sync_to_thread=False)
def ping() -> dict:
    return {"pong": True}


@delete("/extra/things/{thing:str}", sync_to_thread=False)
def drop(thing: FromPath[str]) -> None:
    return None


@hookimpl
def register_routes(register):
    register(ping)
    register(drop)
'''


def serve(tmp_path: Path, config: str = "", env: dict[str, str] | None = None) -> ServerProcess:
    """A server with the fake backend as ``tone`` and a routes plugin from outside
    distributions."""
    site = tmp_path / "site"
    install_fake_backend(site, "tone", "TONE")
    install_fake_distribution(site, "ttsframe-extra", "extra_routes",
                              {"extra": "extra_routes"}, source=ROUTES_PLUGIN)
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "tone"\n' + config)
    full_env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
                "TTSFRAME_LOAD_PLUGINS": ",".join([*builtin_plugin_names(), "tone", "extra"]),
                "TTSFRAME_PLUGINS__DIA__ENABLED": "false", **(env or {})}
    return ServerProcess(cfg, env=full_env)


# One server of each kind for the module: the tests only read from them (a test that
# counts log lines starts its own).
@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("open")) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """API key from the environment, admin key and a wildcard origin from the file."""
    config = f'[security]\nadmin_keys = ["{ADMIN_KEY}"]\ncors_origins = ["*"]\n'
    env = {"TTSFRAME_SECURITY__API_KEYS": f'["{API_KEY}"]'}
    with serve(tmp_path_factory.mktemp("keyed"), config, env) as srv:
        yield srv


# --- SillyTavern ------------------------------------------------------------------------


def sillytavern_request(url: str, body: dict, key: str = "") -> tuple[int, dict, bytes]:
    """What SillyTavern's server sends for its "OpenAI Compatible" provider, header for
    header: no Accept-Encoding, ``Bearer `` with an empty token when no key is saved,
    ``Connection: close`` and a compact JSON body."""
    parts = urlsplit(url)
    payload = json.dumps(body, separators=(",", ":")).encode()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.putrequest("POST", parts.path, skip_accept_encoding=True)
        for name, value in (("content-type", "application/json"),
                            ("authorization", f"Bearer {key}"),
                            ("accept", "*/*"),
                            ("user-agent", "node-fetch"),
                            ("Connection", "close"),
                            ("content-length", str(len(payload)))):
            conn.putheader(name, value)
        conn.endheaders(payload)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def st_body(text: str, voice: str, speed: float = 1.25, model: str = "tts-1") -> dict:
    # SillyTavern's fields, in its order; response_format is always mp3.
    return {"input": text, "response_format": "mp3", "voice": voice, "speed": speed,
            "model": model}


@pytest.mark.parametrize("endpoint", ["/generate", "/v1/audio/speech"])
def test_sillytavern_gets_playable_mp3_for_every_voice(open_server, endpoint):
    text = "The dragon circled the tower twice before landing."
    # "alloy,echo,fable,onyx,nova,shimmer" typed as "alloy, echo, ..." gives " echo".
    for name, speaker in BUILTIN_SPEAKERS.items():
        for sent in (name, f" {name}"):
            status, headers, data = sillytavern_request(open_server.url + endpoint,
                                                        st_body(text, sent))
            assert status == 200, (sent, data[:200])
            assert headers["content-type"] == "audio/mpeg"
            assert headers["x-voice-id"] == name
            samples, rate, codec = decode(data, "mp3")
            assert (codec, rate) == ("mp3float", 24000)
            processed = f"[{speaker}] {text}"
            # /v1/audio/speech streams by default, as OpenAI's does: a streamed MP3 has no
            # gapless header (written last), so it decodes a few tens of ms longer.
            streamed = endpoint == "/v1/audio/speech"
            assert ("content-length" in headers) != streamed
            assert len(samples) / rate == pytest.approx(len(processed) * 0.01 / 1.25,
                                                        abs=0.08 if streamed else 0.02)
            assert dominant_frequency(samples, rate) == pytest.approx(
                tone_frequency(processed), abs=1)


def test_sillytavern_defaults_and_errors(open_server):
    """Missing settings arrive as '' (voice, model); errors come back as a body it shows."""
    url = open_server.url + "/v1/audio/speech"
    status, headers, _ = sillytavern_request(url, st_body("Hi.", "", speed=1, model=""))
    assert status == 200
    assert headers["x-voice-id"] == "alloy"
    status, headers, data = sillytavern_request(url, st_body("Hi.", "nobody"))
    assert status == 400  # as OpenAI answers an unknown voice
    assert headers["content-type"] == "application/json"
    body = json.loads(data)
    assert body["detail"] == "Voice 'nobody' not found"
    assert body["error"]["message"] == "Voice 'nobody' not found"  # OpenAI's shape too
    status, _, data = sillytavern_request(open_server.url + "/generate", st_body("", "nova"))
    assert status == 400
    assert "text is empty" in json.loads(data)["detail"]


@pytest.mark.parametrize("endpoint", ["/generate", "/v1/audio/speech"])
def test_sillytavern_with_api_keys(keyed_server, endpoint):
    url = keyed_server.url + endpoint
    status, headers, data = sillytavern_request(url, st_body("Hello.", "nova"))
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert json.loads(data)["detail"].startswith("the API key is empty")
    status, _, data = sillytavern_request(url, st_body("Hello.", "nova"), key="wrong")
    assert status == 401
    status, headers, data = sillytavern_request(url, st_body("Hello.", " nova"), key=API_KEY)
    assert status == 200
    assert decode(data, "mp3")[1] == 24000


# --- OpenAI SDK -------------------------------------------------------------------------


def test_openai_sdk_without_server_keys(open_server):
    # The SDK insists on some key; with none configured the server accepts any.
    client = openai.OpenAI(base_url=open_server.url + "/v1", api_key="unused", max_retries=0)
    reply = client.audio.speech.create(model="tts-1", voice="nova", input="Hello from the SDK.")
    samples, rate, codec = decode(reply.content, "mp3")
    assert (codec, rate) == ("mp3float", 24000)
    # streamed, as OpenAI's endpoint does: an MP3 without the gapless header (a few tens
    # of ms longer)
    assert "content-length" not in reply.response.headers
    assert len(samples) / rate == pytest.approx(len("[S2] Hello from the SDK.") * 0.01, abs=0.08)

    raw = "Raw samples for a client that plays them itself."
    pcm = client.audio.speech.create(model="tone", voice="echo", input=raw,
                                     response_format="pcm", speed=2.0,
                                     extra_body={"temperature": 0.8})
    assert pcm.response.headers["x-sample-rate"] == "24000"
    assert len(decode(pcm.content, "pcm", 24000)[0]) == pytest.approx(
        len(f"[S1] {raw}") * 0.01 * 24000 / 2, rel=0.02)

    assert {"tone", "tts-1"} <= {m.id for m in client.models.list()}
    assert client.models.retrieve("tts-1").owned_by == "ttsframe"

    # An unknown voice is a 400 as on OpenAI (BadRequestError), naming the field.
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi")
    assert err.value.status_code == 400
    assert "Voice 'nobody' not found" in str(err.value)  # older SDKs quote the whole body
    assert (err.value.type, err.value.param) == ("invalid_request_error", "voice")
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="tts-1", voice="nova", input="Hi",
                                   response_format="ogg")  # type: ignore[arg-type]
    assert "supported formats: aac, flac, mp3, opus, pcm, wav" in str(err.value)


def test_openai_sdk_with_server_keys(keyed_server):
    base = keyed_server.url + "/v1"
    good = openai.OpenAI(base_url=base, api_key=API_KEY, max_retries=0)
    reply = good.audio.speech.create(model="tts-1", voice="alloy", input="Keyed.",
                                     response_format="wav")
    assert decode(reply.content, "wav")[1] == 24000
    bad = openai.OpenAI(base_url=base, api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.audio.speech.create(model="tts-1", voice="alloy", input="Keyed.")
    assert err.value.status_code == 401
    assert "this API key is not accepted; send one of the keys in security.api_keys as " \
        "Authorization: Bearer <key>" in str(err.value)  # older SDKs quote the whole body
    assert (err.value.type, err.value.code) == ("authentication_error", "invalid_api_key")


# The SDK example and SillyTavern's settings are in the README's tour and, in full, on the
# OpenAI and SillyTavern page; both copies are checked.
CLIENT_DOCS = [ROOT / "README.md", ROOT / "docs" / "openai-sillytavern.md"]


def doc_section(path: Path, title: str) -> str:
    """The text under the heading ``title`` (level 2 or 3) up to the next such heading."""
    text = path.read_text()
    match = re.search(rf"^#{{2,3}} {re.escape(title)}\n", text, re.M)
    assert match, f"{path.name} has no section '{title}'"
    start = match.start()
    ends = [i for i in (text.find("\n## ", start + 1), text.find("\n### ", start + 1)) if i > 0]
    return text[start:min(ends)] if ends else text[start:]


@pytest.mark.parametrize("doc", CLIENT_DOCS, ids=lambda p: p.name)
def test_documented_openai_sdk_example_runs_as_written(open_server, tmp_path, doc):
    section = doc_section(doc, "OpenAI SDK")
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "http://127.0.0.1:7860/v1" in code
    script = tmp_path / "readme_example.py"
    script.write_text(code.replace("127.0.0.1:7860", f"127.0.0.1:{open_server.port}"))
    out = tmp_path / "run"
    out.mkdir()
    # as a user would run it: a fresh interpreter, no OPENAI_API_KEY, no deprecated calls
    subprocess.run([sys.executable, str(script)], cwd=out, check=True, timeout=120,
                   env={"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "error::DeprecationWarning"})
    samples, rate, codec = decode((out / "speech.mp3").read_bytes(), "mp3")
    assert (codec, rate) == ("mp3float", 24000)
    assert len(samples) / rate == pytest.approx(len("[S2] Hello from ttsframe.") * 0.01,
                                                abs=0.08)  # a streamed MP3, see above


@pytest.mark.parametrize("doc", CLIENT_DOCS, ids=lambda p: p.name)
def test_documented_sillytavern_urls_are_the_served_routes(open_server, doc):
    section = doc_section(doc, "SillyTavern")
    urls = set(re.findall(r"http://127\.0\.0\.1:7860(/[\w/]+)", section))
    assert {"/generate", "/v1/audio/speech"} <= urls
    for path in urls:
        status, _, _ = sillytavern_request(open_server.url + path, st_body("Hi.", "nova"))
        assert status == 200, path


# --- CORS -------------------------------------------------------------------------------

PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type,cache-control,authorization"}


def test_cors_preflight_for_sillytavern_origin(open_server):
    c = open_server.client
    for origin in ("http://localhost:8000", "http://127.0.0.1:8000"):
        r = c.options("/v1/audio/speech", headers={"Origin": origin, **PREFLIGHT})
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == origin
        assert r.headers["access-control-allow-credentials"] == "true"
        allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "cache-control", "authorization"} <= allowed
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "Origin" in r.headers["vary"]
    # the real request from that page: the origin is echoed, our headers readable
    r = c.post("/generate", json={"text": "hi (laughs) (hums)"},
               headers={"Origin": "http://localhost:8000"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:8000"
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    ours = {h for h in r.headers if h.startswith("x-")}
    named = {"x-sample-rate", "x-audio-duration", "x-voice-id", "x-model",
             "x-ttsframe-warnings"}
    assert named <= ours
    # every header for ordinary fetches ("*"), the main ones by name for credentialed ones
    assert "*" in exposed
    assert named <= exposed
    # any other origin is refused and gets no allow-origin
    r = c.options("/generate", headers={"Origin": "http://evil.example", **PREFLIGHT})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    r = c.post("/generate", json={"text": "hi"}, headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def logged(server, fragment: str, timeout: float = 10.0) -> list[str]:
    """The server log's lines holding ``fragment``, waiting up to ``timeout`` for one."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in server.output().splitlines() if fragment in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_refused_origin_is_logged_once_with_the_fix(tmp_path):
    """SillyTavern on another port: the browser is refused, and the log says so once, with
    the setting that allows it; that setting, as logged, does allow it."""
    with serve(tmp_path / "own") as own:
        refused_origin_is_logged_once(own, tmp_path)


def refused_origin_is_logged_once(open_server, tmp_path) -> None:
    c = open_server.client
    elsewhere = "http://localhost:8001"
    for _ in range(2):
        r = c.options("/v1/audio/speech", headers={"Origin": elsewhere, **PREFLIGHT})
        assert r.status_code == 400
    c.post("/v1/audio/speech", json={"input": "hi"}, headers={"Origin": elsewhere})
    # allowed and same-origin requests are not refusals
    c.options("/v1/audio/speech", headers={"Origin": "http://localhost:8000", **PREFLIGHT})
    c.post("/generate", json={"text": "hi"}, headers={"Origin": open_server.url})
    c.post("/generate", json={"text": "hi"}, headers={"Origin": "http://127.0.0.1:8002"})
    logged(open_server, "origin http://127.0.0.1:8002")  # every request above was seen
    lines = logged(open_server, "refused a browser request")
    assert len(lines) == 2, lines
    assert "WARNING ttsframe.cors" in lines[0]
    assert lines[0].endswith(
        "refused a browser request from origin http://localhost:8001: "
        "the browser blocks that page from reading replies. To allow it, set in "
        'ttsframe.toml [security] cors_origins = ["http://localhost:8000", '
        '"http://127.0.0.1:8000", "http://localhost:8001"]')
    fix = lines[0].split("ttsframe.toml ", 1)[1]  # "[security] cors_origins = [...]"
    with serve(tmp_path / "fixed", fix.replace("] ", "]\n", 1) + "\n") as fixed:
        r = fixed.client.options("/v1/audio/speech",
                                 headers={"Origin": elsewhere, **PREFLIGHT})
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == elsewhere
        assert logged(fixed, "refused a browser request", timeout=0) == []


def test_cors_wildcard_never_allows_credentials(keyed_server):
    c = keyed_server.client
    # a preflight carries no key and still passes (the browser sends it before the POST)
    r = c.options("/v1/audio/speech", headers={"Origin": "http://any.example", **PREFLIGHT})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    # a 401 is readable by the page, still without credentials
    r = c.post("/generate", json={"text": "hi"}, headers={"Origin": "http://any.example"})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers


def test_no_cors_origins_means_no_cors_headers(tmp_path):
    with serve(tmp_path, "[security]\ncors_origins = []\n") as srv:
        r = srv.client.options("/generate", headers={"Origin": "http://localhost:8000",
                                                     **PREFLIGHT})
        assert "access-control-allow-origin" not in r.headers


# --- API keys over TCP ------------------------------------------------------------------


def test_api_keys_on_the_real_server(keyed_server):
    c = keyed_server.client
    key = {"Authorization": f"Bearer {API_KEY}"}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert c.get("/health").status_code == 200  # open, for monitors
    r = c.post("/generate", json={"text": "hi"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="ttsframe"'
    assert r.json()["detail"].startswith("no API key was sent")
    assert c.post("/generate", json={"text": "hi"}, headers=key).status_code == 200
    assert c.post("/generate", json={"text": "hi"}, headers=admin).status_code == 200
    assert c.get("/v1/models").status_code == 401
    assert c.get("/v1/models", headers=key).status_code == 200
    # routes from plugins are protected the same way
    assert c.get("/extra/ping").status_code == 401
    assert c.get("/extra/ping", headers=key).json() == {"pong": True}
    # ... and a plugin's DELETE is an admin route
    r = c.delete("/extra/things/a", headers=key)
    assert r.status_code == 403
    assert "not for DELETE /extra/things/a, an admin route" in r.json()["detail"]
    assert c.delete("/extra/things/a", headers=admin).status_code == 204
    # keys never reach the log, accepted or refused
    c.post("/generate", json={"text": "hi"}, headers={"Authorization": "Bearer guess-123"})
    log = keyed_server.output()
    assert "POST /generate" in log or "/generate" in log
    for secret in (API_KEY, ADMIN_KEY, "guess-123"):
        assert secret not in log


def test_invalid_security_config_stops_startup(tmp_path):
    cfg = tmp_path / "ttsframe.toml"
    cfg.write_text('[security]\napi_keys = "just-a-string"\n')
    proc = subprocess.run([sys.executable, "-m", "ttsframe", "serve", "--config", str(cfg),
                           "--port", "0"],
                          capture_output=True, text=True, timeout=60,
                          env=inherited_environment())
    assert proc.returncode == 2
    assert "security.api_keys" in proc.stderr

