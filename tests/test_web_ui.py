"""The web page in a real browser: Debian's chromium driven by Playwright, against real
``ttsframe serve`` processes on the tiny Dia model.

``scripts/ensure-chromium.sh`` installs the browser (the test script runs it); without
``/usr/bin/chromium`` these tests are skipped. The last test takes the screenshots that
``docs/web-ui.md`` shows; it writes them into ``docs/screenshots/`` only when
``TTSFRAME_UPDATE_SCREENSHOTS=1`` is set, so a test run leaves the checkout unchanged.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.dia_fixtures import tiny_model_dir  # noqa: F401  (fixture)
from tests.server import ROOT, ServerProcess, install_fake_backend
from ttsframe.testing.waiting import eventually

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium: run scripts/ensure-chromium.sh")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        # A microphone that plays a beep, allowed without asking: the recording test.
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
DOC_SHOTS = ROOT / "docs" / "screenshots"
# A seed for which the tiny model speaks for several seconds, so playback can be seen
# starting long before the reply ends.
LONG_SEED = "3"
LONG_TEXT = "[S1] Hello there, how are you today?"
USER_KEY = "user-key-123"
ADMIN_KEY = "admin-key-456"

# Collects CSP violations from the first script the page runs.
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def write_config(directory: Path, model: Path, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / "ttsframe.toml"
    # One generation at a time, so that a second job waits while the first runs.
    cfg.write_text(f"""{extra}
[generation]
workers = 1

[logging]
save_outputs = true
show_prompts = true

[plugins.dia]
model = "{model}"
device = "cpu"
cpu_threads = 1
local_files_only = true
""")
    return cfg


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir) -> Iterator[ServerProcess]:  # noqa: F811
    cfg = write_config(tmp_path_factory.mktemp("ui"), tiny_model_dir)
    with ServerProcess(cfg) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory, tiny_model_dir) -> Iterator[ServerProcess]:  # noqa: F811
    cfg = write_config(tmp_path_factory.mktemp("ui-keys"), tiny_model_dir, f"""
[security]
api_keys = ["{USER_KEY}"]
admin_keys = ["{ADMIN_KEY}"]
""")
    with ServerProcess(cfg, wait_for="up") as srv:  # keys and config need no model
        yield srv


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """A server whose backend streams speech at about real time for many seconds, however
    fast the machine: the kit's fake (``STREAMING``) saying 3 s per word in 400 steps of
    50 ms. A generation is then still running whenever a test stops it."""
    directory = tmp_path_factory.mktemp("ui-slow")
    site = install_fake_backend(directory / "site", "slowspeech", "STREAMING",
                                length_unit="word", seconds_per_unit=3.0, steps=400,
                                step_delay_s=0.05)
    cfg = directory / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "slowspeech"\nworkers = 1\n\n'
                   '[logging]\nshow_prompts = true\n')
    with ServerProcess(cfg, plugins=["slowspeech"],
                       env={"PYTHONPATH": str(site),
                            "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


class Watched:
    """A page plus what went wrong in it: console errors, uncaught errors, CSP reports."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.add_init_script(WATCH_CSP)

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__csp")


@pytest.fixture
def open_page(browser) -> Iterator:
    contexts = []

    def open_(srv: ServerProcess, *, scheme: str = "light", wait: bool = True,
              viewport: dict | None = None) -> Watched:
        context = browser.new_context(base_url=srv.url, color_scheme=scheme,
                                      viewport=viewport or {"width": 1100, "height": 900},
                                      accept_downloads=True)
        contexts.append(context)
        watched = Watched(context.new_page())
        watched.page.set_default_timeout(60_000)
        watched.page.goto("/")
        if wait:
            expect(watched.page.locator("body")).to_have_attribute("data-ready", "true")
        return watched

    yield open_
    for context in contexts:
        context.close()


def take_done(page: Page, number: int = 1):
    take = page.locator(".take").nth(0)
    expect(take).to_contain_text(f"Take {number}")
    expect(take).to_have_attribute("data-state", "done", timeout=90_000)
    return take


def audio_facts(page: Page) -> dict:
    return page.evaluate("""() => { const t = document.querySelector('.take');
        const a = t.querySelector('audio');
        return {duration: a.duration, time: a.currentTime, error: a.error && a.error.message,
                first: Number(t.dataset.firstPlayMs), done: Number(t.dataset.replyDoneMs),
                seed: t.dataset.seed, href: t.querySelector('a[download]').href}; }""")


