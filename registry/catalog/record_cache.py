"""Version records kept in the process, and the model revision that says whether one is still true.

**The rule.** A model's *revision* is the id of the newest audit entry about it
(``max(id)`` of ``audit_entry`` where ``publisher``, ``model`` are the model's, answered
from the ``ix_audit_entry_model`` index). Every catalog write ends with
``registry.catalog.changes.record_change(..., publisher=, model=)`` (CONTRIBUTING:
"A new catalog write"), so anything that changes what a version's record says — a
publish, a deletion, an alias set, moved or removed, and any later mutable field
(a model card, a legacy handle) written the way every write is — raises its model's
revision in the same transaction. A record read at revision R is therefore true for
as long as the revision is still R, on every process over the same database: the
revision is the per-model change counter, kept by the audit log the catalog already
writes, and a new field follows the rule with nothing more to do. (A model with no
entry at all — a catalog filled before the audit log existed, or by bulk SQL — is at
revision 0 until its first change.)

Two consequences:

- ``RecordCache`` keeps records with the revision they were read at; a read asks for
  the revision (one indexed query) and uses a kept record only if it matches, so a
  version deleted through another server process is never served from this one's
  cache: the deletion's audit entry changed the revision.
- The server's ETags (``registry.server.http_cache``) are made of the revision and
  the URL's handle, so answering ``If-None-Match`` needs no record at all.

**Ordering.** Audit ids come from a sequence; on PostgreSQL two transactions can
commit in the other order than they drew their ids, and a reader could see the
larger one without the smaller, then never see the revision change again.
``serialize_model_changes`` (called by ``audit.append`` before the entry is added)
takes a transaction-scoped advisory lock per model, so a model's entries are drawn
in commit order; SQLite's writers hold the database's write lock for the whole
transaction already. Readers read the revision *before* the record: a record read
later may be newer than its revision (it is then read again next time), never older.

Records are kept pickled: one ``bytes`` object per record, which the garbage
collector does not track (thousands of kept records would otherwise lengthen every
full collection of a server's heap), and each read gets its own copy to change.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy import text

from registry.catalog import sqlite_reader

if TYPE_CHECKING:
    from registry.catalog.models import VersionPublic

#: Records a catalog keeps by default (a record with a few signatures is ~1-3 kB pickled).
DEFAULT_RECORD_CACHE_SIZE = 2048

_REVISION = text(sqlite_reader.REVISION_SQL.format(p=":publisher", m=":model"))
#: The revision query in each DB-API parameter style the plain-driver read speaks (positional placeholders).
_REVISION_BY_STYLE = {style: sqlite_reader.REVISION_SQL.format(p=mark, m=mark)
                      for style, mark in (("qmark", "?"), ("format", "%s"), ("pyformat", "%s"))}
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:key))")

#: (publisher, model, version number or None, alias or None, include_deleted)
Key = tuple[str, str, Optional[int], Optional[str], bool]


def model_revision(connection: Any, publisher: str, model: str) -> int | None:
    """The model's revision (see the module's docstring): 0 for a model the audit log has never named, None for
    a model the catalog does not have (models are never removed, so a revision once given stays a model's)."""
    row = connection.execute(_REVISION, {"publisher": publisher, "model": model}).first()
    return None if row is None else row[0] or 0


def model_revision_of(engine: Any, publisher: str, model: str, *, sqlite_path: Path | None = None) -> int | None:
    """``model_revision`` on a pooled connection of ``engine``, through the driver itself: the one query that
    answers a ``304`` (and every record-cache hit) costs ~65 µs this way against ~750 µs through a SQLAlchemy
    ``Connection`` (its transaction events, statement cache and result machinery). A driver failure, or a
    parameter style it does not speak, is left to the SQLAlchemy read, which reconnects or raises typed.

    ``sqlite_path`` (the engine's SQLite file) is read first on the load path's kept connection
    (``sqlite_reader.revision``, ~10 µs: no pool check-out and check-in)."""
    if sqlite_path is not None:
        known, revision = sqlite_reader.revision(sqlite_path, publisher, model)
        if known:
            return revision
    sql = _REVISION_BY_STYLE.get(engine.dialect.paramstyle)
    if sql is not None:
        try:
            connection = engine.raw_connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(sql, (publisher, model, publisher, model))
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            finally:
                connection.close()  # back to the pool, which ends its transaction
            return None if row is None else row[0] or 0
        except engine.dialect.loaded_dbapi.Error:
            pass
    with engine.connect() as connection:
        return model_revision(connection, publisher, model)


def serialize_model_changes(session: Any, publisher: str | None, model: str | None) -> None:
    """Make this transaction's audit entry about ``publisher/model`` draw its id after every earlier committed
    one's (PostgreSQL: an advisory lock held until commit; a no-op elsewhere and for changes of no model)."""
    if model is None or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(_LOCK, {"key": f"model-registry/{publisher}/{model}"})


class RecordCache:
    """A bounded LRU of version records, each with the model revision it was read at. Thread-safe."""

    def __init__(self, size: int = DEFAULT_RECORD_CACHE_SIZE):
        self.size = max(0, int(size))
        self._entries: OrderedDict[Key, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key, revision: int) -> "VersionPublic | None":
        """The record kept for ``key`` if it was read at ``revision``; a record of another revision is dropped."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[0] != revision:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
        return pickle.loads(found[1])

    def put(self, key: Key, revision: int, record: "VersionPublic") -> None:
        if not self.size:
            return
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self._entries[key] = (revision, data)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def discard_model(self, publisher: str, model: str) -> None:
        """Forget every record of one model (after this process changed it: they are stale anyway)."""
        with self._lock:
            for key in [key for key in self._entries if key[0] == publisher and key[1] == model]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
