"""The documentation site builds without a warning, and its reference pages keep up with
the code: every route of the app and every model parameter (with its range) are on the API
page, every configuration key on the configuration page, and the README's links resolve.

``mkdocs build --strict`` fails on a link to a missing page or anchor and on a page left
out of the nav (``validation`` in mkdocs.yml); a second build of a copy with one of each
shows that it does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import msgspec
import msgspec.inspect
import pytest

import ttsframe
from tests.server import ROOT
from ttsframe.core.config.settings import Settings
from ttsframe.plugins.dia import DiaConfig
from ttsframe.plugins.dia.planning import DiaOptions
from ttsframe.plugins.nonverbals import NonverbalsConfig
from ttsframe.plugins.normalize import NormalizeConfig
from ttsframe.plugins.pronunciations import PronunciationsConfig

DOCS = ROOT / "docs"
API_PAGE = DOCS / "api.md"
CONFIG_PAGE = DOCS / "configuration.md"
# A route as the API page writes it: `GET /jobs/{job_id}`.
ROUTE = re.compile(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`\s]*)`")
# The sections of the built-in plugins, besides those of Settings.
PLUGIN_SECTIONS = {"plugins.dia": DiaConfig, "plugins.nonverbals": NonverbalsConfig,
                   "plugins.normalize": NormalizeConfig,
                   "plugins.pronunciations": PronunciationsConfig}


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice about MkDocs 2
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--config-file", str(config), "--site-dir", str(site)],
                          capture_output=True, text=True, timeout=240, env=env)


def test_the_site_builds_strict(tmp_path):
    done = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_the_strict_build_fails_on_a_broken_link_or_a_page_outside_the_nav(tmp_path):
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs")
    (tmp_path / "docs" / "orphan.md").write_text("# Not in the nav\n")
    with (tmp_path / "docs" / "index.md").open("a") as page:
        page.write("\n[gone](api.md#no-such-section) and [missing](no-such-page.md)\n")
    done = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    for named in ("orphan.md", "#no-such-section", "no-such-page.md"):
        assert named in done.stderr, named


def route_key(method: str, path: str) -> tuple[str, str]:
    """``/jobs/{job_id:str}/`` -> ``/jobs/{job_id}``: as the docs write a route."""
    path = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
    return method, (path.rstrip("/") or "/")


def documented_routes(text: str) -> set[tuple[str, str]]:
    return {route_key(m, p) for m, p in ROUTE.findall(text)}


def served_routes(client) -> set[tuple[str, str]]:
    return {route_key(method, route.path) for route in client.app.routes
            for method in route.methods if method not in ("OPTIONS", "HEAD")}


def test_every_route_is_on_the_api_page(ttsframe_client):
    served = served_routes(ttsframe_client())
    assert ("POST", "/v1/audio/speech") in served and ("GET", "/jobs/{job_id}") in served
    missing = served - documented_routes(API_PAGE.read_text())
    assert not missing, f"routes served but not in docs/api.md: {sorted(missing)}"


def test_the_route_table_lists_only_served_routes(ttsframe_client):
    text = API_PAGE.read_text()
    table = text.split("\n## Every route\n", 1)[1].split("\n## ", 1)[0]
    listed = documented_routes(table)
    assert len(listed) >= 30
    stale = listed - served_routes(ttsframe_client())
    assert not stale, f"docs/api.md lists routes the app does not serve: {sorted(stale)}"


def config_sections() -> dict[str, type[msgspec.Struct]]:
    """``[section]`` -> its Struct, for every section of Settings and the built-in plugins."""
    hints = typing.get_type_hints(Settings)
    sections = {name: hints[name] for name in Settings.__struct_fields__
                if isinstance(hints[name], type) and issubclass(hints[name], msgspec.Struct)}
    return {**sections, **PLUGIN_SECTIONS}


def documented_keys(text: str, section: str) -> set[str]:
    """The keys in the table under the heading ``### `[section]` ``."""
    heading = f"\n### `[{section}]`\n"
    assert heading in text, f"docs/configuration.md has no section '[{section}]'"
    body = re.split(r"\n##+ ", text.split(heading, 1)[1], maxsplit=1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", body, re.M))


@pytest.mark.parametrize("section", sorted(config_sections()))
def test_every_config_key_is_on_the_configuration_page(section):
    struct = config_sections()[section]
    documented = documented_keys(CONFIG_PAGE.read_text(), section)
    fields = set(struct.__struct_fields__)
    assert fields - documented == set(), f"[{section}] keys missing from the page"
    assert documented - fields == set(), f"[{section}] keys on the page that do not exist"


def test_plugin_sections_are_on_the_configuration_page():
    assert "plugins" in Settings.__struct_fields__
    assert "\n### `[plugins.<name>]`\n" in CONFIG_PAGE.read_text()


def heading_ids(page: Path) -> set[str]:
    """The anchors MkDocs gives the headings of a page (its toc extension's slugs)."""
    from markdown.extensions.toc import slugify

    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    headings = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {slugify(re.sub(r"[`*]", "", h), "-") for h in headings}


def test_the_readme_is_short_and_its_links_resolve():
    """The README is outside the site, so the strict build does not see its links."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "bash scripts/test.sh" in text  # CI runs the README's test command
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert len(local) >= 15
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.exists(), f"README links to {link}, which does not exist"
        if anchor:
            assert anchor in heading_ids(target), f"README links to {link}: no such heading"


def test_every_model_parameter_is_in_the_parameter_table_with_its_range():
    """The API page's parameter table against the type the server validates requests with."""
    text = API_PAGE.read_text()
    table = text.split("\nParameters (", 1)[1].split("\n\n", 2)[1]
    rows = {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^\| `(\w+)`[^|]*\| ([^|]+) \|", table, re.M)}
    fields = [*msgspec.inspect.type_info(ttsframe.GenerationParams).fields,
              *msgspec.inspect.type_info(DiaOptions).fields]  # Dia's, sent flat
    assert len(fields) >= 9
    for field in fields:
        kind = field.type
        if isinstance(kind, msgspec.inspect.Metadata):  # a described field
            kind = kind.type
        if isinstance(kind, msgspec.inspect.UnionType):
            kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
        assert field.name in rows, f"'{field.name}' is not in the parameter table"
        if isinstance(kind, msgspec.inspect.BoolType):
            assert rows[field.name] == "bool", field.name
        else:
            assert rows[field.name] == f"{kind.ge}-{kind.le}", field.name
