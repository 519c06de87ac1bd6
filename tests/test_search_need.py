"""Search by need (issue 20, part 2): words, every filter, sort and pages — the same for ``Registry.find``, the
JSON API, ``model-registry search`` and the catalog page (``tests/test_web_search_need.py`` drives that one).

A real registry on SQLite (and PostgreSQL) with real TF2 image feature vectors made here at 224 and 96 px, the
reference TF1 module and text embedding, published through the full pipeline so the image sizes and output
dimensions searched for are the ones the publish-time check recorded.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry.errors import QueryError, SignatureError
from registry.plugin_manager import make_plugin_manager
from tests.conftest import REFERENCE_DIR
from tests.test_search import _feature_vector_module

CARD = """---
license: Apache-2.0
tags: [vision, mobile]
---
# MobileNet-like features

Lightweight image features for on-device classifiers.
"""
#: name -> (what to publish: a module built here or a reference model's directory, metadata).
NEED_MODELS = {
    "vision/mobile-224": (("ifv", 224, 20), {"description": "Image features, small and fast", "card": CARD}),
    "vision/efficient-224": (("ifv", 224, 10), {"description": "Image feature vectors", "license": "MIT"}),
    "research/resnet-224": (("ifv", 224, 16), {"description": "Deep residual features"}),
    "vision/mobile-96": (("ifv", 96, 20), {"description": "Image features at low resolution"}),
    "text/embed-224": ("tf2_text_embedding", {"description": "Sentence vectors trained on 224 languages"}),
    "vision/features-tf1": ("tf1_image_feature_vector", {"description": "The TF1 Hub image feature vector"}),
}
#: What "image feature vector 224" must find, by words and by filters alike.
RIGHT_ONES = ["research/resnet-224/1", "vision/efficient-224/1", "vision/mobile-224/1"]


@pytest.fixture(scope="module")
def need_dirs(tmp_path_factory) -> dict[str, Path]:
    """Each model as a SavedModel directory (the TF2 feature vectors saved once per module)."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("need-models")
    dirs = {}
    for name, (what, _) in NEED_MODELS.items():
        if isinstance(what, tuple):
            _, size, dim = what
            target = root / name.replace("/", "-")
            # The reusable SavedModel API too (variables, trainable_variables, regularization_losses), as
            # tfhub.dev's TF2 image feature vectors are: compare's verdict then has two tasks to judge.
            module = _feature_vector_module(size, dim)
            reusable = tf.__internal__.tracking.AutoTrackable()
            reusable.__call__ = module.__call__
            reusable.variables = [module.kernel]
            reusable.trainable_variables = [module.kernel]
            reusable.regularization_losses = []
            tf.saved_model.save(reusable, str(target))
            dirs[name] = target
        else:
            dirs[name] = REFERENCE_DIR / what
    return dirs


