"""SQLAlchemy engines for the catalog, set up so concurrent writers never fail.

SQLite serialises writers with a file lock. Python's ``sqlite3`` starts
transactions lazily with a plain (deferred) ``BEGIN``, so two processes can
both read and then both try to write: one gets "database is locked" at once,
without waiting. We take transaction control away from ``sqlite3``
(``isolation_level=None``) and emit ``BEGIN`` ourselves: ``BEGIN IMMEDIATE``
for write transactions, so a writer waits (up to the busy timeout) for the
write lock *before* reading anything. WAL lets readers run alongside a writer.

PostgreSQL needs nothing special: the version counter row is locked by the
``UPDATE`` that increments it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.pool import StaticPool

from registry.catalog.sqlite_reader import is_read_only
from registry.catalog.urls import sqlite_file
from registry.config import DEFAULT_DATABASE_TIMEOUT_S

#: Execution option naming how a transaction starts on SQLite: "DEFERRED" (reads) or "IMMEDIATE" (writes).
BEGIN_OPTION = "sqlite_begin"
#: How long an SQLite writer waits for another to finish before giving up, in seconds, unless told
#: (``Settings.database_timeout``, from ``MODEL_REGISTRY_DATABASE_TIMEOUT``).
SQLITE_BUSY_TIMEOUT_S = DEFAULT_DATABASE_TIMEOUT_S
#: How long a new connection waits to switch a locked database to WAL before leaving it for next time.
WAL_SWITCH_WAIT_MS = 200


def normalize_url(database_url: str | URL) -> URL:
    """Parse a database URL; plain ``postgresql://`` means psycopg 3, the driver this package depends on."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def sqlite_path(url: str | URL) -> Path | None:
    """The file of an SQLite URL, or ``None`` for an in-memory database (``registry.catalog.urls.sqlite_file``)."""
    return sqlite_file(url if isinstance(url, str) else url.render_as_string(hide_password=False))


def make_engine(database_url: str | URL, *, timeout: float = SQLITE_BUSY_TIMEOUT_S, **options) -> Engine:
    """An engine for ``database_url``; on SQLite with WAL, a busy timeout (``timeout`` seconds) and our own ``BEGIN``.

    An SQLite file this process cannot write (a read-only file or directory, a
    catalog shipped on a read-only mount) is opened read-only and immutable:
    every read works, and a write fails as ``CatalogReadOnly`` rather than
    the catalog failing to open at all.
    """
    url = normalize_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **options)
    path = sqlite_path(url)
    writable = True
    if path is None:
        # One shared connection, or every checkout would see a different empty database.
        options.setdefault("poolclass", StaticPool)
        options.setdefault("connect_args", {"check_same_thread": False})
    elif is_read_only(path):
        writable = False
        uri = f"{path.as_uri()}?mode=ro&immutable=1"
        options.setdefault("creator", lambda: sqlite3.connect(uri, uri=True, timeout=timeout,
                                                              check_same_thread=False))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        options.setdefault("connect_args", {"timeout": timeout})
    engine = create_engine(url, **options)
    _install_sqlite_transaction_control(engine, wal=path is not None and writable, timeout=timeout)
    return engine


def write_engine(engine: Engine) -> Engine:
    """A view of ``engine`` whose transactions take the SQLite write lock up front (no-op elsewhere)."""
    return engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})


def _install_sqlite_transaction_control(engine: Engine, *, wal: bool, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                # Switching to WAL is opportunistic: a catalog another process has locked right now keeps its
                # journal mode this time, rather than every new connection spending the whole busy timeout here.
                cursor.execute(f"PRAGMA busy_timeout = {WAL_SWITCH_WAIT_MS}")
                try:
                    cursor.execute("PRAGMA journal_mode = WAL")
                except sqlite3.OperationalError:
                    pass  # locked now, or a file we may read but not switch (read-only after all)
            cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        mode = connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError(f"{BEGIN_OPTION} must be DEFERRED, IMMEDIATE or EXCLUSIVE, not {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")
