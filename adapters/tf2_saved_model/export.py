"""Writing in-memory models as reusable TF2 SavedModels.

A reusable SavedModel is what ``registry.KerasLayer`` and a GradientTape loop
consume: a callable root object (``__call__`` with an input signature, taking
``training`` when the model behaves differently in training), and the lists
``variables``, ``trainable_variables`` and ``regularization_losses`` (zero-argument
functions). ``save_reusable`` writes that from whatever a user fine-tuned:

- a ``tf.Module`` (or any trackable) whose ``__call__`` is a ``tf.function``;
- a restored SavedModel (``tf.saved_model.load`` / ``registry.load(..., mode="tf2")``);
- a ``registry.KerasLayer`` of either Keras generation: its SavedModel with the
  layer's current weights (read from the session when fine-tuned in a graph);
- a Keras 3 model or a tf_keras model.

Every case ends in ``_write``: one root object, built here, that holds exactly the
reusable API and a reference to the state it needs.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from registry.errors import SignatureError
from registry.keras._saved_model import unique_variables

from registry.adapters.tf2_saved_model.signatures import call_of


def can_save(obj: Any) -> bool:
    """True if ``save_reusable`` knows how to write ``obj``."""
    if _is_registry_layer(obj) or _is_keras3_model(obj) or _is_tf_keras_model(obj):
        return True
    tf = sys.modules.get("tensorflow")
    if tf is None:  # nothing made with TensorFlow can exist before it is imported
        return False
    from tensorflow.python.trackable.base import Trackable

    return isinstance(obj, Trackable) and (_is_function(call_of(obj)) or bool(_signatures(obj)))


def save_reusable(obj: Any, path: Path, **options: Any) -> None:
    """Write ``obj`` as a reusable SavedModel at ``path`` (which must not exist yet)."""
    if options:
        raise TypeError(f"unexpected options for writing a TF2 SavedModel: {', '.join(options)}")
    path = Path(path)
    if _is_registry_layer(obj):
        _save_layer(obj, path)
    elif _is_keras3_model(obj):
        _save_keras3(obj, path)
    elif _is_tf_keras_model(obj):
        _save_tf_keras(obj, path)
    elif can_save(obj):
        _save_trackable(obj, path)
    else:
        raise TypeError(
            f"cannot write a {type(obj).__name__} as a SavedModel: pass a tf.Module with a tf.function "
            "__call__, a restored SavedModel, a registry KerasLayer, or a Keras model")


# --- what is it? -------------------------------------------------------------------------------

def _is_registry_layer(obj) -> bool:
    from registry.keras._saved_model import LoadedModel

    return isinstance(getattr(obj, "_loaded", None), LoadedModel) and hasattr(obj, "loaded_object")


def _is_keras3_model(obj) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def _is_tf_keras_model(obj) -> bool:
    tf_keras = sys.modules.get("tf_keras")
    return tf_keras is not None and isinstance(obj, tf_keras.Model)


def _is_function(fn) -> bool:
    """A traced or restored tf.function (its concrete functions can be saved)."""
    return fn is not None and hasattr(fn, "get_concrete_function")


def _signatures(obj) -> dict:
    return dict(getattr(obj, "signatures", None) or {})


# --- the root object ---------------------------------------------------------------------------

def _write(path: Path, *, call, state, variables, trainable_variables, regularization_losses,
           signatures=None, traces=()) -> None:
    """Save a root with the reusable API. ``state`` keeps the objects owning tables, assets and variables."""
    import tensorflow as tf

    # Not a tf.Module: its `variables` is a read-only property, and here it must be a saved list.
    root = tf.__internal__.tracking.AutoTrackable()
    root.state = state
    root.__call__ = call
    root.variables = list(variables)
    root.trainable_variables = list(trainable_variables)
    root.regularization_losses = [_as_loss_function(loss) for loss in regularization_losses]
    signatures = signatures if signatures else _serving_signature(call, traces)
    tf.saved_model.save(root, str(path), signatures=signatures or None)


def _as_loss_function(loss):
    """A saveable zero-argument function: restored and traced ones are kept, plain callables traced."""
    import tensorflow as tf

    if _is_function(loss) and getattr(loss, "input_signature", ()) is not None:
        return loss
    return tf.function(loss, input_signature=[])


def _serving_signature(call, traces=()):
    """``serving_default`` from the call's inference trace, when its inputs are tensors (as signatures need)."""
    import tensorflow as tf

    for concrete in list(traces) or getattr(call, "concrete_functions", None) or _concrete_functions(call):
        args, kwargs = concrete.structured_input_signature
        # `training` may have been bound positionally: (spec, False).
        training = kwargs.get("training", args[1] if len(args) == 2 and isinstance(args[1], bool) else False)
        takes_training = "training" in kwargs or len(args) == 2
        if training is not False or not args or not isinstance(args[0], tf.TensorSpec):
            continue
        if len(args) > (2 if takes_training else 1):
            continue
        return {"serving_default": _serving_function(call, args[0], takes_training)}
    return None


