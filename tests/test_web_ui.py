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
                       # The site first, then the caller's path (the checkout under test).
                       env={"PYTHONPATH": os.pathsep.join(
                                filter(None, [str(site), os.environ.get("PYTHONPATH")])),
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
    page.get_by_role("button", name="Stop", exact=True).click()
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


def speech_wav(path: Path, seconds: float = 2.0) -> Path:
    """Two seconds of a voiced, wobbling tone with noise: enough for a prompt."""
    rate = 44100
    t = np.arange(int(seconds * rate)) / rate
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
    expect(page.locator("#manage-error")).to_contain_text(
        "The recording “browser_voice” is used by the voice browser_voice.")
    expect(page.get_by_role("button", name="Delete the voices that use it too")).to_be_visible()

    # A custom voice is edited in its dialog.
    page.get_by_role("button", name="Edit voice browser_voice").click()
    dialog = page.get_by_role("dialog", name="Edit voice browser_voice")
    dialog.get_by_label("Style").fill("warm")
    dialog.get_by_role("button", name="Save voice").click()
    expect(dialog).to_be_hidden()
    expect(page.locator('#voices-table tr[data-voice-id="browser_voice"]')).to_contain_text("warm")
    assert server.client.get("/voice_mappings/browser_voice").json()["style"] == "warm"


def test_conflicts_are_offered_in_the_pages_words(server, open_page, tmp_path):
    """A taken name offers "Replace it"; a recording in use offers to delete its voices;
    neither shows the API's query parameters or terms."""
    with speech_wav(tmp_path / "old.wav").open("rb") as old:
        r = server.client.post("/audio_prompts/upload", data={"prompt_id": "ui_voice"},
                               files={"audio_file": ("old.wav", old, "audio/wav")})
    assert r.status_code == 201, r.text
    r = server.client.post("/voice_mappings", json={
        "voice_id": "ui_voice", "audio_prompt": "ui_voice", "primary_speaker": "S1",
        "audio_prompt_transcript": "[S1] Old words."})
    assert r.status_code == 201, r.text
    w = open_page(server)
    page = w.page
    page.get_by_role("tab", name="Clone").click()
    page.get_by_label("Audio file").set_input_files(speech_wav(tmp_path / "new.wav", 3.0))
    page.get_by_label("Voice name").fill("ui_voice")
    page.locator("#panel-clone").get_by_label("Transcript", exact=True).fill("New words.")
    page.get_by_role("button", name="Create voice").click()
    error = page.locator("#clone-error")
    expect(error).to_have_text("A voice named “ui_voice” already exists. Replace it or "
                               "choose another name.")
    error.get_by_role("button", name="Replace it").click()
    expect(page.locator("#clone-status")).to_contain_text("is ready", timeout=90_000)
    voice = server.client.get("/voice_mappings/ui_voice").json()
    assert voice["audio_prompt_transcript"] == "[S1] New words."
    prompt = server.client.get("/audio_prompts").json()["ui_voice"]
    assert prompt["duration"] == pytest.approx(3.0, abs=0.05)

    # A stored recording that no voice names yet.
    with speech_wav(tmp_path / "lone.wav").open("rb") as lone:
        server.client.post("/audio_prompts/upload", data={"prompt_id": "ui_lone"},
                           files={"audio_file": ("lone.wav", lone, "audio/wav")})
    page.get_by_label("Voice name").fill("ui_lone")
    page.get_by_role("button", name="Create voice").click()
    expect(error).to_have_text("A recording named “ui_lone” is already stored. Replace it "
                               "or choose another name.")
    # A built-in voice's name cannot be taken.
    page.get_by_label("Voice name").fill("alloy")
    page.get_by_role("button", name="Create voice").click()
    expect(error).to_have_text("“alloy” is a built-in voice. Choose another name.")

    page.get_by_role("tab", name="Manage").click()
    row = page.locator('#prompts-table tr[data-prompt-id="ui_voice"]')
    row.get_by_role("button", name="Delete audio prompt ui_voice").click()
    region = page.locator("#manage-error")
    expect(region).to_have_text("The recording “ui_voice” is used by the voice ui_voice. "
                                "Delete the voices that use it too or change those voices "
                                "first.")
    region.get_by_role("button", name="Delete the voices that use it too").click()
    expect(row).to_have_count(0)
    expect(page.locator('#voices-table tr[data-voice-id="ui_voice"]')).to_have_count(0)
    assert server.client.get("/voice_mappings/ui_voice").status_code == 404
    assert "ui_voice" not in server.client.get("/audio_prompts").json()
    assert w.errors == [] or all("409" in e for e in w.errors), w.errors


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
    # Manage redraws for the new key at once: no need to leave the tab and come back.
    expect(page.get_by_role("button", name="Save configuration")).to_be_enabled()
    expect(page.locator("#config-hint")).to_contain_text("Changes apply at once")
    expect(page.get_by_label("queue size")).to_be_enabled()
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


def test_one_take_plays_at_a_time(slow_server, open_page):
    """Generate pauses the take that plays; starting a take pauses the one playing,
    a streamed WAV take (Web Audio) included."""
    page = open_page(slow_server).page
    players = "[...document.querySelectorAll('.take audio')]"
    text = page.get_by_label("Text", exact=True)
    text.fill("[S1] One two.")
    page.get_by_role("button", name="Generate").click()
    take_done(page, 1)
    page.evaluate(f"() => {players}[0].play()")  # played again, as with its play button
    page.wait_for_function(f"() => !{players}[0].paused")
    text.fill("[S1] Three four.")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function(f"() => {players}.length === 2 && {players}[1].paused")
    # Take 2 plays while it is generated; starting take 1 pauses it.
    page.wait_for_function(f"() => {players}[0].currentTime > 0.2 && !{players}[0].paused")
    page.evaluate(f"() => {players}[1].play()")
    page.wait_for_function(f"() => {players}[0].paused && !{players}[1].paused")
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator("#speak-status")).to_have_text("Stopped.")

    # WAV plays through Web Audio while it streams: Generate pauses take 1, and take 1
    # starting again suspends the streamed take.
    page.get_by_label("Format").select_option("wav")
    text.fill("[S1] Five six.")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function(f"() => {players}.length === 2 && {players}.every((a) => a.paused)")
    wav = page.locator(".take").first
    expect(wav).to_have_attribute("data-web-audio", "playing")
    page.wait_for_function("() => document.querySelector('.take').dataset.firstPlayMs")
    page.evaluate(f"() => {players}[1].play()")
    expect(wav).to_have_attribute("data-web-audio", "paused")
    page.wait_for_function(f"() => !{players}[1].paused")
    page.get_by_role("button", name="Stop", exact=True).click()


