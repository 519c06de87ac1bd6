"""The example adapter, installed, passes the registry's shipped adapter contract.

Run from anywhere once the package is installed beside the registry:
``python -m pytest tests/`` (the registry's own test suite runs it in a fresh
virtual environment, ``tests/test_example_adapter.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_file_adapter import KerasFileAdapter
from registry.testing.adapter_contract import AdapterContract, AdapterSample

#: A fixed input and the weights that make its output known without running anything but the model.
X = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.0, 2.0]], dtype=np.float32)
KERNEL = np.arange(8, dtype=np.float32).reshape(4, 2) / 10.0
BIAS = np.array([0.5, -0.5], dtype=np.float32)


def tiny_model():
    """Dense(2) over 4 inputs with fixed weights: y = x @ KERNEL + BIAS."""
    import keras

    inputs = keras.Input((4,), name="features")
    outputs = keras.layers.Dense(2, name="scores")(inputs)
    model = keras.Model(inputs, outputs, name="tiny")
    model.get_layer("scores").set_weights([KERNEL, BIAS])
    return model


class KerasFileSample(AdapterSample):
    signature_names = ("__call__",)

    def model_path(self, workdir):
        path = workdir / "tiny.keras"
        tiny_model().save(path)
        return path

    def foreign_path(self, workdir):
        """A TF2 SavedModel directory, which this adapter must leave to the built-in."""
        import tensorflow as tf

        module = tf.Module()
        module.w = tf.Variable(1.0)
        module.f = tf.function(lambda x: x * module.w, input_signature=[tf.TensorSpec([None], tf.float32)])
        tf.saved_model.save(module, str(workdir / "saved"))
        return workdir / "saved"

    def check_loaded(self, model, mode, model_path):
        np.testing.assert_allclose(np.asarray(model(X)), X @ KERNEL + BIAS, atol=1e-6)

    def check_fine_tuned(self, model, mode, model_path):
        import keras

        assert model.trainable_weights, "nothing to train"
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        before = model.evaluate(X, np.zeros((2, 2), np.float32), verbose=0)
        model.fit(X, np.zeros((2, 2), np.float32), epochs=5, verbose=0)
        assert model.evaluate(X, np.zeros((2, 2), np.float32), verbose=0) < before

    def make_object(self, mode, model_path, registry):
        return tiny_model() if mode == "tf2" else None  # Keras 3 builds no graph-mode model


@pytest.mark.parametrize("check", AdapterContract.CHECKS)
def test_keras_file_adapter_contract(check, tmp_path):
    AdapterContract(KerasFileAdapter, KerasFileSample(), tmp_path).run(check)