def _serving_function(call, spec, takes_training: bool):
    """A tf.function of one tensor like ``spec`` returning ``call``'s inference outputs as a dict."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=spec.name or "inputs")])
    def serve(x):
        outputs = call(x, training=False) if takes_training else call(x)
        return outputs if isinstance(outputs, dict) else {"default": outputs}

    return serve


def _concrete_functions(call) -> list:
    """Concrete functions of a freshly traced tf.function (restored ones list them as an attribute)."""
    if getattr(call, "input_signature", None) is not None:
        try:
            return [call.get_concrete_function(training=False)]
        except TypeError:
            return [call.get_concrete_function()]
    return []


# --- the cases ---------------------------------------------------------------------------------

def _save_trackable(obj, path: Path) -> None:
    """A tf.Module with a traced __call__, or a restored SavedModel (fine-tuned or not)."""
    call = call_of(obj)
    if not _is_function(call):
        if not _signatures(obj):
            raise SignatureError(f"a {type(obj).__name__} without a tf.function __call__ or signatures cannot be saved")
        call = None
    elif getattr(call, "input_signature", None) is None and not getattr(call, "concrete_functions", None) \
            and call.experimental_get_tracing_count() == 0:
        raise SignatureError(
            "__call__ has never been traced and has no input_signature: decorate it with "
            "@tf.function(input_signature=[...]) or call it once before saving")
    trainable = _variables_of(obj, "trainable_variables", call)
    every = unique_variables(list(_variables_of(obj, "variables", call)) + list(trainable))
    losses = list(getattr(obj, "regularization_losses", None) or [])
    if call is None:
        import tensorflow as tf

        # Signatures only (e.g. a SavedModel exported for serving): keep them; there is no __call__ to write.
        tf.saved_model.save(obj, str(path), signatures=_signatures(obj))
        return
    _write(path, call=call, state=obj, variables=every, trainable_variables=trainable,
           regularization_losses=losses, signatures=_signatures(obj))


def _variables_of(obj, attribute: str, call) -> list:
    if hasattr(obj, attribute):
        return list(getattr(obj, attribute))
    concrete = getattr(call, "concrete_functions", None) or []
    return unique_variables(v for f in concrete for v in getattr(f, attribute))


def _save_layer(layer, path: Path) -> None:
    """The layer's SavedModel, with the weights the layer has now."""
    import tensorflow as tf

    if tf.executing_eagerly():
        # The layer's weights are the restored object's own variables: they are already current.
        _save_trackable(layer.loaded_object, path)
        return
    # In a graph the values live in a session: read them there, then write eagerly from a fresh
    # copy of the model (eager execution is per thread, and a new thread starts eager).
    from tf_keras.api._v1.keras import backend

    trainable, other = layer._loaded.variables()
    values = backend.get_session().run(trainable + other)
    _in_eager_thread(_save_with_values, layer._loaded, values, path)


def _save_with_values(model, values, path: Path) -> None:
    from registry.keras._saved_model import LoadedModel

    # The same model restored by its own adapter, eagerly (this runs in a thread of its own).
    fresh = LoadedModel(model.adapter, model.path, mode="tf2", signature=model.signature)
    trainable, other = fresh.variables()
    for variable, value in zip(trainable + other, values, strict=True):
        variable.assign(value)
    _save_trackable(fresh.obj, path)


def _in_eager_thread(fn, *args) -> None:
    outcome: dict[str, BaseException] = {}

    def run():
        try:
            fn(*args)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=run, name="save_reusable")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]


def _input_spec(model):
    """The input structure of a built Keras model as TensorSpecs (batch dimension left open)."""
    import tensorflow as tf

    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise SignatureError(
            f"the {type(model).__name__} has no known inputs: build it from keras.Input(...) "
            "(a Sequential starting with an Input, or a functional model) before saving")
    if isinstance(inputs, dict):
        return {k: tf.TensorSpec(v.shape, v.dtype, name=k) for k, v in inputs.items()}
    specs = [tf.TensorSpec(v.shape, v.dtype, name=getattr(v, "name", None) or None) for v in inputs]
    return specs[0] if len(specs) == 1 else specs


def _traced_call(model):
    """A tf.function calling ``model``, traced for training=True and training=False."""
    import tensorflow as tf

    spec = _input_spec(model)

    @tf.function
    def call(inputs, training=False):
        return model(inputs, training=training)

    traces = [call.get_concrete_function(spec, training=training) for training in (False, True)]
    return call, traces


def _keras_layers(model):
    """Every layer inside a Keras model, nested models included."""
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _keras_layers(layer)


def _save_keras3(model, path: Path) -> None:
    call, traces = _traced_call(model)
    losses = []
    # Keras 3 keeps weight regularizers on the variables; registry layers bring their model's own losses.
    for layer in [model, *_keras_layers(model)]:
        for weight in layer.trainable_weights if layer is not model else []:
            regularizer = getattr(weight, "regularizer", None)
            if regularizer is not None:
                losses.append(_regularizer_loss(regularizer, weight.value))
        if _is_registry_layer(layer) and layer.trainable:
            losses += layer._loaded.regularization_losses()
    # The model tracks its variables and any TF resource (lookup tables, assets) of its layers.
    _write(path, call=call, state=model, variables=[v.value for v in model.variables],
           trainable_variables=[v.value for v in model.trainable_variables], regularization_losses=losses,
           traces=traces)


def _regularizer_loss(regularizer, variable):
    # A closure, not default arguments: tf.function would turn those into inputs.
    return lambda: regularizer(variable)


def _save_tf_keras(model, path: Path) -> None:
    import tensorflow as tf

    if not tf.executing_eagerly():
        raise SignatureError(
            "a tf_keras model built in a tf.Graph cannot be written as a TF2 SavedModel; publish the "
            "registry KerasLayer inside it (its fine-tuned SavedModel), or build the model eagerly")
    call, traces = _traced_call(model)
    # tf_keras keeps weight regularizers as zero-argument callables on the layers.
    losses = [loss for layer in [model, *_keras_layers(model)] for loss in getattr(layer, "_callable_losses", [])]
    _write(path, call=call, state=model, variables=model.variables,
           trainable_variables=model.trainable_variables, regularization_losses=losses, traces=traces)
