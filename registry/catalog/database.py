"""``DatabaseCatalog``: the catalog interface over an SQL database, opened only when a query needs it.

Creating one costs nothing: the SQLAlchemy catalog (``registry.catalog.store``)
is built on the first call that needs it. ``locate`` — the only read loading a
model needs — is answered from an SQLite file by the standard library when it
can (``registry.catalog.sqlite_reader``), so a load never imports SQLAlchemy,
SQLModel or Alembic on the common path.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from registry.catalog import sqlite_reader
from registry.catalog.interface import VersionLocation
from registry.catalog.urls import backend, redact, sqlite_file
from registry.config import DEFAULT_DATABASE_TIMEOUT_S
from registry.handles import catalog_handle

if TYPE_CHECKING:
    from registry.catalog.audit import AuditLog
    from registry.catalog.store import Catalog
    from registry.catalog.tokens import TokenStore


class DatabaseCatalog:
    """The catalog in one SQLite file or PostgreSQL database."""

    def __init__(self, database_url: str, *, timeout: float = DEFAULT_DATABASE_TIMEOUT_S):
        self.database_url = database_url
        #: Seconds an SQLite writer waits for the write lock (``Settings.database_timeout``).
        self.timeout = timeout
        self.identity = redact(database_url)
        self.is_local = backend(database_url) == "sqlite"
        self._sqlite_file = sqlite_file(database_url)
        self._store: "Catalog | None" = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DatabaseCatalog({self.identity!r})"

    @property
    def store(self) -> "Catalog":
        """The SQLAlchemy catalog, opened (and its schema checked) on first use."""
        with self._lock:
            if self._store is None:
                from registry.catalog.store import Catalog

                self._store = Catalog(self.database_url, timeout=self.timeout)
            return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def ping(self) -> None:
        """Raise a typed error unless the database answers a query (the server's health check)."""
        self.store.ping()

    @property
    def tokens(self) -> "TokenStore":
        """The server's access tokens (``registry.catalog.tokens.TokenStore``), kept in this database."""
        from registry.catalog.tokens import TokenStore

        return TokenStore(self.store)

    @property
    def audit(self) -> "AuditLog":
        """The audit log kept in this database (``registry.catalog.audit.AuditLog``)."""
        return self.store.audit

    # -- reads --------------------------------------------------------------------------------------

    def locate(self, handle) -> VersionLocation:
        parsed = catalog_handle(handle)
        if self._sqlite_file is not None:  # even with the store open: a kept sqlite3 connection is ~20 x faster
            found = sqlite_reader.locate(self._sqlite_file, parsed)
            if found is not None:
                return found
        return self.store.locate(parsed)

    def get_version(self, handle, *, include_deleted: bool = False, at=None):
        return self.store.get_version(handle, include_deleted=include_deleted, at=at)

    def revision(self, *, publisher: str, name: str) -> int | None:
        if self._sqlite_file is not None:  # the query behind every 304, on the kept connection as ``locate``
            known, revision = sqlite_reader.revision(self._sqlite_file, publisher, name)
            if known:
                return revision
        return self.store.revision(publisher=publisher, name=name)

    def alias_history(self, handle):
        return self.store.alias_history(handle)

    def download_counts(self, *, publisher: str, name: str):
        return self.store.download_counts(publisher=publisher, name=name)

    def get_model(self, *, publisher: str, name: str):
        return self.store.get_model(publisher=publisher, name=name)

    def list_models(self, *, publisher: str | None = None, limit: int | None = None, after: str | None = None):
        return self.store.list_models(publisher=publisher, limit=limit, after=after)

    def list_versions(self, *, publisher: str, name: str, include_deleted: bool = False):
        return self.store.list_versions(publisher=publisher, name=name, include_deleted=include_deleted)

    def version_summaries(self, *, publisher: str, name: str, include_deleted: bool = False):
        return self.store.version_summaries(publisher=publisher, name=name, include_deleted=include_deleted)

    def lineage(self, handle):
        return self.store.lineage(handle)

    def children(self, handle):
        return self.store.children(handle)

    def search(self, **criteria: Any):
        return self.store.search(**criteria)

    def find(self, query):
        return self.store.find(query)

    def publishers(self) -> list[str]:
        return self.store.publishers()

    # -- writes -------------------------------------------------------------------------------------

    def create_version(self, record):
        return self.store.create_version(record)

    def set_alias(self, *, publisher: str, name: str, alias: str, version: int):
        return self.store.set_alias(publisher=publisher, name=name, alias=alias, version=version)

    def remove_alias(self, *, publisher: str, name: str, alias: str) -> None:
        self.store.remove_alias(publisher=publisher, name=name, alias=alias)

    def delete_version(self, *, publisher: str, name: str, version: int):
        return self.store.delete_version(publisher=publisher, name=name, version=version)

    def add_legacy_handles(self, handle, legacy):
        from registry.legacy.handles import normalise_all

        return self.store.add_legacy_handles(catalog_handle(handle), normalise_all(legacy))

    def remove_legacy_handles(self, handle, legacy):
        from registry.legacy.handles import normalise_all

        return self.store.remove_legacy_handles(catalog_handle(handle), normalise_all(legacy))

    def find_legacy_handle(self, legacy: str):
        from registry.legacy.handles import parse_legacy_handle

        parsed = parse_legacy_handle(legacy)
        return self.store.find_legacy_handle(str(parsed), newest_under=parsed.unversioned
                                             if parsed.version is None else None)

    def list_legacy_handles(self):
        return self.store.list_legacy_handles()
