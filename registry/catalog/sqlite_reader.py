"""The load path's one catalog read, on an SQLite catalog, with the standard library alone.

Loading a pinned, cached model must cost little more than TensorFlow's own
load, and importing SQLAlchemy and SQLModel alone costs most of a second. So
``locate`` on an SQLite file opens it read-only with ``sqlite3``, checks the
schema revision and finds the version in one query. A long-lived process (the
server answers every download through here) keeps that read-only connection
open, one per thread, rather than pay ~0.5 ms to open the file on every call
(measured: 470 µs a call reopened, 10 µs kept open); the revision is still
checked on every call, and a file replaced under the same name is reopened.
It answers only the happy path: whenever it cannot (no file yet, a schema to
check or create, an unknown model, a deleted version, a busy or unreadable
file) it returns None and the full catalog (``registry.catalog.store``)
answers instead, with its precise errors.
"""

from __future__ import annotations

import os
import sqlite3
import threading
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
    rows = _read(path, *locate_query(handle))
    return None if not rows else location_of(rows[0])


#: A model's revision (``registry.catalog.record_cache``), in DB-API ``qmark`` style; parameters
#: ``(publisher, model, publisher, model)``. The SQLAlchemy catalog runs the same text with its driver's marks.
REVISION_SQL = ("SELECT (SELECT max(id) FROM audit_entry WHERE publisher = {p} AND model = {m}) "
                "FROM registered_model WHERE publisher = {p} AND name = {m}")


_REVISION_QMARK = REVISION_SQL.format(p="?", m="?")


def revision(path: Path, publisher: str, model: str) -> tuple[bool, int | None]:
    """``(True, the model's revision or None for no such model)`` read from the SQLite catalog at ``path``, or
    ``(False, None)`` when this reader cannot tell and the full catalog must answer."""
    rows = _read(path, _REVISION_QMARK, (publisher, model, publisher, model))
    if rows is None:
        return False, None
    return True, (None if not rows else rows[0][0] or 0)


#: One statement for both: the schema revision (``group_concat``: one row of alembic_version, as it has at this
#: code's schema) and the query's rows, each behind a marker (1), so that no row (a NULL marker) and a row of
#: NULLs stay apart. One statement rather than two is a tenth of a kept-connection read.
_CHECKED_SQL = ("SELECT (SELECT group_concat(version_num) FROM alembic_version), q.* FROM (SELECT 1) "
                "LEFT JOIN (SELECT 1 AS present, * FROM ({sql})) AS q ON 1")
_CHECKED: dict[str, str] = {}


def _read(path: Path, sql: str, parameters) -> list | None:
    """The rows of one query on the catalog file at ``path`` at the schema this code knows; None if it cannot
    be answered here (no file, another schema revision, a busy or unreadable file)."""
    connection, kept = _connection(path)
    if connection is None:
        return None
    try:
        checked = _CHECKED.get(sql)
        if checked is None:
            checked = _CHECKED[sql] = _CHECKED_SQL.format(sql=sql)
        rows = connection.execute(checked, parameters).fetchall()
        if not rows or rows[0][0] != HEAD_REVISION:
            return None
        return [row[2:] for row in rows[:1] if row[1] is not None]
    except sqlite3.Error:
        _forget(path)
        return None
    finally:
        if not kept:
            connection.close()


class _KeptConnections(threading.local):
    """Per thread: ``{path: ((pid, device, inode) of the file when opened, read-only connection)}``."""

    def __init__(self) -> None:
        self.connections: dict[str, tuple[tuple[int, int, int], sqlite3.Connection]] = {}


_open = _KeptConnections()
#: Catalog files one thread keeps open at most (a test suite opens many; a server one).
_KEPT = 4


def _connection(path: Path) -> tuple[sqlite3.Connection | None, bool]:
    """This thread's read-only connection to ``path``, opened now unless one to this very file is open already,
    and whether it is kept open (else the caller closes it).

    A file in a directory this process cannot write is opened ``immutable`` (WAL readers would need to create
    files there), and such a connection is never kept: it would not see later writes by the file's owner.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None, False
    identity = (os.getpid(), stat.st_dev, stat.st_ino)
    kept = _open.connections
    key = str(path)
    if key in kept:
        if kept[key][0] == identity:
            return kept[key][1], True
        _forget(path)
    immutable = is_read_only(path)
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro{'&immutable=1' if immutable else ''}", uri=True,
                                     timeout=5.0)
    except sqlite3.Error:
        return None, False
    if immutable:
        return connection, False
    if len(kept) >= _KEPT:
        for other in list(kept):
            _forget(Path(other))
    kept[key] = (identity, connection)
    return connection, True


def _forget(path: Path) -> None:
    """Close and drop this thread's connection to ``path`` (one opened by a parent process is only dropped)."""
    entry = _open.connections.pop(str(path), None)
    if entry is not None and entry[0][0] == os.getpid():
        entry[1].close()


def is_read_only(path: Path) -> bool:
    """True if the SQLite file exists but this process could not write it or its journal beside it."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK))
