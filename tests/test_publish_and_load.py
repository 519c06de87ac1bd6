"""Issue 2's acceptance: every reference model publishes, is catalogued with its signatures, and loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tensorflow as tf

import registry
from tests.reference_checks import check_tf2_mode, check_tf2_saved_model_in_graph

MODELS = ["tf1_dense_two_signatures", "tf1_train_tags", "tf1_text_embedding", "tf1_image_feature_vector",
          "tf2_image_feature_vector", "tf2_text_embedding"]


def _name(model: str) -> str:
    return "reference/" + model.replace("_", "-")


def _signatures_by_name(record) -> dict:
    return {(s.name, tuple(s.tags)): s for s in record.signatures}


@pytest.mark.parametrize("source", ["directory", "archive"])
@pytest.mark.parametrize("model", MODELS)
def test_reference_model_publishes_and_loads_by_catalog_handle(model, source, reference, reference_dir,
                                                               registry_env):
    manifest = reference.manifest[model]
    path = reference_dir / model if source == "directory" else reference_dir / f"{model}.tar.gz"
    record = registry.publish(path, name=_name(model), description=manifest["doc"])

    assert record.handle == f"{_name(model)}/1" and record.version == 1
    assert record.format == manifest["format"]
    assert len(record.sha256) == 64 and record.size > 0
    if source == "archive":  # the archive is stored byte for byte
        import hashlib
        assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    shown = registry.get_version(record.handle)
    assert shown == record
    assert [m.model_name for m in registry.list_models()] == [_name(model)]
    signatures = _signatures_by_name(shown)
    if manifest["format"] == "tf1_hub":
        assert sorted(shown.tag_sets) == sorted(manifest["tag_sets"])
        for tags in manifest["tag_sets"]:
            for sig_name, sig in manifest["signatures"].items():
                recorded = signatures[(sig_name, tuple(tags))]
                for io in ("inputs", "outputs"):
                    got = {k: [v["dtype"], v["shape"]] for k, v in getattr(recorded, io).items()}
                    assert got == {k: [d, s] for k, (d, s) in sig[io].items()}, (sig_name, io)
    else:
        assert set(manifest["signatures"]) <= {name for name, _ in signatures}
        assert ("__call__", ()) in signatures

    inputs, outputs = reference.expected(model)
    check_tf2_mode(registry.load(record.handle, mode="tf2"), manifest["format"], inputs, outputs)
    if manifest["format"] == "tf2_saved_model":
        with tf.Graph().as_default():
            check_tf2_saved_model_in_graph(registry.load(record.handle, mode="tf1"), inputs, outputs)


def test_versions_aliases_lineage_and_resolve(reference_dir, registry_env):
    src = reference_dir / "tf2_image_feature_vector"
    first = registry.publish(src, name="vision/tiny-fv", description="tiny")
    second = registry.publish(reference_dir / "tf2_image_feature_vector.tar.gz", name="vision/tiny-fv",
                              parent=first.handle)
    assert (first.version, second.version) == (1, 2)
    assert registry.get_version("vision/tiny-fv").version == 2
    assert registry.get_version("vision/tiny-fv@latest").version == 2
    assert second.parent == "vision/tiny-fv/1"
    assert [v.handle for v in registry.lineage("vision/tiny-fv/2")] == ["vision/tiny-fv/2", "vision/tiny-fv/1"]

    registry.set_alias("vision/tiny-fv", "prod", 1)
    assert registry.get_version("vision/tiny-fv@prod").version == 1
    location = registry.Registry().catalog.locate("vision/tiny-fv@prod")
    assert (location.handle, location.sha256, location.format) == (first.handle, first.sha256, first.format)
    local = Path(registry.resolve("vision/tiny-fv@prod"))
    assert registry.Registry().cache.root in local.parents
    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in src.iterdir())

    registry.delete_version("vision/tiny-fv/2")
    assert registry.get_version("vision/tiny-fv").version == 1
    with pytest.raises(registry.VersionNotFound, match="deleted"):
        registry.get_version("vision/tiny-fv/2")
    third = registry.publish(src, name="vision/tiny-fv")
    assert third.version == 3  # a deleted number is never reused


def test_publishing_an_in_memory_model_in_both_modes(registry_env):
    class Doubler(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return x * self.w

    record = registry.publish(Doubler(), name="toys/doubler")
    assert record.format == "tf2_saved_model"
    assert registry.load(record.handle)(tf.constant([1.0, 2.0])).numpy().tolist() == [2.0, 4.0]
    call = next(s for s in record.signatures if s.name == "__call__")
    assert call.inputs == {"x": {"dtype": "float32", "shape": [None], "kind": "dense"}}


def test_the_default_registry_needs_no_configuration(tmp_path, monkeypatch, reference_dir):
    """With no MODEL_REGISTRY_* set, the catalog, storage and cache live in the user's directories."""
    import registry.api as api
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    api.reset_default_registry()
    try:
        record = registry.publish(reference_dir / "tf2_text_embedding", name="text/emb")
        settings = api.default_registry().settings
        assert str(tmp_path / "data") in settings.database_url and str(tmp_path / "data") in settings.storage_url
        assert str(settings.cache_dir).startswith(str(tmp_path / "cache"))
        assert json.loads(record.model_dump_json())["version"] == 1
    finally:
        api.reset_default_registry()


def test_a_model_archive_served_over_http_publishes_from_its_url(http_server, registry_env, reference_dir):
    """A URL source is parsed into a handle before the resolver downloads it (it takes parsed handles only)."""
    url = http_server.add_file("files/tf2_text_embedding.tar.gz", reference_dir / "tf2_text_embedding.tar.gz")
    record = registry.publish(url, name="reference/from-url")

    assert record.handle == "reference/from-url/1" and record.format == "tf2_saved_model"
    assert Path(registry.resolve("reference/from-url/1")).is_dir()
