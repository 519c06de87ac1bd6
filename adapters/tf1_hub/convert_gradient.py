"""The gradient of a piece that runs a TF1 ``tf.while_loop``, built by the TF1 graph that can still build it.

TensorFlow differentiates a TF1 (v1) while loop (``Enter``/``Exit``/``NextIteration``)
with its ``WhileContext``, a Python object that exists only while the loop's
graph is being built; a GraphDef imported into a TF2 function has none, and
``tf.GradientTape`` fails inside ``control_flow_ops`` ("'NoneType' object has
no attribute 'outer_context'"). A TF1 graph imported with
``import_meta_graph`` does get its contexts back (from the ``while_context``
collection), so there ``tf.compat.v1.gradients`` builds the backward loop as
tensorflow_hub's ``hub.Module(trainable=True)`` does. At conversion time:

1. import the module's meta graph (the variant the function runs) into a
   fresh ``tf.Graph``;
2. build ``tf.compat.v1.gradients(outputs, [float inputs] + [trainable
   variables], grad_ys=<one placeholder per float output>)``;
3. cut from that graph the piece computing those gradients from the inputs
   and the ``grad_ys`` (``convert_graph.extract``: same state placeholders,
   same ref-variable rewriting), which becomes a second TF2 function over the
   same variables; ``reusable.with_graph_gradient`` makes it the custom
   gradient of the forward function.

The backward function recomputes the forward pass (its loop pushes what the
backward loop pops onto stacks that live for one call). That is faithful only
if the recomputation is the same computation: a piece with a stateful op
(random draws, an assignment such as an update op) would differ between the
two passes, so such a gradient is refused (``Refused``), and the function keeps
a gradient that fails saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.adapters.tf1_hub.convert_graph import GraphPiece, extract
from registry.adapters.tf1_hub.format import node_name

#: Stateful ops a recomputed forward pass may hold: per-call stacks and tensor arrays of the
#: TF1 loop gradient, reads of the variables, asserts and prints.
_RECOMPUTABLE_STATEFUL = frozenset({
    "StackV2", "StackPushV2", "StackPopV2", "StackCloseV2", "Stack", "StackPush", "StackPop", "StackClose",
    "TensorArrayV3", "TensorArrayReadV3", "TensorArrayWriteV3", "TensorArrayGatherV3", "TensorArrayScatterV3",
    "TensorArraySizeV3", "TensorArrayGradV3", "TensorArrayConcatV3", "TensorArraySplitV3", "TensorArrayCloseV3",
    "ReadVariableOp", "Placeholder", "PlaceholderWithDefault", "Assert", "Print", "PrintV2",
    "LookupTableFindV2", "LookupTableSizeV2", "LookupTableExportV2", "ControlTrigger",
})
_UPSTREAM = "converted_gradient/upstream"


@dataclass(frozen=True)
class Gradient:
    """A piece computing the gradient of a function's outputs, and how its results map back."""

    piece: GraphPiece
    #: Sorted output keys whose upstream gradient the piece takes (its inputs after the function's own), in order.
    upstream: tuple[str, ...]
    #: Output key of the piece -> ("input", index in the function's arguments) or ("variable", variable node name).
    results: dict[str, tuple[str, int | str]]


@dataclass(frozen=True)
class Refused:
    """Why a function running a TF1 while loop keeps no gradient."""

    reason: str


def build(meta_graph, *, inputs: list[str], outputs: dict[str, str], trainable: list[str],
          what: str) -> Gradient | Refused:
    """The gradient of ``outputs`` (key -> tensor name) w.r.t. the float ``inputs`` (nodes) and ``trainable``.

    ``trainable`` names the variable nodes to differentiate (those the function reads).
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        tf1.train.import_meta_graph(meta_graph, clear_devices=True)
        keys = [k for k in sorted(outputs) if graph.get_tensor_by_name(outputs[k]).dtype.is_floating]
        ys = [graph.get_tensor_by_name(outputs[k]) for k in keys]
        sources: list[tuple[str, int | str, tf.Tensor]] = []
        for index, name in enumerate(inputs):
            tensor = graph.get_tensor_by_name(f"{name}:0")
            if tensor.dtype.is_floating:
                sources.append(("input", index, tensor))
        for name in trainable:
            sources.append(("variable", name, graph.get_tensor_by_name(f"{name}:0")))
        upstream = [tf1.placeholder(y.dtype, y.shape, name=f"{_UPSTREAM}_{i}") for i, y in enumerate(ys)]
        if not ys or not sources:
            return Refused("it has no float output or nothing to differentiate")
        grads = tf1.gradients(ys, [s[2] for s in sources], grad_ys=upstream)
        results: dict[str, tuple[str, int | str]] = {}
        targets: list[str] = []
        for (kind, key, _), grad in zip(sources, grads, strict=True):
            if grad is None:
                continue
            if isinstance(grad, tf.IndexedSlices):  # a gather from a variable (embeddings)
                grad = tf.convert_to_tensor(grad)
            grad = tf.identity(grad, name=f"converted_gradient/{kind}_{len(targets)}")
            results[f"{kind}_{len(targets)}"] = (kind, key)
            targets.append(grad.name)
        exported = tf1.train.export_meta_graph(graph=graph, clear_devices=True)
    combined = meta_graph_pb2.MetaGraphDef()
    combined.CopyFrom(meta_graph)
    combined.graph_def.CopyFrom(graph.as_graph_def())
    if "while_context" in exported.collection_def:
        combined.collection_def["while_context"].CopyFrom(exported.collection_def["while_context"])
    feeds = [*inputs, *(node_name(u.name) for u in upstream)]
    piece = extract(combined, targets, inputs=feeds, what=f"{what} (its gradient)")
    stateful = _stateful_ops(piece)
    if stateful:
        return Refused(f"its gradient recomputes the forward pass, which runs stateful ops ({', '.join(stateful)}) "
                       f"that would not compute the same values twice")
    return Gradient(piece=piece, upstream=tuple(keys), results=results)


def _stateful_ops(piece: GraphPiece) -> list[str]:
    from tensorflow.python.framework import op_def_registry

    found = set()
    for node in piece.graph_def.node:
        op_def = op_def_registry.get(node.op)
        if op_def is not None and op_def.is_stateful and node.op not in _RECOMPUTABLE_STATEFUL:
            found.add(node.op)
    return sorted(found)
