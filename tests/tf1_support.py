"""Helpers shared by the TF1 Hub tests: applying every signature of a module to recorded inputs, and TF1 behaviour.

Some test modules run twice: in TF2 behaviour (eager at the top level, as
tensorflow_hub 0.15 ran on TensorFlow 2.x) in the normal run, and under
``tf.compat.v1.disable_v2_behavior()`` in a pytest subprocess that
``tests/test_tf1_fidelity_v1.py`` starts with ``TF1_BEHAVIOUR_ENV`` set. Such a
module calls ``apply_requested_behaviour()`` right after its imports.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

#: Set (to "1") in a pytest subprocess to run its test modules under tf.compat.v1.disable_v2_behavior().
TF1_BEHAVIOUR_ENV = "REGISTRY_TESTS_TF1_BEHAVIOUR"


def apply_requested_behaviour() -> None:
    """Switch this process to TF1 behaviour if the environment asks for it (before any test runs)."""
    if os.environ.get(TF1_BEHAVIOUR_ENV) == "1" and tf.executing_eagerly():
        tf1.disable_v2_behavior()


def tf1_behaviour() -> bool:
    """True under disable_v2_behavior() (graph mode at the top level), False in TF2 behaviour."""
    return os.environ.get(TF1_BEHAVIOUR_ENV) == "1"


def placeholder_for(array: np.ndarray):
    """A placeholder with the array's dtype and shape (batch dimension left open), and the value to feed."""
    if array.dtype.kind in "US":
        return tf1.placeholder(tf.string, [None] + list(array.shape[1:])), array.astype(object)
    return tf1.placeholder(tf.as_dtype(array.dtype), [None] + list(array.shape[1:])), array


def apply_to_inputs(module, inputs: dict[str, dict[str, np.ndarray]], repeats: int = 1):
    """Add ``repeats`` applications of each signature in ``inputs`` to the graph.

    Returns ``(fetches, feed)``: fetches keyed ``(repeat, signature, output)``.
    """
    fetches, feed = {}, {}
    for repeat in range(repeats):
        for signature, arrays in inputs.items():
            tensors = {}
            for name, array in arrays.items():
                tensors[name], feed_value = placeholder_for(array)
                feed[tensors[name]] = feed_value
            outputs = module(tensors, signature=signature, as_dict=True)
            for name, tensor in outputs.items():
                fetches[(repeat, signature, name)] = tensor
    return fetches, feed


def initialize(session) -> None:
    session.run([tf1.global_variables_initializer(), tf1.tables_initializer()])


def save_arrays(path, arrays: dict[str, np.ndarray]) -> None:
    np.savez(path, **arrays)


def load_arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
