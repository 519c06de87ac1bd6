"""Cutting a module graph into the pieces a TF2 SavedModel runs: pure GraphDef surgery, no graph built.

A TF1 Hub module graph holds state (variables, tables) and computation in one
GraphDef, initialises its state by running ops of the same graph, and may use
TF 1.x constructs a TF2 function cannot hold: ref variables (``VariableV2``),
whose reads and control-flow ops (``RefSwitch``, ``RefEnter``) carry ref
tensors, and v1 lookup tables (``HashTable``) with ref string handles. The
converter builds each TF2 function from a *piece* of that graph:

- the ancestors of what the function returns (signature outputs, update ops,
  regularization losses, a table's initializer), never the variables'
  initializers, so a call cannot reset a variable;
- every state node turned into a resource placeholder that the import feeds
  with the TF2 object's handle (one set of variables shared by all pieces);
- every asset constant turned into a string placeholder fed with a
  ``tf.saved_model.Asset`` path, so assets follow the SavedModel when it moves;
- ref variables rewritten as resource variables: a read of the variable
  becomes ``ReadVariableOp``, ``RefSwitch``/``RefEnter``/``RefMerge``... their
  value versions, ``Assign``/``AssignAdd``/``AssignSub`` the resource assigns
  followed by a read (what they returned); v1 table ops become their V2 ops;
- colocation constraints and devices dropped: a TF2 SavedModel is placed
  where it runs, and the constraints named nodes that no longer exist.

Anything else that needs a ref input is refused by name (``ConversionError``),
before the converter writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from registry.adapters.tf1_hub.errors import ConversionError
from registry.adapters.tf1_hub.format import ASSET_FILEPATHS, node_name

#: Variable ops; their value is restored from the module's checkpoint into one TF2 variable each.
VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})
#: Ref variables (TF 1.x), rewritten as resource variables.
REF_VARIABLE_OPS = frozenset({"VariableV2", "Variable"})
#: Table ops the converter re-creates as TF2 resources (v1 ops become their V2 versions).
TABLE_OPS = {
    "HashTable": "HashTableV2", "HashTableV2": "HashTableV2",
    "MutableHashTable": "MutableHashTableV2", "MutableHashTableV2": "MutableHashTableV2",
}
#: Ops that take a v1 table's ref handle, and the V2 op that takes a resource handle instead.
V1_TABLE_CONSUMERS = {
    "LookupTableFind": "LookupTableFindV2", "LookupTableInsert": "LookupTableInsertV2",
    "LookupTableSize": "LookupTableSizeV2", "LookupTableExport": "LookupTableExportV2",
    "LookupTableImport": "LookupTableImportV2", "InitializeTable": "InitializeTableV2",
    "InitializeTableFromTextFile": "InitializeTableFromTextFileV2",
}
#: Ops that pass a ref tensor through, and their value versions.
REF_PASSTHROUGH = {
    "RefSwitch": "Switch", "RefEnter": "Enter", "RefMerge": "Merge", "RefExit": "Exit",
    "RefNextIteration": "NextIteration", "RefIdentity": "Identity", "RefSelect": "Select",
}
#: Assignments to a ref variable, and the resource op that does the same.
REF_ASSIGNS = {"Assign": "AssignVariableOp", "AssignAdd": "AssignAddVariableOp",
               "AssignSub": "AssignSubVariableOp"}

_RESOURCE = 20  # DT_RESOURCE
_STRING = 7     # DT_STRING
_READ_SUFFIX = "/converted_read"


def _input_node(name: str) -> str:
    """``"^a"``, ``"a:1"``, ``"a"`` -> ``"a"``."""
    return name.lstrip("^").split(":")[0]


def _is_control(name: str) -> bool:
    return name.startswith("^")


@dataclass
class GraphPiece:
    """A pruned and rewritten GraphDef, and what its import must feed."""

    graph_def: Any                                             # tf.compat.v1.GraphDef
    variables: list[str] = field(default_factory=list)         # variable node names fed a handle
    tables: list[str] = field(default_factory=list)            # table node names fed a handle
    assets: list[str] = field(default_factory=list)            # asset constant node names fed a path
    inputs: list[str] = field(default_factory=list)            # input placeholders fed by the caller
    while_loops: bool = False                                  # holds a TF1 tf.while_loop (no TF2 gradient)


def asset_node_names(meta_graph) -> set[str]:
    collection = meta_graph.collection_def.get(ASSET_FILEPATHS)
    if collection is None:
        return set()
    return {node_name(t) for t in collection.node_list.value}


def state_kind(node) -> str | None:
    """``"variable"``, ``"table"``, or None for a node that holds no state the converter knows."""
    if node.op in VARIABLE_OPS:
        return "variable"
    if node.op in TABLE_OPS:
        return "table"
    return None


def _context_nodes(meta_graph, kinds=("cond_context", "while_context")) -> list[set[str]]:
    """The node sets of the graph's TF1 ``tf.cond`` / ``tf.while_loop`` contexts (without what enters them)."""
    from tensorflow.core.protobuf import control_flow_pb2

    groups = []
    for key, proto_type in (("cond_context", control_flow_pb2.CondContextDef),
                            ("while_context", control_flow_pb2.WhileContextDef)):
        collection = meta_graph.collection_def.get(key)
        if collection is None or key not in kinds:
            continue
        for value in collection.bytes_list.value:
            values = proto_type.FromString(value).values_def
            # Tensors from outside the context that it uses (external values) are not part of it.
            groups.append({_input_node(v) for v in set(values.values) - set(values.external_values)})
    return groups


