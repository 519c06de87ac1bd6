"""TF1 layers (``tf.compat.v1.layers``) for the code of a ``module_fn``, without a global switch.

With Keras 3 (TensorFlow 2.16 and later), ``tf.compat.v1.layers.dense`` and the
other TF1 layers raise "not available with Keras 3" unless ``TF_USE_LEGACY_KERAS=1``
was set before TensorFlow was imported, which also changes ``tf.keras`` for the
whole program. TF1 module code calls them inside ``module_fn`` (the TF1 Hub
format guide's own example does), and tf_keras still ships them.

``tf.compat.v1.layers`` (and ``tf.compat.v1.nn.rnn_cell``) are TensorFlow
``KerasLazyLoader`` objects, reached through several module objects (``import
tensorflow.compat.v1`` makes a second ``tf.compat.v1``) and sometimes held by
user code directly. While ``create_module_spec`` runs a ``module_fn``, the
loaders' attribute lookup answers from tf_keras's TF1 layers for the thread
running the module_fn, which is where TensorFlow itself routes them under
``TF_USE_LEGACY_KERAS=1``. Every other thread, and all code once the last
module_fn has returned, gets TensorFlow's own behaviour: the lookup is put back.
"""

from __future__ import annotations

import importlib
import threading
from contextlib import contextmanager
from typing import Any, Callable

#: The TF1 submodules of ``tf.compat.v1`` that Keras 3 refuses, and where tf_keras provides them.
LEGACY_MODULES = {
    "__internal__.legacy.layers": "tf_keras.api._v1.keras.__internal__.legacy.layers",
    "__internal__.legacy.rnn_cell": "tf_keras.api._v1.keras.__internal__.legacy.rnn_cell",
}

_lock = threading.Lock()
_thread = threading.local()
_users = 0
#: ``KerasLazyLoader.__getattr__`` as TensorFlow defines it, kept once read: a lookup that entered
#: ``_routed_getattr`` just before the last module_fn returned still finishes through it.
_original_getattr: Callable[[Any, str], Any] | None = None


def _in_module_fn() -> bool:
    return getattr(_thread, "depth", 0) > 0


def _legacy_module(loader):
    """tf_keras's module for a TF1 loader, when the calling thread runs a module_fn; else None."""
    if not _in_module_fn() or getattr(loader, "_tfll_mode", None) != "v1":
        return None
    submodule = getattr(loader, "_tfll_submodule", None)
    target = LEGACY_MODULES.get(submodule) if isinstance(submodule, str) else None
    if target is None:
        return None
    try:
        return importlib.import_module(target)
    except ImportError:
        return None  # without tf_keras, TensorFlow's own error says what to install


def _routed_getattr(loader, name: str):
    legacy = _legacy_module(loader)
    if legacy is not None:
        return getattr(legacy, name)
    original = _original_getattr
    if original is None:  # not reached: routing is installed only after the original is read, never cleared
        raise AttributeError(name)
    return original(loader, name)


def _install() -> None:
    global _original_getattr
    from tensorflow.python.util.lazy_loader import KerasLazyLoader

    _original_getattr = KerasLazyLoader.__getattr__
    KerasLazyLoader.__getattr__ = _routed_getattr


def _uninstall() -> None:
    from tensorflow.python.util.lazy_loader import KerasLazyLoader

    KerasLazyLoader.__getattr__ = _original_getattr


@contextmanager
def tf1_layers_for_module_fn():
    """Run the body (a ``module_fn`` call) with TF1 layers available to this thread's code."""
    global _users
    with _lock:
        if _users == 0:
            _install()
        _users += 1
    _thread.depth = getattr(_thread, "depth", 0) + 1
    try:
        yield
    finally:
        _thread.depth -= 1
        with _lock:
            _users -= 1
            if _users == 0:
                _uninstall()
