"""registry.KerasLayer in Keras 3: inference against the reference outputs, fine-tuning with fit, save and load."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import tensorflow as tf
import keras

import registry
from registry.errors import SignatureError, UnsupportedOperation
from registry.keras.layer import KerasLayer
from tests import keras_models

ATOL = 1e-5


@pytest.fixture(scope="module")
def normalizing_dir(tmp_path_factory):
    return keras_models.save_normalizing(tmp_path_factory.mktemp("models") / "normalizing")


@pytest.fixture(scope="module")
def dict_model_dir(tmp_path_factory):
    return keras_models.save_dict_model(tmp_path_factory.mktemp("models") / "dict")


def values(variables):
    return [np.array(v.numpy()) for v in variables]


def changed(before, variables):
    return any(not np.allclose(b, a) for b, a in zip(before, values(variables)))


# --- the public name ---------------------------------------------------------------------------

def test_registry_exports_the_keras3_layer():
    assert registry.KerasLayer is KerasLayer
    assert issubclass(KerasLayer, keras.layers.Layer)


# --- inference reproduces the reference stack ----------------------------------------------------

@pytest.mark.parametrize("name", ["tf2_image_feature_vector", "tf2_text_embedding"])
def test_tf2_reference_inference_through_call(name, reference):
    inputs, outputs = reference.expected(name)
    (x,) = inputs["__call__"].values()
    layer = KerasLayer(reference.model_dir(name))
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), outputs["__call__"]["default"], atol=ATOL)


@pytest.mark.parametrize("name,signature,output_key", [
    ("tf1_dense_two_signatures", "default", None),
    ("tf1_dense_two_signatures", "default", "hidden_activations"),
    ("tf1_image_feature_vector", "image_feature_vector", "default"),
    ("tf1_text_embedding", None, None),
    ("tf1_train_tags", None, None),
])
def test_tf1_hub_reference_inference_through_a_signature(name, signature, output_key, reference):
    inputs, outputs = reference.expected(name)
    sig = signature or "default"
    (x,) = inputs[sig].values()
    layer = KerasLayer(reference.model_dir(name), signature=signature, output_key=output_key)
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), outputs[sig][output_key or "default"], atol=ATOL)


def test_tf1_hub_dict_inputs_and_outputs(reference):
    inputs, outputs = reference.expected("tf1_dense_two_signatures")
    layer = KerasLayer(reference.model_dir("tf1_dense_two_signatures"), signature="fruit_to_pet",
                       signature_outputs_as_dict=True)
    result = layer({k: tf.constant(v) for k, v in inputs["fruit_to_pet"].items()})
    assert set(result) == {"cats", "dogs"}
    for key in result:
        np.testing.assert_allclose(result[key].numpy(), outputs["fruit_to_pet"][key], atol=ATOL)


def test_tf1_hub_layer_in_a_keras_model(reference):
    inputs, outputs = reference.expected("tf1_image_feature_vector")
    model = keras.Sequential([keras.Input((32, 32, 3)),
                              KerasLayer(reference.model_dir("tf1_image_feature_vector"),
                                         signature="image_feature_vector", output_key="default")])
    np.testing.assert_allclose(model.predict(inputs["image_feature_vector"]["images"], verbose=0),
                               outputs["image_feature_vector"]["default"], atol=ATOL)


def test_signature_with_several_outputs_needs_an_output_key(reference):
    layer = KerasLayer(reference.model_dir("tf1_dense_two_signatures"), signature="fruit_to_pet")
    x = np.zeros((1, 50), np.float32)
    with pytest.raises(SignatureError, match="output_key"):
        layer({"apples": x, "oranges": x})


def test_fine_tuning_a_tf1_hub_module_is_the_matrix_cell(reference, registry_env):
    with pytest.raises(UnsupportedOperation) as caught:
        KerasLayer(reference.model_dir("tf1_image_feature_vector"), trainable=True)
    assert caught.value.format == "tf1_hub" and caught.value.operation == "fine_tune"
    assert 'registry.convert(handle, to="tf2_saved_model")' in caught.value.alternative  # what makes it fine-tunable


def test_a_format_without_a_reusable_object_is_refused_by_its_adapter_before_any_download(tmp_path):
    """The layer asks the format's adapter (``check_keras_layer``), right after the matrix gate."""
    from registry.adapter import ArtifactInfo, FormatAdapter
    from registry.matrix import Cell
    from registry.plugin_manager import make_plugin_manager

    class NotKeras(FormatAdapter):
        format = "not_keras"
        description = "a marker file; nothing a Keras layer can wrap"
        matrix = (Cell("not_keras", "load", "tf2", True, "plain Python"),)

        @classmethod
        def detect(cls, path):
            return (path / "not_keras.txt").is_file()

        def inspect(self, path):
            return ArtifactInfo(format=self.format)

        def load(self, path, *, mode, **options):
            return (path / "not_keras.txt").read_text()

    class Plugin:
        @registry.hookimpl
        def register_adapters(self, register):
            register(NotKeras)

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Plugin(), name="not-keras")
    (tmp_path / "artifacts").mkdir()
    reg = registry.Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "artifacts"),
                            cache_dir=tmp_path / "cache", plugin_manager=pm)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "not_keras.txt").write_text("hello")
    record = reg.publish(tmp_path / "model", name="plain/text")
    assert reg.load(record.handle, mode="tf2") == "hello"
    for artifact in (tmp_path / "artifacts").rglob("*.tar.gz"):
        artifact.unlink()  # a download would now fail: the refusal must come first
    shutil.rmtree(tmp_path / "cache")
    with pytest.raises(UnsupportedOperation, match="cannot wrap a not_keras model") as caught:
        KerasLayer(record.handle, registry=reg)
    assert caught.value.format == "not_keras" and caught.value.operation == "load" and caught.value.alternative


