"""Reading a TF2 SavedModel's signatures and call signature for the catalog, from ``saved_model.pb`` alone.

What the catalog records is what ``tf.saved_model.load`` would show: the root
object's ``__call__`` traces (``structured_input_signature`` and
``structured_outputs``, decoded from the object graph's StructuredValues) and
the lengths of its ``variables``, ``trainable_variables`` and
``regularization_losses`` lists. This module reads them from the proto as the
loader revives them, without importing TensorFlow. Where the loader (or the
former TensorFlow-based reading) would do something this reader does not
reproduce — a TF1 SavedModel, a registered or specially revived class, a
composite type other than sparse and ragged tensors, a dtype it does not know,
an output that is no TypeSpec — it raises ``Unsupported``, and the adapter asks
TensorFlow itself, so a record never depends on which path read it.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Callable

from registry.adapter import SignatureInfo, TensorInfo

from registry.adapters.saved_model_schema import DTYPE_NAMES, RAGGED_TENSOR_SPEC, SPARSE_TENSOR_SPEC


class Unsupported(Exception):
    """Something only TensorFlow can read the way ``tf.saved_model.load`` does."""


def dtype_name(value: int) -> str:
    """TensorFlow's name of a ``DataType`` enum value (``1`` -> ``float32``)."""
    try:
        return DTYPE_NAMES[value]
    except KeyError:
        raise Unsupported(f"DataType {value}") from None


def tensor_info_from_proto(info, dtype_name: Callable[[int], str] = dtype_name) -> TensorInfo:
    """A TensorInfo proto (as in a SignatureDef) as a catalog ``TensorInfo``."""
    dtype = dtype_name(info.dtype)
    kind = "sparse" if info.WhichOneof("encoding") == "coo_sparse" else (
        "ragged" if info.WhichOneof("encoding") == "composite_tensor" else "dense")
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(None if d.size < 0 else d.size for d in shape.dim)
    return TensorInfo(dtype=dtype, shape=dims, kind=kind)


def signature_defs(meta_graph, tags=frozenset(), dtype_name: Callable[[int], str] = dtype_name) -> list[SignatureInfo]:
    """A MetaGraphDef's signatures (bookkeeping ones left out), sorted by name."""
    out = []
    for name in sorted(meta_graph.signature_def):
        sig = meta_graph.signature_def[name]
        if name.startswith("__"):  # e.g. __saved_model_init_op is bookkeeping, not an interface
            continue
        out.append(SignatureInfo(
            name=name,
            inputs={k: tensor_info_from_proto(v, dtype_name) for k, v in sorted(sig.inputs.items())},
            outputs={k: tensor_info_from_proto(v, dtype_name) for k, v in sorted(sig.outputs.items())},
            tags=frozenset(tags),
        ))
    return out


# --- the call signature, whoever decoded the traces ----------------------------------------------

@dataclass(frozen=True)
class Vocabulary:
    """How to tell a TypeSpec in a trace, and turn one (or an output value) into a ``TensorInfo``."""

    is_spec: Callable[[Any], bool]
    info: Callable[[Any], TensorInfo]
    is_single_output: Callable[[Any], bool]


def call_signature(traces, words: Vocabulary) -> tuple[SignatureInfo | None, bool]:
    """``__call__`` as a signature named ``__call__``, and whether it takes ``training``.

    ``traces``: ``(args, kwargs, structured_outputs)`` of each concrete function, in the saved order.
    """
    traces = list(traces)
    if not traces:
        return None, False
    # Prefer the trace without a training flag, or training=False: it is the inference interface.
    traces.sort(key=lambda t: "training" in t[1] and t[1]["training"] is not False)
    takes_training = any("training" in kwargs or len(args) > 1 for args, kwargs, _ in traces)
    args, kwargs, structured = traces[0]
    inputs = {}
    flat_args = [a for a in args if words.is_spec(a)]
    if len(flat_args) == 1 and not kwargs:
        inputs[getattr(flat_args[0], "name", None) or "inputs"] = words.info(flat_args[0])
    else:
        for i, spec in enumerate(args):
            if isinstance(spec, dict):
                inputs.update({k: words.info(v) for k, v in spec.items() if words.is_spec(v)})
            elif words.is_spec(spec):
                inputs[getattr(spec, "name", None) or f"input_{i}"] = words.info(spec)
        for k, v in kwargs.items():
            if words.is_spec(v):
                inputs[k] = words.info(v)
    if isinstance(structured, dict):
        outputs = {k: words.info(v) for k, v in structured.items()}
    elif words.is_single_output(structured):
        outputs = {"default": words.info(structured)}
    else:
        outputs = {}
    return SignatureInfo(name="__call__", inputs=inputs, outputs=outputs), takes_training


