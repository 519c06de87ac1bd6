"""Reading ``saved_model.pb``, the file both built-in formats are made of."""

from __future__ import annotations

import os
from pathlib import Path

from google.protobuf.message import DecodeError

from registry.errors import FormatError

SAVED_MODEL_FILENAME = "saved_model.pb"


def read_saved_model(path, *, what: str = "a SavedModel", message_class=None):
    """Parse ``path/saved_model.pb``; ``FormatError`` if it is missing, unreadable or holds no graph.

    ``what`` names the expected kind of directory in the missing-file message.
    ``message_class`` is the SavedModel class to parse into: TensorFlow's own by
    default (every field, for code that builds graphs from it), or
    ``registry.adapters.saved_model_schema.SavedModel``, which reads what inspection needs
    without importing TensorFlow (and skips the rest unparsed).
    """
    if message_class is None:
        from tensorflow.core.protobuf.saved_model_pb2 import SavedModel

        message_class = SavedModel

    proto_path = Path(os.fspath(path)) / SAVED_MODEL_FILENAME
    try:
        data = proto_path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{path} is not {what}: it has no {SAVED_MODEL_FILENAME}") from None
    except OSError as error:
        raise FormatError(f"cannot read {proto_path}: {error}") from error
    saved_model = message_class()
    try:
        saved_model.ParseFromString(data)
    except DecodeError as error:
        raise FormatError(f"cannot parse {proto_path}: {error}") from None
    if not saved_model.meta_graphs:
        raise FormatError(f"{proto_path} holds no graph")
    return saved_model
