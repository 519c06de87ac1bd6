"""The web catalog in a real browser: Debian's Chromium, headless, driven by Playwright from PyPI.

A ``model-registry serve`` process gets the reference models published over
the API, then Chromium finds, opens, copies and compares them as a person
would. Chromium is the system's (``scripts/install-system-packages.sh``
installs it); ``playwright install`` is never run, since it downloads a browser.
Screenshots go to ``build/screenshots/`` (see the README).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REFERENCE_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SCRIPT_DESCRIPTION = "Image features, TF1 Hub format. <script>window.injected = true; alert('x')</script>"


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-packages.sh (apt-get install chromium)",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def publish(server, name: str, archive: str, *, description: str, parent: str | None = None) -> dict:
    status, body = server.publish(name, (REFERENCE_DIR / f"{archive}.tar.gz").read_bytes(), description=description,
                                  parent=parent)
    assert status == 201, body
    return body


@pytest.fixture
def catalog_server(registry_server):
    """A server with four reference models: two image feature vectors (TF1, TF2), a text embedding, graph variants."""
    server = registry_server
    publish(server, "vision/features-tf1", "tf1_image_feature_vector", description=SCRIPT_DESCRIPTION)
    publish(server, "vision/features-tf1", "tf1_image_feature_vector", description="Same module, published again")
    publish(server, "vision/features-tf2", "tf2_image_feature_vector",
            description="Image features as a TF2 SavedModel, converted from the TF1 module",
            parent="vision/features-tf1/1")
    publish(server, "text/embedding", "tf2_text_embedding", description="Sentence embeddings (TF2 SavedModel)")
    publish(server, "demo/train-tags", "tf1_train_tags", description="Two graph variants: {} and {train}")
    status, body = server.json("PUT", "/api/v1/models/vision/features-tf1/aliases/prod", json_body={"version": 1},
                               token=server.admin_token)
    assert status == 200, body
    return server


def result_names(page) -> list[str]:
    return page.locator("#results li.result h3").all_inner_texts()


def test_find_open_copy_and_compare_in_a_browser(browser, catalog_server):
    server = catalog_server
    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(server.url + "/")
    assert page.locator("h1").inner_text() == "Models"
    assert result_names(page) == ["demo/train-tags", "text/embedding", "vision/features-tf1", "vision/features-tf2"]

    # Search: a plain GET form; the result list narrows, then a format filter narrows it further.
    page.get_by_label("Search by words").fill("image features")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/?q=image+features*")
    assert result_names(page) == ["vision/features-tf1", "vision/features-tf2"]
    page.get_by_label("Format").select_option("tf1_hub")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**format=tf1_hub*")
    assert result_names(page) == ["vision/features-tf1"]
    result = page.locator("#results li.result").first
    assert "version 2" in result.inner_text() and "image_feature_vector" in result.inner_text()
    page.get_by_label("Format").select_option("")
    page.get_by_label("Task (common signature)").select_option("text_embedding")
    page.get_by_label("Search by words").fill("")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**task=text_embedding*")
    assert result_names(page) == ["text/embedding"]

    # The model page: its signatures and its format's matrix row, "not supported" cells with what to do instead.
    page.goto(server.url + "/?q=features")
    page.get_by_role("link", name="vision/features-tf1", exact=True).click()
    page.wait_for_url(f"{server.url}/vision/features-tf1")
    assert page.locator("h1").inner_text() == "vision/features-tf1"
    assert "the newest version is 2" in page.locator(".subtitle").inner_text()
    signature = page.locator("#signatures article[data-signature='image_feature_vector']")
    assert signature.locator("table").first.locator("tbody tr").inner_text().split() == \
        ["images", "float32", "[?,", "32,", "32,", "3]"]
    assert "[?, 8]" in signature.locator("table").nth(1).inner_text()
    assert "Output dimension\n8" in page.locator("#tasks").inner_text()
    unsupported = page.locator("#matrix tbody tr.unsupported")
    assert unsupported.count() == 2
    assert unsupported.locator(".status").all_inner_texts() == ["not supported", "not supported"]
    assert "Instead:" in unsupported.first.inner_text()
    assert page.locator("#matrix tbody tr.supported").count() == 4

    # The version page, from the versions table; lineage links to the TF2 version derived from it.
    page.locator("#versions").get_by_role("link", name="1", exact=True).click()
    page.wait_for_url(f"{server.url}/vision/features-tf1/1")
    assert "Version 1" in page.locator(".subtitle").inner_text()
    assert page.locator("#lineage").get_by_role("link", name="vision/features-tf2/1").count() == 1
    assert "@prod" in page.locator("#versions tr.selected").inner_text()

    # Copy the tensorflow_hub snippet: pinned to /1, on the clipboard exactly as shown.
    hub_code = page.locator("#use-hub-code").inner_text()
    assert f'hub.load("{server.url}/vision/features-tf1/1")' in hub_code
    page.locator("#use-hub button.copy").click()
    page.wait_for_function("document.querySelector('#use-hub button.copy').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == hub_code
    assert "Copied “tensorflow_hub”" in page.locator(".copy-status").inner_text()
    assert "registry.Module(\"vision/features-tf1/1\")" in page.locator("#use-module-code").inner_text()
    assert f'curl -L "{server.url}/vision/features-tf1/1?tf-hub-format=compressed" | tar xz' in \
        page.locator("#use-curl-code").inner_text()

    # The description's markup is text, on the page and in the index; nothing of it ran.
    assert "<script>window.injected = true; alert('x')</script>" in page.locator("#description").inner_text()
    assert page.evaluate("window.injected === undefined") and dialogs == []

    # Compare, from the pickers the version page links to (no handle typed): a verdict per task both implement.
    page.get_by_role("link", name="compare vision/features-tf1/1 with a version you pick").click()
    page.wait_for_url("**/compare?*")
    page.get_by_label("Version B (candidate)").select_option("vision/features-tf2/1")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**b=vision%2Ffeatures-tf2%2F1*")
    verdict = page.locator("#verdict li[data-task='image_feature_vector']")
    assert verdict.inner_text().startswith("Yes as image_feature_vector")
    assert page.locator("article.signature-pair[data-signature='__call__']").count() == 1
    page.goto(server.url + "/compare?a=vision/features-tf1/1&b=text/embedding/1")
    assert all(v.startswith("No") for v in page.locator("#verdict li").all_inner_texts())
    assert "does not implement" in page.locator("#verdict").inner_text()
    assert dialogs == []
    context.close()


def test_search_and_code_work_without_javascript(browser, catalog_server):
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    page.goto(catalog_server.url + "/")
    page.get_by_label("Search by words").fill("embedding")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/?q=embedding*")
    assert result_names(page) == ["text/embedding"]
    page.get_by_role("link", name="text/embedding", exact=True).click()
    page.wait_for_url(f"{catalog_server.url}/text/embedding")
    # The code is there to select; the copy buttons stay hidden without the script that makes them work.
    assert 'registry.load("text/embedding/1")' in page.locator("#use-load-code").inner_text()
    assert page.locator("button.copy").count() == 6  # set-up, load, Keras 3, tf_keras, hub.load, curl
    assert page.locator("button.copy:visible").count() == 0
    assert page.locator("#use-module").count() == 0  # registry.Module is for TF1 Hub modules only
    context.close()


def test_pages_fit_desktop_and_phone_with_screenshots(browser, catalog_server):
    server = catalog_server
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = {"index": "/", "model": "/vision/features-tf1", "version": "/demo/train-tags/1",
             "compare": "/compare?a=vision/features-tf1/1&b=vision/features-tf2/1"}
    for label, viewport, phone in (("1280", DESKTOP, False), ("390", PHONE, True)):
        context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
        page = context.new_page()
        for name, path in pages.items():
            page.goto(server.url + path)
            page.wait_for_load_state("load")
            scroll_width, inner_width = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]")
            assert inner_width == viewport["width"]
            assert scroll_width <= inner_width, f"{path} is {scroll_width}px wide in a {inner_width}px viewport"
            # Accessible basics: a language, one h1, and a label for every visible form control.
            unlabelled = page.evaluate("""[...document.querySelectorAll('input:not([type=hidden]), select')]
                .filter(el => el.labels.length === 0).map(el => el.name)""")
            assert unlabelled == [] and page.locator("h1").count() == 1, path
            assert page.evaluate("document.documentElement.lang") == "en"
            if name in ("index", "model"):
                target = SCREENSHOTS / f"{name}-{label}.png"
                page.screenshot(path=str(target), full_page=True)
                assert target.stat().st_size > 10_000
        context.close()
