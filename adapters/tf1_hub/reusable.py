"""The TF2 object a converted module becomes: the Reusable SavedModel API over pieces of the module graph.

One set of ``tf.Variable`` objects (values from the module's checkpoint), one
TF2 resource per lookup table (re-initialised from its assets whenever the
SavedModel loads), one ``tf.saved_model.Asset`` per asset file. Every function
of the object is a ``tf.compat.v1.wrap_function`` that imports one
``GraphPiece`` (``convert_graph``) with its state placeholders fed the handles
of those shared objects, so the inference and training variants read and
update the same variables:

- ``__call__(inputs, training=False)``: the call signature of the ``{}``
  variant, or with ``training=True`` of the ``{"train"}`` variant with its
  UPDATE_OPS run before the outputs are returned;
- ``variables``, ``trainable_variables``, ``regularization_losses``;
- one signature function per TF1 signature (the ``{}`` variant).

A function running a TF1 ``tf.while_loop`` gets the gradient the TF1 graph built
(``convert_gradient``) as a custom gradient saved with the model
(``with_graph_gradient``), or one that fails saying why (``refuse_gradient``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from registry.adapters.tf1_hub.convert_graph import TABLE_OPS, GraphPiece

tf1 = tf.compat.v1
AutoTrackable: Any = tf.__internal__.tracking.AutoTrackable  # a class (TensorFlow is untyped here)


@dataclass
class SharedState:
    """The TF2 objects every piece's import feeds: by node name in the module graph."""

    variables: dict[str, tf.Variable]
    tables: dict[str, ImportedTable]
    assets: dict[str, tf.saved_model.Asset]


def import_piece(piece: GraphPiece, state: SharedState, inputs: list[tf.Tensor], scope: str):
    """Import ``piece`` into the current function graph; return a function from tensor name to imported tensor."""
    graph = tf1.get_default_graph()
    input_map = {f"{name}:0": tensor for name, tensor in zip(piece.inputs, inputs, strict=True)}
    for name in piece.variables:
        variable = state.variables[name]
        input_map[f"{name}:0"] = graph.capture(variable.handle)
        # Recorded as read, so a GradientTape around a call watches the variable (as for any tf.function).
        graph.watch_variable(variable)
    for name in piece.tables:
        input_map[f"{name}:0"] = graph.capture(state.tables[name].resource_handle)
    for name in piece.assets:
        input_map[f"{name}:0"] = graph.capture(state.assets[name].asset_path)
    # A plain GraphDef import: TF1 control-flow contexts (Python objects a TF1 gradient of tf.while_loop
    # needs) would not survive tf.saved_model.save, so the functions here are what a loaded model runs.
    tf.graph_util.import_graph_def(piece.graph_def, input_map=input_map, name=scope)

    def tensor(name: str) -> tf.Tensor:
        if name in input_map:
            return input_map[name]
        return graph.get_tensor_by_name(f"{scope}/{name}")

    def operation(name: str):
        return graph.get_operation_by_name(f"{scope}/{name.split(':')[0]}")

    return tensor, operation


def wrap_piece(piece: GraphPiece, state: SharedState, specs: list[tf.TensorSpec],
               outputs: dict[str, str], run_first: Sequence[str] = ()):
    """A concrete function of ``specs`` that imports ``piece`` and returns ``outputs`` (key -> tensor name).

    The ops named in ``run_first`` (update ops, initializers) run before any output is returned.
    """

    def body(*args):
        tensor, operation = import_piece(piece, state, list(args), "piece")
        ops = [operation(name) for name in run_first]
        # Declared as control outputs: a caller that ignores the outputs (as TF's resource initializer does)
        # must still run them once the function is inlined.
        tf1.get_default_graph().control_outputs.extend(ops)
        with tf.control_dependencies(ops):
            result = {key: tf.identity(tensor(name)) for key, name in outputs.items()}
            if not result:
                result = {"done": tf.constant(True)}
        return result

    return tf1.wrap_function(body, signature=list(specs))


def _table_dtypes(node) -> tuple[tf.DType, tf.DType]:
    return tf.as_dtype(node.attr["key_dtype"].type), tf.as_dtype(node.attr["value_dtype"].type)


class ImportedTable(tf.saved_model.experimental.TrackableResource):
    """A lookup table of the module as a TF2 resource: created and initialised again on every load."""

    def __init__(self, node, initializer: Callable[[], Any] | None = None):
        super().__init__()
        self._op = TABLE_OPS[node.op]
        self._key_dtype, self._value_dtype = _table_dtypes(node)
        self._initializer = initializer
        # Created now, eagerly: created lazily inside the first function that captures it, it would live there.
        self.resource_handle  # noqa: B018

    def set_initializer(self, initializer: Callable[[], Any]) -> None:
        self._initializer = initializer
        self._initialize()

    def _create_resource(self):
        from tensorflow.python.ops import gen_lookup_ops

        # Anonymous, as TF2's own tables: owned by this handle, never shared by name with another model or
        # with a loaded copy (a named table is destroyed under the feet of a copy sharing its name).
        create = (gen_lookup_ops.anonymous_hash_table if self._op == "HashTableV2"
                  else gen_lookup_ops.anonymous_mutable_hash_table)
        return create(key_dtype=self._key_dtype, value_dtype=self._value_dtype)

    def _initialize(self):
        if self._initializer is None:
            return tf.constant(True)
        return self._initializer()["done"]


