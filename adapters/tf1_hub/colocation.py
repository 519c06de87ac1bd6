"""Colocation constraints (``tf.colocate_with``) across a module's state and its applications.

A module graph may pin ops next to its variables (TF1 code does this for ref
variables, and ``tf.cond``/``tf.while_loop`` over a ref variable colocate their
control-flow ops with it) or next to its inputs. Inside the graph the constraint
reads ``loc:@X``. When a module is applied, its state ops and input
placeholders are replaced by the instantiated state and the caller's tensors,
so a constraint on X must follow X's replacement: an applied op colocated with
the module's variable ends up colocated with the instantiated variable (and on
its device), one colocated with an input ends up where the caller's tensor is
colocated. Two conditions make that rewrite well-defined, and module creation
checks them: a signature input is not itself colocated with anything else, and
a state op is colocated with state ops only.

The messages begin as tensorflow_hub 0.15's did, so code that matched on them keeps working.
"""

from __future__ import annotations

import functools
from typing import Iterable

import tensorflow as tf

from registry.adapters.tf1_hub.errors import ColocationError
from registry.adapters.tf1_hub.format import node_name

_LOC = b"loc:@"


@functools.lru_cache(maxsize=None)
def is_state_op(op_type: str) -> bool:
    """Stateful ops without inputs (VarHandleOp, VariableV2, HashTableV2...) hold a module's state."""
    from tensorflow.python.framework import op_def_registry

    op_def = op_def_registry.get(op_type)
    return op_def is not None and op_def.is_stateful and not op_def.input_arg


def _own_group(op) -> list[bytes]:
    return [_LOC + op.name.encode()]


def input_colocation_error(signature: str, inputs: dict) -> str | None:
    """Why a signature's inputs cannot be rewritten on apply (an input under ``tf.colocate_with``), or None."""
    for name, value in sorted(inputs.items()):
        components = tf.nest.flatten(value, expand_composites=True)
        for tensor in components:
            groups = tensor.op.colocation_groups()
            if groups != _own_group(tensor.op):
                where = "as" if len(components) == 1 else "in"
                return (f"A tensor x used as input in a signature must not be subject to a tf.colocate_with(y) "
                        f"constraint. (The reverse would be allowed.)\nDetails: tensor {tensor.name!r} appears "
                        f"{where} input {name!r} of signature {signature!r} but has colocation groups {groups}. "
                        f"Create the input outside the tf.colocate_with block")
    return None


def state_colocation_error(graph, tags=None) -> str | None:
    """Why the state ops of a module graph cannot be instantiated consistently, or None."""
    state_ops = {op.name: op for op in graph.get_operations() if is_state_op(op.type)}
    for op in state_ops.values():
        for group in op.colocation_groups():
            target = group[len(_LOC):].decode() if group.startswith(_LOC) else None
            if target not in state_ops:
                where = "" if tags is None else f"in the graph for tags {sorted(tags)}, "
                return (f"A state-holding node x of a module's graph (e.g., a Variable op) must not be subject to "
                        f"a tf.colocate_with(y) constraint unless y is also a state-holding node.\nDetails: "
                        f"{where}node {op.name!r} has op {op.type!r}, which counts as state-holding, but its "
                        f"colocation groups are {op.colocation_groups()}. Create the variable outside the "
                        f"tf.colocate_with block")
    return None


def colocated_nodes(graph_def, replaced_nodes: Iterable[str]) -> list[str]:
    """Nodes of ``graph_def`` colocated with any of ``replaced_nodes``: those to rewrite after import."""
    keys = {_LOC + name.encode() for name in replaced_nodes}
    return [node.name for node in graph_def.node
            if "_class" in node.attr and any(v in keys for v in node.attr["_class"].list.s)]


def _rewrite_rules(graph, scope: str, input_map: dict) -> tuple[dict[bytes, list[bytes]], dict[bytes, str]]:
    """``loc:@scope/X`` -> the colocation groups of X's replacement; and, per ambiguous key, why."""
    rules: dict[bytes, list[bytes]] = {}
    reasons: dict[bytes, str] = {}
    conflicts: dict[bytes, str] = {}
    mapped_outputs: dict[str, set[int]] = {}

    def record(key: bytes, groups: list[bytes], reason: str) -> None:
        if key in conflicts:
            return
        if key not in rules:
            rules[key], reasons[key] = groups, reason
        elif rules[key] != groups:
            conflicts[key] = (f"{rules[key]!r} vs {groups!r} because {reasons[key]} and {reason}, respectively")

    for tensor_name, tensor in sorted(input_map.items()):
        op_name = node_name(tensor_name)
        key = _LOC + f"{scope}/{op_name}".encode()
        record(key, sorted(tensor.op.colocation_groups()),
               f"input '{scope}/{tensor_name}' is substituted by '{tensor.name}'")
        mapped_outputs.setdefault(op_name, set()).add(int(tensor_name.rsplit(":", 1)[1]))
    for op_name, indices in sorted(mapped_outputs.items()):
        op = graph.get_operation_by_name(f"{scope}/{op_name}")
        unmapped = sorted(set(range(len(op.outputs))) - indices)
        if unmapped:
            key = _LOC + op.name.encode()
            record(key, [key], f"tensor '{op.name}:{','.join(map(str, unmapped))}' is not substituted by inputs")
    return rules, conflicts


def rewrite_after_import(graph, scope: str, input_map: dict, nodes: Iterable[str]) -> None:
    """Point the colocation constraints of imported ``nodes`` (names in the module) at what replaced their targets.

    ``input_map`` is what the import replaced (tensor name in the module -> tensor);
    ``scope`` the absolute import scope. Each rewritten op moves to the device of
    the first of its new colocation targets that has one, as the importer places
    colocated ops.
    """
    nodes = list(nodes)
    if not nodes:
        return
    rules, conflicts = _rewrite_rules(graph, scope, input_map)
    for name in nodes:
        op = graph.get_operation_by_name(f"{scope}/{name}")
        other, groups = [], set()
        for value in op.get_attr("_class"):
            if not value.startswith(_LOC):
                other.append(value)
                continue
            if value not in rules:
                groups.add(value)
                continue
            if value in conflicts:
                raise ColocationError(
                    f"Failed to rewrite colocation constraints while applying hub.Module:\nThe module graph contains "
                    f"a node {op.name!r} that has a colocation constraint {value!r} with ambiguous rewriting "
                    f"{conflicts[value]}.\nTo fix, avoid publishing a module with inputs comprising multiple "
                    f"outputs of one op that is referenced in tf.colocate_with(...) constraints on other ops.")
            groups.update(rules[value])
        attr = tf.compat.v1.AttrValue()
        attr.list.s.extend(other + sorted(groups))
        # No public API edits an existing op's attributes; these are what tf.colocate_with itself relies on.
        op._set_attr("_class", attr)  # pylint: disable=protected-access
        device = next((d for d in (graph.get_operation_by_name(g[len(_LOC):].decode()).device
                                   for g in sorted(groups)) if d), "")
        op._set_device(device)  # pylint: disable=protected-access
