"""The catalog: which models exist, their numbered versions, aliases, signatures, tasks and lineage.

- ``interface``: ``CatalogBackend``, what the rest of the registry uses, and ``VersionLocation``;
- ``database``: ``DatabaseCatalog``, that interface over SQLite or PostgreSQL, with a standard-library
  fast path (``sqlite_reader``) for the one read loading needs;
- ``store``: ``Catalog``, the SQLModel data access; ``search``: task and text search in SQL;
- ``models``: tables and public records; ``records``: rows to records;
- ``schema`` / ``revision`` / ``migrations_dir``: the Alembic-owned schema (scripts in ``alembic/``);
- ``engine``: connections set up so concurrent writers never fail; ``failures``: database errors as
  ``registry.errors`` types; ``urls``: database URLs without a database library.

Nothing is imported here eagerly: loading a model must not pay for SQLAlchemy.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Catalog": "registry.catalog.store",
    "DatabaseCatalog": "registry.catalog.database",
    "ModelPublic": "registry.catalog.models",
    "SignaturePublic": "registry.catalog.models",
    "TaskPublic": "registry.catalog.models",
    "VersionPublic": "registry.catalog.models",
    "VersionLocation": "registry.catalog.interface",
    "CatalogBackend": "registry.catalog.interface",
}

# _LAZY's names, sorted, written out: linters and type checkers read only a literal __all__.
__all__ = [
    "Catalog",
    "CatalogBackend",
    "DatabaseCatalog",
    "ModelPublic",
    "SignaturePublic",
    "TaskPublic",
    "VersionLocation",
    "VersionPublic",
]


def __getattr__(name: str):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
