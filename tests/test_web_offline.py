"""The catalog works on a network without internet, and its small courtesies hold: issue 20, part 6.

A real ``model-registry serve`` and Debian's Chromium (Playwright, as in
``test_web_browser.py``): ``/api/docs`` renders with every request that does
not go to the server refused; pages and JSON are gzipped for a client that
accepts it while an archive download keeps its exact bytes and
Content-Length; on a plain-HTTP host name (``registry.test``, mapped to
127.0.0.1 inside Chromium only, with ``--host-resolver-rules``) the browser
has no clipboard API and the copy button's fallback says so beside the button.
"""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from tests.conftest import REFERENCE_DIR
from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, browser  # noqa: F401  (the fixture)


@pytest.fixture
def served(registry_server):
    status, body = registry_server.publish("vision/features", (REFERENCE_DIR / "tf1_image_feature_vector.tar.gz")
                                           .read_bytes(), description="Image features " * 100)
    assert status == 201, body
    return registry_server


def test_api_docs_render_with_no_network_beyond_the_server(browser, served):  # noqa: F811
    context = browser.new_context(viewport=DESKTOP)
    elsewhere: list[str] = []

    def only_the_server(route):
        if route.request.url.startswith(served.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_the_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(served.url + "/api/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert "TensorFlow model registry" in page.locator(".swagger-ui .title").inner_text()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any(p.startswith("/api/v1/search") for p in paths), paths
    assert elsewhere == [] and errors == []  # nothing asked of the internet, nothing refused by the CSP
    context.close()


def get(server, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A GET with the response's header names lower-cased (HTTP's are case-insensitive)."""
    status, found, body = server.request("GET", path, headers=headers)
    return status, {name.lower(): value for name, value in found.items()}, body


def test_gzip_for_pages_and_json_never_for_archives(served):
    accept = {"Accept-Encoding": "gzip", "Accept": "text/html"}
    status, headers, body = get(served, "/", headers=accept)
    assert status == 200 and headers["content-encoding"] == "gzip" and "Accept-Encoding" in headers["vary"]
    assert b"vision/features" in gzip.decompress(body)
    status, headers, body = get(served, "/api/v1/search?q=image", headers={"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["items"][0]["model"] == "features"
    # Without Accept-Encoding, the same answer uncompressed.
    status, headers, body = get(served, "/api/v1/search?q=image")
    assert "content-encoding" not in headers and json.loads(body)["items"]
    # The archive: its own bytes and length, whatever the client accepts; the catalog's sha256.
    _, record = served.json("GET", "/api/v1/models/vision/features/versions/1")
    status, headers, body = get(served, "/vision/features/1?tf-hub-format=compressed",
                                           headers={"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and "content-encoding" not in headers
    assert int(headers["content-length"]) == len(body)
    assert hashlib.sha256(body).hexdigest() == record["sha256"]


def test_copy_fallback_beside_the_button_on_a_plain_http_host_name(browser, served):  # noqa: F811
    port = served.url.rsplit(":", 1)[1]
    # A second Chromium of the same Playwright, whose resolver alone knows registry.test.
    mapped = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=[
        *CHROMIUM_ARGS, "--host-resolver-rules=MAP registry.test 127.0.0.1"])
    try:
        page = mapped.new_page(viewport=DESKTOP)
        page.goto(f"http://registry.test:{port}/vision/features/1")
        assert page.evaluate("[window.isSecureContext, typeof navigator.clipboard]") == [False, "undefined"]
        button = page.locator("#use-hub button.copy")
        button.click()
        hint = page.locator("#use-hub .copy-hint")
        assert hint.is_visible() and "press Ctrl+C" in hint.inner_text() and "not on HTTPS" in hint.inner_text()
        # Beside the button: its box starts within a line of the button's, not somewhere down the page.
        button_box, hint_box = button.bounding_box(), hint.bounding_box()
        assert button_box and hint_box and abs(hint_box["y"] - button_box["y"]) < 3 * button_box["height"]
        assert page.evaluate("window.getSelection().toString()").strip() == page.locator("#use-hub-code").inner_text().strip()
    finally:
        mapped.close()
