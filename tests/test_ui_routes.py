"""The web page's routes in process: served files, headers, keys and ``[ui] enabled``.

What the page does in a browser is in ``tests/test_web_ui.py``.
"""

from __future__ import annotations

from ttsframe.http.ui import STATIC_DIR

KEYS = {"security": {"api_keys": ["user-key"], "admin_keys": ["admin-key"]}}


def test_page_and_assets_are_served_with_a_strict_policy(ttsframe_client):
    client = ttsframe_client()
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 302 and root.headers["location"] == "/ui/"
    for path in ("/ui", "/ui/"):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/ui/assets/app.js">' in page.text
    for name in sorted(p.name for p in STATIC_DIR.iterdir() if p.name != "index.html"):
        reply = client.get(f"/ui/assets/{name}")
        assert reply.status_code == 200, name
        assert reply.content == (STATIC_DIR / name).read_bytes()
        csp = reply.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp
        assert reply.headers["x-content-type-options"] == "nosniff"
    assert client.get("/ui/assets/app.js").headers["content-type"].startswith("text/javascript")
    # Nothing outside the page's own files.
    for bad in ("..%2Fui.py", "ui.py", ".hidden.js", "missing.js", "%2Fetc%2Fpasswd"):
        assert client.get(f"/ui/assets/{bad}").status_code == 404, bad
    # The page is not part of the API's schema.
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/ui")]


def test_meta_describes_the_server_for_the_forms(ttsframe_client):
    meta = ttsframe_client().get("/ui/meta").json()
    assert meta["admin"] is True  # no admin keys: anyone may change the config
    assert "wav" in meta["formats"] and "mp3" in meta["formats"]
    assert "laughs" in meta["nonverbals"] and "clears throat" in meta["nonverbals"]
    assert meta["params"]["temperature"] == {"min": 0.1, "max": 2.0, "default": 1.2,
                                             "step": 0.05, "integer": False}
    assert meta["params"]["top_k"]["max"] == 1024 and meta["params"]["top_k"]["integer"]
    assert meta["params"]["speed"]["min"] == 0.25
    assert meta["params"]["seed"]["default"] is None
    assert meta["default_backend"] in meta["backends"]


def test_files_are_public_but_meta_needs_a_key(ttsframe_client):
    client = ttsframe_client(KEYS)
    assert client.get("/ui/").status_code == 200
    assert client.get("/ui/assets/app.js").status_code == 200
    assert client.get("/ui/meta").status_code == 401
    assert client.get("/voices").status_code == 401
    wrong = client.get("/ui/meta", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "this API key is not accepted" in wrong.json()["detail"]
    user = client.get("/ui/meta", headers={"Authorization": "Bearer user-key"})
    assert user.status_code == 200 and user.json()["admin"] is False
    admin = client.get("/ui/meta", headers={"Authorization": "Bearer admin-key"})
    assert admin.json()["admin"] is True


def test_the_page_can_be_turned_off(ttsframe_client):
    client = ttsframe_client({"ui": {"enabled": False}})
    for path in ("/", "/ui/", "/ui/assets/app.js", "/ui/meta"):
        reply = client.get(path, follow_redirects=False)
        assert reply.status_code == 404, path
        assert "[ui] enabled" in reply.json()["detail"]
    assert client.get("/health").status_code == 200
