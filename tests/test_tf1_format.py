"""Reading the TF1 Hub format: what is accepted, and the clear errors for what is not."""

from __future__ import annotations

import shutil

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

import registry
from registry.adapters.tf1_hub import protos
from registry.adapters.tf1_hub.adapter import TF1HubAdapter
from registry.adapters.tf1_hub.spec import read_module_spec

tf1 = tf.compat.v1


@pytest.fixture
def module_copy(reference, tmp_path):
    target = tmp_path / "text"
    shutil.copytree(reference.model_dir("tf1_text_embedding"), target)
    return target


def _rewrite_saved_model(path, edit):
    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    edit(proto)
    (path / "saved_model.pb").write_bytes(proto.SerializeToString())


def test_unknown_module_format_is_rejected(module_copy):
    (module_copy / "tfhub_module.pb").write_bytes(protos.ModuleDef(format=4).SerializeToString())
    with pytest.raises(registry.FormatError, match="FORMAT_V3"):
        read_module_spec(module_copy)


def test_unspecified_module_format_is_rejected(module_copy):
    (module_copy / "tfhub_module.pb").write_bytes(b"")
    with pytest.raises(registry.FormatError, match="format 0"):
        read_module_spec(module_copy)


def test_required_features_this_reader_lacks_are_rejected(module_copy):
    module_def = protos.ModuleDef(format=protos.FORMAT_V3, required_features=["quantum_variables"])
    (module_copy / "tfhub_module.pb").write_bytes(module_def.SerializeToString())
    with pytest.raises(registry.FormatError, match="quantum_variables"):
        read_module_spec(module_copy)


def test_garbage_module_def_is_a_format_error(module_copy):
    (module_copy / "tfhub_module.pb").write_bytes(b"\xff\xff\xff")
    with pytest.raises(registry.FormatError, match="ModuleDef"):
        read_module_spec(module_copy)


def test_collections_outside_the_format_are_rejected_by_name(module_copy):
    def add_collection(proto):
        proto.meta_graphs[0].collection_def["summaries"].node_list.value.append("Placeholder:0")

    _rewrite_saved_model(module_copy, add_collection)
    with pytest.raises(registry.FormatError, match="summaries"):
        read_module_spec(module_copy)


def test_assets_cannot_point_outside_the_assets_directory(module_copy):
    def escape(proto):
        collection = proto.meta_graphs[0].collection_def["saved_model_assets"].any_list.value
        asset = meta_graph_pb2.AssetFileDef()
        collection[0].Unpack(asset)
        asset.filename = "../../etc/passwd"
        collection[0].Pack(asset)

    _rewrite_saved_model(module_copy, escape)
    with pytest.raises(registry.FormatError, match="outside"):
        read_module_spec(module_copy)


def test_duplicate_graph_variants_are_rejected(module_copy):
    _rewrite_saved_model(module_copy, lambda proto: proto.meta_graphs.add().CopyFrom(proto.meta_graphs[0]))
    with pytest.raises(registry.FormatError, match="two graphs"):
        read_module_spec(module_copy)


def test_unknown_signature_lists_the_ones_there_are(reference):
    with tf.Graph().as_default():
        module = registry.Module(str(reference.model_dir("tf1_dense_two_signatures")))
        with pytest.raises(registry.SignatureError, match="default, fruit_to_pet"):
            module(tf.zeros([1, 50]), signature="nope")


def test_wrong_shape_is_a_type_error(reference):
    with tf.Graph().as_default():
        module = registry.Module(str(reference.model_dir("tf1_dense_two_signatures")))
        with pytest.raises(TypeError, match="shape"):
            module(tf.zeros([1, 49]))


def test_module_must_be_applied_in_its_own_graph(reference):
    with tf.Graph().as_default():
        module = registry.Module(str(reference.model_dir("tf1_dense_two_signatures")))
    with tf.Graph().as_default(), pytest.raises(RuntimeError, match="graph it was instantiated for"):
        module(tf.zeros([1, 50]))


def test_inspect_records_tag_sets_signatures_and_image_metadata(reference):
    adapter = TF1HubAdapter()
    info = adapter.inspect(reference.model_dir("tf1_image_feature_vector"))
    assert info.format == "tf1_hub" and info.tag_sets == (frozenset(),)
    assert sorted(s.name for s in info.signatures) == ["default", "image_feature_vector"]
    images = info.signatures[0].inputs["images"]
    assert (images.dtype, images.shape, images.kind) == ("float32", (None, 32, 32, 3), "dense")
    assert info.metadata["expected_image_size"] == [32, 32]
    assert info.metadata["attached_messages"] == {"": ["image_module_info"]}

    tagged = adapter.inspect(reference.model_dir("tf1_train_tags"))
    assert sorted(map(sorted, tagged.tag_sets)) == [[], ["train"]]
    assert {s.tags for s in tagged.signatures} == {frozenset(), frozenset({"train"})}


def test_detection_needs_tfhub_module_pb(reference, tmp_path):
    assert TF1HubAdapter.detect(reference.model_dir("tf1_text_embedding"))
    assert not TF1HubAdapter.detect(reference.model_dir("tf2_text_embedding"))
    assert not TF1HubAdapter.detect(tmp_path)