# --- fine-tuning with fit ----------------------------------------------------------------------

def _fit(model, x, y, loss, epochs=8):
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    return model.fit(x, y, epochs=epochs, batch_size=16, verbose=0).history["loss"]


def test_fit_fine_tunes_the_tf2_image_reference(reference):
    layer = KerasLayer(reference.model_dir("tf2_image_feature_vector"), trainable=True)
    saved = layer.loaded_object.trainable_variables
    before = values(saved)
    model = keras.Sequential([keras.Input((32, 32, 3)), layer, keras.layers.Dense(3)])
    x, y = keras_models.image_data()
    losses = _fit(model, x, y, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert losses[-1] < losses[0]
    # The variables the SavedModel's own functions read are the ones that moved.
    assert changed(before, saved)
    assert {id(w.value) for w in layer.trainable_weights} == {id(v) for v in saved}


def test_fit_fine_tunes_the_tf2_text_reference_with_string_input(reference):
    layer = KerasLayer(reference.model_dir("tf2_text_embedding"), trainable=True)
    (embeddings,) = layer.loaded_object.trainable_variables
    before = values([embeddings])
    model = keras.Sequential([keras.Input((), dtype="string"), layer, keras.layers.Dense(2)])
    losses = _fit(model, keras_models.TEXTS, keras_models.TEXT_LABELS,
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert losses[-1] < losses[0]
    assert changed(before, [embeddings])


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad"])
def test_fit_with_default_named_variables_and_any_optimizer(optimizer, normalizing_dir):
    layer = KerasLayer(normalizing_dir, trainable=True)
    assert [v.name for v in layer.loaded_object.variables] == ["Variable:0"] * 3
    trainable = layer.loaded_object.trainable_variables
    before = values(trainable)
    model = keras.Sequential([keras.Input((keras_models.FEATURES,)), layer, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": 0.05}}),
                  loss="mse")
    x, y = keras_models.regression_data()
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert changed(before, trainable)
    assert len({w.path for w in layer.weights}) == 3  # distinct, valid weight paths


def _moving_mean(layer):
    (moving,) = [v for v in layer.loaded_object.variables if not v.trainable]
    return moving


def test_training_flag_reaches_call_only_when_trainable(normalizing_dir):
    x, y = keras_models.regression_data()
    frozen = KerasLayer(normalizing_dir)
    frozen(x, training=True)
    assert not _moving_mean(frozen).numpy().any()  # untouched: the frozen layer passed training=False
    layer = KerasLayer(normalizing_dir, trainable=True)
    moving = _moving_mean(layer)
    out = layer(x, training=True)
    np.testing.assert_allclose(out.numpy().mean(axis=0), 0, atol=1e-5)  # centred by the batch mean
    assert moving.numpy().any()
    assert layer.non_trainable_weights[0].value is moving


def test_frozen_layer_has_no_trainable_weights_and_no_losses(normalizing_dir):
    layer = KerasLayer(normalizing_dir)
    model = keras.Sequential([keras.Input((keras_models.FEATURES,)), layer])
    model(np.ones((2, keras_models.FEATURES), np.float32))
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 3
    assert model.losses == []


def test_regularization_losses_join_the_model_losses_when_trainable(normalizing_dir):
    layer = KerasLayer(normalizing_dir, trainable=True)
    model = keras.Sequential([keras.Input((keras_models.FEATURES,)), layer, keras.layers.Dense(1)])
    model(np.ones((2, keras_models.FEATURES), np.float32))
    (w,) = [v for v in layer.loaded_object.trainable_variables if v.shape.rank == 2]
    (loss,) = model.losses
    np.testing.assert_allclose(float(loss), 0.01 * float(tf.reduce_sum(w * w)), rtol=1e-6)


def test_arguments_are_passed_to_call(normalizing_dir):
    x = np.ones((2, keras_models.FEATURES), np.float32)
    plain = KerasLayer(normalizing_dir)(x).numpy()
    doubled = KerasLayer(normalizing_dir, arguments={"scale": 2.0})(x).numpy()
    np.testing.assert_allclose(doubled, 2 * plain, rtol=1e-6)


def test_dict_inputs_and_outputs_in_a_functional_model(dict_model_dir):
    inputs = {"a": keras.Input((2,), name="a"), "b": keras.Input((2,), name="b")}
    outputs = KerasLayer(dict_model_dir, trainable=True)(inputs)
    assert set(outputs) == {"sum", "product"}
    model = keras.Model(inputs, keras.layers.Dense(1)(outputs["sum"]))
    a = np.ones((4, 2), np.float32)
    assert model({"a": a, "b": a}).shape == (4, 1)
    picked = KerasLayer(dict_model_dir, output_key="product")({"a": a, "b": 3 * a})
    np.testing.assert_allclose(picked.numpy(), 2 * 3 * a)


def test_unknown_signature_names_the_available_ones(reference):
    with pytest.raises(SignatureError, match="serving_default"):
        KerasLayer(reference.model_dir("tf2_image_feature_vector"), signature="nope")


# --- save and load -----------------------------------------------------------------------------

def test_keras_file_round_trip_keeps_fine_tuned_weights(reference, tmp_path):
    layer = KerasLayer(reference.model_dir("tf2_text_embedding"), trainable=True)
    model = keras.Sequential([keras.Input((), dtype="string"), layer, keras.layers.Dense(2)])
    _fit(model, keras_models.TEXTS, keras_models.TEXT_LABELS,
         keras.losses.SparseCategoricalCrossentropy(from_logits=True), epochs=3)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    restored_layer = restored.layers[0]
    assert isinstance(restored_layer, KerasLayer) and restored_layer.trainable
    assert restored_layer.get_config()["handle"] == str(reference.model_dir("tf2_text_embedding"))
    x = keras_models.TEXTS[:6]
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=ATOL)
    fresh = KerasLayer(reference.model_dir("tf2_text_embedding"))
    assert not np.allclose(fresh(tf.constant(list(x))).numpy(), restored_layer(tf.constant(list(x))).numpy())


def test_keras_file_round_trip_of_a_signature_layer(reference, tmp_path):
    inputs, outputs = reference.expected("tf1_dense_two_signatures")
    model = keras.Sequential([keras.Input((50,)), KerasLayer(reference.model_dir("tf1_dense_two_signatures"),
                                                              output_key="hidden_activations")])
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(restored.predict(inputs["default"]["default"], verbose=0),
                               outputs["default"]["hidden_activations"], atol=ATOL)
