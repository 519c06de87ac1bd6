"""The search and compare journeys of issue 20 in Chromium (parts 2 and 4), on a real ``model-registry serve``.

"image feature vector 224" is found by words and by the form's filters, with exactly the right models, each
result showing its image size, output dimension and licence; publisher is a choice; sort and previous/next
pages work. Compare starts from a model's versions table (check two boxes, no handles typed), marks what
differs, shows identical signatures once and gives a verdict per task: 224 vs 96 px is "No" as an image
feature vector even though it is "Yes" as a reusable SavedModel.
"""

from __future__ import annotations

import pytest

from tests.test_search_need import NEED_MODELS, RIGHT_ONES, need_archive, need_dirs  # noqa: F401  (fixture)
from tests.test_web_browser import DESKTOP, browser  # noqa: F401  (the fixture)


@pytest.fixture
def need_server(registry_server, need_dirs):  # noqa: F811
    """The search catalog of ``tests.test_search_need``, and ``vision/mobile`` at 224 px (1) then 96 px (2)."""
    server = registry_server
    for name, (_, metadata) in NEED_MODELS.items():
        status, body = server.publish(name, need_archive(need_dirs[name]), **metadata)
        assert status == 201, body
    for source, description in (("vision/mobile-224", "Mobile features"), ("vision/mobile-96", "Smaller inputs")):
        status, body = server.publish("vision/mobile", need_archive(need_dirs[source]), description=description)
        assert status == 201, body
    return server


def by_name(name: str) -> tuple[str, ...]:
    """The catalog's name order: by publisher, then model name (``mobile`` before ``mobile-224``)."""
    return tuple(name.split("/"))


def names(page) -> list[str]:
    return page.locator("#results li.result h3").all_inner_texts()


def test_image_feature_vector_224_by_words_and_by_filters(browser, need_server):  # noqa: F811
    # The three of the need catalog, and vision/mobile, whose newest matching version (1) is a 224 px one.
    right = sorted([*(handle.rsplit("/", 1)[0] for handle in RIGHT_ONES), "vision/mobile"], key=by_name)
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(need_server.url + "/")
    page.get_by_label("Search by words").fill("image feature vector 224")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/?q=image+feature+vector+224*")
    assert sorted(names(page)) == right
    assert page.locator("#results-heading").inner_text() == "4 models match"

    # The same need through the form's filters, no words.
    page.get_by_label("Search by words").fill("")
    page.get_by_label("Task (common signature)").select_option("image_feature_vector")
    page.get_by_label("Image size").fill("224")
    page.get_by_label("Order").select_option("name")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**image_size=224*")
    assert names(page) == right  # by name
    cards = page.locator("#results li.result")
    for index in range(cards.count()):
        assert "Image size\n224 × 224" in cards.nth(index).inner_text()
    efficient = page.locator("#results li.result", has_text="vision/efficient-224")
    assert "Licence\nMIT" in efficient.inner_text() and "Output dimension\n10" in efficient.inner_text()

    # Publisher is a choice; the filters stay in the URL the page reads.
    page.get_by_label("Publisher", exact=True).select_option("research")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**publisher=research*")
    assert names(page) == ["research/resnet-224"]
    assert page.get_by_label("Image size").input_value() == "224"

    # Format and task names match as words, "tf1_hub" and "tf1 hub" alike.
    for words in ("tf1_hub", "tf1 hub"):
        page.goto(need_server.url + "/?q=" + words.replace(" ", "+"))
        assert names(page) == ["vision/features-tf1"]

    # Previous and next pages.
    page.goto(need_server.url + "/?sort=name&limit=3")
    assert page.locator("#results-heading").inner_text() == "7 models" and page.locator("#page-of").inner_text() \
        == "Page 1 of 3"
    first = names(page)
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url("**page=2*")
    assert set(names(page)).isdisjoint(first) and len(names(page)) == 3
    page.get_by_role("link", name="Previous page").click()
    page.wait_for_load_state()
    assert names(page) == first and page.get_by_role("link", name="Previous page").count() == 0

    # The JSON API answers the same query string the same.
    status, body = need_server.json("GET", "/api/v1/search?q=image+feature+vector+224&sort=name")
    assert status == 200 and body["total"] == 4
    assert [f"{v['publisher']}/{v['model']}/{v['version']}" for v in body["items"]] == \
        sorted([*RIGHT_ONES, "vision/mobile/1"], key=by_name)
    page.context.close()


def test_compare_from_the_versions_table_per_task(browser, need_server):  # noqa: F811
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(need_server.url + "/vision/mobile")
    table = page.locator("#versions")
    assert table.get_by_label("Compare version 2").is_checked()  # the version shown is picked already
    table.get_by_label("Compare version 1").check()
    page.get_by_role("button", name="Compare the two checked versions").click()
    page.wait_for_url("**/compare?*")
    verdicts = page.locator("#verdict li")
    by_task = {verdicts.nth(i).get_attribute("data-task"): verdicts.nth(i).inner_text()
               for i in range(verdicts.count())}
    assert by_task["image_feature_vector"].startswith("No as image_feature_vector")
    assert "image size" in by_task["image_feature_vector"]
    assert by_task["reusable_saved_model"].startswith("Yes as reusable_saved_model")
    # Differences are marked in words; identical facts are shown once, across both columns.
    size_row = page.locator(".compare-facts tr", has=page.locator("th", has_text="Image size"))
    assert "differs" in size_row.inner_text()
    format_row = page.locator(".compare-facts tr", has=page.locator("th", has_text="Format"))
    assert "differs" not in format_row.inner_text() and format_row.locator("td").count() == 1
    call = page.locator("article.signature-pair[data-signature='__call__']")
    assert "differs" in call.locator("h3").inner_text()
    assert call.locator("tr.differs").count() == 2  # the images input, on each side
    # The pickers: another version of the lineage's models, chosen from a list, never typed.
    page.get_by_label("Version B (candidate)").select_option("vision/mobile/2")
    page.get_by_label("Version A (in use)").select_option("vision/mobile/2")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_load_state()
    assert page.locator("article.signature-pair.same").count() >= 1
    assert page.locator("tr.differs").count() == 0
    assert all(v.startswith("Yes") for v in page.locator("#verdict li").all_inner_texts())
    page.context.close()