def named_signature_function(names: list[str], call: Callable) -> Callable:
    """A Python function with one keyword parameter per signature input, in ``names`` order, calling ``call(*args)``.

    ``tf.function`` reads parameter names from ``inspect.signature``; they become
    the TF2 signature's input names, as the TF1 signature named its inputs.
    """

    def function(*args):
        return call(*args)

    function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # read by inspect.signature
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names])
    return function


def refuse_gradient(function: Any, what: str, reason: str) -> Callable:  # function: a ConcreteFunction
    """``function`` whose gradient fails with a message naming ``what`` and ``reason``.

    For functions that run a TF1 ``tf.while_loop`` whose gradient the converter could
    not build faithfully (``convert_gradient.Refused``): TensorFlow cannot differentiate
    such a loop in a TF2 function, and without this says only "'NoneType' object has
    no attribute 'outer_context'". The gradient is saved with the model (a custom gradient).
    """

    def call(*args):
        @tf.custom_gradient
        def forward(*tensors):
            outputs = function(*tensors)
            keys = sorted(outputs)

            def grad(*upstream, variables=()):
                check = tf.debugging.Assert(tf.constant(False), [
                    f"{what} runs a TF1 tf.while_loop, which TensorFlow cannot differentiate in a TF2 "
                    f"function, and the converter could not build its gradient faithfully: {reason}; "
                    f"fine-tune the TF1 Hub module in mode tf1 instead"])
                with tf.control_dependencies([check]):
                    return ([tf.zeros_like(t) if t.dtype.is_floating else None for t in tensors],
                            [tf.zeros_like(v) for v in variables])

            return [outputs[key] for key in keys], grad

        keys = sorted(function.structured_outputs)
        return dict(zip(keys, forward(*args), strict=True))

    return call


def with_graph_gradient(function: Any, gradient: Any, upstream: Sequence[str],
                        results: dict[str, tuple[str, Any]], state: SharedState) -> Callable:
    """``function`` (a concrete function returning a dict) with ``gradient`` as its gradient.

    For functions that run a TF1 ``tf.while_loop``, which TensorFlow cannot
    differentiate in a TF2 function: ``gradient`` is the piece the TF1 graph built
    (``convert_gradient``), called with ``function``'s arguments and the upstream
    gradients of the outputs named in ``upstream``; it returns the gradients named
    in ``results`` (an argument's index or a variable's node name). Saved with the
    model as a custom gradient, so a loaded model (and tensorflow_hub's KerasLayer,
    and Keras's fit) differentiate through it.
    """
    by_variable = {state.variables[key].ref(): name for name, (kind, key) in results.items() if kind == "variable"}
    by_input = {key: name for name, (kind, key) in results.items() if kind == "input"}

    def call(*args):
        keys = sorted(function.structured_outputs)

        @tf.custom_gradient
        def forward(*tensors):
            outputs = function(*tensors)
            flat = [outputs[key] for key in keys]

            def grad(*upstream_grads, variables=()):
                given = dict(zip(keys, upstream_grads, strict=True))
                # An output nothing depends on gets no upstream gradient: zeros, as tf.gradients would use.
                feeds = [given[key] if given[key] is not None else tf.zeros_like(outputs[key]) for key in upstream]
                computed = gradient(*tensors, *feeds)
                return ([computed[by_input[i]] if i in by_input else None for i in range(len(tensors))],
                        [computed[by_variable[v.ref()]] if v.ref() in by_variable else None for v in variables])

            return flat, grad

        return dict(zip(keys, forward(*args), strict=True))

    return call


class ConvertedModule(AutoTrackable):
    """The root object of a converted SavedModel (tensorflow_hub's Reusable SavedModel API).

    ``AutoTrackable`` rather than ``tf.Module``: ``tf.Module`` computes
    ``variables`` and ``trainable_variables`` itself, and the API wants them as
    plain saved lists.
    """

    def __init__(self, *, state: SharedState, trainable: list[tf.Variable],
                 call_functions: dict[bool, Any], call_specs: list[tf.TensorSpec], call_output: str | None,
                 regularization_losses: list[Any]):
        super().__init__()
        self.variables = [state.variables[name] for name in sorted(state.variables)]
        self.trainable_variables = list(trainable)
        self._tables = [state.tables[name] for name in sorted(state.tables)]
        self._assets = [state.assets[name] for name in sorted(state.assets)]
        self.regularization_losses = [tf.function(loss, input_signature=[]) for loss in regularization_losses]
        names = [spec.name for spec in call_specs]

        # The variants' functions stay in this closure: saved as parts of __call__'s traces, not as attributes.
        def call(inputs, training=False):
            function = call_functions[bool(training)]
            args = [inputs[name] for name in names] if isinstance(inputs, dict) else [inputs]
            outputs = function(*args)
            return outputs[call_output] if call_output else outputs

        self.__call__ = tf.function(call, autograph=False)
        # Inputs as a dict of the signature's input names, as hub.Module took them; a single input also as a
        # tensor, as hub.Module (and hub.KerasLayer) pass it.
        forms = [{spec.name: spec for spec in call_specs}] + ([call_specs[0]] if len(call_specs) == 1 else [])
        for form in forms:
            for training in (False, True):
                self.__call__.get_concrete_function(form, training=training)
