"""API keys and admin keys: the rule, and every route of the real app under it."""

from __future__ import annotations

import re
import sys
import types

import pytest
from litestar import delete, get, post
from litestar.params import FromPath
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from tests.conftest import make_services
from ttsframe import hookimpl
from ttsframe.core.config.settings import SecurityConfig
from ttsframe.http.app import create_app
from ttsframe.http.auth import bearer_token, check_access, is_admin_route, key_matches

API = "api-key-0123"
ADMIN = "admin-key-4567"


def _plugin_module() -> types.ModuleType:
    """A plugin that adds routes, one of them declared admin through ``opt``."""

    @get("/plugin/hello", sync_to_thread=False)
    def hello() -> dict:
        return {"hello": "plugin"}

    @delete("/plugin/items/{item_id:str}", sync_to_thread=False)
    def remove(item_id: FromPath[str]) -> None:
        return None

    @post("/plugin/reindex", opt={"admin": True}, status_code=200, sync_to_thread=False)
    def reindex() -> dict:
        return {"reindexed": True}

    module = types.ModuleType("route_plugin")

    @hookimpl
    def register_routes(register):
        for handler in (hello, remove, reindex):
            register(handler)

    module.register_routes = register_routes
    sys.modules.setdefault("route_plugin", module)
    return module


@pytest.fixture
def keyed(tmp_path):
    services = make_services(tmp_path, extra_plugins=(("route-plugin", _plugin_module()),),
                             security={"api_keys": [API], "admin_keys": [ADMIN]})
    with TestClient(app=create_app(services)) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- the rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [(None, None), ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Bearer ", ""),
     ("Bearer", ""), ("Basic dXNlcjpwYXNz", None), ("abc", None)],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


def test_key_matches_compares_every_key():
    assert key_matches("b", ["a", "b", "c"])
    assert not key_matches("d", ["a", "b", "c"])
    assert not key_matches("", ["a"])
    assert key_matches("clé-ü", ["clé-ü"])  # non-ASCII keys compare as bytes


@pytest.mark.parametrize(
    ("method", "path", "admin"),
    [("DELETE", "/jobs", True), ("DELETE", "/voice_mappings/x", True),
     ("DELETE", "/jobs/1", False),  # a client cancels its own job (ownership checked)
     ("PUT", "/config", True), ("PUT", "/config/", True), ("POST", "/cleanup", True),
     ("GET", "/config", False), ("PUT", "/voice_mappings/x", False),
     ("POST", "/generate", False), ("POST", "/audio_prompts/upload", False)],
)
def test_admin_rule(method, path, admin):
    assert is_admin_route(method, path) is admin


@pytest.mark.parametrize(("query", "admin"), [({"overwrite": "true"}, True),
                                              ({"overwrite": "1"}, True),
                                              ({"overwrite": "false"}, False), ({}, False)])
def test_an_upload_that_overwrites_is_an_admin_route(query, admin):
    assert is_admin_route("POST", "/audio_prompts/upload", None, query) is admin


def test_admin_through_handler_opt():
    assert is_admin_route("POST", "/anything", {"admin": True})
    assert not is_admin_route("POST", "/anything", {"admin": False})


def _status(security: SecurityConfig, method: str, path: str, header: str | None) -> int:
    try:
        check_access(security, method, path, header)
    except Exception as exc:  # NotAuthorizedException / PermissionDeniedException
        return exc.status_code
    return 200


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer", "Bearer whatever", "Basic x"])
def test_no_keys_configured_accepts_any_header(header):
    open_server = SecurityConfig()
    for method, path in (("POST", "/generate"), ("DELETE", "/jobs/1"), ("PUT", "/config")):
        assert _status(open_server, method, path, header) == 200


