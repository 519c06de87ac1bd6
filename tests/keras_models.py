"""Reusable SavedModels this project makes for the Keras-layer and fine-tuning tests.

Each exercises something the reference models do not: variables with TensorFlow's
default name (``Variable:0``, several times — what breaks Keras 3's TFSMLayer in
fit), a ``training`` flag that changes the output and updates a non-trainable
variable, a regularization loss, ``__call__`` keyword arguments, dict inputs and
outputs. They are written by ``save_reusable``, the code under test for export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from registry.adapters.tf2_saved_model.export import save_reusable

FEATURES = 4
UNITS = 3


class Normalizing(tf.Module):
    """x @ w + b, centred by the batch mean in training (updating a moving mean) and by the moving mean otherwise."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(7)
        # No names on purpose: all three are "Variable:0".
        self.w = tf.Variable(rng.normal(size=(FEATURES, UNITS)).astype(np.float32))
        self.b = tf.Variable(np.zeros(UNITS, np.float32))
        self.moving_mean = tf.Variable(np.zeros(UNITS, np.float32), trainable=False)
        self.regularization_losses = [tf.function(lambda: 0.01 * tf.reduce_sum(tf.square(self.w)), input_signature=[])]

    @tf.function
    def __call__(self, x, training=False, scale=1.0):
        h = scale * (tf.matmul(x, self.w) + self.b)
        if training:
            mean = tf.reduce_mean(h, axis=0)
            self.moving_mean.assign(0.9 * self.moving_mean + 0.1 * mean)
            return h - mean
        return h - self.moving_mean


class DictInOut(tf.Module):
    """Dict in ({"a", "b"}), dict out ({"sum", "product"}), one trainable scale."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(2.0)

    @tf.function(input_signature=[{"a": tf.TensorSpec([None, 2], tf.float32), "b": tf.TensorSpec([None, 2], tf.float32)}])
    def __call__(self, inputs):
        return {"sum": self.scale * (inputs["a"] + inputs["b"]), "product": self.scale * inputs["a"] * inputs["b"]}


def save_normalizing(path: Path) -> Path:
    model = Normalizing()
    spec = tf.TensorSpec([None, FEATURES], tf.float32, name="x")
    for training in (False, True):
        model.__call__.get_concrete_function(spec, training=training)
    model.__call__.get_concrete_function(spec, training=False, scale=2.0)
    save_reusable(model, Path(path))
    return Path(path)


def save_dict_model(path: Path) -> Path:
    save_reusable(DictInOut(), Path(path))
    return Path(path)


def regression_data(n: int = 64, seed: int = 0):
    """Inputs and targets a Normalizing model plus a Dense head can fit better than it starts."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    y = np.abs(x @ rng.normal(size=(FEATURES, 1))).astype(np.float32)
    return x, y


def image_data(n: int = 32, classes: int = 3, seed: int = 0):
    """Images whose class is their brightest colour channel: learnable by a small conv feature vector."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    x = rng.uniform(0, 0.5, size=(n, 32, 32, 3)).astype(np.float32)
    x[np.arange(n), :, :, y % 3] += 0.5
    return x, y


TEXTS = np.array(["the cat sat on the mat", "a dog ran", "the dog sat", "a cat ran on the mat",
                  "unknown words here", "the mat"] * 4, dtype=object)
TEXT_LABELS = np.array([0, 1, 1, 0, 1, 0] * 4)