def test_page_loads_with_strict_csp_and_no_errors(server, open_page):
    w = open_page(server)
    page = w.page
    assert page.url.endswith("/ui/")
    reply = server.client.get("/ui/")
    csp = reply.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp
    html = reply.text
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    # Every view draws, and what they load causes no error.
    expect(page.get_by_label("Voice", exact=True)).to_contain_text("alloy")
    expect(page.get_by_label("Model", exact=True)).to_be_hidden()  # one backend
    assert "laughs" in page.get_by_label("Nonverbal").inner_text()
    page.get_by_role("tab", name="Clone").click()
    expect(page.get_by_role("button", name="Create voice")).to_be_visible()
    page.get_by_role("tab", name="Manage").click()
    expect(page.locator("#status-view")).to_have_attribute("data-health", "healthy")
    expect(page.locator("#config-fields input").first).to_be_visible()
    assert w.errors == []
    assert w.csp_violations() == []
    # An inline script injected into the page is refused by the policy.
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__ran = true'; document.body.append(s); }""")
    page.wait_for_function("() => window.__csp.length > 0")
    assert page.evaluate("window.__ran") is None
    assert server.client.get("/ui/assets/..%2Fui.py").status_code == 404


def test_generate_streams_playback_before_the_reply_ends(server, open_page):
    w = open_page(server)
    page = w.page
    sent = []
    page.on("request", lambda r: r.url.endswith("/generate") and sent.append(r.post_data))
    page.get_by_label("Text", exact=True).fill(LONG_TEXT)
    page.get_by_role("button", name="Insert nonverbal").click()
    expect(page.get_by_label("Text", exact=True)).to_have_value(f"{LONG_TEXT} (applause) ")
    page.get_by_label("Text", exact=True).fill(LONG_TEXT)
    page.get_by_role("spinbutton", name="Seed").fill(LONG_SEED)
    page.get_by_role("button", name="Generate").click()
    # Playback time advances while the server is still generating.
    page.wait_for_function("""() => { const t = document.querySelector('.take');
        return t && t.dataset.state === 'generating'
               && t.querySelector('audio').currentTime > 0.2; }""", timeout=90_000)
    take = take_done(page)
    facts = audio_facts(page)
    assert facts["first"] < facts["done"], facts  # playing began before the reply ended
    assert facts["duration"] > 2.0 and facts["error"] is None, facts
    assert facts["href"].startswith("blob:")
    body = json.loads(sent[0])
    assert body["stream"] is True and body["response_format"] == "mp3"
    assert body["seed"] == int(LONG_SEED) and body["temperature"] == 1.2
    expect(take).to_contain_text(f"seed {LONG_SEED}")
    page.wait_for_function("() => document.querySelector('.take audio').currentTime > 1.0")

    # The take's seed can be used again.
    page.get_by_role("spinbutton", name="Seed").fill("")
    take.get_by_role("button", name="Use this seed again").click()
    expect(page.get_by_role("spinbutton", name="Seed")).to_have_value(LONG_SEED)
    with page.expect_download() as download:
        take.get_by_role("link", name="Download take 1").click()
    data = Path(download.value.path()).read_bytes()
    assert data[:3] == b"ID3" or data[0] == 0xFF  # an MP3 stream

    # WAV streams too (Web Audio); the take is a complete WAV file.
    page.get_by_label("Format").select_option("wav")
    page.get_by_role("button", name="Generate").click()
    take = take_done(page, 2)
    facts = audio_facts(page)
    assert facts["first"] < facts["done"], facts
    assert json.loads(sent[-1])["stream"] is True
    with page.expect_download() as download:
        take.get_by_role("link", name="Download take 2").click()
    audio, rate = sf.read(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert rate == 44100
    assert len(audio) / rate == pytest.approx(facts["duration"], abs=0.01)
    assert len(audio) / rate > 2.0
    assert w.errors == [] and w.csp_violations() == []


def test_stop_ends_the_generation(slow_server, open_page):
    server = slow_server
    page = open_page(server).page
    page.get_by_label("Text", exact=True).fill("[S1] Stop me while I am talking.")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("""() => { const t = document.querySelector('.take');
        return t && t.dataset.firstPlayMs; }""")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#speak-status")).to_have_text("Stopped.")
    expect(page.locator(".take")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()

    def stop_me_log() -> dict | None:
        logs = server.client.get("/logs?limit=1").json()["logs"]
        return logs[0] if logs and "Stop me" in (logs[0]["text"] or "") else None

    # Closing the stream cancels the generation on the server (well before its 20 s).
    log = eventually(lambda: (e := stop_me_log()) and e["status"] != "processing" and e,
                     timeout=15)
    assert log["status"] == "cancelled", log


def test_server_error_message_is_shown(server, open_page):
    r = server.client.post("/voice_mappings", json={"voice_id": "short_lived"})
    assert r.status_code == 201, r.text
    page = open_page(server).page
    page.get_by_label("Voice", exact=True).select_option("short_lived")
    assert server.client.delete("/voice_mappings/short_lived").status_code == 200
    page.get_by_label("Text", exact=True).fill("[S1] Hello.")
    page.get_by_role("button", name="Generate").click()
    detail = server.client.post("/generate", json={"text": "hi", "voice_id": "short_lived"}
                                ).json()["detail"]
    expect(page.get_by_role("alert").first).to_have_text(detail)
    assert "short_lived" in detail
    expect(page.locator(".take")).to_have_count(0)


def test_keyboard_alone_generates(server, open_page):
    page = open_page(server).page
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Text", exact=True)).to_be_focused()
    page.keyboard.type("[S1] Typed without a mouse.")
    page.get_by_role("spinbutton", name="Seed").focus()
    page.keyboard.type("5")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "generate":
            break
    expect(page.get_by_role("button", name="Generate")).to_be_focused()
    page.keyboard.press("Enter")
    take_done(page)
    # Arrow keys move between the tabs.
    page.get_by_role("tab", name="Speak").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Clone")).to_be_focused()
    expect(page.get_by_role("button", name="Create voice")).to_be_visible()


def speech_wav(path: Path) -> Path:
    """Two seconds of a voiced, wobbling tone with noise: enough for a prompt."""
    rate = 44100
    t = np.arange(2 * rate) / rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 2 * t)
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / rate)
    wave += 0.02 * np.random.default_rng(0).standard_normal(len(t))
    sf.write(path, wave.astype(np.float32), rate)
    return path


