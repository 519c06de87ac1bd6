"""TF1 Hub modules in mode tf2 (signatures), registry.load in both modes, and the matrix gate on direct names."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import registry
from registry.adapters.tf1_hub.adapter import TF1HubAdapter
from tests.conftest import REFERENCE_DIR
from tests.services import ReferenceArtifacts

tf1 = tf.compat.v1
TF1_MODELS = ReferenceArtifacts(REFERENCE_DIR).names_of_format("tf1_hub")


@pytest.mark.parametrize("name", TF1_MODELS)
def test_mode_tf2_signatures_reproduce_the_reference_outputs(reference, name):
    inputs, expected = reference.expected(name)
    loaded = TF1HubAdapter().load(reference.model_dir(name), mode="tf2")
    for signature, arrays in inputs.items():
        outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in arrays.items()})
        for output, value in expected[signature].items():
            np.testing.assert_allclose(outputs[output].numpy(), value, atol=1e-5)


def test_mode_tf2_module_is_callable_on_its_default_signature(reference):
    inputs, expected = reference.expected("tf1_dense_two_signatures")
    loaded = TF1HubAdapter().load(reference.model_dir("tf1_dense_two_signatures"), mode="tf2")
    x = tf.constant(inputs["default"]["default"])
    np.testing.assert_allclose(loaded(x).numpy(), expected["default"]["default"], atol=1e-5)
    assert set(loaded(x, as_dict=True)) == {"default", "hidden_activations"}
    cats = loaded({k: tf.constant(v) for k, v in inputs["fruit_to_pet"].items()}, signature="fruit_to_pet",
                  as_dict=True)["cats"]
    np.testing.assert_allclose(cats.numpy(), expected["fruit_to_pet"]["cats"], atol=1e-5)
    with pytest.raises(registry.SignatureError, match="no output named 'default'"):
        loaded({k: tf.constant(v) for k, v in inputs["fruit_to_pet"].items()}, signature="fruit_to_pet")


def test_mode_tf2_picks_a_graph_variant_by_tags(reference):
    inputs, _ = reference.expected("tf1_train_tags")
    adapter = TF1HubAdapter()
    train = adapter.load(reference.model_dir("tf1_train_tags"), mode="tf2", tags={"train"})
    assert train.tags == {"train"}
    assert train(tf.constant(inputs["default"]["default"])).shape == (5, 4)
    with pytest.raises(registry.SignatureError, match=r"variants are: set\(\), \{'train'\}"):
        adapter.load(reference.model_dir("tf1_train_tags"), mode="tf2", tags={"serve"})


def test_registry_load_by_catalog_handle_in_both_modes(reference, registry_env):
    record = registry.publish(reference.model_dir("tf1_dense_two_signatures"), name="hub/dense")
    assert record.format == "tf1_hub"
    inputs, expected = reference.expected("tf1_dense_two_signatures")
    x = inputs["default"]["default"]
    with tf.Graph().as_default():
        module = registry.load(record.handle, mode="tf1")
        assert isinstance(module, registry.Module)
        y = module(x)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            np.testing.assert_allclose(session.run(y), expected["default"]["default"], atol=1e-5)
        # The direct name resolves catalog handles too.
        assert isinstance(registry.Module(record.handle, name="again"), registry.Module)
    eager = registry.load(record.handle, mode="tf2")
    np.testing.assert_allclose(eager(tf.constant(x)).numpy(), expected["default"]["default"], atol=1e-5)


def test_fine_tuning_in_mode_tf2_is_refused_with_the_alternative(reference, registry_env):
    record = registry.publish(reference.model_dir("tf1_train_tags"), name="hub/train")
    with pytest.raises(registry.UnsupportedOperation) as raised:
        registry.fine_tune(record.handle, mode="tf2")
    # The matrix's "Instead:": convert to a TF2 SavedModel first, or fine-tune in mode tf1.
    assert raised.value.alternative.startswith("convert it to a fine-tunable TF2 SavedModel with registry.convert(")
    assert "fine-tune in mode tf1" in raised.value.alternative
    with pytest.raises(registry.UnsupportedOperation, match="fine-tune in mode tf1"):
        registry.Module(str(reference.model_dir("tf1_train_tags")), trainable=True)


def test_module_needs_a_graph(reference):
    with pytest.raises(registry.ModeError, match="tf.Graph"):
        registry.Module(str(reference.model_dir("tf1_dense_two_signatures")))


def test_create_module_spec_from_eager_code_builds_its_own_graph():
    """module_fn always runs in a tf.Graph of its own, so eager code may define a module (as hub 0.15 allowed)."""
    def module_fn():
        x = tf1.placeholder(tf.float32, [None, 2])
        registry.add_signature(inputs=x, outputs=x * 2.0)

    assert tf.executing_eagerly()
    spec = registry.create_module_spec(module_fn)
    assert spec.get_signature_names() == ["default"]
    with tf.Graph().as_default():
        y = registry.Module(spec)(np.ones([1, 2], np.float32))
        with tf1.Session() as session:
            assert session.run(y).tolist() == [[2.0, 2.0]]
    # What the matrix refuses in mode tf2 is turning TF2 objects into the format, naming what to do instead.
    with pytest.raises(registry.UnsupportedOperation) as raised:
        registry.compatibility_matrix().check("tf1_hub", "create", "tf2")
    assert "create_module_spec" in raised.value.alternative and "tf.saved_model.save" in raised.value.alternative


def test_fine_tune_picks_the_train_variant_and_makes_variables_trainable(reference, registry_env):
    record = registry.publish(reference.model_dir("tf1_train_tags"), name="hub/train")
    with tf.Graph().as_default():
        module = registry.fine_tune(record.handle, mode="tf1")
        assert module.tags == {"train"}
        assert tf1.trainable_variables() and tf1.get_collection(tf1.GraphKeys.REGULARIZATION_LOSSES)
