"""Turning database failures into the registry's typed errors, at the boundary where they arise.

A user of the API, the CLI or the server must never see an SQLAlchemy or
driver exception. Each message names the database (password redacted) and
what to change: usually ``MODEL_REGISTRY_DATABASE_URL``, sometimes a lock
holder or a permission.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Iterator

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.url import URL

from registry.catalog.urls import redact, sqlite_file
from registry.config import DATABASE_URL_ENV
from registry.errors import CatalogBusy, CatalogReadOnly, CatalogUnavailable, RegistryError, SchemaError

_READ_ONLY = ("readonly database", "read-only", "read only", "cannot execute", "permission denied")
_BUSY = ("database is locked", "database table is locked", "lock timeout", "could not obtain lock")
_MISSING_TABLE = ("no such table", "undefinedtable", "does not exist")


def describe(database_url: str | URL) -> str:
    """``the catalog database URL`` with its password hidden."""
    text = database_url.render_as_string(hide_password=False) if isinstance(database_url, URL) else str(database_url)
    return f"the catalog database {redact(text)}"


@contextlib.contextmanager
def database_errors(database_url: str | URL) -> Iterator[None]:
    """Translate what a database (or the file system under an SQLite file) raises into ``RegistryError`` types."""
    try:
        yield
    except RegistryError:
        raise
    except (sa_exc.DBAPIError, sqlite3.Error) as error:
        raise translate(error, database_url) from error
    except sa_exc.ArgumentError as error:
        raise CatalogUnavailable(f"{describe(database_url)} is not a database URL SQLAlchemy understands ({error}); "
                                 f"set {DATABASE_URL_ENV} to sqlite:///PATH or postgresql://USER@HOST/DB") from error
    except sa_exc.NoSuchModuleError as error:
        raise CatalogUnavailable(f"{describe(database_url)} needs a database driver that is not installed ({error}); "
                                 f"for PostgreSQL: pip install 'tf-model-registry[postgres]'") from error
    except sa_exc.SQLAlchemyError as error:
        raise CatalogUnavailable(f"{describe(database_url)} failed: {_first_line(error)}; check {DATABASE_URL_ENV}") \
            from error
    except OSError as error:  # the directory of an SQLite file could not be created
        raise CatalogUnavailable(f"{describe(database_url)} cannot be opened: {error}; set {DATABASE_URL_ENV} to a "
                                 f"location this user can write, or fix its permissions") from error


def translate(error: Exception, database_url: str | URL) -> RegistryError:
    """The typed error for a driver-level failure."""
    where = describe(database_url)
    text = _first_line(getattr(error, "orig", None) or error)
    lowered = text.lower()
    url_text = database_url if isinstance(database_url, str) else database_url.render_as_string(hide_password=False)
    path = sqlite_file(url_text)
    if any(marker in lowered for marker in _BUSY):
        return CatalogBusy(f"{where} is locked by another process that is writing to it ({text}); wait for it to "
                           f"finish and try again, or find the process holding {path or 'the lock'}")
    if any(marker in lowered for marker in _READ_ONLY) or "attempt to write" in lowered:
        return CatalogReadOnly(f"{where} can only be read ({text}): reads work, but publishing, aliases and deletes "
                               f"need write access; point {DATABASE_URL_ENV} at a writable catalog or fix the "
                               f"permissions of {path.parent if path else 'the database role'}")
    if any(marker in lowered for marker in _MISSING_TABLE):
        return SchemaError(f"{where} lacks the catalog's tables ({text}); create them with `model-registry db upgrade`")
    return CatalogUnavailable(f"{where} cannot be reached or opened ({text}); check that it is running and that "
                              f"{DATABASE_URL_ENV} is right")


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
