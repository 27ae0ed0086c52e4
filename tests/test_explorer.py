"""The API explorer in process: /schema/swagger links only files this server serves, runs
no inline script, and carries the same schema as /schema/openapi.json. The browser test
(tests/test_web_ui.py) draws it offline in Chromium."""

from __future__ import annotations

import json
import re

SRC = re.compile(r'<(?:script|link)[^>]*?(?:src|href)="([^"]+)"')
SCRIPTS = re.compile(r"<script([^>]*)>")


def test_the_explorer_links_only_its_own_files(app_client):
    reply = app_client.get("/schema/swagger")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    csp = reply.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    html = reply.text
    assert "http://" not in html.split('id="openapi-schema"')[0]
    assert "https://" not in html.split('id="openapi-schema"')[0]
    links = SRC.findall(html)
    assert {"/schema/assets/swagger-ui-bundle.js", "/schema/assets/swagger-ui.css",
            "/schema/assets/explorer.js"} <= set(links)
    for link in links:
        got = app_client.get(link)
        assert got.status_code == 200, link
        assert len(got.content) > 100, link
    # Every script is a file or the JSON block, never inline code.
    for attrs in SCRIPTS.findall(html):
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs
    block = html.split('<script type="application/json" id="openapi-schema">', 1)[1]
    carried = json.loads(block.rsplit("</script>", 1)[0])
    assert carried == app_client.get("/schema/openapi.json").json()
    assert app_client.get("/schema").text == html


def test_cdn_viewers_lead_to_the_explorer_and_unknown_files_are_404(app_client):
    for old in ("/schema/redoc", "/schema/elements", "/schema/rapidoc"):
        reply = app_client.get(old, follow_redirects=False)
        assert reply.status_code in (301, 302, 307, 308), old
        assert reply.headers["location"] == "/schema/swagger"
    missing = app_client.get("/schema/assets/index.html")
    assert missing.status_code == 404
    assert "API explorer" in missing.json()["detail"]
    assert app_client.get("/schema/assets/..%2F..%2Fui.py").status_code == 404
