"""Where the Alembic migration scripts are, in a clone and in an installed wheel.

The scripts live in the repository's top-level ``alembic/`` directory (where
``alembic.ini`` and ``alembic upgrade head`` expect them). The wheel ships that
directory as the package ``registry.catalog.migrations`` (pyproject.toml maps
it with ``package-dir``); it has no ``__init__.py``, so that the top-level
``alembic/`` of a clone never shadows the ``alembic`` library.

* Installed from a wheel: ``registry/catalog/migrations/`` in site-packages,
  found through the import system.
* Installed editable or run from a clone: the import system does not see the
  mapping, so the clone's ``alembic/`` beside the ``registry`` package is used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The package the wheel ships the migration scripts as.
MIGRATIONS_PACKAGE = "registry.catalog.migrations"


def _is_script_directory(path: Path) -> bool:
    return (path / "env.py").is_file() and (path / "versions").is_dir()


def migrations_directory() -> Path:
    """The directory holding Alembic's ``env.py``, ``script.py.mako`` and ``versions/``."""
    try:
        spec = importlib.util.find_spec(MIGRATIONS_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if _is_script_directory(Path(location)):
            return Path(location).resolve()
    clone = Path(__file__).resolve().parents[2] / "alembic"
    if _is_script_directory(clone):
        return clone
    from registry.errors import SchemaError

    raise SchemaError(f"the catalog's migration scripts are missing: neither the package {MIGRATIONS_PACKAGE} "
                      f"nor {clone} holds an Alembic env.py; reinstall tf-model-registry")
