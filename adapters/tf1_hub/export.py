"""Creating modules: ``create_module_spec``, ``add_signature``, ``attach_message``.

``create_module_spec(module_fn)`` calls ``module_fn`` once per graph variant,
each time in a fresh ``tf.Graph`` with resource variables (so it may be called
from eager code) and with TF1 layers (``tf.compat.v1.layers``) at hand, and
records the signatures and attached messages that ``module_fn`` declared. The result is a
``ModuleSpec``; it becomes a module directory through ``Module(spec).export``
(weights from a session) or ``spec.export`` (weights from a checkpoint), both
written by ``writer``.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, Iterable

import tensorflow as tf

from registry.errors import SignatureError

from registry.adapters.tf1_hub import colocation
from registry.adapters.tf1_hub import format as module_format
from registry.adapters.tf1_hub.errors import ColocationError
from registry.adapters.tf1_hub.legacy_layers import tf1_layers_for_module_fn
from registry.adapters.tf1_hub.spec import ModuleSpec, use_registry

tf1 = tf.compat.v1

# Graph collections under tuple keys: invisible to export_meta_graph and to module_fn's own code.
_SIGNATURES = ("__tf1_hub_signatures",)
_ATTACHMENTS = ("__tf1_hub_attachments",)
_ATTACHMENT_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")

_building = threading.local()


def _graph_being_built() -> tf.Graph:
    graph = tf1.get_default_graph()
    if graph not in getattr(_building, "graphs", ()):
        raise RuntimeError("add_signature() and attach_message() must be called inside the module_fn "
                           "passed to create_module_spec()")
    return graph


def add_signature(name: str | None = None, inputs=None, outputs=None) -> None:
    """Declare a signature of the module being defined (call it inside ``module_fn``).

    ``inputs`` and ``outputs`` are dicts of name -> tensor (dense, sparse or
    ragged); a single tensor means ``{"default": tensor}``. ``name`` defaults to
    ``"default"``, the signature ``Module.__call__`` applies unless told otherwise.
    """
    graph = _graph_being_built()
    name = name or "default"
    inputs = {} if inputs is None else inputs
    outputs = {} if outputs is None else outputs
    if not isinstance(inputs, dict):
        inputs = {"default": inputs}
    if not isinstance(outputs, dict):
        outputs = {"default": outputs}
    _check_signature_types(name, inputs, outputs)
    message = colocation.input_colocation_error(name, inputs)
    if message:
        raise ColocationError(message)
    # tf.compat.v1.saved_model.utils.build_tensor_info without its deprecation notice (the same function, undecorated):
    # writing TF1 Hub signatures is what this module is for, and the notice would be printed on every first export.
    from tensorflow.python.saved_model.utils_impl import build_tensor_info_internal as build
    signature_def = tf1.saved_model.signature_def_utils.build_signature_def(
        inputs={k: build(v) for k, v in inputs.items()},
        outputs={k: build(v) for k, v in outputs.items()})
    graph.add_to_collection(_SIGNATURES, (name, signature_def))


#: What a signature can carry: tensorflow_hub 0.15's list (other composites, e.g. tf.IndexedSlices, are not).
SUPPORTED_TYPES = (tf.Tensor, tf.SparseTensor, tf.RaggedTensor)


def _check_signature_types(name: str, inputs: dict, outputs: dict) -> None:
    wrong = [(role, key, value) for role, tensors in (("input", inputs), ("output", outputs))
             for key, value in sorted(tensors.items()) if not isinstance(value, SUPPORTED_TYPES)]
    if not wrong:
        return
    listed = "\n".join(f"  * {role} {key!r} has type {type(value).__name__}" for role, key, value in wrong)
    hint = ("\n(For a variable, pass v.value(); for tf.IndexedSlices, tf.convert_to_tensor(x).)"
            if any(isinstance(v, (tf.Variable, tf.IndexedSlices)) for _, _, v in wrong) else "")
    raise SignatureError(
        f"The inputs and outputs declared in add_signature() for signature {name!r} should have one of the "
        f"types that are supported by this version of tensorflow_hub: "
        f"{', '.join(t.__name__ for t in SUPPORTED_TYPES)}.\n{listed}{hint}")


def attach_message(key: str, message) -> None:
    """Attach a protocol message to the module being defined, retrievable by ``get_attached_message(key)``."""
    graph = _graph_being_built()
    if not isinstance(key, str) or not _ATTACHMENT_KEY.match(key):
        raise ValueError(f"attach_message() called with malformed key {key!r}: a key starts with a letter and "
                         f"holds only letters, digits and underscores")
    graph.add_to_collection(_ATTACHMENTS, (key, message.SerializeToString()))


def _meta_graph_of(graph: tf.Graph, tags: frozenset[str]):
    with graph.as_default():
        # Dropping attrs left at their defaults lets older TensorFlow releases read the graph.
        meta_graph = tf1.train.export_meta_graph(strip_default_attrs=True)
    meta_graph.meta_info_def.tags.extend(sorted(tags))
    declared = graph.get_collection(_SIGNATURES)
    if not declared:
        raise _no_signature_error(tags)
    for name, signature_def in declared:
        meta_graph.signature_def[name].CopyFrom(signature_def)
    attachments = dict(graph.get_collection(_ATTACHMENTS))  # the last value of a key wins
    module_format.write_attachments(meta_graph, attachments)
    return meta_graph


def _no_signature_error(tags):
    return SignatureError(f"No signatures present. Please call add_signature(...) at least once in the module_fn "
                          f"(graph variant {module_format.describe_tags(tags)} declared none)")


def create_module_spec(module_fn: Callable[..., Any],
                       tags_and_args: Iterable[tuple[Iterable[str], dict]] | None = None,
                       drop_collections: Iterable[str] | None = None, *, registry=None) -> ModuleSpec:
    """Define a module by a function that builds its graph; returns its ``ModuleSpec``.

    Args:
        module_fn: builds one graph variant, declaring signatures with ``add_signature``.
        tags_and_args: ``[(tags, kwargs), ...]``: call ``module_fn(**kwargs)`` for
            the variant with those tags. Default: ``[(set(), {})]``.
        drop_collections: graph collections to clear before export (those the
            format does not allow make creation fail, naming them).
        registry: the ``registry.Registry`` whose matrix gates creation (in the
            current mode); the default registry when None.
    """
    # module_fn always builds a graph of its own, so creating works from eager code too: this is TF1 creation
    # whatever the caller's mode (the matrix's "create in tf2" is about TF2 objects, e.g. tf.Module).
    use_registry(registry).check(module_format.FORMAT_NAME, "create", "tf1")
    variants = [(frozenset(tags), dict(args)) for tags, args in (tags_and_args or [(set(), {})])]
    report_tags = bool(tags_and_args)
    drop = list(drop_collections or ())
    meta_graphs = []
    for tags, args in variants:
        graph = tf.Graph()
        _building.graphs = getattr(_building, "graphs", ()) + (graph,)
        try:
            with tf1_layers_for_module_fn(), graph.as_default(), tf1.variable_scope("", use_resource=True):
                module_fn(**args)
        finally:
            _building.graphs = tuple(g for g in _building.graphs if g is not graph)
        for key in drop:
            del graph.get_collection_ref(key)[:]
        message = colocation.state_colocation_error(graph, tags if report_tags else None)
        if message:
            raise ColocationError(message)
        meta_graphs.append(_meta_graph_of(graph, tags))
    graphs = module_format.graphs_from_meta_graphs(meta_graphs)
    return ModuleSpec(graphs, checkpoint_path=None)