# --- traces decoded from the proto ---------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """A decoded TensorSpec (``name`` kept), BoundedTensorSpec, SparseTensorSpec or RaggedTensorSpec."""

    kind: str
    dtype: str
    shape: tuple | None
    name: str | None = None


@dataclass(frozen=True)
class Shape:
    """A decoded TensorShape (in a signature, only ever part of a composite spec's state)."""

    dims: tuple | None


@dataclass(frozen=True)
class DType:
    """A decoded DType, by its TensorFlow name."""

    name: str


def _spec_info(value) -> TensorInfo:
    if not isinstance(value, Spec):  # TensorFlow would make a TensorSpec of a Python value: let it
        raise Unsupported(f"a {type(value).__name__} where a TypeSpec was expected")
    return TensorInfo(dtype=value.dtype, shape=value.shape, kind=value.kind)


PROTO_SPECS = Vocabulary(is_spec=lambda v: isinstance(v, Spec), info=_spec_info,
                         is_single_output=lambda v: isinstance(v, Spec))


def _shape(proto) -> Shape:
    # As TensorShape(proto): -1 is an unknown dimension, every other size is kept as it is.
    return Shape(None if proto.unknown_rank else tuple(None if d.size == -1 else d.size for d in proto.dim))


def _composite(proto) -> Spec:
    """A SparseTensorSpec or RaggedTensorSpec from its ``type_state``; anything else is TensorFlow's to read."""
    kind = {SPARSE_TENSOR_SPEC: "sparse", RAGGED_TENSOR_SPEC: "ragged"}.get(proto.type_spec_class)
    if kind is None:
        raise Unsupported(f"a {proto.type_spec_class_name or 'TypeSpec'} (class {proto.type_spec_class})")
    state = decode(proto.type_state)
    # SparseTensorSpec(shape, dtype); RaggedTensorSpec(shape, dtype, ragged_rank, row_splits_dtype), the
    # ragged rank below a known rank. Any other state (a flat_values_spec, a rank to infer, a value the
    # constructor would convert or refuse) is left to TensorFlow.
    arity = 2 if kind == "sparse" else 4
    if type(state) is not tuple or len(state) != arity or not isinstance(state[0], Shape) \
            or not isinstance(state[1], DType):
        raise Unsupported(f"a {kind} TypeSpec state {state!r}")
    shape, dtype = state[0], state[1]
    if kind == "ragged":
        ragged_rank, row_splits_dtype = state[2], state[3]
        if type(ragged_rank) is not int or not isinstance(row_splits_dtype, DType) or (
                shape.dims is not None and ragged_rank >= len(shape.dims)):
            raise Unsupported(f"a ragged TypeSpec state {state!r}")
    return Spec(kind=kind, dtype=dtype.name, shape=shape.dims)


