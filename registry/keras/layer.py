"""``registry.KerasLayer``: a model from the registry as a Keras 3 layer, frozen or fine-tuned.

Keras 3 trains only ``keras.Variable`` objects and names an optimizer's slot
variables after them, so a SavedModel's own ``tf.Variable`` objects (often called
``Variable:0``) cannot be handed to it as they are. This layer wraps each of them
in a ``keras.Variable`` that *borrows* the SavedModel's variable as its storage and
carries a sanitized name: the optimizer updates exactly the variables the
SavedModel's functions read, and no value is ever copied.
"""

from __future__ import annotations

import os

import keras

from registry.keras._saved_model import SavedModelLayerMixin, weight_names


class _BorrowedVariable(keras.Variable):
    """A Keras variable whose storage is an existing ``tf.Variable`` (assigning to it assigns to that)."""

    def __init__(self, variable, *, name: str, trainable: bool):
        self._borrowed = variable
        # A callable initializer with a shape takes Keras's "create storage" path, which we redirect.
        super().__init__(initializer="zeros", shape=tuple(variable.shape), dtype=variable.dtype.name,
                         trainable=trainable, name=name, autocast=False)

    def _initialize(self, value):
        self._value = self._borrowed


@keras.saving.register_keras_serializable(package="registry")
class KerasLayer(SavedModelLayerMixin, keras.layers.Layer):
    """A registry model, of any format whose adapter provides a reusable object, as a Keras 3 layer.

    Args:
        handle: a catalog handle, URL or local directory; it is also the layer's config.
        trainable: expose the model's trainable variables as trainable weights, add its
            regularization losses to the model's losses and call it with ``training``.
        signature: call this named signature instead of ``__call__`` (a format without
            ``__call__`` goes through its adapter's default signature unless one is named).
        output_key: pick this output of a dict-valued result.
        signature_outputs_as_dict: return a signature's whole output dict.
        arguments: extra keyword arguments for every ``__call__``.
        registry: the ``registry.Registry`` that resolves the handle and holds the matrix
            gate (mode tf2); the default registry when None. Not part of the config: a
            layer re-created from a saved model uses the default registry.
    """

    def __init__(self, handle: str | os.PathLike, trainable: bool = False, signature: str | None = None,
                 output_key: str | None = None, signature_outputs_as_dict: bool = False,
                 arguments: dict | None = None, *, registry=None, **kwargs):
        # The model decides its own dtypes: Keras must not cast inputs to the layer's policy.
        kwargs.setdefault("autocast", False)
        super().__init__(trainable=trainable, **kwargs)
        self._load_saved_model(handle, trainable=trainable, mode="tf2", registry=registry, signature=signature,
                               output_key=output_key, signature_outputs_as_dict=signature_outputs_as_dict,
                               arguments=arguments)
        if not self._loaded.owns_weights:
            # Inference only: the model's variables come from the handle and are never saved with the layer.
            self._savedmodel_weights = []
        else:
            trainable_vars, other_vars = self._loaded.variables()
            names = weight_names(trainable_vars + other_vars)
            # In the layer's scope, so two layers' weights (and their optimizer slots) get distinct paths.
            with keras.name_scope(self.name, caller=self):
                self._savedmodel_weights = [
                    _BorrowedVariable(v, name=n, trainable=i < len(trainable_vars))
                    for i, (v, n) in enumerate(zip(trainable_vars + other_vars, names, strict=True))]
        self.built = True

    def call(self, inputs, training=None):
        # A frozen layer runs in inference mode even while the model around it trains.
        training = bool(training) and self.trainable
        outputs = self._loaded(inputs, training=training)
        if self.trainable:
            for loss in self._loaded.regularization_losses():
                self.add_loss(loss())
        return outputs

