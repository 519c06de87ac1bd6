"""The matrix gate for the public names this package exports directly.

``registry.load`` and friends gate every call before reaching the adapter; a
user who calls ``registry.Module(...)`` or ``registry.create_module_spec(...)``
bypasses them, so those names pass the same gate here.
"""

from __future__ import annotations

FORMAT = "tf1_hub"


def check(operation: str, mode: str | None = None) -> str:
    """Raise ``UnsupportedOperation`` if ``operation`` on a TF1 Hub module is unsupported in ``mode``.

    ``mode`` defaults to the mode TensorFlow is in now. Returns the mode.
    """
    from registry.api import default_registry
    from registry.modes import current_mode

    mode = mode or current_mode()
    default_registry().check(FORMAT, operation, mode)
    return mode
