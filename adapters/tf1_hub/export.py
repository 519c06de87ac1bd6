"""Creating modules: ``create_module_spec``, ``add_signature``, ``attach_message``.

``create_module_spec(module_fn)`` calls ``module_fn`` once per graph variant,
each time in a fresh ``tf.Graph`` with resource variables, and records the
signatures and attached messages that ``module_fn`` declared. The result is a
``ModuleSpec``; it becomes a module directory through ``Module(spec).export``
(weights from a session) or ``spec.export`` (weights from a checkpoint), both
written by ``writer``.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, Iterable

import tensorflow as tf

from registry.modes import current_mode

from adapters.tf1_hub import format as module_format
from adapters.tf1_hub.spec import ModuleSpec, use_registry

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
    for role, tensors in (("input", inputs), ("output", outputs)):
        for key, value in tensors.items():
            if not isinstance(value, (tf.Tensor, tf.__internal__.CompositeTensor)):
                raise TypeError(f"signature {name!r} {role} {key!r} must be a Tensor, SparseTensor or "
                                f"RaggedTensor, not {type(value).__name__} (for a Variable, pass v.value())")
    build = tf1.saved_model.utils.build_tensor_info
    signature_def = tf1.saved_model.signature_def_utils.build_signature_def(
        inputs={k: build(v) for k, v in inputs.items()},
        outputs={k: build(v) for k, v in outputs.items()})
    graph.add_to_collection(_SIGNATURES, (name, signature_def))


def attach_message(key: str, message) -> None:
    """Attach a protocol message to the module being defined, retrievable by ``get_attached_message(key)``."""
    graph = _graph_being_built()
    if not isinstance(key, str) or not _ATTACHMENT_KEY.match(key):
        raise ValueError(f"attached message key {key!r} must start with a letter and hold only letters, "
                         f"digits and underscores")
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
    from registry.errors import SignatureError

    return SignatureError(f"module_fn declared no signature (graph variant "
                          f"{module_format.describe_tags(tags)}): call registry.add_signature(...) in it")


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
    use_registry(registry).check(module_format.FORMAT_NAME, "create", current_mode())
    variants = [(frozenset(tags), dict(args)) for tags, args in (tags_and_args or [(set(), {})])]
    drop = list(drop_collections or ())
    meta_graphs = []
    for tags, args in variants:
        graph = tf.Graph()
        _building.graphs = getattr(_building, "graphs", ()) + (graph,)
        try:
            with graph.as_default(), tf1.variable_scope("", use_resource=True):
                module_fn(**args)
        finally:
            _building.graphs = tuple(g for g in _building.graphs if g is not graph)
        for key in drop:
            del graph.get_collection_ref(key)[:]
        meta_graphs.append(_meta_graph_of(graph, tags))
    graphs = module_format.graphs_from_meta_graphs(meta_graphs)
    return ModuleSpec(graphs, checkpoint_path=None)

