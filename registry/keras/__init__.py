"""Registry models as Keras layers, for Keras 3 (``layer``) and for tf_keras, i.e. Keras 2 (``tf_keras``).

Submodules load lazily: ``registry.keras.tf_keras`` imports tf_keras only when touched,
so a Keras 3 user never pays for it (and the other way round).
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("layer", "tf_keras")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
