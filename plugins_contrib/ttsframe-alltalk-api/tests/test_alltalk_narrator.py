"""AllTalk's narrator rules as ``split_roles`` applies them."""

from __future__ import annotations

import pytest
from ttsframe_alltalk_api.narrator import split_roles

MESSAGE = '*She smiles.* "Hello, friend." Then silence.'


@pytest.mark.parametrize(("narrator", "not_inside", "expected"), [
    ("false", "narrator", [("character", MESSAGE)]),
    ("true", "narrator", [("narrator", "She smiles."), ("character", "Hello, friend."),
                          ("narrator", "Then silence.")]),
    ("true", "character", [("narrator", "She smiles."),
                           ("character", "Hello, friend. Then silence.")]),
    ("true", "silent", [("narrator", "She smiles."), ("character", "Hello, friend.")]),
    ("silent", "character", [("character", "Hello, friend. Then silence.")]),
    ("silent", "narrator", [("character", "Hello, friend.")]),
])
def test_roles(narrator, not_inside, expected):
    assert split_roles(MESSAGE, narrator=narrator, not_inside=not_inside) == expected


def test_curly_quotes_unclosed_marks_and_empty_parts():
    assert split_roles("“Run!” *", narrator="true", not_inside="narrator") == [
        ("character", "Run!")]
    assert split_roles("*waves and", narrator="true", not_inside="character") == [
        ("narrator", "waves and")]
    assert split_roles('"..." *...*', narrator="true", not_inside="narrator") == []
