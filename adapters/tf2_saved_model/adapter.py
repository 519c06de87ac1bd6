"""The TF2 SavedModel adapter: load, fine-tune and create, in both modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.adapter import ArtifactInfo, FormatAdapter, KerasReusable
from registry.matrix import Cell

from registry.adapters.saved_model_file import read_saved_model

FORMAT = "tf2_saved_model"

MATRIX = (
    Cell(FORMAT, "load", "tf1", True, "tf.compat.v1.saved_model.load_v2 inside the graph; "
         "run tf.compat.v1.global_variables_initializer() and tables_initializer() before use"),
    Cell(FORMAT, "load", "tf2", True, "tf.saved_model.load: the restored object, callable, with .signatures"),
    Cell(FORMAT, "fine_tune", "tf1", True, "as a tf_keras KerasLayer(trainable=True) trained with Model.fit "
         "inside a tf.Graph; Estimator-based fine-tuning needs TensorFlow <= 2.15"),
    Cell(FORMAT, "fine_tune", "tf2", True, "a GradientTape loop over the restored object's trainable_variables, "
         "or registry.KerasLayer(handle, trainable=True) in a Keras 3 model"),
    Cell(FORMAT, "create", "tf1", True, "tf.saved_model.save in TF1 compatibility mode"),
    Cell(FORMAT, "create", "tf2", True, "tf.saved_model.save of a tf.Module or Keras model"),
)


class TF2SavedModelAdapter(FormatAdapter):
    """A directory with ``saved_model.pb`` and no ``tfhub_module.pb``."""

    format = FORMAT
    description = "TF2 SavedModel (reusable SavedModel API: __call__, variables, regularization_losses)"
    matrix = MATRIX
    expects = "saved_model.pb (TF2 SavedModel)"
    creates_from = "a tf.Module, a Keras model"
    #: tf.saved_model.load eagerly, tf.compat.v1.saved_model.load_v2 in a graph: both the restored object.
    restored_object_modes = ("tf1", "tf2")

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        return (path / "saved_model.pb").is_file() and not (path / "tfhub_module.pb").exists()

    def inspect(self, path: Path) -> ArtifactInfo:
        # Imported here: loading a model never needs them.
        from registry.adapters import saved_model_schema
        from registry.adapters.tf2_saved_model import signatures as sigs

        # saved_model.pb says all the catalog records, read without TensorFlow: importing it alone
        # costs ~540 MB, more than publishing a large model needs for everything else.
        proto = read_saved_model(path, message_class=saved_model_schema.SavedModel)
        try:
            return _artifact_info(proto, sigs.dtype_name, lambda: sigs.read_call(proto))
        except sigs.Unsupported:
            # Something only TensorFlow reads the way tf.saved_model.load does: let it, so that the
            # record is the same whichever path made it.
            return self._inspect_with_tensorflow(path)

    def _inspect_with_tensorflow(self, path: Path) -> ArtifactInfo:
        import tensorflow as tf

        return _artifact_info(read_saved_model(path), lambda value: tf.dtypes.as_dtype(value).name,
                              lambda: self._inspect_object(path))

    def _inspect_object(self, path: Path):
        """Restore the object to read its call signature, never adding ops to a graph the user is building."""
        import tensorflow as tf

        with tf.init_scope():  # the outermost context: eager in any TF2 program, even inside tf.Graph()
            if tf.executing_eagerly():
                return self._inspect_eager(path)
        with tf.Graph().as_default():  # v2 behaviour disabled globally: a throwaway graph
            return self._inspect_eager(path)

    def _inspect_eager(self, path: Path):
        import tensorflow as tf

        from registry.adapters.tf2_saved_model import signatures as sigs

        # The call signature and the variable counts need the object graph, not the weights: skipping the
        # checkpoint halves inspection time and peak memory on a large model (nothing restores ~1 GB of floats).
        obj = tf.saved_model.load(str(path), options=tf.saved_model.LoadOptions(experimental_skip_checkpoint=True))
        signature, takes_training = sigs.call_signature(sigs.traces_of(obj), sigs.tensorflow_vocabulary())
        if signature is None:
            return None, False, None
        lengths = {name: len(getattr(obj, name) or []) if hasattr(obj, name) else None for name in sigs.REUSABLE_LISTS}
        return signature, takes_training, sigs.reusable_api(lengths)

    def load(self, path: Path, *, mode: str, tags=None, **options: Any) -> Any:
        import tensorflow as tf

        if options:
            raise TypeError(f"unexpected options for loading a TF2 SavedModel: {', '.join(options)}")
        if mode == "tf1":
            # Builds the restored functions and variables into the current graph.
            return tf.compat.v1.saved_model.load_v2(str(path), tags=tags)
        return tf.saved_model.load(str(path), tags=tags)

    def fine_tune(self, path: Path, *, mode: str, **options: Any) -> Any:
        if mode == "tf1":
            from registry.keras.tf_keras import KerasLayer

            return KerasLayer(str(path), trainable=True, **options)
        # In TF2 a restored object's variables are trainable: train it with a GradientTape loop.
        return self.load(path, mode=mode, **options)

    def keras_reusable(self, path: Path, *, mode: str) -> KerasReusable:
        """The restored object, whose variables become the layer's weights (trainable or not)."""
        import tensorflow as tf

        return KerasReusable(tf.saved_model.load(str(path)))

    def accepts(self, obj: Any) -> bool:
        from registry.adapters.tf2_saved_model.export import can_save

        return can_save(obj)

    def create(self, obj: Any, path: Path, *, mode: str, **options: Any) -> None:
        from registry.adapters.tf2_saved_model.export import save_reusable

        save_reusable(obj, Path(path), **options)


def _artifact_info(proto, dtype_name, read_call) -> ArtifactInfo:
    """The catalog's facts from a parsed SavedModel and ``read_call() -> (signature, takes_training, api)``."""
    from registry.adapters.tf2_saved_model import signatures as sigs

    signatures = []
    tag_sets = []
    for meta_graph in proto.meta_graphs:
        tags = frozenset(t for t in meta_graph.meta_info_def.tags if t != "serve")
        tag_sets.append(tags)
        signatures += sigs.signature_defs(meta_graph, tags, dtype_name)
    details: dict[str, Any] = {}
    signature, takes_training, api = read_call()
    if signature is not None:
        signatures.append(signature)
        details["reusable_api"] = api
        details["call_accepts_training"] = takes_training
    return ArtifactInfo(format=FORMAT, tag_sets=tuple(tag_sets) or (frozenset(),),
                        signatures=tuple(signatures), metadata=details)
