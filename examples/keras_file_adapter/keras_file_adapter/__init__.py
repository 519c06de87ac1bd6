"""An example third-party plugin for the model registry: single-file Keras 3 models.

Installed, it is found through its entry point in the ``model_registry`` group
(see ``pyproject.toml``) and registers ``KerasFileAdapter`` exactly as the
built-in adapters register theirs. Nothing in the registry's core changes.
"""

from __future__ import annotations

from registry import hookimpl

from keras_file_adapter.adapter import KerasFileAdapter

__all__ = ["KerasFileAdapter", "register_adapters"]


@hookimpl
def register_adapters(register):
    register(KerasFileAdapter)
