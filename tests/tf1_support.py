"""Helpers shared by the TF1 Hub tests: applying every signature of a module to recorded inputs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1


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