def need_archive(directory: Path) -> bytes:
    """``directory``'s files as the tar.gz a publish uploads."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


def publish_need_catalog(publish) -> None:
    """Publish every model through ``publish(name, metadata)``, in the order of ``NEED_MODELS``."""
    for name, (_, metadata) in NEED_MODELS.items():
        publish(name, metadata)


def _registry(database_url: str, root: Path):
    from registry.api import Registry

    return Registry(database_url=database_url, storage_url=str(root / "artifacts"), cache_dir=root / "cache",
                    plugin_manager=make_plugin_manager(load_entry_points=False))


@pytest.fixture
def need(registry_env, need_dirs):
    reg = _registry(registry_env.database_url, registry_env.root)
    publish_need_catalog(lambda name, metadata: reg.publish(need_dirs[name], name=name, **metadata))
    return reg


def handles(results) -> list[str]:
    return [v.handle for v in results.items]


def test_a_need_is_found_by_words_and_by_filters_alike(need):
    by_words = need.find(q="image feature vector 224", sort="name")
    by_filters = need.find(task="image_feature_vector", image_size="224x224", sort="name")
    assert handles(by_words) == handles(by_filters) == RIGHT_ONES
    assert by_words.total == by_filters.total == 3
    assert handles(need.find(task="image_feature_vector", image_size="224", sort="name")) == RIGHT_ONES
    # Each word must match somewhere: without "224" the 96 px model and the TF1 module match too, and "224"
    # alone also finds the text model whose description says 224.
    assert need.find(q="image feature vector").total == 5
    assert "text/embed-224/1" in handles(need.find(q="224"))
    assert handles(need.find(q="224x224", sort="name")) == RIGHT_ONES


def test_words_match_task_format_card_and_tags(need):
    assert handles(need.find(q="tf1_hub")) == handles(need.find(q="tf1 hub")) == ["vision/features-tf1/1"]
    assert handles(need.find(q="text_embedding")) == ["text/embed-224/1"]
    assert handles(need.find(q="on-device")) == ["vision/mobile-224/1"]  # the card's words
    assert handles(need.find(q="mobilenet")) == ["vision/mobile-224/1"]  # a word's start: "mobilenet-like"
    assert handles(need.find(q="MOBILE vision", sort="name")) == ["vision/mobile-224/1", "vision/mobile-96/1"]
    assert handles(need.find(tags="mobile")) == ["vision/mobile-224/1"]  # the card's front matter
    assert handles(need.find(license="apache-2.0")) == ["vision/mobile-224/1"]
    assert handles(need.find(q="efficient", license="MIT")) == ["vision/efficient-224/1"]
    assert need.find(q="image nothing-like-this").total == 0


def test_an_edited_card_changes_what_its_words_find(need):
    need.set_card("vision/mobile-96/1", "# Thumbnails\n\nFor photo galleries.")
    assert handles(need.find(q="galleries")) == ["vision/mobile-96/1"]
    need.set_card("vision/mobile-96/1", None)
    assert need.find(q="galleries").total == 0


def test_filters_on_output_dimension_format_and_publisher(need):
    assert handles(need.find(output_dim=20, sort="name")) == ["vision/mobile-224/1", "vision/mobile-96/1"]
    assert handles(need.find(format="tf1_hub")) == ["vision/features-tf1/1"]
    assert handles(need.find(publisher="research")) == ["research/resnet-224/1"]
    assert need.find(publisher="Research").total == 0  # a publisher is chosen, not guessed


def test_sorts_and_pages(need):
    assert handles(need.find(q="224x224")) != [] and need.find(q="x").sort == "relevance"
    assert need.find().sort == "name"
    newest = handles(need.find(sort="newest"))
    assert newest[0] == "vision/features-tf1/1" and newest[-1] == "vision/mobile-224/1"  # the publish order
    # Relevance: the words in the model's own name first.
    assert handles(need.find(q="mobile image"))[:2] == ["vision/mobile-224/1", "vision/mobile-96/1"]
    first, second = need.find(limit=4), need.find(limit=4, page=2)
    assert first.total == second.total == 6 and first.pages == 2
    assert first.has_next and not first.has_previous and second.has_previous and not second.has_next
    assert len(handles(first)) == 4 and len(handles(second)) == 2
    assert set(handles(first)).isdisjoint(handles(second))
    assert need.find(limit=4, page=3).items == []


def test_downloads_order_the_most_downloaded_first(need):
    from datetime import date

    from registry.catalog import downloads

    today = date.today()
    downloads.add(need.catalog.store, {("vision", "mobile-96", 1): {today: 5}, ("research", "resnet-224", 1): {today: 2}})
    assert handles(need.find(sort="downloads"))[:2] == ["vision/mobile-96/1", "research/resnet-224/1"]


@pytest.mark.parametrize("params, error, words", [
    ({"image_size": "big"}, QueryError, "image_size"),
    ({"sort": "stars"}, QueryError, "sort is one of"),
    ({"limit": 0}, QueryError, "limit"),
    ({"page": 0}, QueryError, "page"),
    ({"output_dim": "many"}, QueryError, "output_dim"),
    ({"task": "image_feature_vectr"}, SignatureError, "image_feature_vectr"),
])
def test_bad_values_are_typed_errors(need, params, error, words):
    with pytest.raises(error, match=words):
        need.find(**params)


def test_the_cli_takes_the_same_words_filters_and_sort(need, registry_env):
    from registry.cli import cli as main

    runner = CliRunner()
    by_words = runner.invoke(main, ["search", "image", "feature", "vector", "224", "--sort", "name", "--json"])
    assert by_words.exit_code == 0, by_words.output
    by_filters = runner.invoke(main, ["search", "--task", "image_feature_vector", "--image-size", "224",
                                      "--sort", "name", "--json"])
    assert [v["handle"] for v in json.loads(by_words.output)] == \
        [v["handle"] for v in json.loads(by_filters.output)] == RIGHT_ONES
    shown = runner.invoke(main, ["search", "image", "feature", "224", "--limit", "2", "--filter", "tags=vision"])
    assert shown.exit_code == 0, shown.output
    assert "vision/mobile-224/1" in shown.output and "224x224" in shown.output and "Apache-2.0" in shown.output
    assert "match" not in shown.output  # one page: no page line
    paged = runner.invoke(main, ["search", "image", "--limit", "2", "--page", "2", "--sort", "name"])
    assert "page 2 of 3" in paged.output and "--page 3" in paged.output
    bad = runner.invoke(main, ["search", "--sort", "stars"])
    assert bad.exit_code == 2 and "stars" in bad.output


@pytest.mark.postgres
def test_the_same_answers_on_postgresql(postgres_url, tmp_path, need_dirs):
    from registry.catalog import schema

    schema.upgrade(postgres_url)
    reg = _registry(postgres_url, tmp_path)
    publish_need_catalog(lambda name, metadata: reg.publish(need_dirs[name], name=name, **metadata))
    assert handles(reg.find(q="image feature vector 224", sort="name")) == RIGHT_ONES
    assert handles(reg.find(task="image_feature_vector", image_size="224", sort="name")) == RIGHT_ONES
    assert handles(reg.find(q="tf1_hub")) == ["vision/features-tf1/1"]
    assert handles(reg.find(q="MOBILE vision", sort="name")) == ["vision/mobile-224/1", "vision/mobile-96/1"]
    assert handles(reg.find(tags="Mobile")) == ["vision/mobile-224/1"]
    assert reg.find(limit=4, page=2).total == 6


def test_migration_0010_indexes_the_versions_already_published(tmp_path):
    """A catalog at 0009 with a version (and a card) written before the word index existed: after the upgrade its
    words are found, and downgrading drops the index again."""
    from sqlalchemy import inspect, text

    from registry.catalog import schema
    from registry.catalog.engine import make_engine
    from registry.catalog.search import SearchQuery, find

    url = f"sqlite:///{tmp_path / 'old.db'}"
    schema.upgrade(url, "0009")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO registered_model (id, publisher, name, description, created_at, "
                                "last_version) VALUES (1, 'acme', 'old-model', 'Legacy detector', '2026-01-01', 1)"))
        connection.execute(text("INSERT INTO model_version (id, model_id, version, created_at, description, format, "
                                "artifact_uri, sha256, size, tag_sets, details, card, tags, datasets, language, "
                                "files) VALUES (1, 1, 1, '2026-01-01', '', 'tf2_saved_model', 'file:///old', :sha, 1, "
                                "'[[]]', '{}', '# Old card about zebras', '[\"wildlife\"]', '[]', '[]', '[]')"),
                           {"sha": "ab" * 32})
        connection.execute(text("INSERT INTO version_task (id, version_id, task, signature, tags, output_dim, "
                                "image_height, image_width, evidence) VALUES (1, 1, 'image_feature_vector', "
                                "'__call__', '', 7, 224, 224, '{}')"))
    schema.upgrade(url)
    for words in ("zebras", "legacy detector", "wildlife", "image feature vector 224", "tf2 saved model"):
        found = find(engine, SearchQuery(q=words))
        assert [v.handle for v in found.items] == ["acme/old-model/1"], words
    schema.downgrade(url, "0009")
    assert "search_word" not in inspect(make_engine(url)).get_table_names()
    engine.dispose()


@pytest.mark.parametrize("params", [{}, {"q": "image"}, {"q": "mobile image"}, {"q": "image", "sort": "name"},
                                    {"q": "image", "sort": "newest"}, {"q": "feature", "sort": "downloads"},
                                    {"sort": "newest"}, {"sort": "downloads"}, {"q": "224", "format": "tf2_saved_model"}])
def test_the_walks_give_the_pages_the_whole_set_gives(need, monkeypatch, params):
    """A common word is answered by walking (models by name, versions from the newest, the few models ranked
    above the rest, then the rest by name) and counted only up to ``COUNT_CAP``; a rare one by reading every
    match. Forced to walk, with a cap of 3, every page is the same as reading every match gives, and the count
    says "at least"."""
    from datetime import date

    from registry.catalog import downloads, search

    downloads.add(need.catalog.store, {("vision", "mobile-96", 1): {date.today(): 5},
                                      ("text", "embed-224", 1): {date.today(): 2}})
    whole = need.find(**params, limit=100)
    monkeypatch.setattr(search, "WALK_ABOVE_ROWS", 0)
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    pages = [need.find(**params, limit=2, page=number) for number in range(1, 5)]
    assert [handle for page in pages for handle in handles(page)] == handles(whole)
    if whole.total > 3:
        assert (pages[0].total, pages[0].total_exact, pages[0].total_shown) == (3, False, "3+")
        assert pages[0].has_next and pages[0].pages_shown.endswith("+")
    else:
        assert (pages[0].total, pages[0].total_exact) == (whole.total, True)


def test_the_page_and_the_api_say_when_the_count_stops_at_the_cap(need, monkeypatch):
    """Past ``COUNT_CAP`` matching models the page says "N+ models match" and that the count stops there; the API
    gives ``total_exact: false``; the pages go on."""
    from fastapi.testclient import TestClient

    from registry.catalog import search
    from registry.server.app import create_app
    from registry.server.settings import ServerSettings

    monkeypatch.setattr(search, "WALK_ABOVE_ROWS", 0)
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    with TestClient(create_app(need, ServerSettings())) as client:
        page = client.get("/", params={"q": "image", "limit": 2})
        assert page.status_code == 200
        assert "3+ models match" in page.text and 'id="count-capped"' in page.text and "Page 1 of 2+" in page.text
        body = client.get("/api/v1/search", params={"q": "image", "limit": 2}).json()
        assert (body["total"], body["total_exact"], len(body["items"])) == (3, False, 2)
        exact = client.get("/api/v1/search", params={"q": "mobile", "limit": 2}).json()
        assert (exact["total"], exact["total_exact"]) == (2, True)
