"""Download counts: every archive a real server serves completely is counted, per version per day, off the
request path (written every few seconds and at shut-down), shown on the model page and sortable in search."""

from __future__ import annotations

import json
import time

from registry import Registry
from registry.catalog.database import DatabaseCatalog
from tests.conftest import REFERENCE_DIR

ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()


def test_served_archives_are_counted_shown_and_sortable(registry_server):
    server = registry_server
    for name in ("text/embed", "text/embed", "text/other"):
        assert server.publish(name, ARCHIVE)[0] == 201
    server.json("PUT", "/api/v1/models/text/embed/aliases/prod", token=server.admin_token, json_body={"version": 2})
    fetches = (["/text/embed/1"] * 3 + ["/text/embed@prod"] * 2 + ["/text/embed"] + ["/text/other/1"] * 5)
    for path in fetches:
        status, _, body = server.request("GET", path + "?tf-hub-format=compressed")
        assert status == 200 and body == ARCHIVE
    for path in ("/text/embed/1", "/text/embed/1"):  # a HEAD sends no archive: not counted
        assert server.request("HEAD", path + "?tf-hub-format=compressed")[0] == 200
    assert server.request("GET", "/text/embed/9?tf-hub-format=compressed")[0] == 404

    # Written within a flush period, never per request.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counts = server.json("GET", "/api/v1/models/text/embed/downloads")[1]
        if counts["total"]:
            break
        time.sleep(0.5)
    assert counts == {"versions": {"1": 3, "2": 3}, "total": 6}

    # The model page shows each version's count, and the alias's history.
    status, _, page = server.request("GET", "/text/embed")
    html = page.decode()
    assert status == 200 and 'data-label="Downloads">3<' in html
    assert "Alias history" in html and "@prod" in html and "admin" in html

    # Search sorted by downloads: text/embed (6, over two versions) before text/other (5), until other passes it.
    by_name = server.json("GET", "/api/v1/search?q=text")[1]["items"]
    by_downloads = server.json("GET", "/api/v1/search?q=text&sort=downloads")[1]
    assert [v["model"] for v in by_name] == ["embed", "other"]
    assert [v["model"] for v in by_downloads["items"]] == ["embed", "other"] and by_downloads["next"] is None
    # The search page orders by downloads when asked.
    page = server.request("GET", "/?q=text&sort=downloads")[2].decode()
    assert page.index("/text/embed") < page.index("/text/other") and 'value="downloads" selected' in page
    for _ in range(2):
        assert server.request("GET", "/text/other/1?tf-hub-format=compressed")[0] == 200

    # Shut-down writes what was counted since the last flush.
    server.stop()
    catalog = DatabaseCatalog(server.env["MODEL_REGISTRY_DATABASE_URL"])
    assert catalog.download_counts(publisher="text", name="other") == {1: 7}
    local = Registry(database_url=server.env["MODEL_REGISTRY_DATABASE_URL"],
                     storage_url=server.env["MODEL_REGISTRY_STORAGE_URL"])
    assert [v.model for v in local.search(text="text", sort="downloads")] == ["other", "embed"]
    assert [v.model for v in local.search(text="text")] == ["embed", "other"]
    assert json.dumps(local.download_counts("text/embed")) == '{"1": 3, "2": 3}'
