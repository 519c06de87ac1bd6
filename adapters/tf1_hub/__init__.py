"""The TF1 Hub format adapter, as a plugin: tensorflow_hub 0.15's hub.Module API on current TensorFlow.

Modules of the package, one job each:

- ``protos``: the ModuleDef, ModuleAttachment and ImageModuleInfo messages;
- ``format``: reading and writing module directories (tfhub_module.pb, graphs, assets, attachments);
- ``signatures``: signature tensors (dense, sparse, ragged) in and out of graphs;
- ``instantiate``: building a graph variant's state and applications into the current graph;
- ``spec``: ``ModuleSpec`` and ``load_module_spec``;
- ``module``: ``Module``;
- ``export``: ``create_module_spec``, ``add_signature``, ``attach_message``, writing modules;
- ``image``: ``image_module_info`` and ``get_expected_image_size``;
- ``loader_tf2``: mode tf2 loading through ``tf.compat.v1.saved_model.load_v2``;
- ``adapter``: the ``FormatAdapter`` and its matrix row.

Importing this package does not import TensorFlow.
"""

from __future__ import annotations

from registry.hookspecs import hookimpl

from adapters.tf1_hub.adapter import TF1HubAdapter


@hookimpl
def register_adapters(register):
    register(TF1HubAdapter)


@hookimpl
def claim_directory(path):
    return TF1HubAdapter.format if TF1HubAdapter.detect(path) else None