def test_a_long_paste_is_kept_counted_and_refused(server, open_page):
    w = open_page(server)
    page = w.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    limit = server.client.get("/ui/meta").json()["max_text_chars"]
    counter = page.locator("#text-count")
    expect(counter).to_have_text(f"0 / {limit} characters")
    long = "[S1] " + "la " * (limit // 3 + 40)
    chars = len(long.strip())
    sent = []
    page.on("request", lambda r: r.url.endswith("/generate") and sent.append(r.url))
    page.evaluate("(text) => navigator.clipboard.writeText(text)", long)
    area = page.get_by_label("Text", exact=True)
    area.focus()
    page.keyboard.press("Control+V")
    # Nothing is cut; the counter and a message say it is too long.
    expect(counter).to_have_text(f"{chars} / {limit} characters: too long")
    assert page.evaluate("document.querySelector('#text').value.length") == len(long)
    error = page.locator("#speak-error")
    expect(error).to_contain_text("Pasted in full, but it is too long.")
    expect(error).to_contain_text(f"at most {limit}. Shorten it by {chars - limit}")
    page.get_by_role("button", name="Generate").click()
    expect(error).to_have_text(f"The text is {chars} characters; this server takes at most "
                               f"{limit}. Shorten it by {chars - limit}, or split it into "
                               "several takes.")
    expect(area).to_be_focused()
    assert sent == [] and page.locator(".take").count() == 0
    area.fill("[S1] Short again.")
    expect(counter).to_have_text(f"17 / {limit} characters")
    expect(error).to_be_hidden()
    assert w.errors == [] and w.csp_violations() == []


PHONE = {"width": 390, "height": 844}


def test_manage_tables_fit_a_phone(server, open_page, tmp_path):
    """At phone width the Manage tables become cards: a job id stays on one line (cut
    with an ellipsis, whole in its title), nothing scrolls sideways, rows stay short."""
    job = server.client.post("/generate?async_mode=true", json={
        "text": "[S1] On a phone.", "voice_id": "alloy", "response_format": "wav",
        "seed": 2}).json()["job_id"]
    with speech_wav(tmp_path / "phone.wav").open("rb") as sample:
        server.client.post("/audio_prompts/upload", data={"prompt_id": "phone_voice"},
                           files={"audio_file": ("phone.wav", sample, "audio/wav")})
    server.client.post("/voice_mappings", json={"voice_id": "phone_voice",
                                                "audio_prompt": "phone_voice"})
    w = open_page(server, viewport=PHONE)
    page = w.page
    page.get_by_role("tab", name="Manage").click()
    row = page.locator(f'#jobs-table tr[data-job-id="{job}"]')
    expect(row).to_have_attribute("data-status", "completed", timeout=90_000)
    ident = row.locator(".id")
    expect(ident).to_have_attribute("title", job)
    one_line = ident.evaluate("""(e) => { const s = getComputedStyle(e);
        return e.getBoundingClientRect().height < 2 * parseFloat(s.fontSize); }""")
    assert one_line, ident.bounding_box()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for table in ("jobs", "voices", "prompts", "logs"):
        wrap = page.locator(f"#{table}-table").locator("xpath=..")
        assert wrap.evaluate("(e) => e.scrollWidth <= e.clientWidth"), table
    prompt = page.locator('#prompts-table tr[data-prompt-id="phone_voice"]')
    assert prompt.bounding_box()["height"] < 250, prompt.bounding_box()
    # Each value says which column it is.
    expect(row.locator("td").nth(1)).to_have_attribute("data-label", "Status")
    shots = DOC_SHOTS if os.environ.get("TTSFRAME_UPDATE_SCREENSHOTS") == "1" else tmp_path
    shots = Path(os.environ.get("TTSFRAME_PHONE_SHOTS", shots))
    page.locator("#jobs-heading").evaluate("(e) => e.scrollIntoView()")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=shots / f"phone-manage-{scheme}.png")
    assert w.errors == [] and w.csp_violations() == []


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