def decode(value) -> Any:
    """A StructuredValue as ``nested_structure_coder.decode_proto`` returns it, with ``Spec`` for TypeSpecs."""
    kind = value.WhichOneof("kind")
    if kind == "none_value":
        return None
    if kind in ("float64_value", "int64_value", "bool_value", "string_value"):
        return getattr(value, kind)
    if kind == "list_value":
        return [decode(v) for v in value.list_value.values]
    if kind == "tuple_value":
        return tuple(decode(v) for v in value.tuple_value.values)
    if kind == "dict_value":
        return {key: decode(v) for key, v in value.dict_value.fields.items()}
    if kind == "named_tuple_value":
        items = [(pair.key, decode(pair.value)) for pair in value.named_tuple_value.values]
        try:
            return collections.namedtuple(value.named_tuple_value.name, [k for k, _ in items])(**dict(items))
        except (TypeError, ValueError) as error:
            raise Unsupported(f"namedtuple {value.named_tuple_value.name!r}: {error}") from None
    if kind == "tensor_shape_value":
        return _shape(value.tensor_shape_value)
    if kind == "tensor_dtype_value":
        return DType(dtype_name(value.tensor_dtype_value))
    if kind in ("tensor_spec_value", "bounded_tensor_spec_value"):
        spec = getattr(value, kind)
        return Spec(kind="dense", dtype=dtype_name(spec.dtype), shape=_shape(spec.shape).dims, name=spec.name or None)
    if kind == "type_spec_value":
        return _composite(value.type_spec_value)
    raise Unsupported(f"a StructuredValue holding {kind or 'nothing'}")  # tensors and numpy values, or unset


def traces_from_proto(object_graph, function_node) -> list:
    """The ``(args, kwargs, outputs)`` of a SavedFunction's concrete functions, as the loader restores them."""
    traces = []
    for name in function_node.function.concrete_functions:
        if name not in object_graph.concrete_functions:
            raise Unsupported(f"concrete function {name!r} is not in the object graph")
        saved = object_graph.concrete_functions[name]
        signature = decode(saved.canonicalized_input_signature)
        if type(signature) is not tuple or len(signature) != 2 or type(signature[0]) is not tuple \
                or type(signature[1]) is not dict:
            raise Unsupported(f"concrete function {name!r} has the input signature {signature!r}")
        traces.append((*signature, decode(saved.output_signature)))
    return traces


# --- traces of a restored object (TensorFlow's own reading) --------------------------------------

def tensorflow_vocabulary() -> Vocabulary:
    """The vocabulary of restored (or freshly traced) functions' TypeSpecs and tensors."""
    import tensorflow as tf

    def spec_to_info(spec) -> TensorInfo:
        if isinstance(spec, tf.SparseTensorSpec):
            kind = "sparse"
        elif isinstance(spec, tf.RaggedTensorSpec):
            kind = "ragged"
        else:
            kind = "dense"
        shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
        return TensorInfo(dtype=spec.dtype.name, shape=shape, kind=kind)

    # A restored function's outputs are TypeSpecs; a freshly traced one's are symbolic tensors.
    return Vocabulary(
        is_spec=lambda v: isinstance(v, tf.TypeSpec),
        info=lambda v: spec_to_info(v if isinstance(v, tf.TypeSpec) else tf.type_spec_from_value(v)),
        is_single_output=lambda v: isinstance(v, (tf.Tensor, tf.SparseTensor, tf.RaggedTensor, tf.TypeSpec)))


def call_of(obj) -> Any:
    """``obj.__call__`` (a tf.function on a tf.Module or a restored SavedModel), or None if it has none.

    The attribute itself is what the callers inspect and save, not whether ``obj`` is callable.
    """
    try:
        return obj.__call__
    except AttributeError:
        return None


def traces_of(obj) -> list:
    """The ``(args, kwargs, outputs)`` of a restored object's ``__call__`` concrete functions."""
    call = call_of(obj)
    concrete = list(getattr(call, "concrete_functions", []) or [])
    return [(*f.structured_input_signature, f.structured_outputs) for f in concrete]


# --- the root object, as the loader revives it ----------------------------------------------------

#: The lists of the reusable SavedModel API, in the order the catalog records them.
REUSABLE_LISTS = ("variables", "trainable_variables", "regularization_losses")

