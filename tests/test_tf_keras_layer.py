"""registry.tf_keras.KerasLayer: tf_keras (Keras 2) in a tf.Graph (mode tf1 fine-tuning) and eagerly."""

from __future__ import annotations

import numpy as np
import pytest

import tensorflow as tf
import tf_keras

import registry
from registry.errors import UnsupportedOperation
from registry.keras.tf_keras import KerasLayer
from tests import keras_models

ATOL = 1e-5


@pytest.fixture(scope="module")
def normalizing_dir(tmp_path_factory):
    return keras_models.save_normalizing(tmp_path_factory.mktemp("models") / "normalizing")


@pytest.fixture
def graph():
    """A fresh TF1 graph, as mode tf1 code builds; tf_keras keeps one session per graph."""
    with tf.Graph().as_default() as g:
        yield g
    tf_keras.backend.clear_session()


def get(variables):
    return [np.array(v) for v in tf_keras.backend.batch_get_value(list(variables))]


def changed(before, after):
    return any(not np.allclose(b, a) for b, a in zip(before, after))


def test_registry_tf_keras_is_this_module():
    assert registry.tf_keras.KerasLayer is KerasLayer
    assert issubclass(KerasLayer, tf_keras.layers.Layer)


# --- mode tf1: Model.fit inside a graph ----------------------------------------------------------

def _fit_in_graph(layer, input_layer, x, y, head, loss, epochs=8):
    saved = list(layer.loaded_object.trainable_variables)
    model = tf_keras.Sequential([input_layer, layer, head])
    model.compile(optimizer="adam", loss=loss)
    # Reading values and predicting before fit must not break fit (see _build_gradients_now).
    model.predict(x[:2], verbose=0)
    before = get(saved)
    history = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0).history["loss"]
    return history, before, get(saved)


def test_fit_in_a_graph_fine_tunes_the_tf2_image_reference(graph, reference):
    layer = KerasLayer(reference.model_dir("tf2_image_feature_vector"), trainable=True)
    x, y = keras_models.image_data()
    losses, before, after = _fit_in_graph(
        layer, tf_keras.Input((32, 32, 3)), x, y, tf_keras.layers.Dense(3),
        tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert not tf.executing_eagerly()
    assert losses[-1] < losses[0]
    assert changed(before, after)


def test_fit_in_a_graph_fine_tunes_the_tf2_text_reference(graph, reference):
    layer = KerasLayer(reference.model_dir("tf2_text_embedding"), trainable=True)
    losses, before, after = _fit_in_graph(
        layer, tf_keras.Input((), dtype="string"), keras_models.TEXTS, keras_models.TEXT_LABELS,
        tf_keras.layers.Dense(2), tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert losses[-1] < losses[0]
    assert changed(before, after)


def test_fit_in_a_graph_with_default_named_variables_training_flag_and_regularization(graph, normalizing_dir):
    layer = KerasLayer(normalizing_dir, trainable=True)
    (moving,) = [v for v in layer.loaded_object.variables if not v.trainable]
    x, y = keras_models.regression_data()
    losses, before, after = _fit_in_graph(layer, tf_keras.Input((keras_models.FEATURES,)), x, y,
                                          tf_keras.layers.Dense(1), "mse")
    assert losses[-1] < losses[0]
    assert changed(before, after)
    assert get([moving])[0].any()  # fit passed training=True: the moving mean was updated
    assert len(layer.losses) == 1


def test_inference_in_a_graph_reproduces_the_references(graph, reference):
    for name in ("tf2_image_feature_vector", "tf2_text_embedding"):
        inputs, outputs = reference.expected(name)
        (x,) = inputs["__call__"].values()
        result = KerasLayer(reference.model_dir(name))(tf.constant(x))
        np.testing.assert_allclose(tf_keras.backend.get_value(result), outputs["__call__"]["default"], atol=ATOL)
    inputs, outputs = reference.expected("tf1_image_feature_vector")
    layer = KerasLayer(reference.model_dir("tf1_image_feature_vector"), signature="image_feature_vector",
                       output_key="default")
    result = layer(tf.constant(inputs["image_feature_vector"]["images"]))
    init = [tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()]
    with tf.compat.v1.Session() as session:
        session.run(init)
        np.testing.assert_allclose(session.run(result), outputs["image_feature_vector"]["default"], atol=ATOL)


def test_fine_tuning_a_tf1_hub_module_in_a_graph_is_refused(graph, reference, registry_env):
    with pytest.raises(UnsupportedOperation) as caught:
        KerasLayer(reference.model_dir("tf1_train_tags"), trainable=True)
    assert caught.value.format == "tf1_hub" and caught.value.alternative
    # The matrix allows fine-tuning in mode tf1, through registry.Module; the layer names both ways.
    assert "registry.convert(handle" in caught.value.alternative and "mode='tf1'" in caught.value.alternative


# --- tf_keras eagerly (mode tf2) ------------------------------------------------------------------

def test_eager_fit_and_h5_round_trip(reference, tmp_path):
    layer = KerasLayer(reference.model_dir("tf2_image_feature_vector"), trainable=True)
    saved = layer.loaded_object.trainable_variables
    before = [v.numpy().copy() for v in saved]
    model = tf_keras.Sequential([tf_keras.Input((32, 32, 3)), layer, tf_keras.layers.Dense(3)])
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = keras_models.image_data()
    losses = model.fit(x, y, epochs=8, batch_size=16, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    assert changed(before, [v.numpy() for v in saved])
    assert len(model.losses) == 1  # the SavedModel's regularization loss

    model.save(tmp_path / "model.h5")
    restored = tf_keras.models.load_model(tmp_path / "model.h5")
    assert isinstance(restored.layers[0], KerasLayer)
    np.testing.assert_allclose(restored.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), atol=ATOL)


def test_eager_dict_outputs_and_output_key(reference):
    inputs, outputs = reference.expected("tf1_dense_two_signatures")
    feed = {k: tf.constant(v) for k, v in inputs["fruit_to_pet"].items()}
    result = KerasLayer(reference.model_dir("tf1_dense_two_signatures"), signature="fruit_to_pet",
                        signature_outputs_as_dict=True)(feed)
    for key in ("cats", "dogs"):
        np.testing.assert_allclose(result[key].numpy(), outputs["fruit_to_pet"][key], atol=ATOL)
    dogs = KerasLayer(reference.model_dir("tf1_dense_two_signatures"), signature="fruit_to_pet",
                      output_key="dogs")(feed)
    np.testing.assert_allclose(dogs.numpy(), outputs["fruit_to_pet"]["dogs"], atol=ATOL)


def test_eager_tf_keras_model_with_a_text_layer_saves_as_a_reusable_savedmodel(reference, tmp_path):
    from registry.adapters.tf2_saved_model.export import save_reusable

    layer = KerasLayer(reference.model_dir("tf2_text_embedding"), trainable=True)
    model = tf_keras.Sequential([tf_keras.Input((), dtype="string"), layer,
                                 tf_keras.layers.Dense(2, kernel_regularizer="l2")])
    model.compile(optimizer="adam", loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(keras_models.TEXTS, keras_models.TEXT_LABELS, epochs=2, verbose=0)
    save_reusable(model, tmp_path / "saved")
    restored = tf.saved_model.load(str(tmp_path / "saved"))
    x = tf.constant(list(keras_models.TEXTS[:6]))
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), atol=ATOL)  # the vocabulary table came along
    assert len(restored.trainable_variables) == 3 and len(restored.regularization_losses) == 1
    assert "serving_default" in restored.signatures