def test_clone_from_wav_then_speak_with_it(server, open_page, tmp_path):
    page = open_page(server).page
    page.get_by_role("tab", name="Clone").click()
    page.get_by_label("Audio file").set_input_files(speech_wav(tmp_path / "my sample.wav"))
    expect(page.get_by_label("Voice name")).to_have_value("my_sample")
    page.get_by_label("Voice name").fill("browser_voice")
    transcript = page.locator("#panel-clone").get_by_label("Transcript", exact=True)
    transcript.fill("Hello, this is how I sound.")
    page.get_by_role("button", name="Create voice").click()
    expect(page.locator("#clone-status")).to_contain_text("is ready", timeout=90_000)
    page.wait_for_function("() => document.querySelector('#clone-preview').duration > 0")

    voice = server.client.get("/voice_mappings/browser_voice").json()
    assert voice["audio_prompt"] == "browser_voice"
    assert voice["audio_prompt_transcript"] == "[S1] Hello, this is how I sound."

    page.get_by_role("tab", name="Speak").click()
    picker = page.get_by_label("Voice", exact=True)
    expect(picker).to_have_value("browser_voice")
    page.get_by_label("Text", exact=True).fill("[S1] Now in my own voice.")
    page.get_by_role("button", name="Generate").click()
    take = take_done(page)
    expect(take).to_contain_text("browser_voice")
    page.wait_for_function("() => document.querySelector('.take audio').currentTime > 0.05")
    assert audio_facts(page)["duration"] > 0

    # Manage explains why the prompt cannot be deleted on its own.
    page.get_by_role("tab", name="Manage").click()
    row = page.locator('#prompts-table tr[data-prompt-id="browser_voice"]')
    expect(row).to_contain_text("In use by browser_voice")
    row.get_by_role("button", name="Delete audio prompt browser_voice").click()
    detail = server.client.delete("/audio_prompts/browser_voice").json()["detail"]
    expect(page.locator("#manage-error")).to_contain_text(detail)
    expect(page.get_by_role("button", name="Delete browser_voice and its voices")).to_be_visible()

    # A custom voice is edited in its dialog.
    page.get_by_role("button", name="Edit voice browser_voice").click()
    dialog = page.get_by_role("dialog", name="Edit voice browser_voice")
    dialog.get_by_label("Style").fill("warm")
    dialog.get_by_role("button", name="Save voice").click()
    expect(dialog).to_be_hidden()
    expect(page.locator('#voices-table tr[data-voice-id="browser_voice"]')).to_contain_text("warm")
    assert server.client.get("/voice_mappings/browser_voice").json()["style"] == "warm"


