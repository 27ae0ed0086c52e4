"""The model catalogue: one owner of the backends' names, state and listings."""

from __future__ import annotations

import itertools

import pytest

from ttsframe import InvalidInput, NotFound
from ttsframe.testing.app import app_client, make_services
from ttsframe.testing.fake_backend import fake_backend_plugin

pytestmark = pytest.mark.app


@pytest.fixture
def assembled(tmp_path):
    """Whole assemblies (``make_services``): these tests read the catalogue inside."""
    counter = itertools.count()
    return lambda **kw: make_services(tmp_path / f"server-{next(counter)}", **kw)


def services_with_a_broken_backend(assembled):
    return assembled(plugins={"broken": fake_backend_plugin(
        "broken", fail_load="no weights at /models/broken")})


def test_entries_carry_state_and_hide_details_without_detail(assembled):
    services = services_with_a_broken_backend(assembled)
    with app_client(services):
        catalogue = services.catalogue
        assert catalogue.backends() == ["beeper", "broken"]
        broken = catalogue.entry("broken")
        assert (broken.state, broken.default, broken.owner) == ("failed", False, "broken")
        assert broken.error == "no weights at /models/broken"
        # its option schema is known before (and without) loading
        assert "max_tokens" in broken.options["properties"] and broken.languages == ("en",)
        beeper = catalogue.entry(None)
        assert beeper.name == "beeper" and beeper.default and beeper.ready
        assert catalogue.entry("broken", detail=False).error is None
        assert catalogue.entry("beeper", detail=False).info == {}
        assert catalogue.status() == "healthy"


def test_every_listing_is_a_shape_of_the_entries(assembled):
    services = services_with_a_broken_backend(assembled)
    with app_client(services) as client:
        entries = {e.name: e for e in services.catalogue.entries()}
        models = {m["id"]: m for m in client.get("/models").json()["models"]}
        assert {name: (m["state"], m["default"]) for name, m in models.items()} == {
            name: (e.state, e.default) for name, e in entries.items()}
        health = client.get("/health").json()
        assert health["backends"]["broken"] == {"state": "failed", "info": {},
                                                "error": "no weights at /models/broken"}
        assert health["default_backend"] == "beeper" and health["status"] == "healthy"
        listed = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert listed == services.catalogue.names()[:len(listed)] and listed[:2] == [
            "beeper", "broken"]
        meta = client.get("/ui/meta").json()
        assert meta["backends"] == ["beeper", "broken"] and meta["default_backend"] == "beeper"


def test_names_resolve_to_backends_with_one_message(assembled):
    catalogue = assembled().catalogue
    assert catalogue.resolve(None) == catalogue.resolve("") == catalogue.resolve("tts-1") \
        == catalogue.lookup("gpt-4o-mini-tts") == "beeper"
    assert "tts-1" in catalogue.names() and catalogue.owner("tts-1") == "ttsframe"
    with pytest.raises(InvalidInput) as as_field:  # a request body's field: 400
        catalogue.resolve("chatterbox")
    with pytest.raises(NotFound) as as_path:  # a path or query: 404
        catalogue.lookup("chatterbox")
    assert as_field.value.message == as_path.value.message == catalogue.unknown("chatterbox")
    assert as_field.value.message.startswith("Model 'chatterbox' not found; available models: "
                                             "beeper, gpt-4o-mini-tts")


def test_the_default_is_read_live(assembled):
    services = services_with_a_broken_backend(assembled)
    services.settings.generation.default_backend = "broken"
    assert services.catalogue.resolve(None) == "broken"
    assert [e.name for e in services.catalogue.entries() if e.default] == ["broken"]