def prune(meta_graph, targets: Iterable[str], *, feeds: Iterable[str], what: str) -> set[str]:
    """The nodes ``targets`` need: ancestors through data and control inputs, stopping at state and ``feeds``."""
    nodes = {node.name: node for node in meta_graph.graph_def.node}
    stop = set(feeds)
    keep: set[str] = set()
    pending = [node_name(t) if ":" in t else t for t in targets]
    while pending:
        name = pending.pop()
        if name in keep:
            continue
        if name not in nodes:
            raise ConversionError(f"{what} refers to {name!r}, which is not in the module graph")
        keep.add(name)
        node = nodes[name]
        if name in stop or state_kind(node):
            continue
        pending.extend(_input_node(i) for i in node.input)
    return keep


def _check_no_stray_placeholders(nodes: dict, keep: set[str], feeds: set[str], what: str) -> None:
    for name in sorted(keep):
        if nodes[name].op == "Placeholder" and name not in feeds:
            raise ConversionError(f"{what} depends on the placeholder {name!r}, which is not one of its inputs: "
                                  f"the module cannot compute it without a value nobody feeds")


def extract(meta_graph, targets: Iterable[str], *, inputs: Iterable[str] = (), what: str) -> GraphPiece:
    """The rewritten piece of ``meta_graph`` that computes ``targets`` from ``inputs`` (node names)."""
    from tensorflow.core.framework import graph_pb2
    from tensorflow.python.framework import op_def_registry

    inputs = list(inputs)
    assets = asset_node_names(meta_graph)
    nodes = {node.name: node for node in meta_graph.graph_def.node}
    keep = prune(meta_graph, targets, feeds=set(inputs) | assets, what=what)
    _check_no_stray_placeholders(nodes, keep, set(inputs), what)

    piece = GraphPiece(graph_def=graph_pb2.GraphDef(), inputs=inputs,
                       while_loops=any(group & keep for group in _context_nodes(meta_graph, ("while_context",))))
    piece.graph_def.versions.CopyFrom(meta_graph.graph_def.versions)
    piece.graph_def.library.CopyFrom(meta_graph.graph_def.library)
    ref_variables = set()
    for node in meta_graph.graph_def.node:
        if node.name not in keep:
            continue
        new = piece.graph_def.node.add()
        new.CopyFrom(node)
        new.device = ""
        if "_class" in new.attr:
            del new.attr["_class"]
        kind = state_kind(node)
        if kind or node.name in assets:
            if kind == "variable":
                piece.variables.append(node.name)
                if node.op in REF_VARIABLE_OPS:
                    ref_variables.add(node.name)
            elif kind == "table":
                piece.tables.append(node.name)
            else:
                piece.assets.append(node.name)
            dtype = _STRING if node.name in assets else _RESOURCE
            new.op = "Placeholder"
            new.attr.clear()
            new.attr["dtype"].type = dtype
            del new.input[:]
    _rewrite_refs(piece.graph_def, ref_variables, op_def_registry, what)
    return piece


