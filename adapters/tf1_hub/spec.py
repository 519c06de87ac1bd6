"""``ModuleSpec``: a module's definition (graph variants, signatures, attachments, checkpoint) before use.

A spec comes from a module directory (``load_module_spec``) or from a
function that builds the graph (``create_module_spec``). It answers questions
about signatures without touching the current graph; ``Module(spec)`` builds
it into a graph, and ``spec.export(path, checkpoint_path=...)`` writes it as a
module directory with weights from a TF1 training checkpoint (built with
``instantiate`` and written with ``writer``, never through ``Module``).

A handle reaches a spec through a ``registry.Registry``'s ``prepare``: the one
place that resolves it and passes the compatibility-matrix gate. This module
never imports ``registry.api``; the default registry comes through the public
``registry`` package, inside the functions that need it.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from registry.errors import FormatError, SignatureError

from registry.adapters.tf1_hub import format as module_format
from registry.adapters.tf1_hub import instantiate, writer
from registry.adapters.tf1_hub.signatures import ParsedTensorInfo, parse_tensor_info_map


class ModuleSpec:
    """The contents of a module before it is instantiated in a graph (tensorflow_hub's ``hub.ModuleSpec``)."""

    def __init__(self, graphs: module_format.ModuleGraphs, checkpoint_path: str | None = None,
                 source: str | None = None):
        self._graphs = graphs
        self._checkpoint_path = checkpoint_path
        #: Where the spec was read from, for messages (None for a created spec).
        self.source = source

    def __repr__(self):
        origin = self.source or "created in memory"
        return f"<ModuleSpec {origin}: variants {[sorted(t) for t in self.get_tags()]}>"

    @property
    def checkpoint_path(self) -> str | None:
        """The variables checkpoint prefix the module's weights load from (None: initialisers)."""
        return self._checkpoint_path

    def get_tags(self) -> list[frozenset[str]]:
        """The tag sets of the module's graph variants."""
        return self._graphs.tag_sets

    def meta_graph(self, tags=None):
        return self._graphs.meta_graph(tags)

    def meta_graphs(self) -> list:
        """Every graph variant's MetaGraphDef, in the order the module holds them (what an export writes)."""
        return list(self._graphs.meta_graphs.values())

    def _attachments(self, tags) -> dict[str, bytes]:
        """A graph variant's attached messages by key; the error listing the variants if it has no such variant."""
        attachments = self._graphs.attachments.get(frozenset(tags or ()))
        if attachments is None:
            self.meta_graph(tags)  # raises the error listing the variants
            return {}  # not reached: graphs_from_meta_graphs reads every variant's attachments
        return attachments

    def attached_message_keys(self, tags=None) -> list[str]:
        """The keys of the messages attached to a graph variant (``attach_message``), sorted."""
        return sorted(self._attachments(tags))

    def get_signature_names(self, tags=None) -> list[str]:
        return list(self.meta_graph(tags).signature_def.keys())

    def signature_def(self, signature=None, tags=None):
        signature = signature or "default"
        meta_graph = self.meta_graph(tags)
        # Indexing a protobuf map inserts missing keys, so test membership first.
        if signature not in meta_graph.signature_def:
            raise SignatureError(
                f"Signature {signature!r} is missing from meta graph (graph variant "
                f"{module_format.describe_tags(tags or ())}); its signatures are: "
                f"{', '.join(sorted(meta_graph.signature_def)) or 'none'}")
        return meta_graph.signature_def[signature]

    def get_input_info_dict(self, signature=None, tags=None) -> dict[str, ParsedTensorInfo]:
        """Input name -> dtype, shape and kind of a signature."""
        return parse_tensor_info_map(self.signature_def(signature, tags).inputs)

    def get_output_info_dict(self, signature=None, tags=None) -> dict[str, ParsedTensorInfo]:
        """Output name -> dtype, shape and kind of a signature."""
        return parse_tensor_info_map(self.signature_def(signature, tags).outputs)

    def get_attached_message(self, key: str, message_type, tags=None, required: bool = False):
        """The message attached under ``key`` (parsed as ``message_type``), or None if there is none."""
        data = self._attachments(tags).get(key)
        if data is None:
            if required:
                raise KeyError(f"No attached message for key '{key}' in graph version {sorted(tags or [])} "
                               f"of Hub Module")
            return None
        message = message_type()
        message.ParseFromString(data)
        return message

    def export(self, path, *, checkpoint_path: str, name_transform_fn: Callable[[str], str] | None = None) -> None:
        """Write the module to ``path`` with variable values read from a TF1 checkpoint.

        ``name_transform_fn`` maps a variable name in the module to its name in
        the checkpoint (e.g. ``lambda n: "encoder/" + n`` for a module trained
        inside a scope). The variables are those of the default graph variant,
        built in a throwaway graph.
        """
        import tensorflow as tf

        tf1 = tf.compat.v1
        transform = name_transform_fn or (lambda name: name)
        with tf.Graph().as_default():
            # Every variable is assigned from checkpoint_path below, so the spec's own checkpoint is not read.
            state = instantiate.create_state(self.meta_graph(None), "module", trainable=False, checkpoint_path=None)
            assignment = {transform(name): var for name, var in state.variable_map.items()}
            if assignment:
                tf1.train.init_from_checkpoint(checkpoint_path, assignment)
            with tf1.Session() as session:
                session.run(tf1.global_variables_initializer())
                writer.write_module(path, self.meta_graphs(), state.variable_map, session)


def read_module_spec(path) -> ModuleSpec:
    """The spec of the module directory at local ``path``."""
    path = os.fspath(path)
    graphs = module_format.read_module(path)
    checkpoint = module_format.variables_prefix(path) if module_format.has_checkpoint(path) else None
    return ModuleSpec(graphs, checkpoint_path=checkpoint, source=path)


def use_registry(registry: Any = None) -> Any:
    """``registry`` itself, or the default registry when None (through the public package, never ``registry.api``)."""
    if registry is not None:
        return registry
    import registry as _registry

    return _registry.default_registry()


def require_tf1_hub(handle, what: str) -> Callable[[str], None]:
    """An ``accept_format`` for ``Registry.prepare``: refuse any format but tf1_hub, saying what to use instead."""
    shown = os.fspath(handle) if isinstance(handle, os.PathLike) else handle

    def accept(format: str) -> None:
        if format == module_format.FORMAT_NAME:
            return
        if format == "tf2_saved_model":
            instead = (f"registry.load({shown!r}) (or registry.KerasLayer({shown!r}) in a Keras model) "
                       f"for a TF2 SavedModel")
        else:
            instead = f"registry.load({shown!r})"
        raise FormatError(f"{what} needs a TF1 Hub module (format {module_format.FORMAT_NAME}), but {shown} is "
                          f"a {format} model. Instead: {instead}")

    return accept


def load_module_spec(handle, *, registry=None) -> ModuleSpec:
    """The spec of the module a handle names: catalog handle, URL or local path.

    ``registry`` (a ``registry.Registry``) resolves the handle; the default
    registry when None. Loading passes the matrix gate once, in the current mode.
    """
    if not isinstance(handle, (str, os.PathLike)):
        raise TypeError(f"expected a handle (catalog handle, URL or path), not {type(handle).__name__}")
    prepared = use_registry(registry).prepare(
        handle, "load", None, accept_format=require_tf1_hub(handle, "registry.load_module_spec"))
    return read_module_spec(prepared.path)
