"""Reading and writing the files of a TF1 Hub module directory.

A module directory is a SavedModel (``saved_model.pb``, ``variables/``,
``assets/``) plus ``tfhub_module.pb``, a ``ModuleDef`` that names the storage
format. This module checks that file (format V3, no required feature this
reader lacks), reads one MetaGraphDef per graph variant, points asset
constants at the module's own ``assets/`` directory (never outside it), and
rejects collections the format does not allow. Writing is the inverse: asset
constants become ``AssetFileDef`` entries and the asset files are copied.

Nothing here builds a graph; the protos are plain data.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from registry.errors import FormatError

from registry.adapters import saved_model_file
from registry.adapters.saved_model_file import SAVED_MODEL_FILENAME
from registry.adapters.tf1_hub import protos

#: The format's name in the catalog and the compatibility matrix.
FORMAT_NAME = "tf1_hub"

MODULE_DEF_FILENAME = "tfhub_module.pb"
VARIABLES_DIRNAME = "variables"
VARIABLES_BASENAME = "variables"
ASSETS_DIRNAME = "assets"

#: The features of FORMAT_V3 this reader implements (the format defines none yet).
SUPPORTED_FEATURES: frozenset[str] = frozenset()

#: CollectionDef key under which each graph stores its serialized ModuleAttachments.
ATTACHMENTS_COLLECTION = "hub_module_attachments"
#: SavedModel's collection of AssetFileDefs (written to disk, merged away on reading).
ASSETS_KEY = "saved_model_assets"
#: The collection that marks string constants holding asset file paths.
ASSET_FILEPATHS = "asset_filepaths"
#: What asset constants hold on disk, so that no exporter's local path leaks into a module.
ASSET_PLACEHOLDER_VALUE = b"SAVEDMODEL-ASSET"

#: The collections a module graph may carry; anything else is rejected by name.
SUPPORTED_COLLECTIONS = frozenset({
    "variables",             # GLOBAL_VARIABLES (VariableDefs)
    "trainable_variables",   # TRAINABLE_VARIABLES
    "model_variables",       # MODEL_VARIABLES
    "table_initializer",     # TABLE_INITIALIZERS (ops)
    "update_ops",            # UPDATE_OPS (batch-norm moving averages)
    "regularization_losses",
    ASSET_FILEPATHS,
    "cond_context",
    "while_context",
    ATTACHMENTS_COLLECTION,
})

_TENSOR_NAME = re.compile(r"^(.+):(\d+)$")


def node_name(tensor_name: str) -> str:
    """``"scope/op:0"`` -> ``"scope/op"``."""
    match = _TENSOR_NAME.match(tensor_name)
    if not match:
        raise FormatError(f"{tensor_name!r} is not a tensor name of the form node:output")
    return match.group(1)


def is_module_dir(path) -> bool:
    """True if ``path`` is a directory holding ``tfhub_module.pb``."""
    return os.path.isfile(os.path.join(os.fspath(path), MODULE_DEF_FILENAME))


def variables_prefix(path) -> str:
    """The checkpoint prefix of a module directory's variables."""
    return os.path.join(os.fspath(path), VARIABLES_DIRNAME, VARIABLES_BASENAME)


def has_checkpoint(path) -> bool:
    return os.path.isfile(variables_prefix(path) + ".index")