#: SavedUserObject identifiers that the loader revives as something other than a plain object
#: (TensorFlow's registrations, and tf_keras's once it is imported).
REVIVED_IDENTIFIERS = frozenset({
    "trackable_dict_wrapper", "trackable_list_wrapper", "trackable_tuple_wrapper", "signature_map",
    "tf_deprecated_optimizer", "optimizer", "experimentalOptimizer", "tf_keras_experimentalOptimizer"})
#: The wrappers a saved list, tuple or dict attribute comes back as (a tuple comes back as a list).
_CONTAINERS = {"trackable_list_wrapper": "list", "trackable_tuple_wrapper": "tuple", "trackable_dict_wrapper": "dict"}


def reusable_api(lengths: dict) -> dict:
    """The ``reusable_api`` record from each list's length, ``None`` where the object has no such attribute."""
    return {"__call__": True, **{n: lengths[n] or 0 for n in REUSABLE_LISTS},
            **{f"has_{n}": lengths[n] is not None for n in REUSABLE_LISTS}}


def read_call(saved_model) -> tuple[SignatureInfo | None, bool, dict | None]:
    """The root's call signature, whether it takes ``training``, and its reusable API (``None`` without a call)."""
    if len(saved_model.meta_graphs) != 1 or not saved_model.meta_graphs[0].HasField("object_graph_def"):
        raise Unsupported("no single object graph: tf.saved_model.load revives a TF1 SavedModel its own way")
    graph = saved_model.meta_graphs[0].object_graph_def
    root = _node(graph, 0)
    if root.WhichOneof("kind") != "user_object" or root.user_object.identifier in REVIVED_IDENTIFIERS:
        raise Unsupported(f"the root object is a {root.WhichOneof('kind')} {root.user_object.identifier!r}")
    children = {ref.local_name: ref.node_id for ref in root.children}  # setattr in order: the last one wins
    if "__call__" not in children:
        return None, False, None
    call = _node(graph, children["__call__"])
    kind = call.WhichOneof("kind")
    if kind == "bare_concrete_function":  # a ConcreteFunction: no list of concrete functions, so no call signature
        return None, False, None
    if kind != "function":
        raise Unsupported(f"__call__ is a {kind}")
    signature, takes_training = call_signature(traces_from_proto(graph, call), PROTO_SPECS)
    if signature is None:
        return None, False, None
    lengths = {n: _revived_length(graph, children[n]) if n in children else None for n in REUSABLE_LISTS}
    return signature, takes_training, reusable_api(lengths)


def _node(graph, node_id: int):
    if not 0 <= node_id < len(graph.nodes):
        raise Unsupported(f"the object graph has no node {node_id}")
    node = graph.nodes[node_id]
    if node.registered_name:  # revived by a class registered in the loading process, if it is
        raise Unsupported(f"node {node_id} is a registered {node.registered_name!r}")
    return node


def _revived_length(graph, node_id: int) -> int:
    """``len()`` of a list attribute, as the loader refills a list, tuple or dict wrapper from the node's children."""
    node = _node(graph, node_id)
    user_object = node.user_object if node.WhichOneof("kind") == "user_object" else None
    container = _CONTAINERS.get(user_object.identifier) if user_object is not None else None
    version = user_object.version if user_object is not None else None
    # The wrappers are registered as version 1; a saved version that rules that out revives a plain object.
    if (container is None or version is None
            or version.min_consumer > 1 or version.producer < 1 or 1 in version.bad_consumers):
        raise Unsupported(f"node {node_id} is not a list, tuple or dict")
    names = [ref.local_name for ref in node.children]
    if container == "dict":
        return len(set(names))
    indices = []
    for name in names:
        try:
            indices.append(int(name))
        except ValueError:
            if container == "list":  # the loader would fail on it
                raise Unsupported(f"list item {name!r} of node {node_id}") from None
            # a tuple wrapper skips a namedtuple's field names
    if any(i < 0 for i in indices):
        raise Unsupported(f"a negative list index in node {node_id}")
    return max(indices, default=-1) + 1  # set_list_item pads with None up to the highest index
