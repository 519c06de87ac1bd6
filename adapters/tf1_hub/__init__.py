"""The TF1 Hub format adapter, as a plugin: tensorflow_hub 0.15's hub.Module API on current TensorFlow.

Modules of the package, one job each, in import order: each imports only
modules above it (function-level imports included), so there is no cycle:

- ``protos``, ``errors``: the ModuleDef, ModuleAttachment and ImageModuleInfo messages; typed errors;
- ``format``: reading and writing module directories (tfhub_module.pb, graphs, assets, attachments),
  locally or through tf.io.gfile for TensorFlow filesystem URLs;
- ``signatures``: signature tensors (dense, sparse, ragged) in and out of graphs;
- ``colocation``: ``tf.colocate_with`` constraints checked at creation and rewritten on apply;
- ``convert_graph``: GraphDef surgery: the nodes a set of outputs needs, and pieces of a module graph
  rewritten for TF2 functions (state fed from outside, ref variables and v1 table ops as resources);
- ``convert_gradient``: the gradient of a piece running a TF1 ``tf.while_loop``, built by a TF1 graph
  (uses ``convert_graph``, ``format``);
- ``instantiate``: building a graph variant's state and applications into the current graph;
- ``writer``: saving variables from a session and writing the module directory;
- ``spec``: ``ModuleSpec`` (its ``export`` uses ``instantiate`` and ``writer``) and ``load_module_spec``;
- ``module``: ``Module`` (its ``export`` uses ``writer``);
- ``evaluate``: ``eval_function_for_module`` (a ``Module`` in a graph and session of its own);
- ``legacy_layers``: ``tf.compat.v1.layers`` for a ``module_fn`` while it runs (tf_keras's TF1 layers);
- ``export``: ``create_module_spec``, ``add_signature``, ``attach_message``;
- ``image``: ``image_module_info`` and ``get_expected_image_size`` (attaching through ``export``);
- ``loader_tf2``: mode tf2 loading through ``tf.compat.v1.saved_model.load_v2`` (uses ``format`` only);
- ``reusable``: the TF2 object a converted module becomes (the Reusable SavedModel API; uses ``convert_graph``);
- ``convert``: ``convert_module``, a TF1 Hub module to a fine-tunable TF2 SavedModel (uses ``spec``,
  ``convert_graph``, ``convert_gradient``, ``reusable``);
- ``provenance``: the record a converted model carries of what it was converted from (uses ``errors``);
- ``reuse``: what the core asks beyond loading: a Keras layer's object and refusal, a page's usage code;
- ``adapter``: the ``FormatAdapter``, its matrix row, its page usage and its Keras-layer refusal; it may use
  any of the above.

That is: format -> signatures -> colocation -> convert_graph -> convert_gradient -> instantiate -> writer -> spec ->
module -> evaluate -> export -> image -> reusable -> provenance -> convert -> reuse -> adapter (``legacy_layers``
imports none of them).
``Module``, ``load_module_spec`` and ``create_module_spec`` take a ``registry=`` (a ``registry.Registry``) and use
the default registry, reached through the public ``registry`` package, when it
is None; nothing here imports ``registry.api``. A handle goes through
``Registry.prepare``, which resolves it and passes the matrix gate once.

Importing this package does not import TensorFlow.
"""

from __future__ import annotations

from registry.hookspecs import hookimpl

from registry.adapters.tf1_hub.adapter import TF1HubAdapter


@hookimpl
def register_adapters(register):
    register(TF1HubAdapter)


@hookimpl
def inspect_version(path, info, adapter, claimed_tasks, plugin_manager):
    """A model converted from a TF1 Hub module records what it was converted from (``details["converted_from"]``)."""
    if info.format not in TF1HubAdapter.conversions:
        return None
    from registry.adapters.tf1_hub.provenance import read_record

    record = read_record(path)
    return {"details": {"converted_from": record}} if record is not None else None
