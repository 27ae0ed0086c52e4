"""The Speak view's live mode in Debian's chromium: the text is written into a live
session at a chosen rate and played as it arrives (docs/live-speech.md, docs/web-ui.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import expect

from tests.server import ROOT, ServerProcess, install_fake_backend
from tests.test_web_ui import CHROMIUM, browser, open_page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium: run scripts/ensure-chromium.sh")
KEY = "live-page-key"
TEXT = ("[S1] Live mode speaks while the text is still being written. Each sentence "
        "plays as soon as it is ready. (laughs) That is the whole trick.")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("ui-live")
    site = install_fake_backend(directory / "site", "pieces", "STREAMING",
                                step_delay_s=0.02)
    cfg = directory / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "pieces"\n[plugins.dia]\nenabled = false\n'
                   f'[security]\napi_keys = ["{KEY}"]\n')
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    with ServerProcess(cfg, plugins=["pieces"], env=env) as srv:
        yield srv


def test_live_mode_plays_while_the_text_is_written(live_server, open_page):  # noqa: F811
    w = open_page(live_server, wait=False)
    page = w.page
    page.evaluate(f"sessionStorage.setItem('ttsframe.apiKey', '{KEY}')")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    w.errors.clear()  # the first load, before the key was set, was refused
    expect(page.get_by_label("Voice", exact=True)).to_contain_text("alloy")
    page.get_by_label("Text", exact=True).fill(TEXT)
    page.get_by_label("Characters per second").fill("30")
    page.get_by_role("button", name="Speak live").click()
    card = page.locator("#live-card")
    expect(card).to_have_attribute("data-state", "done", timeout=90_000)
    # The first audio arrived while the text was still being sent.
    expect(card).to_have_attribute("data-first-audio-before-text-end", "true")
    items = page.locator("#live-segments li")
    expect(items).to_have_count(3)
    expect(items.nth(2)).to_contain_text("(laughs) That is the whole trick.")
    assert float(card.get_attribute("data-audio-seconds")) > 1.0
    logs = live_server.client.get("/logs", headers={"Authorization": f"Bearer {KEY}"})
    assert len([r for r in logs.json()["logs"] if r["status"] == "completed"]) == 3
    assert w.errors == [] and w.csp_violations() == []


def test_live_mode_stop_ends_the_session(live_server, open_page):  # noqa: F811
    w = open_page(live_server, wait=False)
    page = w.page
    page.evaluate(f"sessionStorage.setItem('ttsframe.apiKey', '{KEY}')")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    w.errors.clear()  # the first load, before the key was set, was refused
    page.get_by_label("Text", exact=True).fill(TEXT * 3)
    page.get_by_label("Characters per second").fill("10")
    page.get_by_role("button", name="Speak live").click()
    expect(page.locator("#live-segments li").first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Stop live").click()
    expect(page.locator("#live-card")).to_have_attribute("data-state", "stopped")
    expect(page.get_by_role("button", name="Speak live")).to_be_enabled()
    assert w.errors == []