def test_clone_from_the_microphone(server, open_page):
    page = open_page(server).page
    page.get_by_role("tab", name="Clone").click()
    page.get_by_role("button", name="Record from microphone").click()
    # Record about two seconds of the fake microphone's beep.
    page.wait_for_function("""() => {
        const m = document.querySelector('#record-state').textContent.match(/([0-9.]+) s/);
        return m && Number(m[1]) >= 2.0; }""")
    page.get_by_role("button", name="Stop recording").click()
    expect(page.locator("#record-state")).to_contain_text("Recorded")
    page.get_by_label("Voice name").fill("mic_voice")
    page.locator("#panel-clone").get_by_label("Transcript", exact=True).fill("Beep.")
    page.get_by_role("button", name="Create voice").click()
    expect(page.locator("#clone-status")).to_contain_text("is ready", timeout=90_000)
    prompt = server.client.get("/audio_prompts").json()["mic_voice"]
    assert prompt["duration"] >= 1.5 and prompt["sample_rate"] == 44100
    assert prompt["used_by"] == ["mic_voice"]


def test_jobs_complete_download_and_cancel(server, open_page):
    page = open_page(server).page
    page.get_by_label("Text", exact=True).fill("[S1] A job to keep.")
    page.get_by_label("Format").select_option("wav")
    page.get_by_role("spinbutton", name="Seed").fill("2")
    page.get_by_role("button", name="Queue as job").click()
    expect(page.locator("#speak-status")).to_contain_text("queued")
    kept = page.locator("#speak-status").inner_text().split()[1]

    page.get_by_role("tab", name="Manage").click()
    row = page.locator(f'#jobs-table tr[data-job-id="{kept}"]')
    expect(row).to_have_attribute("data-status", "completed", timeout=90_000)
    with page.expect_download() as download:
        row.get_by_role("button", name=f"Download job {kept}").click()
    audio, rate = sf.read(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert rate == 44100 and len(audio) > 0

    # Of two long jobs, the second waits behind the first; it is cancelled from its row.
    page.get_by_role("tab", name="Speak").click()
    page.get_by_label("Text", exact=True).fill(LONG_TEXT)
    page.get_by_role("spinbutton", name="Seed").fill(LONG_SEED)
    page.get_by_role("button", name="Queue as job").click()
    expect(page.locator("#speak-status")).to_contain_text("queued")
    first = page.locator("#speak-status").inner_text().split()[1]
    page.get_by_role("button", name="Queue as job").click()
    expect(page.locator("#speak-status")).not_to_contain_text(first)
    doomed = page.locator("#speak-status").inner_text().split()[1]
    page.get_by_role("tab", name="Manage").click()
    page.get_by_role("button", name=f"Cancel job {doomed}").click()
    row = page.locator(f'#jobs-table tr[data-job-id="{doomed}"]')
    expect(row).to_have_attribute("data-status", "cancelled", timeout=30_000)
    assert server.client.get(f"/jobs/{doomed}").json()["status"] == "cancelled"
    first_row = page.locator(f'#jobs-table tr[data-job-id="{first}"]')
    expect(first_row).to_have_attribute("data-status", "completed", timeout=90_000)


def test_keys_are_asked_for_refused_and_kept_in_the_session(keyed_server, open_page):
    w = open_page(keyed_server, wait=False)
    page = w.page
    dialog = page.get_by_role("dialog", name="API key")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("needs an API key")
    page.get_by_label("Key", exact=True).fill("wrong-key")
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-error")).to_contain_text("refused")
    expect(page.locator("#key-error")).to_contain_text("this API key is not accepted")
    page.get_by_label("Key", exact=True).fill(USER_KEY)
    page.get_by_role("button", name="Use key").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_label("Voice", exact=True)).to_contain_text("alloy")
    assert page.evaluate("sessionStorage.getItem('ttsframe.apiKey')") == USER_KEY
    assert page.evaluate("localStorage.length") == 0
    assert USER_KEY not in page.url

    # An API key may use the page but not change the configuration.
    page.get_by_role("tab", name="Manage").click()
    expect(page.locator("#config-hint")).to_contain_text("Only an admin key")
    expect(page.get_by_role("button", name="Save configuration")).to_be_disabled()

    # An admin key changes a value; it is applied, written, and still there on reload.
    page.get_by_role("button", name="API key (set)").click()
    page.get_by_label("Key", exact=True).fill(ADMIN_KEY)
    page.get_by_role("button", name="Use key").click()
    expect(dialog).to_be_hidden()
    page.get_by_role("tab", name="Speak").click()
    page.get_by_role("tab", name="Manage").click()
    expect(page.get_by_role("button", name="Save configuration")).to_be_enabled()
    page.get_by_label("queue size").fill("17")
    page.get_by_role("button", name="Save configuration").click()
    expect(page.locator("#config-status")).to_have_text("Saved: queue_size.")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert keyed_server.client.get("/config", headers=admin).json()["queue_size"] == 17
    assert "queue_size = 17" in keyed_server.config.read_text()
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.get_by_role("tab", name="Manage").click()
    expect(page.get_by_label("queue size")).to_have_value("17")
    assert w.errors == [] or all("401" in e for e in w.errors), w.errors
    assert w.csp_violations() == []


