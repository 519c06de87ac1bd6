"""Every TF1 Hub reference module loads in mode tf1 and reproduces the reference stack's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import registry
from tests.conftest import REFERENCE_DIR
from tests.services import ReferenceArtifacts
from tests.tf1_support import apply_to_inputs, initialize

tf1 = tf.compat.v1
TF1_MODELS = ReferenceArtifacts(REFERENCE_DIR).names_of_format("tf1_hub")


@pytest.mark.parametrize("name", TF1_MODELS)
def test_every_signature_reproduces_the_reference_outputs_twice_with_shared_state(reference, name):
    inputs, expected = reference.expected(name)
    with tf.Graph().as_default():
        module = registry.Module(str(reference.model_dir(name)))
        n_variables = len(tf1.global_variables())
        fetches, feed = apply_to_inputs(module, inputs, repeats=2)
        # Applying signatures adds compute only: no new variables, no new table initializers.
        assert len(tf1.global_variables()) == n_variables == len(module.variables)
        assert not tf1.trainable_variables()
        with tf1.Session() as session:
            initialize(session)
            got = session.run(fetches, feed)
    for (repeat, signature, output), value in got.items():
        np.testing.assert_allclose(value, expected[signature][output], atol=1e-5,
                                   err_msg=f"{name} {signature}:{output} (application {repeat})")
    assert {(s, o) for _, s, o in got} == {(s, o) for s in expected for o in expected[s]}


@pytest.mark.parametrize("name", TF1_MODELS)
def test_signature_descriptions_match_the_manifest(reference, name):
    manifest = reference.manifest[name]
    with tf.Graph().as_default():
        module = registry.Module(str(reference.model_dir(name)))
        assert sorted(module.get_signature_names()) == sorted(manifest["signatures"])
        for signature, described in manifest["signatures"].items():
            for kind, info in (("inputs", module.get_input_info_dict(signature)),
                               ("outputs", module.get_output_info_dict(signature))):
                got = {k: [v.dtype.name, v.get_shape().as_list()] for k, v in info.items()}
                assert got == described[kind], (signature, kind)


def test_default_output_is_returned_unless_as_dict(reference):
    inputs, expected = reference.expected("tf1_dense_two_signatures")
    x = inputs["default"]["default"]
    with tf.Graph().as_default():
        module = registry.Module(str(reference.model_dir("tf1_dense_two_signatures")), name="dense")
        default = module(x)  # a numpy array converts to the signature's dtype
        both = module(x, as_dict=True)
        assert default.name.startswith("dense_apply_default")
        assert set(both) == {"default", "hidden_activations"}
        with tf1.Session() as session:
            initialize(session)
            np.testing.assert_allclose(session.run(default), expected["default"]["default"], atol=1e-5)


def test_trainable_train_variant_exposes_update_ops_and_regularization_loss(reference):
    path = str(reference.model_dir("tf1_train_tags"))
    with tf.Graph().as_default():
        module = registry.Module(path, trainable=True, tags={"train"})
        assert tf1.get_collection(tf1.GraphKeys.REGULARIZATION_LOSSES)
        assert set(tf1.trainable_variables()) <= set(module.variables)
        assert {v.op.name.split("/", 1)[1] for v in tf1.trainable_variables()} >= {"hidden/kernel", "logits/kernel"}
        assert not tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
        module(tf1.placeholder(tf.float32, [None, 16]))
        update_ops = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
        assert update_ops and all(op.name.startswith("module_apply_default/") for op in update_ops)


def test_not_trainable_module_adds_no_trainables_losses_or_updates(reference):
    with tf.Graph().as_default():
        module = registry.Module(str(reference.model_dir("tf1_train_tags")), tags={"train"})
        module(tf1.placeholder(tf.float32, [None, 16]))
        for key in (tf1.GraphKeys.TRAINABLE_VARIABLES, tf1.GraphKeys.REGULARIZATION_LOSSES,
                    tf1.GraphKeys.UPDATE_OPS):
            assert not tf1.get_collection(key), key


def test_two_instances_have_separate_state_and_variable_maps_without_scope(reference):
    path = str(reference.model_dir("tf1_text_embedding"))
    with tf.Graph().as_default():
        with tf.compat.v1.name_scope("outer"):
            first = registry.Module(path)
        second = registry.Module(path)
        assert first.variable_map.keys() == second.variable_map.keys() == {"embeddings"}
        assert first.variable_map["embeddings"].op.name == "outer/module/embeddings"
        assert second.variable_map["embeddings"].op.name == "module/embeddings"
        assert len(tf1.get_collection(tf1.GraphKeys.TABLE_INITIALIZERS)) == 2


def test_assets_point_into_the_modules_own_assets_directory(reference):
    path = reference.model_dir("tf1_text_embedding")
    with tf.Graph().as_default():
        registry.Module(str(path))
        assets = [t for t in tf1.get_collection(tf1.GraphKeys.ASSET_FILEPATHS)]
        with tf1.Session() as session:
            values = [session.run(t).decode() for t in assets]
    assert values == [str(path.resolve() / "assets" / "_vocab.txt")]


def test_image_module_reports_its_attached_image_size(reference):
    path = str(reference.model_dir("tf1_image_feature_vector"))
    spec = registry.load_module_spec(path)
    assert registry.get_expected_image_size(spec) == [32, 32]
    assert registry.get_num_image_channels(spec, signature="image_feature_vector") == 3
    with tf.Graph().as_default():
        module = registry.Module(spec)
        info = module.get_attached_message("image_module_info", registry.ImageModuleInfo)
        assert (info.default_image_size.height, info.default_image_size.width) == (32, 32)
        assert registry.get_expected_image_size(module) == [32, 32]
        assert module.get_attached_message("no_such_key", registry.ImageModuleInfo) is None
