"""Every test carries exactly one tier marker (tests/tiers.py), read from what it uses."""

from __future__ import annotations

import tomllib

import pytest

from tests.server import ROOT
from tests.tiers import TIERS, explicit_tiers

pytestmark = pytest.mark.unit

SAMPLE = '''
import subprocess
import pytest
from litestar.testing import TestClient
from ttsframe.testing.server import ServerProcess


def plain(): return 1
def start(tmp_path): return ServerProcess(tmp_path)

@pytest.fixture
def server(tmp_path): yield start(tmp_path)

@pytest.fixture
def tiny_model_dir(tmp_path): return tmp_path

def test_plain(): assert plain() == 1
def test_app(): TestClient
def test_server(server): pass
def test_helper(tmp_path): start(tmp_path)
def test_cli(): subprocess.run(["true"])
def test_dia(tiny_model_dir, server): pass
def test_browser(server):
    from playwright.sync_api import sync_playwright
def test_node():
    import shutil; shutil.which("node")

@pytest.mark.unit
def test_named(server): pass
'''


def test_every_collected_test_has_exactly_one_tier(request):
    items = request.session.items
    assert items
    wrong = [(item.nodeid, explicit_tiers(item)) for item in items
             if len(explicit_tiers(item)) != 1]
    assert not wrong, wrong[:10]


def test_the_tiers_are_the_registered_markers():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    registered = {line.split(":", 1)[0] for line in options["ini_options"]["markers"]}
    assert set(TIERS) <= registered
    assert "--strict-markers" in options["ini_options"]["addopts"]


def test_a_tier_is_read_from_the_test_its_fixtures_and_its_helpers(pytester):
    pytester.makepyfile(test_sample=SAMPLE)
    pytester.makeconftest("from tests import tiers\n"
                          "def pytest_collection_modifyitems(items):\n"
                          "    tiers.assign(items)\n")
    items, _ = pytester.inline_genitems("-p", "no:cacheprovider")
    found = {item.name: explicit_tiers(item) for item in items}
    assert found == {"test_plain": ["unit"], "test_app": ["app"], "test_server": ["server"],
                     "test_helper": ["server"], "test_cli": ["server"], "test_dia": ["dia"],
                     "test_browser": ["browser"], "test_node": ["external"],
                     "test_named": ["unit"]}


def test_two_tiers_named_on_one_test_are_an_error(pytester):
    pytester.makepyfile(test_two="import pytest\n\n"
                        "@pytest.mark.app\n@pytest.mark.unit\ndef test_x(): pass\n")
    pytester.makeconftest("from tests import tiers\n"
                          "def pytest_collection_modifyitems(items):\n"
                          "    tiers.assign(items)\n")
    result = pytester.runpytest_inprocess("--collect-only", "-p", "no:cacheprovider")
    assert result.ret != 0
    assert "names several tiers" in "\n".join(result.outlines + result.errlines)
