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
              "WHERE m.publisher = ? AND m.name = ? AND v.version = ? AND v.deleted_at IS NULL")
_BY_ALIAS = (f"SELECT {_COLUMNS} FROM registered_model m JOIN alias a ON a.model_id = m.id "
             "JOIN model_version v ON v.id = a.version_id "
             "WHERE m.publisher = ? AND m.name = ? AND a.name = ? AND v.deleted_at IS NULL")
_NEWEST = (f"SELECT {_COLUMNS} FROM registered_model m JOIN model_version v ON v.model_id = m.id "
           "WHERE m.publisher = ? AND m.name = ? AND v.deleted_at IS NULL ORDER BY v.version DESC LIMIT 1")


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
        if handle.version is not None:
            row = connection.execute(_BY_NUMBER, (handle.publisher, handle.model, handle.version)).fetchone()
        elif handle.alias is not None and handle.alias != LATEST:
            row = connection.execute(_BY_ALIAS, (handle.publisher, handle.model, handle.alias)).fetchone()
        else:
            row = connection.execute(_NEWEST, (handle.publisher, handle.model)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    if row is None:
        return None
    publisher, model, version, format, artifact_uri, sha256, size = row
    return VersionLocation(publisher=publisher, model=model, version=version, format=format,
                           artifact_uri=artifact_uri, sha256=sha256, size=size)


def is_read_only(path: Path) -> bool:
    """True if the SQLite file exists but this process could not write it or its journal beside it."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK))
