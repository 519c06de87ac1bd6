"""How the registry writes values for people, the same in the CLI and on the web catalog's pages.

Plain functions of plain values, importing nothing, so every layer may use them
(``registry.cli.output`` and ``registry.server.web_templates`` both do).
"""

from __future__ import annotations

_BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def format_size(n_bytes: int | None) -> str:
    """Bytes in binary units, one decimal: ``999 B``, ``12.1 KiB``, ``1.5 GiB``; ``?`` when unknown.

    Binary units because archives, caches and upload limits are all counted in
    powers of two here (``MODEL_REGISTRY_MAX_UPLOAD_BYTES`` defaults to 8 GiB);
    one rule everywhere, so a size on a page and in ``model-registry show`` read alike.
    """
    if n_bytes is None:
        return "?"
    if n_bytes < 1024:
        return f"{n_bytes} B"
    value = n_bytes / 1024
    for unit in _BINARY_UNITS[:-1]:
        if round(value, 1) < 1024:  # 1048575 bytes is "1.0 MiB", not "1024.0 KiB"
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {_BINARY_UNITS[-1]}"
