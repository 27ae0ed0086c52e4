"""Test tiers: what a test needs to run, as one pytest marker per test.

``conftest.py`` at the repository root gives every collected test exactly one tier, so
``pytest -m unit`` or ``pytest -m "not browser"`` picks a slice (docs/development.md). A
tier named on the test or its module (``pytestmark = pytest.mark.server``) wins; otherwise
the tier is read from what the test uses: the source of the test, of its fixtures and of
the helpers in the test modules they call. The most demanding tier found is the test's.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable

import pytest

# Most demanding first: a test that starts a server and drives Chromium is a browser test.
TIERS: dict[str, str] = {
    "browser": "drives Chromium through Playwright (scripts/ensure-chromium.sh)",
    "cluster": "starts a Ray cluster (scripts/test-cluster.sh)",
    "external": "runs another program: node, prometheus, curl",
    "dia": "loads the tiny Dia model: needs torch and transformers",
    "server": "starts a real ttsframe process (a server on port 0, or the CLI)",
    "app": "drives an in-process app or assembled services (Litestar's TestClient)",
    "unit": "plain functions and objects, no app, no process",
}

# Fixtures of tests/dia_fixtures.py: their users load the tiny Dia model.
DIA_FIXTURES = frozenset({"tiny_model_dir", "tiny_hub_cache", "tiny_eos_model_dir",
                          "tiny_backend", "tiny_eos_backend"})

# What, in a test's source or its helpers', tells each tier (checked most demanding first).
SIGNS: dict[str, re.Pattern[str]] = {
    "browser": re.compile(r"playwright"),
    "cluster": re.compile(r"ray = pytest\.importorskip|ray\.init\("),
    "external": re.compile(r"""which\(["'](node|npm|prometheus|curl)["']\)"""
                           r"""|\[["'](node|curl)["']"""),
    "dia": re.compile(r"importorskip\([\"']torch[\"']\)|DiaBackend\(|load_dia"),
    "server": re.compile(r"ServerProcess|ttsframe_server|subprocess|Popen"),
    "app": re.compile(r"TestClient|app_client|create_app|build_services|make_services"
                      r"|ttsframe_client|ttsframe_services"),
}

MAX_DEPTH = 4


def explicit_tiers(item: pytest.Item) -> list[str]:
    return [m.name for m in item.iter_markers() if m.name in TIERS]


def assign(items: list[pytest.Item]) -> None:
    """Give each item one tier marker; two different tiers named on one test are an error."""
    reader = SourceReader()
    for item in items:
        named = set(explicit_tiers(item))
        if len(named) > 1:
            raise pytest.UsageError(f"{item.nodeid} names several tiers: {sorted(named)}")
        if not named:
            item.add_marker(getattr(pytest.mark, detect(item, reader)))


def detect(item: pytest.Item, reader: SourceReader) -> str:
    fixtures = set(getattr(item, "fixturenames", ()))
    module = getattr(item, "module", None)
    texts = [reader.module_head(module)]
    function = getattr(item, "function", None)
    if function is not None:
        texts.append(reader.closure(function))
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info else ()):
        for fixturedef in defs:
            texts.append(reader.closure(fixturedef.func))
    text = "\n".join(texts)
    for tier, sign in SIGNS.items():
        if tier == "dia" and fixtures & DIA_FIXTURES:
            return "dia"
        if sign.search(text):
            return tier
    return "unit"


class SourceReader:
    """Sources of functions and of the test-suite helpers they call, read once each."""

    def __init__(self) -> None:
        self.seen: dict[object, str] = {}

    def module_head(self, module: types.ModuleType | None) -> str:
        """A module's top-level skips and Dia fixture imports: what every test in it needs
        (its other imports say nothing: a module may import a helper that one test uses)."""
        if module is None:
            return ""
        if module not in self.seen:
            try:
                lines = inspect.getsource(module).splitlines()
            except (OSError, TypeError):
                lines = []
            self.seen[module] = "\n".join(
                line for line in lines
                if line.startswith(("pytest.importorskip", "pytestmark"))
                or "= pytest.importorskip" in line or "dia_fixtures import" in line)
        return self.seen[module]

    def closure(self, func: Callable, depth: int = 0) -> str:
        func = inspect.unwrap(func)
        code = getattr(func, "__code__", None)
        if code is None or func in self.seen:
            return self.seen.get(func, "")
        self.seen[func] = ""
        try:
            parts = [inspect.getsource(func)]
        except (OSError, TypeError):
            parts = []
        if depth < MAX_DEPTH:
            namespace = getattr(func, "__globals__", {})
            for name in names(code):
                helper = namespace.get(name)
                if is_suite_helper(helper):
                    parts.append(self.closure(helper, depth + 1) if inspect.isfunction(helper)
                                 else self.class_source(helper))
        self.seen[func] = "\n".join(parts)
        return self.seen[func]

    def class_source(self, cls: type) -> str:
        if cls not in self.seen:
            try:
                self.seen[cls] = inspect.getsource(cls)
            except (OSError, TypeError):
                self.seen[cls] = ""
        return self.seen[cls]


def names(code: types.CodeType) -> set[str]:
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= names(const)
    return found


def is_suite_helper(obj: object) -> bool:
    """A function or class defined in a test module (not in ttsframe or a library)."""
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return False
    module = getattr(obj, "__module__", "") or ""
    return module.startswith("tests") or module.startswith("test_") or ".tests." in module