def read_module_def(path):
    """Parse and check ``tfhub_module.pb``: format V3 and only features this reader supports."""
    module_def_path = os.path.join(os.fspath(path), MODULE_DEF_FILENAME)
    try:
        with open(module_def_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FormatError(f"{path} is not a TF1 Hub module: it has no {MODULE_DEF_FILENAME}") from None
    module_def = protos.ModuleDef()
    try:
        module_def.ParseFromString(data)
    except DecodeError as e:
        raise FormatError(f"{module_def_path} is not a ModuleDef protocol message: {e}") from None
    if module_def.format != protos.FORMAT_V3:
        raise FormatError(
            f"{module_def_path} declares module format {module_def.format}; this reader supports only "
            f"FORMAT_V3 (3). The module was written by a newer or unknown tool")
    unsupported = sorted(set(module_def.required_features) - SUPPORTED_FEATURES)
    if unsupported:
        raise FormatError(
            f"{path} requires format features this reader does not support: {', '.join(unsupported)}")
    return module_def


def write_module_def(path) -> None:
    """Write the ``tfhub_module.pb`` of a FORMAT_V3 module (refusing to overwrite one)."""
    target = os.path.join(os.fspath(path), MODULE_DEF_FILENAME)
    if os.path.exists(target):
        raise FileExistsError(f"{target} already exists; export into a new directory")
    _atomic_write(target, protos.ModuleDef(format=protos.FORMAT_V3).SerializeToString())


def read_saved_model(path):
    """Parse ``saved_model.pb`` of a module directory."""
    return saved_model_file.read_saved_model(path, what="a TF1 Hub module")


def tags_of(meta_graph) -> frozenset[str]:
    return frozenset(meta_graph.meta_info_def.tags)


@dataclass
class ModuleGraphs:
    """The graph variants of a module, by tag set, with their attachments."""

    meta_graphs: dict[frozenset[str], object]
    attachments: dict[frozenset[str], dict[str, bytes]] = field(default_factory=dict)

    @property
    def tag_sets(self) -> list[frozenset[str]]:
        """The variants' tag sets as tensorflow_hub 0.15 listed them: ``sorted()`` over the order the module
        holds them in (``tags_and_args`` order). Sets compare by inclusion, so ``set()`` comes before a
        set containing it, and unrelated sets such as ``{"training"}``, ``{"inference"}`` keep their order."""
        return sorted(self.meta_graphs)

    def meta_graph(self, tags) -> object:
        key = frozenset(tags or ())
        try:
            return self.meta_graphs[key]
        except KeyError:
            from registry.adapters.tf1_hub.errors import GraphVariantError
            shown = ", ".join(describe_tags(t) for t in self.tag_sets)
            raise GraphVariantError(
                f"No such graph variant: tags={sorted(key) if key else None!r}. The module's variants are: {shown}"
            ) from None


def describe_tags(tags) -> str:
    return "{" + ", ".join(repr(t) for t in sorted(tags)) + "}" if tags else "set()"


def graphs_from_meta_graphs(meta_graphs, *, check_collections: bool = True) -> ModuleGraphs:
    """Index meta graphs by tag set, check their collections, and read their attachments."""
    by_tags: dict[frozenset[str], object] = {}
    for meta_graph in meta_graphs:
        tags = tags_of(meta_graph)
        if tags in by_tags:
            raise FormatError(f"the module holds two graphs with tags {describe_tags(tags)}")
        by_tags[tags] = meta_graph
        if check_collections:
            check_collections_supported(meta_graph)
    attachments = {tags: read_attachments(mg) for tags, mg in by_tags.items()}
    return ModuleGraphs(meta_graphs=by_tags, attachments=attachments)


def check_collections_supported(meta_graph) -> None:
    unsupported = sorted(set(meta_graph.collection_def) - SUPPORTED_COLLECTIONS)
    if unsupported:
        raise FormatError(
            f"Unsupported collections in graph: {unsupported} (graph variant "
            f"{describe_tags(tags_of(meta_graph))}). When creating a module, drop them with "
            f"create_module_spec(..., drop_collections=[...])")


def read_attachments(meta_graph) -> dict[str, bytes]:
    """The ``attach_message`` entries of one graph: key -> serialized message."""
    if ATTACHMENTS_COLLECTION not in meta_graph.collection_def:
        return {}
    collection = meta_graph.collection_def[ATTACHMENTS_COLLECTION]
    if collection.WhichOneof("kind") != "bytes_list":
        raise FormatError(f"collection {ATTACHMENTS_COLLECTION} must be a bytes_list, "
                          f"not {collection.WhichOneof('kind')}")
    result = {}
    for value in collection.bytes_list.value:
        attachment = protos.ModuleAttachment.FromString(value)
        result[attachment.key] = attachment.value
    return result


def write_attachments(meta_graph, attachments: dict[str, bytes]) -> None:
    if not attachments:
        return
    values = [protos.ModuleAttachment(key=k, value=v).SerializeToString() for k, v in attachments.items()]
    meta_graph.collection_def[ATTACHMENTS_COLLECTION].bytes_list.value[:] = values


def read_module(path) -> ModuleGraphs:
    """Read and check a module directory: its ModuleDef, graphs, assets and attachments."""
    read_module_def(path)
    saved_model = read_saved_model(path)
    for meta_graph in saved_model.meta_graphs:
        _resolve_assets(meta_graph, path)
    return graphs_from_meta_graphs(saved_model.meta_graphs)


_DT_STRING = 7  # tensorflow.core.framework.types_pb2.DT_STRING, without importing TensorFlow


def _check_asset_node(node) -> None:
    if node.op != "Const" or node.attr["dtype"].type != _DT_STRING or len(node.attr["value"].tensor.string_val) != 1:
        raise FormatError(f"asset node {node.name!r} must be a scalar string constant")


def _resolve_assets(meta_graph, path) -> None:
    """Point each asset constant at the file in the module's ``assets/``; drop the AssetFileDefs."""
    from tensorflow.core.protobuf import meta_graph_pb2

    if ASSETS_KEY not in meta_graph.collection_def:
        return
    assets_dir = os.path.realpath(os.path.join(os.fspath(path), ASSETS_DIRNAME))
    node_to_file = {}
    for any_proto in meta_graph.collection_def[ASSETS_KEY].any_list.value:
        asset = meta_graph_pb2.AssetFileDef()
        if not any_proto.Unpack(asset):
            raise FormatError(f"collection {ASSETS_KEY} holds something other than AssetFileDef")
        target = os.path.realpath(os.path.join(assets_dir, asset.filename))
        if os.path.commonpath([assets_dir, target]) != assets_dir or target == assets_dir:
            raise FormatError(f"asset {asset.filename!r} points outside the module's assets directory")
        node_to_file[node_name(asset.tensor_info.name)] = target
    del meta_graph.collection_def[ASSETS_KEY]
    for node in meta_graph.graph_def.node:
        if node.name in node_to_file:
            _check_asset_node(node)
            node.attr["value"].tensor.string_val[0] = node_to_file.pop(node.name).encode()
    if node_to_file:
        raise FormatError(f"assets refer to nodes missing from the graph: {', '.join(sorted(node_to_file))}")


def _collect_assets(meta_graph, used_names: dict[bytes, str]) -> None:
    """Turn the ASSET_FILEPATHS constants of ``meta_graph`` into AssetFileDefs (in place).

    ``used_names`` maps source file -> file name in ``assets/`` across all graphs
    of the module, so one file shared by several graph variants is copied once.
    """
    from tensorflow.core.protobuf import meta_graph_pb2

    collection = meta_graph.collection_def.get(ASSET_FILEPATHS)
    if collection is None:
        return
    if collection.WhichOneof("kind") != "node_list":
        raise FormatError(f"collection {ASSET_FILEPATHS} must list tensors")
    asset_nodes = {node_name(t) for t in collection.node_list.value}
    found = {}
    for node in meta_graph.graph_def.node:
        if node.name in asset_nodes:
            _check_asset_node(node)
            found[node.name + ":0"] = node.attr["value"].tensor.string_val[0]
            node.attr["value"].tensor.string_val[0] = ASSET_PLACEHOLDER_VALUE
    taken = set(used_names.values())
    for tensor_name, source in sorted(found.items()):
        if source not in used_names:
            base = os.path.basename(source.decode())
            candidate, index = base, 0
            while candidate in taken:
                candidate, index = f"{base}{index}", index + 1
            used_names[source] = candidate
            taken.add(candidate)
        asset = meta_graph_pb2.AssetFileDef(filename=used_names[source])
        asset.tensor_info.name = tensor_name
        meta_graph.collection_def[ASSETS_KEY].any_list.value.add().Pack(asset)


def local_path(path: str) -> str | None:
    """The local filesystem path of ``path`` (a plain path or a ``file:///`` URL), or None for any other
    TensorFlow filesystem URL (``gs://``, ``s3://``, ``hdfs://``, ``ram://``...), which goes through tf.io.gfile."""
    scheme, sep, rest = path.partition("://")
    if not sep or "/" in scheme:
        return path
    return rest if scheme == "file" and rest.startswith("/") else None


def _copy_asset(source: str, target: str) -> None:
    local = local_path(source)
    if local is not None:
        shutil.copyfile(local, target)
    else:
        import tensorflow as tf

        tf.io.gfile.copy(source, target, overwrite=True)


def _saved_model_of(meta_graphs):
    """The SavedModel proto of the graphs, with asset constants turned into AssetFileDefs, and its asset files."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    asset_names: dict[bytes, str] = {}
    for meta_graph in meta_graphs:
        copy = saved_model.meta_graphs.add()
        copy.CopyFrom(meta_graph)
        _collect_assets(copy, asset_names)
    return saved_model, {source.decode(): name for source, name in asset_names.items()}


def write_module(path, meta_graphs, save_variables) -> None:
    """Export a module directory: SavedModel with assets, variables, then ``tfhub_module.pb``.

    ``save_variables(prefix)`` writes the variables checkpoint (or nothing, for
    a module without variables). ``path`` and the asset files may be local
    paths or TensorFlow filesystem URLs, as tensorflow_hub accepted. Locally,
    the directory is built beside ``path`` and renamed into place, so a failed
    export leaves nothing behind; elsewhere it is written in place with
    ``tfhub_module.pb`` last and removed if the export fails.
    """
    path = os.fspath(path)
    saved_model, assets = _saved_model_of(meta_graphs)
    local = local_path(path)
    if local is None:
        _write_through_gfile(path, saved_model, assets, save_variables)
        return
    if os.path.exists(local) and os.listdir(local):
        raise FileExistsError(f"cannot export to {path}: it exists and is not empty")
    parent = os.path.dirname(os.path.abspath(local))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        if assets:
            os.makedirs(os.path.join(staging, ASSETS_DIRNAME))
            for source, name in assets.items():
                _copy_asset(source, os.path.join(staging, ASSETS_DIRNAME, name))
        os.makedirs(os.path.join(staging, VARIABLES_DIRNAME))
        save_variables(variables_prefix(staging))
        _atomic_write(os.path.join(staging, SAVED_MODEL_FILENAME), saved_model.SerializeToString())
        write_module_def(staging)
        if os.path.isdir(local):
            os.rmdir(local)  # empty, checked above
        os.replace(staging, local)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_through_gfile(path: str, saved_model, assets: dict[str, str], save_variables) -> None:
    import tensorflow as tf

    gfile = tf.io.gfile
    if gfile.exists(path) and gfile.listdir(path):
        raise FileExistsError(f"cannot export to {path}: it exists and is not empty")
    gfile.makedirs(path)
    try:
        if assets:
            gfile.makedirs(os.path.join(path, ASSETS_DIRNAME))
            for source, name in assets.items():
                _copy_asset(source, os.path.join(path, ASSETS_DIRNAME, name))
        gfile.makedirs(os.path.join(path, VARIABLES_DIRNAME))
        save_variables(variables_prefix(path))
        with gfile.GFile(os.path.join(path, SAVED_MODEL_FILENAME), "wb") as f:
            f.write(saved_model.SerializeToString())
        # Written last: a directory holding tfhub_module.pb is a complete module.
        with gfile.GFile(os.path.join(path, MODULE_DEF_FILENAME), "wb") as f:
            f.write(protos.ModuleDef(format=protos.FORMAT_V3).SerializeToString())
    except BaseException:
        try:
            gfile.rmtree(path)
        except tf.errors.OpError:
            pass  # nothing more to clean up; the export's own error says what went wrong
        raise


def _atomic_write(target: str, data: bytes) -> None:
    tmp = f"{target}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, target)


__all__ = [
    "ModuleGraphs", "read_module", "write_module", "read_module_def", "is_module_dir",
    "graphs_from_meta_graphs", "describe_tags",
]
