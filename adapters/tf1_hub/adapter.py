"""The TF1 Hub format adapter: its matrix row and the adapter methods the registry core calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.adapter import ArtifactInfo, FormatAdapter, KerasReusable, SignatureInfo, TensorInfo, UsageSnippet
from registry.errors import UnsupportedConversion
from registry.matrix import Cell

from registry.adapters.tf1_hub import format as module_format
from registry.adapters.tf1_hub import reuse

FORMAT = module_format.FORMAT_NAME
#: The format a conversion writes, by its catalog name: the public identifier the TF2 SavedModel adapter
#: registers, named here rather than imported (a plugin never reads another plugin's modules). Registry.convert
#: checks that the directory written is claimed by the adapter of that name.
TF2_FORMAT = "tf2_saved_model"
#: How a TF1 Hub module becomes fine-tunable in TF2 (the matrix's "Instead:", the pages' usage code).
CONVERT_CODE = f'registry.convert(handle, to="{TF2_FORMAT}")'
CONVERT_COMMAND = f"model-registry convert HANDLE --to {TF2_FORMAT}"

_ESTIMATOR_NOTE = "Estimator-based fine-tuning (hub.text_embedding_column & co.) needs TensorFlow <= 2.15"

MATRIX = (
    Cell(FORMAT, "load", "tf1", True,
         "registry.Module(handle) builds the module into the current tf.Graph; run "
         "global_variables_initializer() and tables_initializer() before use"),
    Cell(FORMAT, "load", "tf2", True,
         "signatures only: the module as tf.compat.v1.saved_model.load_v2 restores it, callable on its "
         "'default' signature; update ops and regularization losses are lost"),
    Cell(FORMAT, "fine_tune", "tf1", True,
         "registry.Module(handle, trainable=True, tags={'train'}) in a tf.Graph with a tf.compat.v1 optimizer; "
         + _ESTIMATOR_NOTE),
    Cell(FORMAT, "fine_tune", "tf2", False,
         "TF2 code cannot train a TF1 Hub module: its signatures lose update ops and regularization losses",
         alternative=f"convert it to a fine-tunable TF2 SavedModel with {CONVERT_CODE} (or `{CONVERT_COMMAND}`) "
                     "and fine-tune that; or fine-tune in mode tf1 (inside a tf.Graph with registry.Module(handle, "
                     "trainable=True, tags={'train'}))"),
    Cell(FORMAT, "create", "tf1", True,
         "registry.create_module_spec(module_fn) with registry.add_signature, then Module.export or "
         "ModuleSpec.export; module_fn always builds a tf.Graph of its own, so this works from eager code too"),
    Cell(FORMAT, "create", "tf2", False,
         "TF2 objects (tf.Module, Keras models, concrete functions) cannot become a TF1 Hub module",
         alternative="create in mode tf1: define the module with registry.create_module_spec(module_fn), which "
                     "builds its own tf.Graph and so works from eager code too; or save a TF2 SavedModel with "
                     "tf.saved_model.save"),
)


def _tensor_info(info) -> TensorInfo:
    shape = None if info.shape.rank is None else tuple(info.shape.as_list())
    return TensorInfo(dtype=info.dtype.name, shape=shape, kind=info.kind)


class TF1HubAdapter(FormatAdapter):
    """A directory with ``tfhub_module.pb`` beside a SavedModel: tensorflow_hub's hub.Module format."""

    format = FORMAT
    description = "TF1 Hub format (hub.Module): graph variants by tags, signatures, attached messages"
    matrix = MATRIX
    expects = "saved_model.pb with tfhub_module.pb (TF1 Hub format)"
    creates_from = "a module spec"
    #: Mode tf2 restores the module's signatures (``.signatures``); mode tf1 builds a ``Module`` instead.
    restored_object_modes = ("tf2",)
    #: A module converts to a TF2 SavedModel implementing the Reusable SavedModel API (``convert.convert_module``).
    conversions = (TF2_FORMAT,)

    @classmethod
    def detect(cls, path: Path) -> bool:
        return module_format.is_module_dir(path)

    def inspect(self, path: Path) -> ArtifactInfo:
        """Signatures per graph variant, and in ``metadata``: the attached messages' keys per variant
        (``attached_messages``) and the attached ``image_module_info`` default image size per variant
        (``image_module_info``: ``{"tag,tag": {"height": h, "width": w}}``, ``""`` for the default
        variant), which is what common-signature conformance reads.
        """
        from registry.adapters.tf1_hub.image import IMAGE_MODULE_INFO_KEY, ImageModuleInfo, get_expected_image_size
        from registry.adapters.tf1_hub.spec import read_module_spec

        spec = read_module_spec(path)
        signatures = []
        attached: dict[str, list[str]] = {}
        image_sizes: dict[str, dict[str, int]] = {}
        for tags in spec.get_tags():
            for name in sorted(spec.get_signature_names(tags)):
                signatures.append(SignatureInfo(
                    name=name,
                    inputs={k: _tensor_info(v) for k, v in spec.get_input_info_dict(name, tags).items()},
                    outputs={k: _tensor_info(v) for k, v in spec.get_output_info_dict(name, tags).items()},
                    tags=tags))
            keys = spec.attached_message_keys(tags)
            if keys:
                attached[",".join(sorted(tags))] = keys
            if IMAGE_MODULE_INFO_KEY in keys:
                info = spec.get_attached_message(IMAGE_MODULE_INFO_KEY, ImageModuleInfo, tags=tags)
                size = info.default_image_size
                if info.HasField("default_image_size") and size.height > 0 and size.width > 0:
                    image_sizes[",".join(sorted(tags))] = {"height": int(size.height), "width": int(size.width)}
        metadata: dict[str, Any] = {"module_format": "FORMAT_V3", "has_variables": spec.checkpoint_path is not None}
        if attached:
            metadata["attached_messages"] = attached
        if image_sizes:
            metadata["image_module_info"] = image_sizes
        if any(IMAGE_MODULE_INFO_KEY in keys for keys in attached.values()):
            try:
                metadata["expected_image_size"] = get_expected_image_size(spec)
            except ValueError:
                pass  # attached to another variant, or no size recorded: nothing to report
        return ArtifactInfo(format=FORMAT, tag_sets=tuple(spec.get_tags()), signatures=tuple(signatures),
                            metadata=metadata)

    def load(self, path: Path, *, mode: str, **options: Any) -> Any:
        """Mode tf1: a ``Module`` in the current graph (options ``tags``, ``trainable``, ``name``).

        Mode tf2: the eagerly restored module (option ``tags``), with ``.signatures``.
        """
        if mode == "tf1":
            from registry.adapters.tf1_hub.module import Module
            from registry.adapters.tf1_hub.spec import read_module_spec

            return Module.from_gated_spec(read_module_spec(path), **options)
        from registry.adapters.tf1_hub.loader_tf2 import load_v2

        unknown = set(options) - {"tags"}
        if unknown:
            raise TypeError(f"mode tf2 loading of a TF1 Hub module takes only tags=, not {sorted(unknown)}")
        return load_v2(path, tags=options.get("tags"))

    def fine_tune(self, path: Path, *, mode: str = "tf1", **options: Any) -> Any:
        """A trainable ``Module``; the ``{"train"}`` variant when the module has one and no tags are given."""
        from registry.adapters.tf1_hub.module import Module
        from registry.adapters.tf1_hub.spec import read_module_spec

        spec = read_module_spec(path)
        if "tags" not in options:
            options["tags"] = {"train"} if frozenset({"train"}) in spec.get_tags() else None
        options.pop("trainable", None)
        return Module.from_gated_spec(spec, trainable=True, **options)

    def convert(self, path: Path, target: Path, *, to: str, source: str, **options: Any) -> Any:
        """The module as a fine-tunable TF2 SavedModel (option ``call_signature``: what ``__call__`` runs)."""
        from registry.adapters.tf1_hub.convert import convert_module

        unknown = set(options) - {"call_signature"}
        if unknown:
            raise TypeError(f"converting a TF1 Hub module takes only call_signature=, not {sorted(unknown)}")
        if to not in self.conversions:
            raise UnsupportedConversion(f"a TF1 Hub module converts to {', '.join(self.conversions)}, not {to!r}")
        return convert_module(path, target, source=source, **options)

    def check_keras_layer(self, *, trainable: bool, mode: str) -> None:
        reuse.refuse_keras_fine_tuning(FORMAT, trainable=trainable, mode=mode, convert_code=CONVERT_CODE)

    def keras_reusable(self, path: Path, *, mode: str) -> KerasReusable:
        return reuse.keras_reusable(path)

    def usage(self, version: Any) -> list[UsageSnippet]:
        return reuse.usage(version, convert_to=TF2_FORMAT)

    def accepts(self, obj: Any) -> bool:
        from registry.adapters.tf1_hub.spec import ModuleSpec

        return isinstance(obj, ModuleSpec)

    def creation_mode(self, obj: Any, mode: str) -> str:
        """Always tf1: a ``ModuleSpec`` is exported in a ``tf.Graph`` of its own, from eager code too (hub 0.15)."""
        return "tf1"

    def create(self, obj: Any, path: Path, *, mode: str = "tf1", **options: Any) -> None:
        """Export a ``ModuleSpec`` to ``path``: weights from ``checkpoint_path=`` if given, else initialisers."""
        import tensorflow as tf

        from registry.adapters.tf1_hub.module import Module

        checkpoint_path = options.pop("checkpoint_path", None)
        if checkpoint_path:
            obj.export(str(path), checkpoint_path=checkpoint_path, **options)
            return
        # Exporting builds a throwaway graph, which works whatever the caller's mode is; the caller
        # (publish) has passed the create gate, so the module is built without gating a load.
        with tf.Graph().as_default():
            module = Module.from_gated_spec(obj)
            with tf.compat.v1.Session() as session:
                session.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()])
                module.export(str(path), session)
