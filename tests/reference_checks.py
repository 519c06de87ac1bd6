"""Running reference models loaded by the registry and comparing with the reference stack's outputs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

ATOL = 1e-5


def check_tf2_mode(loaded, fmt: str, inputs: dict, outputs: dict) -> None:
    """Assert a model loaded in mode tf2 reproduces every recorded output."""
    for signature, feeds in inputs.items():
        if signature == "__call__":
            (value,) = feeds.values()
            got = {"default": loaded(tf.constant(value))}
        else:
            got = loaded.signatures[signature](**{k: tf.constant(v) for k, v in feeds.items()})
        for key, want in outputs[signature].items():
            np.testing.assert_allclose(np.asarray(got[key]), want, atol=ATOL, err_msg=f"{signature}:{key}")


def check_tf2_saved_model_in_graph(loaded, inputs: dict, outputs: dict) -> None:
    """Assert a TF2 SavedModel loaded in mode tf1 (inside the current graph) reproduces its outputs."""
    (value,) = inputs["__call__"].values()
    dtype = tf.string if value.dtype.kind in "US" else tf.as_dtype(value.dtype)
    x = tf.compat.v1.placeholder(dtype, [None, *value.shape[1:]])
    y = loaded(x)
    with tf.compat.v1.Session() as session:
        session.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()])
        got = session.run(y, {x: value})
    np.testing.assert_allclose(got, outputs["__call__"]["default"], atol=ATOL)
