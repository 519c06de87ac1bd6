"""Loads work when artifacts live in GCS (the emulator, through gcsfs) or are served over HTTP."""

from __future__ import annotations

import shutil
import uuid

import pytest

import registry
from tests.reference_checks import check_tf2_mode


@pytest.mark.gcs
@pytest.mark.parametrize("model", ["tf2_image_feature_vector", "tf1_text_embedding"])
def test_catalog_handles_load_from_a_gcs_bucket(model, gcs_bucket, registry_env, reference, reference_dir, tmp_path):
    publisher = registry.Registry(storage_url=gcs_bucket)
    record = publisher.publish(reference_dir / model, name="gcs/model")
    assert record.artifact_uri.startswith(gcs_bucket.rstrip("/") + "/sha256/")

    # another machine: same catalog and bucket, an empty cache
    reader = registry.Registry(storage_url=gcs_bucket, cache_dir=tmp_path / "other-cache")
    assert reader.cache.get(record.sha256) is None
    loaded = reader.load("gcs/model/1", mode="tf2")
    check_tf2_mode(loaded, record.format, *reference.expected(model))
    assert reader.cache.get(record.sha256) is not None


@pytest.mark.gcs
def test_publishing_to_a_bucket_that_does_not_exist_says_to_create_it(gcs_emulator, registry_env, reference_dir):
    missing = f"gs://no-such-bucket-{uuid.uuid4().hex[:12]}"
    publisher = registry.Registry(storage_url=f"{missing}/registry")
    with pytest.raises(registry.ArtifactError, match=f"the bucket {missing} does not exist; create it") as refused:
        publisher.publish(reference_dir / "tf2_text_embedding", name="gcs/nowhere")
    assert "MODEL_REGISTRY_STORAGE_URL" in str(refused.value)
    with pytest.raises(registry.ModelNotFound):
        publisher.get_version("gcs/nowhere")  # nothing was recorded


@pytest.mark.parametrize("model", ["tf2_text_embedding", "tf1_dense_two_signatures"])
def test_http_urls_load_the_tfhub_way(model, http_server, registry_env, reference, reference_dir):
    url = http_server.add_model(f"models/{model}/1", reference_dir / f"{model}.tar.gz")
    loaded = registry.load(url, mode="tf2")
    check_tf2_mode(loaded, reference.manifest[model]["format"], *reference.expected(model))
    assert http_server.count(f"models/{model}/1", method="GET") == 1  # one download, tfhub-style query
    assert http_server.requests[-1].query == "tf-hub-format=compressed"

    http_server.reset_log()
    registry.load(url, mode="tf2")  # cached by URL: no request at all
    assert http_server.count() == 0


def test_http_archive_urls_load_directly(http_server, registry_env, reference, reference_dir):
    url = http_server.add_file("files/emb.tar.gz", reference_dir / "tf2_text_embedding.tar.gz")
    check_tf2_mode(registry.load(url, mode="tf2"), "tf2_saved_model", *reference.expected("tf2_text_embedding"))


def test_a_catalog_version_whose_artifact_is_served_over_http(http_server, registry_env, reference, reference_dir):
    """Storage can be read over HTTP: serve the storage folder, point a reader's catalog records at it."""
    record = registry.publish(reference_dir / "tf2_image_feature_vector", name="web/fv")
    rel = record.artifact_uri[len(registry_env.storage_url):].lstrip("/")
    http_server.add_file(f"store/{rel}", record.artifact_uri)
    url = http_server.url(f"store/{rel}")
    loaded = registry.load(url, mode="tf2")
    check_tf2_mode(loaded, "tf2_saved_model", *reference.expected("tf2_image_feature_vector"))


def test_a_pinned_handle_loads_offline_without_touching_storage(registry_env, reference, reference_dir,
                                                                monkeypatch):
    record = registry.publish(reference_dir / "tf2_image_feature_vector", name="off/line")
    registry.load(record.handle, mode="tf2")
    shutil.rmtree(registry_env.storage_dir)  # any storage access would now fail
    monkeypatch.setenv("MODEL_REGISTRY_OFFLINE", "1")
    offline = registry.Registry()
    assert offline.settings.offline
    loaded = offline.load(record.handle, mode="tf2")
    check_tf2_mode(loaded, "tf2_saved_model", *reference.expected("tf2_image_feature_vector"))
    assert offline.catalog._store is None  # not even the catalog database was opened
    with pytest.raises(registry.ModelNotFound):  # the local catalog may be read offline, and says so
        offline.load("off/never-loaded/1", mode="tf2")


def test_offline_urls_come_from_the_cache_only(http_server, registry_env, reference_dir, monkeypatch):
    url = http_server.add_model("models/emb/1", reference_dir / "tf2_text_embedding.tar.gz")
    registry.load(url, mode="tf2")
    http_server.reset_log()
    monkeypatch.setenv("MODEL_REGISTRY_OFFLINE", "1")
    offline = registry.Registry()
    offline.load(url, mode="tf2")
    with pytest.raises(registry.OfflineError):
        offline.load(http_server.add_model("models/other/1", reference_dir / "tf2_text_embedding.tar.gz"))
    assert http_server.count() == 0
