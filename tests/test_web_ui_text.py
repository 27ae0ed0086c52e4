"""The page's text front-end in a real browser (Debian's chromium): the Speak view's
preview of what is read, and the pronunciation dictionary managed from Manage, against a
real ``ttsframe serve`` process with the kit's fake backend (no model needed)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright")

from playwright.sync_api import Browser, expect, sync_playwright

from tests.server import ServerProcess, install_fake_backend

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium: run scripts/ensure-chromium.sh")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USER_KEY = "text-user-1"
ADMIN_KEY = "text-admin-2"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("ui-text")
    site = install_fake_backend(directory / "site", "beeper", "BEEPER")
    cfg = directory / "ttsframe.toml"
    cfg.write_text('[generation]\ndefault_backend = "beeper"\n\n'
                   f'[security]\napi_keys = ["{USER_KEY}"]\nadmin_keys = ["{ADMIN_KEY}"]\n')
    with ServerProcess(cfg, plugins=["beeper"],
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


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server.url, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(30_000)
    page.goto("/")
    expect(page.get_by_role("dialog", name="API key")).to_be_visible()

    def use_key(key: str) -> None:
        dialog = page.get_by_role("dialog", name="API key")
        if not dialog.is_visible():  # the page asks by itself when it has no key yet
            page.locator("#key-button").click()
        page.get_by_label("Key", exact=True).fill(key)
        page.get_by_role("button", name="Use key").click()
        expect(dialog).to_be_hidden()
        expect(page.get_by_label("Voice", exact=True)).to_contain_text("alloy")

    page.use_key = use_key
    yield page
    assert errors == []
    context.close()


def test_the_preview_shows_what_is_read(page):
    page.use_key(USER_KEY)
    page.get_by_label("Text", exact=True).fill('<speak>It costs $5 at 3:30 pm.<break time="700ms"/>'
                                   "Dr. Lee agrees.</speak>")
    page.get_by_role("button", name="Preview what is read").click()
    chunks = page.locator("#preview-chunks li")
    expect(chunks).to_have_count(2)
    expect(chunks.nth(0)).to_contain_text("It costs five dollars at three thirty p m.")
    expect(chunks.nth(0)).to_contain_text("then 0.7 s of silence")
    expect(chunks.nth(1)).to_contain_text("Doctor Lee agrees.")
    expect(page.locator("#preview-summary")).to_contain_text("in 2 generations")
    # Unticked: the words as written.
    page.get_by_label("Read numbers, dates and symbols as words").uncheck()
    page.get_by_role("button", name="Preview what is read").click()
    expect(chunks.nth(0)).to_contain_text("It costs $5 at 3:30 pm.")
    # Malformed SSML: the server's message, with line and column.
    page.get_by_label("Text", exact=True).fill("<speak>Hi <b>there</speak>")
    page.get_by_role("button", name="Preview what is read").click()
    expect(page.locator("#preview-summary")).to_contain_text("line 1, column 21")


def test_pronunciations_are_managed_from_the_page(page, server, tmp_path):
    page.use_key(USER_KEY)
    page.get_by_role("tab", name="Manage").click()
    # A plain key may read the dictionary but not change it.
    page.get_by_label("Written", exact=True).fill("Siobhan")
    page.get_by_label("Said as", exact=True).fill("Shiv-awn")
    page.get_by_role("button", name="Add pronunciation").click()
    expect(page.locator("#pron-error")).to_contain_text("admin key")
    page.use_key(ADMIN_KEY)
    page.get_by_role("tab", name="Manage").click()
    page.get_by_label("Written", exact=True).fill("Siobhan")
    page.get_by_label("Said as", exact=True).fill("Shiv-awn")
    page.get_by_role("button", name="Add pronunciation").click()
    expect(page.locator("#pron-status")).to_contain_text("From now on “Siobhan” is said")
    row = page.locator("#pron-table tbody tr", has_text="Siobhan")
    expect(row).to_contain_text("Shiv-awn")
    expect(row).to_contain_text("every voice")
    stored = json.loads((server.config.parent / "data" / "pronunciations.json").read_text())
    assert [(e["term"], e["spoken"]) for e in stored["entries"]] == [("Siobhan", "Shiv-awn")]
    # The same term again is offered as an edit, in the page's words.
    page.get_by_label("Written", exact=True).fill("siobhan")
    page.get_by_label("Said as", exact=True).fill("x")
    page.get_by_role("button", name="Add pronunciation").click()
    expect(page.locator("#pron-error")).to_contain_text("use its Edit button")
    page.get_by_role("button", name="Edit Siobhan").click()
    page.get_by_label("Said as", exact=True).fill("Sho-vahn")
    page.get_by_label("Only for voice").select_option("alloy")
    page.get_by_role("button", name="Save pronunciation").click()
    expect(row).to_contain_text("Sho-vahn")
    expect(row).to_contain_text("voice alloy")
    # Speak's preview hears it.
    page.get_by_role("tab", name="Speak").click()
    page.get_by_label("Text", exact=True).fill("Hello Siobhan.")
    page.get_by_label("Voice", exact=True).select_option("alloy")
    page.get_by_role("button", name="Preview what is read").click()
    expect(page.locator("#preview-chunks li").first).to_contain_text("Hello Sho-vahn.")
    page.get_by_role("tab", name="Manage").click()
    page.get_by_role("button", name="Delete Siobhan").click()
    expect(page.locator("#pron-table")).to_contain_text("No pronunciations yet.")
    assert server.client.get("/pronunciations", headers={
        "Authorization": f"Bearer {USER_KEY}"}).json()["entries"] == []