SERIOUS = {"serious", "critical"}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_accessibility_scan_and_screenshots(server, open_page, scheme, tmp_path):
    """axe-core (from axe-playwright-python's wheel) finds nothing serious or critical
    on any view; the screenshots for the docs are taken on the way."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    update = os.environ.get("TTSFRAME_UPDATE_SCREENSHOTS") == "1"
    shots = DOC_SHOTS if update else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    w = open_page(server, scheme=scheme)
    page = w.page
    page.get_by_label("Text", exact=True).fill("[S1] Welcome to ttsframe. [S2] (laughs) Hi!")
    page.get_by_role("spinbutton", name="Seed").fill("1")
    page.get_by_role("button", name="Generate").click()
    take_done(page)
    problems = {}
    for view in ("Speak", "Clone", "Manage"):
        page.get_by_role("tab", name=view).click()
        if view == "Manage":
            expect(page.locator("#status-view")).to_have_attribute("data-health", "healthy")
            expect(page.locator("#voices-table tbody tr").first).to_be_visible()
        results = axe.run(page)
        bad = [v for v in results.response["violations"] if v["impact"] in SERIOUS]
        if bad:
            problems[view] = [(v["id"], v["help"], [n["target"] for n in v["nodes"]])
                              for v in bad]
        page.screenshot(path=shots / f"{view.lower()}-{scheme}.png", full_page=True)
    assert problems == {}, problems
    # A phone-sized screen: nothing wider than the viewport.
    phone = open_page(server, scheme=scheme, viewport={"width": 390, "height": 844}).page
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=shots / f"phone-{scheme}.png")
    assert all((shots / f"{v}-{scheme}.png").stat().st_size > 1000
               for v in ("speak", "clone", "manage", "phone"))
    assert w.errors == [] and w.csp_violations() == []


@pytest.fixture(scope="module")
def flaky_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """The kit's fake whose first take of every chunk is silent: each take is retried."""
    directory = tmp_path_factory.mktemp("ui-flaky")
    site = install_fake_backend(directory / "site", "flaky", "BEEPER", first_take="silence",
                                length_unit="char", seconds_per_unit=0.06, seeded=True)
    cfg = directory / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "flaky"\n')
    with ServerProcess(cfg, plugins=["flaky"],
                       env={"PYTHONPATH": str(site),
                            "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}) as srv:
        yield srv


@pytest.mark.parametrize("fmt", ["wav", "flac"])  # streamed (generation log), whole (header)
def test_a_retried_take_says_so_in_the_takes_list(flaky_server, open_page, fmt):
    w = open_page(flaky_server)
    page = w.page
    page.get_by_label("Text", exact=True).fill(LONG_TEXT)
    page.get_by_label("Format").select_option(fmt)
    page.get_by_role("button", name="Generate").click()
    take = take_done(page)
    expect(take.locator(".take-quality")).to_contain_text("was generated again")
    expect(take).to_have_attribute("data-quality", "retried")
    assert w.errors == [] and w.csp_violations() == []