def _rewrite_refs(graph_def, ref_variables: set[str], op_def_registry, what: str) -> None:
    """Make the piece free of ref tensors: ref variables read as resources, v1 table ops as V2 ops."""
    reads: dict[str, object] = {}
    added = []
    for node in list(graph_def.node):
        if node.op in V1_TABLE_CONSUMERS:
            node.op = V1_TABLE_CONSUMERS[node.op]
        elif node.op in REF_PASSTHROUGH:
            node.op = REF_PASSTHROUGH[node.op]
        if node.op in REF_ASSIGNS and node.input and _input_node(node.input[0]) in ref_variables:
            added.extend(_rewrite_assign(node))
            continue
        for index, name in enumerate(node.input):
            source = _input_node(name)
            if _is_control(name) or source not in ref_variables:
                continue
            op_def = op_def_registry.get(node.op)
            if op_def is None:
                raise ConversionError(f"{what}: op type {node.op!r} of node {node.name!r} is not known to this "
                                      f"TensorFlow")
            if _declares_ref_input(op_def, index):
                raise ConversionError(
                    f"{what}: node {node.name!r} ({node.op}) updates the ref variable {source!r} in a way this "
                    f"converter cannot express with a resource variable; only reads, tf.cond/tf.while_loop over "
                    f"it and Assign/AssignAdd/AssignSub can be converted")
            node.input[index] = source + _READ_SUFFIX
            reads.setdefault(source, node)
    for source in sorted(reads):
        read = graph_def.node.add()
        read.name = source + _READ_SUFFIX
        read.op = "ReadVariableOp"
        read.input.append(source)
        read.attr["dtype"].type = _variable_dtype(reads[source], source)
    graph_def.node.extend(added)


def _declares_ref_input(op_def, index: int) -> bool:
    """Whether input ``index`` of an op is declared ``Ref(T)`` (counting list inputs as one each, simplified)."""
    args = list(op_def.input_arg)
    if index < len(args) and not any(a.number_attr or a.type_list_attr for a in args):
        return args[index].is_ref
    return any(a.is_ref for a in args)


def _variable_dtype(consumer, source: str) -> int:
    """The dtype of the ref variable ``source`` as seen by a consumer that reads it (its ``T`` or ``dtype``)."""
    for key in ("T", "dtype", "SrcT"):
        if key in consumer.attr and consumer.attr[key].type:
            return consumer.attr[key].type
    raise ConversionError(f"cannot tell the dtype of the ref variable {source!r} from node {consumer.name!r} "
                          f"({consumer.op})")


def _rewrite_assign(node) -> list:
    """``x = Assign(v, value)`` -> ``x/converted_assign = AssignVariableOp(v, value)``; ``x = ReadVariableOp(v)``.

    The read, after the assignment, is what the ref op returned.
    """
    from tensorflow.core.framework import node_def_pb2

    dtype = node.attr["T"].type
    assign = node_def_pb2.NodeDef(name=node.name + "/converted_assign", op=REF_ASSIGNS[node.op])
    assign.input.extend([_input_node(node.input[0]), *node.input[1:]])
    assign.attr["dtype"].type = dtype
    if node.op == "Assign":
        assign.attr["validate_shape"].b = False
    variable = _input_node(node.input[0])
    node.op = "ReadVariableOp"
    node.attr.clear()
    node.attr["dtype"].type = dtype
    del node.input[:]
    node.input.extend([variable, "^" + assign.name])
    return [assign]
