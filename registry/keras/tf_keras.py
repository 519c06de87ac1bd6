"""``registry.tf_keras.KerasLayer``: a registry model as a tf_keras (Keras 2) layer, in graphs and eagerly.

This is the layer mode tf1 fine-tuning uses: inside ``with tf.Graph().as_default():``
a tf_keras ``Model.fit`` trains a TF2 SavedModel's variables through it. tf_keras
accepts a ``tf.Variable`` as a weight through ``add_weight(getter=...)``, so the layer
adds the SavedModel's variables themselves (under sanitized names) and the
optimizer updates what the SavedModel's functions read.
"""

from __future__ import annotations

import os

import tensorflow as tf
import tf_keras

# get_session is exported only in tf_keras's v1 API, which is the one a graph-mode caller lives in.
from tf_keras.api._v1.keras import backend as _v1_backend

from registry.keras._saved_model import SavedModelLayerMixin, weight_names
from registry.modes import current_mode


@tf_keras.utils.register_keras_serializable(package="registry")
class KerasLayer(SavedModelLayerMixin, tf_keras.layers.Layer):
    """A registry model, of any format whose adapter provides a reusable object, as a tf_keras layer.

    Arguments are those of ``registry.KerasLayer`` (the Keras 3 layer); the matrix gate
    runs in the current mode (tf1 inside a ``tf.Graph``, else tf2).
    """

    def __init__(self, handle: str | os.PathLike, trainable: bool = False, signature: str | None = None,
                 output_key: str | None = None, signature_outputs_as_dict: bool = False,
                 arguments: dict | None = None, *, registry=None, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        self._load_saved_model(handle, trainable=trainable, mode=current_mode(), registry=registry,
                               signature=signature, output_key=output_key,
                               signature_outputs_as_dict=signature_outputs_as_dict, arguments=arguments)
        if self._loaded.table_initializers:
            # tf_keras initializes variables in its session but not lookup tables. This runs now,
            # before any op that calls the model exists: once a session has run a graph, the
            # gradient rewrite of an existing function call in it fails.
            _v1_backend.get_session().run(self._loaded.table_initializers)
        if self._loaded.owns_weights:
            trainable_vars, other_vars = self._loaded.variables()
            every = trainable_vars + other_vars
            for i, (variable, name) in enumerate(zip(every, weight_names(every), strict=True)):
                self.add_weight(name=name, shape=variable.shape, dtype=variable.dtype,
                                trainable=i < len(trainable_vars), getter=_existing(variable))
            for loss in self._loaded.regularization_losses():
                # Callable losses are evaluated whenever `model.losses` is read; None drops them while frozen.
                self.add_loss(lambda loss=loss: self._regularization_loss(loss))
        self.built = True

    def call(self, inputs, training=None):
        if not (self.trainable and self._loaded.takes_training):
            # A frozen layer runs in inference mode even while the model around it trains.
            outputs = self._loaded(inputs, training=False)
        else:
            if training is None:
                training = tf_keras.backend.learning_phase()
            # In a graph the learning phase is a tensor: smart_cond builds both branches then, as
            # the model's __call__ was traced for both values of `training`.
            outputs = tf.__internal__.smart_cond.smart_cond(
                training,
                lambda: self._loaded(inputs, training=True),
                lambda: self._loaded(inputs, training=False))
        if self.trainable:
            _build_gradients_now(outputs, self.trainable_weights)
        return outputs

    def _regularization_loss(self, loss):
        if not self.trainable:
            return None
        value = loss()
        _build_gradients_now(value, self.trainable_weights)
        return value



def _build_gradients_now(outputs, variables) -> None:
    """In a graph, build the gradient of a SavedModel function call right after the call.

    A restored function's call op is rewritten (given extra outputs) when its gradient is
    first built. If a session has run the graph in between (``model.predict`` or reading a
    weight before ``fit``), the session's copy of the op no longer matches and training
    fails with "Connecting to invalid output 1". Building the gradient at once makes the
    op final before any session sees it; the unused gradient ops are never run.
    """
    if tf.executing_eagerly() or tf.inside_function() or not variables:
        return
    flat = [t for t in tf.nest.flatten(outputs) if t.dtype.is_floating]
    if flat:
        tf.compat.v1.gradients(flat, list(variables))


def _existing(variable):
    """A tf_keras weight getter that returns ``variable`` instead of creating one."""
    def getter(*args, **kwargs):
        return variable
    return getter