def test_api_explorer_works_offline_under_its_csp(keyed_server, browser):
    """/schema/swagger, where every 404 points, draws every operation with nothing from
    outside 127.0.0.1 and no CSP violation, and "Try it out" sends the tab's key."""
    server = keyed_server
    missing = server.client.get("/nothing/here").json()["detail"]
    assert "/schema/swagger" in missing
    context = browser.new_context(base_url=server.url)
    outside: list[str] = []

    def local_only(route) -> None:
        if route.request.url.startswith(f"{server.url}/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", local_only)
    try:
        w = Watched(context.new_page())
        page = w.page
        page.set_default_timeout(60_000)
        # The key the web page keeps for this tab: the explorer sends it too.
        page.goto("/ui/")
        page.evaluate(f"sessionStorage.setItem('ttsframe.apiKey', '{ADMIN_KEY}')")
        reply = page.goto("/schema/swagger")
        assert reply is not None and reply.status == 401  # a browser cannot send the header
        page.set_extra_http_headers({"Authorization": f"Bearer {ADMIN_KEY}"})
        reply = page.goto("/schema/swagger")
        csp = reply.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp
        schema = server.client.get("/schema/openapi.json", headers={
            "Authorization": f"Bearer {ADMIN_KEY}"}).json()
        operations = sum(len(p) for p in schema["paths"].values())
        expect(page.locator(".opblock").first).to_be_visible()
        expect(page.locator(".opblock")).to_have_count(operations)
        voices = page.locator("#operations-speech-list_voices")
        voices.locator(".opblock-summary").click()
        voices.get_by_role("button", name="Try it out").click()
        page.set_extra_http_headers({})  # from here on, only the explorer's own header
        voices.get_by_role("button", name="Execute").click()
        answer = voices.locator(".live-responses-table tbody")
        expect(answer.locator(".response-col_status")).to_have_text("200")
        expect(answer).to_contain_text("alloy")
        assert outside == []
        # Only the 401s of the two loads made without a key.
        assert [e for e in w.errors if "401" not in e] == [], w.errors
        assert w.csp_violations() == []
        # The viewers that needed a CDN lead to the explorer.
        page.set_extra_http_headers({"Authorization": f"Bearer {ADMIN_KEY}"})
        page.goto("/schema/redoc")
        assert page.url.endswith("/schema/swagger")
    finally:
        context.close()


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
