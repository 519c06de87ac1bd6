"""Writing in-memory models as reusable TF2 SavedModels (minimal first version; see the Keras layer work)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def can_save(obj: Any) -> bool:
    import tensorflow as tf

    return isinstance(obj, tf.Module) or hasattr(obj, "_serialize_to_tensors") or _is_trackable(obj)


def _is_trackable(obj) -> bool:
    from tensorflow.python.trackable.base import Trackable

    return isinstance(obj, Trackable)


def save_reusable(obj: Any, path: Path, **options: Any) -> None:
    import tensorflow as tf

    tf.saved_model.save(obj, str(path), **options)
