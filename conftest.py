"""Every collected test gets exactly one tier marker (tests/tiers.py), here at the root so
that the contributed plugins' tests get theirs too."""

from __future__ import annotations

import pytest

from tests import tiers

# tests/test_tiers.py collects sample modules with pytest's own tester.
pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tiers.assign(items)
