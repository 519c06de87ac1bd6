"""Fine-tuning TF2 SavedModels three ways, then publishing the result as the next version with its lineage.

The three ways are the matrix's fine-tune cells for tf2_saved_model: a GradientTape loop on
``registry.load(handle, mode="tf2")`` (mode tf2, no Keras), ``registry.KerasLayer`` in a Keras 3
``Model.fit`` (mode tf2), and ``registry.tf_keras.KerasLayer`` in a tf_keras ``Model.fit`` inside a
``tf.Graph`` (mode tf1). Each fine-tuned model is published as version N+1 of its parent, loaded
back by handle, and must give the fine-tuned outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorflow as tf

import registry
from tests import keras_models

ATOL = 1e-5


@pytest.fixture
def published_image_fv(registry_env, reference_dir):
    return registry.publish(reference_dir / "tf2_image_feature_vector", name="pub/image-fv")


@pytest.fixture
def published_normalizing(registry_env, tmp_path):
    return registry.publish(keras_models.save_normalizing(tmp_path / "normalizing"), name="pub/normalizing")


def tape_fine_tune(model, x, y, steps=30, learning_rate=0.05):
    """A plain GradientTape loop on a restored reusable SavedModel; returns the losses."""
    head = tf.Variable(tf.random.stateless_normal([int(model(x[:1]).shape[-1]), 1], seed=[3, 4]) * 0.1)
    optimizer = tf.optimizers.SGD(learning_rate)
    variables = list(model.trainable_variables) + [head]
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            features = model(x, training=True) if _takes_training(model) else model(x)
            loss = tf.reduce_mean(tf.square(features @ head - y))
            loss += tf.add_n([fn() for fn in model.regularization_losses]) if model.regularization_losses else 0.0
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        losses.append(float(loss))
    return losses


def _takes_training(model) -> bool:
    return "training" in model.__call__.function_spec.fullargspec.args


def snapshot(variables):
    return [v.numpy().copy() for v in variables]


# --- mode tf2, no Keras --------------------------------------------------------------------------

def test_gradient_tape_loop_on_registry_load_lowers_the_loss(published_image_fv):
    model = registry.load(published_image_fv.handle, mode="tf2")
    x, labels = keras_models.image_data()
    y = labels[:, None].astype(np.float32)
    before = snapshot(model.trainable_variables)
    losses = tape_fine_tune(model, x, y)
    assert losses[-1] < losses[0]
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables))


def test_gradient_tape_loop_on_tf_saved_model_load_with_a_training_flag(tmp_path):
    model = tf.saved_model.load(str(keras_models.save_normalizing(tmp_path / "normalizing")))
    (moving,) = [v for v in model.variables if not v.trainable]
    x, y = keras_models.regression_data()
    losses = tape_fine_tune(model, x, y, learning_rate=0.01)
    assert losses[-1] < losses[0]
    assert moving.numpy().any()


def test_fine_tune_api_returns_a_trainable_restored_object(published_image_fv):
    model = registry.fine_tune(published_image_fv.handle, mode="tf2")
    assert model.trainable_variables and all(v.trainable for v in model.trainable_variables)


# --- publishing what was fine-tuned, each of the three ways ---------------------------------------

def _assert_published_child(record, parent, x, expected):
    assert record.handle == f"{parent.publisher}/{parent.model}/{parent.version + 1}"
    assert record.parent == parent.handle
    assert [v.handle for v in registry.lineage(record.handle)] == [record.handle, parent.handle]
    reloaded = registry.load(record.handle, mode="tf2")
    np.testing.assert_allclose(reloaded(tf.constant(x)).numpy(), expected, atol=ATOL)
    for name in ("variables", "trainable_variables", "regularization_losses"):
        assert hasattr(reloaded, name), name
    original = registry.load(parent.handle, mode="tf2")
    assert not np.allclose(original(tf.constant(x)).numpy(), expected, atol=ATOL)
    return reloaded


def test_publish_after_a_gradient_tape_loop(published_image_fv):
    model = registry.load(published_image_fv.handle, mode="tf2")
    x, labels = keras_models.image_data()
    tape_fine_tune(model, x, labels[:, None].astype(np.float32))
    expected = model(tf.constant(x)).numpy()
    record = registry.publish(model, name="pub/image-fv", parent=published_image_fv.handle)
    reloaded = _assert_published_child(record, published_image_fv, x, expected)
    assert len(reloaded.regularization_losses) == 1
    assert "serving_default" in reloaded.signatures


def test_publish_a_keras3_layer_after_fit(published_normalizing):
    import keras

    layer = registry.KerasLayer(published_normalizing.handle, trainable=True)
    model = keras.Sequential([keras.Input((keras_models.FEATURES,)), layer, keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x, y = keras_models.regression_data()
    model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    expected = layer(x).numpy()
    record = registry.publish(layer, name="pub/normalizing", parent=published_normalizing.handle)
    reloaded = _assert_published_child(record, published_normalizing, x, expected)
    # The training flag survives: the published __call__ still centres by the batch mean in training.
    np.testing.assert_allclose(reloaded(tf.constant(x), training=True).numpy().mean(axis=0), 0, atol=1e-5)
    # And it is reusable as a layer again, as the next fine-tuning's starting point.
    again = registry.KerasLayer(record.handle, trainable=True)
    np.testing.assert_allclose(again(x).numpy(), expected, atol=ATOL)


def test_publish_a_whole_keras3_model_with_its_head(published_image_fv):
    import keras

    layer = registry.KerasLayer(published_image_fv.handle, trainable=True)
    model = keras.Sequential([keras.Input((32, 32, 3)), layer, keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = keras_models.image_data()
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    record = registry.publish(model, name="pub/image-classifier", parent=published_image_fv.handle)
    assert record.parent == published_image_fv.handle
    reloaded = registry.load(record.handle, mode="tf2")
    np.testing.assert_allclose(reloaded(tf.constant(x[:4])).numpy(), model.predict(x[:4], verbose=0), atol=ATOL)
    assert len(reloaded.regularization_losses) == 1  # the feature vector's, carried through the layer


def test_publish_a_tf_keras_layer_fine_tuned_in_a_graph(published_image_fv):
    import tf_keras

    x, labels = keras_models.image_data()
    with tf.Graph().as_default():
        layer = registry.tf_keras.KerasLayer(published_image_fv.handle, trainable=True)
        features = layer(tf.constant(x))
        model = tf_keras.Sequential([tf_keras.Input((32, 32, 3)), layer, tf_keras.layers.Dense(3)])
        model.compile(optimizer="adam", loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, labels, epochs=5, batch_size=16, verbose=0)
        expected = tf_keras.backend.get_value(features)
        record = registry.publish(layer, name="pub/image-fv", parent=published_image_fv.handle)
    tf_keras.backend.clear_session()
    _assert_published_child(record, published_image_fv, x, expected)


def test_catalog_show_displays_the_lineage_chain(published_image_fv):
    from click.testing import CliRunner

    from registry.cli import cli

    model = registry.load(published_image_fv.handle, mode="tf2")
    x, labels = keras_models.image_data()
    tape_fine_tune(model, x, labels[:, None].astype(np.float32), steps=3)
    second = registry.publish(model, name="pub/image-fv", parent=published_image_fv.handle)
    tape_fine_tune(model, x, labels[:, None].astype(np.float32), steps=3)
    third = registry.publish(model, name="pub/image-fv", parent=second.handle)
    shown = CliRunner().invoke(cli, ["show", third.handle])
    assert shown.exit_code == 0, shown.output
    assert "pub/image-fv/3 <- pub/image-fv/2 <- pub/image-fv/1" in shown.output
