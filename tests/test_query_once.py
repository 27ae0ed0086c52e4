"""One value per query parameter: a parameter of the route sent twice is a 400, before
any check or handler reads it, so the key guard and the handler can never read different
values (``?overwrite=false&overwrite=true`` let a plain API key replace an admin's prompt:
the guard read the first value, the handler the last).

The routes and their query parameters come from the running server's OpenAPI schema, so
a route added later is covered without touching this test."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator

import pytest

from tests.job_helpers import TONE
from tests.server import ROOT, ServerProcess, install_fake_backend
from tests.stored_state import stored_state
from tests.voice_fixtures import sine, wav_bytes

KEY, ADMIN = "a-plain-api-key", "the-admin-key"
CONFIG = TONE + f"""
[security]
api_keys = ["{KEY}"]
admin_keys = ["{ADMIN}"]
"""
# Two different values of each type, so that a server reading either would act.
PAIRS = {"boolean": ("false", "true"), "integer": ("1", "2"), "number": ("1", "2")}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def plugins() -> list[str]:
    """The XTTS routes too when that contributed plugin is installed (query-only routes)."""
    names = {ep.name for ep in importlib.metadata.entry_points(group="ttsframe")}
    return ["tone", *(["xtts_api"] if "xtts_api" in names else [])]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator:
    root = tmp_path_factory.mktemp("query-once")
    (root / "ttsframe.toml").write_text(CONFIG)
    site = install_fake_backend(root / "site", "tone", "TONE")
    with ServerProcess(root / "ttsframe.toml", plugins=plugins(),
                       env={"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
                            "TTSFRAME_PLUGINS__DIA__ENABLED": "false"}) as srv:
        up = srv.client.post("/audio_prompts/upload", data={"prompt_id": "shared"},
                             files={"audio_file": ("a.wav", wav_bytes(sine(1.0, 44100)),
                                                   "audio/wav")}, headers=bearer(ADMIN))
        assert up.status_code == 201, up.text
        yield srv, root


def query_parameters(schema: dict) -> Iterator[tuple[str, str, str, str]]:
    """(method, path, parameter, its JSON-schema type) for every query parameter."""
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            for param in operation.get("parameters", []):
                if param["in"] == "query":
                    kind = param.get("schema", {}).get("type", "string")
                    if "oneOf" in param.get("schema", {}):  # optional: str | None
                        kind = next((s.get("type") for s in param["schema"]["oneOf"]
                                     if s.get("type") != "null"), "string")
                    yield method.upper(), path, param["name"], kind


def test_every_query_parameter_of_every_route_is_refused_when_repeated(server):
    srv, root = server
    schema = srv.client.get("/schema/openapi.json", headers=bearer(ADMIN)).json()
    found = list(query_parameters(schema))
    names = {(m, p, n) for m, p, n, _ in found}
    # The schema is where the routes come from: the ones known today must be among them.
    assert {("POST", "/audio_prompts/upload", "overwrite"), ("POST", "/generate", "async_mode"),
            ("GET", "/jobs", "limit"), ("DELETE", "/jobs", "status"),
            ("DELETE", "/audio_prompts/{prompt_id}", "cascade"),
            ("DELETE", "/voice_mappings/{voice_id}", "keep_prompt")} <= names
    for method, path, _, _ in found:  # the 400 is in the schema of every such route
        assert "400" in schema["paths"][path][method.lower()]["responses"], (method, path)
    before = stored_state(root)
    for method, path, name, kind in found:
        first, second = PAIRS.get(kind, ("a", "b"))
        url = path.replace("{", "").replace("}", "")  # e.g. /jobs/job_id: never reached
        for query in (f"{name}={first}&{name}={second}", f"{name}={second}&{name}={first}",
                      f"{name}=&{name}={second}"):
            r = srv.client.request(method, f"{url}?{query}", headers=bearer(ADMIN),
                                   json={"text": "Hello.", "voice_id": "alloy"}
                                   if method in ("POST", "PUT") else None)
            assert r.status_code == 400, (method, path, query, r.status_code, r.text)
            detail = r.json()["detail"]
            assert f"query parameter '{name}' is sent more than once" in detail, detail
    assert stored_state(root) == before  # nothing was run, stored or deleted


@pytest.mark.parametrize("query", ["overwrite=false&overwrite=true", "overwrite=0&overwrite=1",
                                   "overwrite=&overwrite=true", "overwrite&overwrite=true",
                                   "overwrite=false&%6Fverwrite=true",
                                   "overwrite=true&overwrite=false"])
def test_a_plain_key_cannot_overwrite_a_prompt_with_a_repeated_flag(server, query):
    srv, root = server
    prompt = root / "audio_prompts" / "shared.wav"
    before = prompt.read_bytes()
    r = srv.client.post(f"/audio_prompts/upload?{query}", data={"prompt_id": "shared"},
                        files={"audio_file": ("b.wav", wav_bytes(sine(2.0, 44100, 220)),
                                              "audio/wav")}, headers=bearer(KEY))
    assert r.status_code == 400, r.text
    assert "'overwrite' is sent more than once" in r.json()["detail"]
    assert prompt.read_bytes() == before


@pytest.mark.parametrize(("query", "status"), [("overwrite=true", 403), ("overwrite=1", 403),
                                               ("overwrite=TRUE", 403), ("overwrite=yes", 403),
                                               ("overwrite=", 403), ("overwrite", 403),
                                               ("overwrite=false", 409), ("overwrite=0", 409),
                                               ("", 409)])
def test_the_guard_reads_overwrite_as_the_handler_does(server, query, status):
    """One value, one conversion: what the handler takes as true needs an admin key (a
    value that is no boolean, empty included, too); false or absent is an ordinary upload
    (409 here, as the prompt exists)."""
    srv, root = server
    prompt = root / "audio_prompts" / "shared.wav"
    before = prompt.read_bytes()
    r = srv.client.post(f"/audio_prompts/upload?{query}", data={"prompt_id": "shared"},
                        files={"audio_file": ("b.wav", wav_bytes(sine(2.0, 44100, 220)),
                                              "audio/wav")}, headers=bearer(KEY))
    assert r.status_code == status, r.text
    assert prompt.read_bytes() == before


def test_a_key_the_route_does_not_take_is_ignored_once_or_twice(server):
    """As any unknown query key: nothing reads it, so nothing can read it two ways."""
    srv, _ = server
    for query in ("x=1", "x=1&x=2", "overwrite=true&overwrite=false"):
        r = srv.client.get(f"/voice_mappings?{query}", headers=bearer(KEY))
        assert r.status_code == 200, (query, r.text)