def test_key_matrix():
    both = SecurityConfig(api_keys=[API], admin_keys=[ADMIN])
    only_api = SecurityConfig(api_keys=[API])
    only_admin = SecurityConfig(admin_keys=[ADMIN])
    cases = [
        # security, method, path, header, status
        (both, "GET", "/health", None, 200),
        (both, "OPTIONS", "/generate", None, 200),
        (both, "POST", "/generate", None, 401),
        (both, "POST", "/generate", "Bearer ", 401),
        (both, "POST", "/generate", "Bearer wrong", 401),
        (both, "POST", "/generate", f"Bearer {API}", 200),
        (both, "POST", "/generate", f"Bearer {ADMIN}", 200),  # admin keys can do everything
        (both, "DELETE", "/jobs", f"Bearer {API}", 403),
        (both, "DELETE", "/jobs", f"Bearer {ADMIN}", 200),
        (both, "DELETE", "/jobs", None, 401),
        (only_api, "DELETE", "/jobs", f"Bearer {API}", 200),  # no admin keys: API key
        (only_api, "DELETE", "/jobs", None, 401),
        (both, "DELETE", "/jobs/1", f"Bearer {API}", 200),  # its own job: the service checks
        (both, "DELETE", "/jobs/1", None, 401),
        (only_admin, "POST", "/generate", None, 200),  # only admin routes are locked
        (only_admin, "PUT", "/config", None, 401),
        (only_admin, "PUT", "/config", f"Bearer {ADMIN}", 200),
        (only_admin, "POST", "/cleanup", "Bearer nope", 401),
    ]
    for security, method, path, header, status in cases:
        assert _status(security, method, path, header) == status, (method, path, header)


# --- the real app ----------------------------------------------------------------------


def _concrete(path: str) -> str:
    def value(match: re.Match) -> str:
        kind = match.group(2) or "str"
        return {"int": "1", "uuid": "00000000-0000-0000-0000-000000000000"}.get(kind, "x")

    return re.sub(r"\{(\w+)(?::(\w+))?\}", value, path)


def _all_routes(client: TestClient) -> list[tuple[str, str]]:
    routes = []
    for route in client.app.routes:
        if isinstance(route, HTTPRoute):
            routes += [(m, _concrete(route.path)) for m in sorted(route.methods)
                       if m not in ("OPTIONS", "HEAD")]
    return routes


# The web page's and the API explorer's static files ("x" is the concrete name the walk
# puts in the path).
WEB_PAGE_FILES = {"/", "/ui", "/ui/assets/x", "/schema/assets/x"}


def test_every_route_but_health_needs_a_key(keyed):
    routes = _all_routes(keyed)
    paths = {p for _, p in routes}
    # the app's own, the OpenAI ones, the schema and the plugin's are all in the walk
    assert {"/generate", "/v1/audio/speech", "/v1/models", "/schema/openapi.json",
            "/plugin/hello", "/plugin/items/x", "/health"} <= paths
    for method, path in routes:
        r = keyed.request(method, path)
        if path == "/health":
            assert r.status_code == 200
            continue
        if path in WEB_PAGE_FILES:  # public: they hold no data (tests/test_ui_routes.py)
            assert r.status_code != 401, path
            continue
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer <key>" in r.json()["detail"]
        wrong = keyed.request(method, path, headers=bearer("nope"))
        assert wrong.status_code == 401, (method, path)


def test_admin_routes_refuse_an_api_key(keyed):
    admin = [(m, p) for m, p in _all_routes(keyed) if is_admin_route(m, p)]
    assert ("DELETE", "/plugin/items/x") in admin  # a plugin's delete is covered too
    for method, path in admin:
        r = keyed.request(method, path, headers=bearer(API))
        assert r.status_code == 403, (method, path)
        assert r.json()["detail"] == (
            f"this API key is accepted, but not for {method} {path}, an admin route; send "
            "one of the keys in security.admin_keys as Authorization: Bearer <key>")


