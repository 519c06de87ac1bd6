"""axe-core (pinned, from npm: ``tests/refstack.py``'s ``ensure_axe_core``) in Chromium: no WCAG 2.x A or AA
violation on any kind of page, at 1280 and 390 px (issue 20, part 6).

Every page kind of the catalog — home, search results, model, version, compare, publisher, sign-in, an error
page, and the API docs (Swagger UI, with ``static/api-docs.css`` darkening its low-contrast colours) — on the search catalog of ``tests/test_web_search_need.py``. axe is injected into each page (the
context bypasses the pages' CSP for that script alone: the pages refuse inline scripts) and run on the whole
document with the WCAG 2.0/2.1 A and AA rules, colour contrast and landmark names included.
"""

from __future__ import annotations

import pytest

from tests.refstack import AXE_CORE_VERSION, ensure_axe_core
from tests.test_search_need import need_dirs  # noqa: F401  (fixture)
from tests.test_web_browser import DESKTOP, PHONE, browser  # noqa: F401  (the fixture)
from tests.test_web_search_need import need_server  # noqa: F401  (fixture)

WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PAGES = {
    "home": "/",
    "search": "/?q=image+feature+vector+224&task=image_feature_vector&image_size=224",
    "search, no match": "/?q=nothing-matches-this",
    "search, bad value": "/?image_size=big",
    "search, page 2": "/?sort=name&limit=3&page=2",
    "model": "/vision/mobile-224",
    "version": "/vision/mobile/1",
    "compare": "/compare?v=vision/mobile/1&v=vision/mobile/2",
    "compare, one picked": "/compare?a=vision/mobile/1",
    "publisher": "/vision",
    "sign-in": "/signin",
    "not found": "/no-such/model-here",
    "API docs": "/api/docs",
}


@pytest.fixture(scope="module")
def axe_script():
    return ensure_axe_core().read_text()


def violations(page, axe_script: str, name: str = "") -> list[str]:
    """axe's WCAG A/AA violations on the page, each with up to three of its elements."""
    page.add_script_tag(content=axe_script)
    found = page.evaluate("""(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})
        .then(result => ({version: axe.version, passed: result.passes.length,
              violations: result.violations.map(v => `${v.id} (${v.impact}): ${v.help} — ` +
              v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))}))""", WCAG_A_AA)
    # axe ran, the pinned one, and checked something: rules passed on every page (landmarks, contrast, labels...).
    assert found["version"] == AXE_CORE_VERSION and found["passed"] >= 10, (name, page.url, found)
    return list(found["violations"])


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_no_wcag_a_or_aa_violation_on_any_page_kind(browser, need_server, axe_script, viewport):  # noqa: F811
    phone = viewport is PHONE
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, bypass_csp=True)
    page = context.new_page()
    found = {}
    for name, path in PAGES.items():
        page.goto(need_server.url + path)
        page.wait_for_load_state("load")
        if path == "/api/docs":  # Swagger UI renders after it has read /openapi.json
            page.wait_for_selector("#swagger-ui .opblock")
            page.wait_for_selector("#swagger-ui .models")
        problems = violations(page, axe_script, name)
        if problems:
            found[name] = problems
    context.close()
    assert found == {}
