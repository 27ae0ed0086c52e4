"""A custom voice can be limited to some backends through /voice_mappings."""

from __future__ import annotations

from litestar.testing import TestClient

from tests.conftest import make_services
from ttsframe.http.app import create_app
from ttsframe.testing.fake_backend import TONE, fake_backend_plugin

OTHER = fake_backend_plugin("other", TONE)


def test_voice_backends_are_set_validated_persisted_and_enforced(tmp_path):
    services = make_services(tmp_path, extra_plugins=(("other-plugin", OTHER),),
                             generation={"voice_store": "filesystem"})
    with TestClient(app=create_app(services)) as client:
        r = client.post("/voice_mappings", json={"voice_id": "narrator", "backends": ["tone"]})
        assert r.status_code == 201, r.text
        assert r.json()["voice_config"]["backends"] == ["tone"]

        bad = client.post("/voice_mappings", json={"voice_id": "x", "backends": ["nope"]})
        assert bad.status_code == 400
        assert "unknown backend(s) in backends: nope; available: other, tone" in \
            bad.json()["detail"]
        assert client.get("/voice_mappings/x").status_code == 404  # nothing stored

        ok = client.post("/generate", json={"text": "Hi", "voice_id": "narrator"})
        assert ok.status_code == 200, ok.text
        refused = client.post("/generate", json={"text": "Hi", "voice_id": "narrator",
                                                 "model": "other"})
        assert refused.status_code == 400
        assert refused.json()["detail"] == "voice 'narrator' works with tone, not 'other'"

        r = client.put("/voice_mappings/narrator", json={"backends": None})
        assert r.status_code == 200, r.text
        assert r.json()["voice_config"]["backends"] is None
        again = client.post("/generate", json={"text": "Hi", "voice_id": "narrator",
                                               "model": "other"})
        assert again.status_code == 200, again.text

        client.put("/voice_mappings/narrator", json={"backends": ["other", "tone"]})

    # a new store on the same files (a restart) keeps the list
    reopened = make_services(tmp_path, extra_plugins=(("other-plugin", OTHER),),
                             generation={"voice_store": "filesystem"})
    assert reopened.voices.get_voice("narrator").backends == ["other", "tone"]
