"""Building a module's graph variant into the current graph: state once, compute per call.

A module graph mixes state (variables, lookup tables: stateful ops without
inputs) with computation. Instantiating a module imports the whole graph once
under a fresh scope and keeps its state ops; that is where variables and
tables live, initialised by the usual ``global_variables_initializer()`` and
``tables_initializer()``. Each application imports the graph again under its
own scope with the state ops wired to the instantiated ones and the signature
inputs wired to the caller's tensors, so calls share state and add only
compute ops. Applied ops colocated with a replaced node follow its
replacement (``colocation``), and inside a TF1 ``tf.while_loop`` or
``tf.cond`` the state and inputs enter the caller's control-flow context.

Inside a function replicated for TPU (a ``function.Defun``, ``tf.function``
or ``wrap_function`` whose body runs under a ``TPUReplicateContext``), as in
tensorflow_hub 0.15: the state goes to the outer graph (``Module`` builds it
under ``tf.init_scope``), so ``global_variables_initializer()`` there
initialises it once; each application captures the state into the function
and imports only what its signature needs, since a function runs every op it
holds and a whole copy would re-run the state's initializers on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from registry.adapters.tf1_hub import colocation, signatures
from registry.adapters.tf1_hub.convert_graph import prune
from registry.adapters.tf1_hub.errors import FunctionApplyError
from registry.adapters.tf1_hub.format import node_name

tf1 = tf.compat.v1

_STATE_COLLECTIONS = ("variables", "model_variables", "table_initializer", "asset_filepaths",
                      "cond_context", "while_context")
_TRAINABLE_STATE_COLLECTIONS = ("trainable_variables", "regularization_losses")
_APPLY_COLLECTIONS = ("asset_filepaths", "cond_context", "while_context")
_TRAINABLE_APPLY_COLLECTIONS = ("update_ops",)


def in_tpu_function() -> bool:
    """Whether the current graph is a function body replicated for TPU (tensorflow_hub 0.15's test for it)."""
    graph = tf1.get_default_graph()
    context = graph._get_control_flow_context()  # pylint: disable=protected-access
    return graph.building_function and type(context).__name__.endswith("TPUReplicateContext")


def _prune_to_signature(meta_graph, signature_def, feed_map: dict[str, Any]) -> None:
    """Keep only the nodes the signature's outputs need (in place); drop feeds of nodes pruned away."""
    keep = prune(meta_graph, [info.name for info in signature_def.outputs.values()],
                 feeds={node_name(t) for t in feed_map}, what="the signature")
    nodes = [node for node in meta_graph.graph_def.node if node.name in keep]
    del meta_graph.graph_def.node[:]
    meta_graph.graph_def.node.extend(nodes)
    for key in [k for k in feed_map if node_name(k) not in keep]:
        del feed_map[key]


def state_node_names(graph_def) -> set[str]:
    return {node.name for node in graph_def.node if colocation.is_state_op(node.op)}


def _filter_collections(meta_graph, keep) -> None:
    for key in list(meta_graph.collection_def):
        if key not in keep:
            del meta_graph.collection_def[key]


def _prefix_shared_names(meta_graph, scope: str) -> None:
    """Give shared resources (tables, variables) names unique to this instantiation."""
    for node in meta_graph.graph_def.node:
        attr = node.attr.get("shared_name")
        if attr is not None and attr.HasField("s") and attr.s:
            node.attr["shared_name"].s = f"{scope}/{attr.s.decode()}".encode()


def _replace_state_ops(meta_graph, names: set[str]) -> None:
    """Turn state ops into placeholders: in an applied graph, they are fed the instantiated state."""
    for node in meta_graph.graph_def.node:
        if node.name in names:
            node.op = "Placeholder"
            node.attr.clear()
            node.attr["dtype"].type = tf.resource.as_datatype_enum
            del node.input[:]


def _fresh_scope(name: str) -> tuple[str, str]:
    """An unused name scope for ``name`` in the current scope: (absolute, relative)."""
    absolute = tf1.get_default_graph().unique_name(name, mark_as_used=False)
    return absolute, absolute.rsplit("/", 1)[-1]


def _module_variable_map(variables: dict[str, Any]) -> dict[str, Any]:
    """Group slices of partitioned variables: ``{"emb/part_0": v0, "emb/part_1": v1}`` -> ``{"emb": [v0, v1]}``."""
    plain: dict[str, Any] = {}
    partitioned: dict[str, dict[tuple[int, ...], Any]] = {}
    for key, var in variables.items():
        info = getattr(var, "_save_slice_info", None)
        if not info:
            plain[key] = var
            continue
        base = key.rsplit("/", 1)[0]
        if not info.full_name.endswith(base):
            raise RuntimeError(f"partitioned variable {key} does not belong to {info.full_name}")
        slices = partitioned.setdefault(base, {})
        offset = tuple(info.var_offset)
        if offset in slices:
            raise RuntimeError(f"partitioned variable {base} has two slices at offset {offset}")
        slices[offset] = var
    clash = set(plain) & set(partitioned)
    if clash:
        raise RuntimeError(f"variables {sorted(clash)} exist both whole and partitioned")
    result = dict(plain)
    for base, slices in partitioned.items():
        result[base] = [slices[offset] for offset in sorted(slices)]
    return result


@dataclass
class ModuleState:
    """The state of one instantiation: its scope, variables by module-relative name, and state tensors."""

    scope: str                      # absolute name scope, e.g. "outer/module"
    variable_map: dict[str, Any]    # name in the module -> Variable, or list of slices if partitioned
    state_map: dict[str, tf.Tensor]  # tensor name in the module graph -> instantiated state tensor


def create_state(meta_graph, name: str, *, trainable: bool, checkpoint_path: str | None) -> ModuleState:
    """Import the state of ``meta_graph`` once under a fresh scope named after ``name``."""
    graph = tf1.get_default_graph()
    absolute, relative = _fresh_scope(name)
    copy = tf1.MetaGraphDef()
    copy.CopyFrom(meta_graph)
    _filter_collections(copy, _STATE_COLLECTIONS + (_TRAINABLE_STATE_COLLECTIONS if trainable else ()))
    _prefix_shared_names(copy, absolute)
    # State must not depend on whatever control dependencies surround the constructor.
    with tf.control_dependencies(None):
        tf1.train.import_meta_graph(copy, input_map={}, import_scope=relative)

    prefix = absolute + "/"
    variables = {var.op.name[len(prefix):]: var for var in tf1.global_variables()
                 if var.op.name.startswith(prefix)}
    variable_map = _module_variable_map(variables)
    if variable_map and checkpoint_path:
        # Replaces each variable's initializer by a restore from the module's checkpoint.
        tf1.train.init_from_checkpoint(checkpoint_path, dict(variable_map))

    state_map = {}
    for node_name_ in sorted(state_node_names(copy.graph_def)):
        tensor = graph.get_tensor_by_name(f"{prefix}{node_name_}:0")
        if len(tensor.op.outputs) != 1:
            raise RuntimeError(f"state op {tensor.op.name} has {len(tensor.op.outputs)} outputs, expected 1")
        state_map[f"{node_name_}:0"] = tensor
    return ModuleState(scope=absolute, variable_map=variable_map, state_map=state_map)


def apply_signature(meta_graph, signature_def, state: ModuleState, inputs: dict[str, Any], name: str,
                    *, trainable: bool) -> dict[str, Any]:
    """Import the compute ops of one signature application, sharing ``state``."""
    graph = tf1.get_default_graph()
    copy = tf1.MetaGraphDef()
    copy.CopyFrom(meta_graph)
    feed_map = dict(state.state_map)
    in_function = in_tpu_function()
    if in_function:
        # The state lives in the outer graph: the function takes it as captured inputs.
        feed_map = {key: graph.capture(value) for key, value in feed_map.items()}
    feed_map.update(signatures.build_input_map(signature_def.inputs, inputs))
    if in_function:
        _prune_to_signature(copy, signature_def, feed_map)
    # Inside a TF1 tf.while_loop or tf.cond, tensors from outside must enter its context to be used.
    context = graph._get_control_flow_context()  # pylint: disable=protected-access
    if context is not None:
        feed_map = {key: context.AddValue(value) for key, value in sorted(feed_map.items())}

    _replace_state_ops(copy, {node_name(t) for t in state.state_map})
    colocated = colocation.colocated_nodes(copy.graph_def, {node_name(t) for t in feed_map})
    _filter_collections(copy, _APPLY_COLLECTIONS + (_TRAINABLE_APPLY_COLLECTIONS if trainable else ()))
    if in_function and copy.collection_def:
        raise FunctionApplyError(
            f"Applying modules with collections inside TPU functions is not supported. Collections found: "
            f"{sorted(copy.collection_def)}. Apply the module outside the replicated function, or use a module "
            f"without assets, TF1 control flow and (when trainable) update ops")
    absolute, relative = _fresh_scope(name)
    _prefix_shared_names(copy, absolute)
    tf1.train.import_meta_graph(copy, input_map=feed_map, import_scope=relative)
    colocation.rewrite_after_import(graph, absolute, feed_map, colocated)

    def get_tensor(tensor_name: str) -> tf.Tensor:
        # An output may be an input passed straight through: then no op was imported for it.
        if tensor_name in feed_map:
            return feed_map[tensor_name]
        return graph.get_tensor_by_name(f"{absolute}/{tensor_name}")

    return signatures.build_output_map(signature_def.outputs, get_tensor)
