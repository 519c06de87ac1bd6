"""``KerasFileAdapter``: a Keras 3 model saved as one ``.keras`` file, published and loaded by handle.

A ``.keras`` file is a zip archive holding ``config.json``, ``metadata.json`` and
the weights. Published from the file itself, it is claimed before the registry
could take it for an archive (``detect_file``) and stored as a directory holding
``model.keras`` (``from_file``); a path handle to a ``.keras`` file loads it as it
is. The built-in TF2 SavedModel adapter also accepts in-memory Keras models
(it writes them as SavedModels): this adapter declares a higher ``precedence``,
so a Keras model published while it is installed is kept as a ``.keras`` file.

Keras 3 runs eagerly: load, fine-tune and create are supported in mode tf2 and
refused, with the alternative, in mode tf1.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

from registry.adapter import ArtifactInfo, FormatAdapter, SignatureInfo, TensorInfo
from registry.errors import FormatError
from registry.matrix import Cell

FORMAT = "keras_file"
#: The name the model file has inside a published version's directory.
MODEL_FILE = "model.keras"
_EAGER_ONLY = "Keras 3 models run eagerly; call this in mode tf2 (outside any tf.Graph)"

MATRIX = (
    Cell(FORMAT, "load", "tf2", True, "keras.saving.load_model: the Keras model, callable"),
    Cell(FORMAT, "load", "tf1", False, "Keras 3 has no graph mode", alternative=_EAGER_ONLY),
    Cell(FORMAT, "fine_tune", "tf2", True, "the Keras model with trainable weights: compile and fit it"),
    Cell(FORMAT, "fine_tune", "tf1", False, "Keras 3 has no graph mode", alternative=_EAGER_ONLY),
    Cell(FORMAT, "create", "tf2", True, "model.save of a Keras 3 model to a .keras file"),
    Cell(FORMAT, "create", "tf1", False, "Keras 3 has no graph mode", alternative=_EAGER_ONLY),
)


def _is_keras_zip(path: Path) -> bool:
    """A ``.keras`` file in the Keras 3 format: a zip holding ``config.json`` (read without importing Keras)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _model_file(path: Path) -> Path:
    path = Path(path)
    return path if path.is_file() else path / MODEL_FILE


class KerasFileAdapter(FormatAdapter):
    """A ``.keras`` file, or a directory holding ``model.keras``: a Keras 3 model."""

    format = FORMAT
    description = "Keras 3 model file (.keras): architecture, weights and compile state in one zip"
    matrix = MATRIX
    #: Above the built-ins (0): a Keras model object goes to this adapter, not to the TF2 SavedModel one.
    precedence = 10
    expects = "model.keras (Keras 3 model file)"
    creates_from = "a Keras 3 model"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return _is_keras_zip(Path(path) / MODEL_FILE)

    @classmethod
    def detect_file(cls, path: Path) -> bool:
        path = Path(path)
        return path.suffix == ".keras" and _is_keras_zip(path)

    def from_file(self, file: Path, target: Path) -> None:
        """Copy the file into ``target`` under the one name ``detect`` looks for."""
        target.mkdir(parents=True)
        shutil.copy2(file, target / MODEL_FILE)

    def inspect(self, path: Path) -> ArtifactInfo:
        """The model's call signature: its inputs and outputs as Keras built them (the model is loaded, not run)."""
        file = _model_file(path)
        with zipfile.ZipFile(file) as archive:
            try:
                metadata = json.loads(archive.read("metadata.json"))
            except KeyError:
                metadata = {}
        model = self._load_model(file)
        signature = SignatureInfo("__call__", inputs=_tensors(model.inputs), outputs=_tensors(model.outputs))
        return ArtifactInfo(format=FORMAT, signatures=(signature,),
                            metadata={"keras_version": metadata.get("keras_version"), "model_class": type(model).__name__})

    def load(self, path: Path, *, mode: str, **options: Any) -> Any:
        if options:
            raise TypeError(f"unexpected options for loading a Keras model file: {', '.join(options)}")
        return self._load_model(_model_file(path))

    def fine_tune(self, path: Path, *, mode: str, **options: Any) -> Any:
        model = self.load(path, mode=mode, **options)
        model.trainable = True
        return model

    def accepts(self, obj: Any) -> bool:
        keras = sys.modules.get("keras")  # nothing made with Keras exists before it is imported
        return keras is not None and isinstance(obj, keras.Model)

    def create(self, obj: Any, path: Path, *, mode: str, **options: Any) -> None:
        if options:
            raise TypeError(f"unexpected options for saving a Keras model file: {', '.join(options)}")
        Path(path).mkdir(parents=True)
        obj.save(Path(path) / MODEL_FILE)

    @staticmethod
    def _load_model(file: Path):
        import keras

        try:
            return keras.saving.load_model(file, compile=False)
        except (ValueError, OSError) as error:
            raise FormatError(f"cannot load the Keras model file {file}: {error}") from error


def _tensors(tensors) -> dict[str, TensorInfo]:
    out = {}
    for i, tensor in enumerate(tensors):
        name = getattr(tensor, "name", None) or f"input_{i}"
        shape = tuple(None if d is None else int(d) for d in tensor.shape)
        out[name] = TensorInfo(dtype=str(tensor.dtype), shape=shape)
    return out