def test_keys_open_the_routes(keyed):
    r = keyed.post("/generate", json={"text": "hi"}, headers=bearer(API))
    assert r.status_code == 200
    assert keyed.get("/plugin/hello", headers=bearer(API)).json() == {"hello": "plugin"}
    assert keyed.get("/schema/openapi.json", headers=bearer(API)).status_code == 200
    assert keyed.delete("/plugin/items/x", headers=bearer(ADMIN)).status_code == 204
    # opt={"admin": True} on a handler makes it an admin route
    assert keyed.post("/plugin/reindex", headers=bearer(API)).status_code == 403
    assert keyed.post("/plugin/reindex", headers=bearer(ADMIN)).json() == {"reindexed": True}


def test_messages_say_what_to_send_and_never_echo_the_key(keyed):
    send = "send one of the keys in security.api_keys as Authorization: Bearer <key>"
    missing = keyed.post("/generate", json={"text": "hi"})
    assert missing.json()["detail"] == f"no API key was sent; {send}"
    assert missing.headers["www-authenticate"] == 'Bearer realm="ttsframe"'
    empty = keyed.post("/generate", json={"text": "hi"}, headers={"Authorization": "Bearer "})
    assert empty.json()["detail"] == (
        "the API key is empty (the Authorization header says 'Bearer' with no key after "
        f"it); {send}")
    wrong = keyed.post("/generate", json={"text": "hi"}, headers=bearer("secret-guess-99"))
    assert wrong.json()["detail"] == f"this API key is not accepted; {send}"
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    for r in (empty, wrong):
        assert "secret-guess-99" not in r.text and API not in r.text and ADMIN not in r.text


def test_admin_route_messages_name_the_route_and_the_admin_keys(keyed):
    send = "send one of the keys in security.admin_keys as Authorization: Bearer <key>"
    r = keyed.delete("/logs")
    assert r.status_code == 401
    assert r.json()["detail"] == f"no API key was sent; DELETE /logs is an admin route; {send}"
    r = keyed.delete("/logs", headers=bearer("secret-guess-99"))
    assert r.status_code == 401
    assert r.json()["detail"] == (
        f"this API key is not accepted; DELETE /logs is an admin route; {send}")
    r = keyed.delete("/logs", headers=bearer(API))
    assert r.status_code == 403
    assert r.json()["detail"] == (
        f"this API key is accepted, but not for DELETE /logs, an admin route; {send}")
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_openapi_documents_the_bearer_scheme(keyed):
    schema = keyed.get("/schema/openapi.json", headers=bearer(API)).json()
    assert schema["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert schema["security"] == [{"BearerAuth": []}]


def test_without_keys_any_authorization_header_works(app_client):
    for header in ("Bearer ", "Bearer anything", "Basic Zm9vOmJhcg=="):
        r = app_client.post("/generate", json={"text": "hi"}, headers={"Authorization": header})
        assert r.status_code == 200, header
    schema = app_client.get("/schema/openapi.json").json()
    assert "security" not in schema


@pytest.mark.parametrize(
    ("env", "key"),
    [({"TTSFRAME_SECURITY__API_KEYS": '["ok", ""]'}, "security.api_keys[1]"),
     ({"TTSFRAME_SECURITY__ADMIN_KEYS": '["two words"]'}, "security.admin_keys[0]"),
     ({"TTSFRAME_SECURITY__API_KEYS": "not-a-list"}, "security.api_keys")],
)
def test_unusable_keys_stop_startup_without_echoing_them(tmp_path, env, key):
    from ttsframe.core.config.settings import load_settings
    from ttsframe.core.errors import ConfigError

    (tmp_path / "ttsframe.toml").touch()
    with pytest.raises(ConfigError) as err:
        load_settings(str(tmp_path / "ttsframe.toml"), environ=env)
    assert f"invalid value for '{key}'" in err.value.message
    assert "two words" not in err.value.message and "not-a-list" not in err.value.message


def test_keys_from_the_environment(tmp_path):
    from ttsframe.core.config.settings import load_settings

    (tmp_path / "ttsframe.toml").touch()
    settings = load_settings(str(tmp_path / "ttsframe.toml"),
                             environ={"TTSFRAME_SECURITY__API_KEYS": '["k1", "k2"]'})
    assert settings.security.api_keys == ["k1", "k2"]
