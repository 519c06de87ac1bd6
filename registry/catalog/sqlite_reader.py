"""The load path's one catalog read, on an SQLite catalog, with the standard library alone.

Loading a pinned, cached model must cost little more than TensorFlow's own
load, and importing SQLAlchemy and SQLModel alone costs most of a second. So
``locate`` on an SQLite file opens it read-only with ``sqlite3``, checks the
schema revision and finds the version in one query. It answers only the happy
path: whenever it cannot (no file yet, a schema to check or create, an unknown
model, a deleted version, a busy or unreadable file) it returns None and the
full catalog (``registry.catalog.store``) answers instead, with its precise
errors.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from registry.catalog.interface import VersionLocation
from registry.catalog.revision import HEAD_REVISION
from registry.handles import LATEST, CatalogHandle

_COLUMNS = "m.publisher, m.name, v.version, v.format, v.artifact_uri, v.sha256, v.size"
_BY_NUMBER = (f"SELECT {_COLUMNS} FROM registered_model m JOIN model_version v ON v.model_id = m.id "
              "WHERE m.publisher = :publisher AND m.name = :model AND v.version = :version AND v.deleted_at IS NULL")
_BY_ALIAS = (f"SELECT {_COLUMNS} FROM registered_model m JOIN alias a ON a.model_id = m.id "
             "JOIN model_version v ON v.id = a.version_id "
             "WHERE m.publisher = :publisher AND m.name = :model AND a.name = :alias AND v.deleted_at IS NULL")
_NEWEST = (f"SELECT {_COLUMNS} FROM registered_model m JOIN model_version v ON v.model_id = m.id "
           "WHERE m.publisher = :publisher AND m.name = :model AND v.deleted_at IS NULL "
           "ORDER BY v.version DESC LIMIT 1")


def locate_query(handle: CatalogHandle) -> tuple[str, dict]:
    """The one query that finds the live version a handle names, and its parameters.

    Plain SQL with named parameters, which both ``sqlite3`` (here) and SQLAlchemy's ``text()``
    (``Catalog.locate``, on SQLite or PostgreSQL) accept; each row is ``location_of(row)``.
    """
    params: dict = {"publisher": handle.publisher, "model": handle.model}
    if handle.version is not None:
        return _BY_NUMBER, {**params, "version": handle.version}
    if handle.alias is not None and handle.alias != LATEST:
        return _BY_ALIAS, {**params, "alias": handle.alias}
    return _NEWEST, params


def location_of(row) -> VersionLocation:
    """A ``locate_query`` row as a ``VersionLocation``."""
    publisher, model, version, format, artifact_uri, sha256, size = row
    return VersionLocation(publisher=publisher, model=model, version=version, format=format,
                           artifact_uri=artifact_uri, sha256=sha256, size=size)


def locate(path: Path, handle: CatalogHandle) -> VersionLocation | None:
    """The live version ``handle`` names in the SQLite catalog at ``path``, or None to ask the full catalog."""
    if not path.is_file():
        return None
    # A file in a directory we cannot write is read as immutable: WAL readers would need to create files there.
    immutable = "&immutable=1" if is_read_only(path) else ""
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro{immutable}", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        if revision != [(HEAD_REVISION,)]:
            return None
        row = connection.execute(*locate_query(handle)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return None if row is None else location_of(row)


def is_read_only(path: Path) -> bool:
    """True if the SQLite file exists but this process could not write it or its journal beside it."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK))
