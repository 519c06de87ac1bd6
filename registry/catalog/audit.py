"""The audit log: one row for every change to the catalog, written in the change's own transaction.

Every write of ``registry.catalog.store.Catalog`` and ``registry.catalog.tokens.TokenStore``
ends with ``registry.catalog.changes.record_change(session, ...)`` (the webhook store's
with ``append``) inside the transaction that makes the change: the entry commits with it or not at all, so a
failed change leaves no entry and a committed one has exactly one. A write that
changes nothing (deleting a deleted version, pointing an alias where it already
points) records nothing. ``record_change`` also queues the change's webhook deliveries
(``registry.catalog.webhooks.enqueue``), so they are as durable as the change.

The actor is ``registry.actor.current_actor()``: the token's name on a server,
``user@host`` for a catalog opened directly. ``before`` and ``after`` are small
JSON objects describing the subject (a version's handle, format, sha256 and size;
an alias's version; a token's name and scope — never a token, its hash, or a
webhook's secret).

The log is append-only through every interface: nothing in the registry updates
or deletes an entry, and the migration that creates the table (0007) adds
triggers that make the database itself refuse to (SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, and_, or_
from sqlmodel import Field, Session, SQLModel, col, select

from registry.actor import current_actor
from registry.catalog.models import utcnow
from registry.errors import CatalogError

#: What the audit log records, and the names webhooks subscribe to (``registry.catalog.webhooks.EVENTS``).
ACTIONS = ("version.published", "version.deleted", "alias.set", "alias.moved", "alias.removed",
           "token.created", "token.revoked", "webhook.added", "webhook.removed", "webhook.enabled", "card.set")
#: Most entries one call returns (the API's pages are smaller: ``registry.server.history_api.MAX_PAGE``).
MAX_PAGE = 5000


class AuditEntry(SQLModel, table=True):
    """One committed change: when, who, what, to which subject, and the subject before and after it."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_at", "at"),
        Index("ix_audit_entry_subject", "subject", "id"),
        Index("ix_audit_entry_model", "publisher", "model", "id"),
        Index("ix_audit_entry_actor", "actor", "id"),
        Index("ix_audit_entry_action", "action", "id"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=256)
    action: str = Field(max_length=32)
    #: ``publisher/model/N`` (a version), ``publisher/model@alias``, ``token:NAME``, ``webhook:ID``.
    subject: str = Field(max_length=512)
    publisher: Optional[str] = Field(default=None, max_length=128)
    model: Optional[str] = Field(default=None, max_length=128)
    before: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))


class AuditRecord(SQLModel):
    """An audit entry as the API, the CLI and ``registry.audit`` return it."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    publisher: Optional[str] = None
    model: Optional[str] = None
    before: Optional[dict[str, Any]] = None
    after: Optional[dict[str, Any]] = None


class AliasInterval(SQLModel):
    """One stretch of an alias's history: the version it named from ``since`` until ``until`` (None: still)."""

    alias: str
    version: int
    handle: str
    sha256: str
    since: datetime
    until: Optional[datetime] = None
    #: Who pointed it there, and how ("alias.set" when created, "alias.moved").
    actor: str
    action: str
    #: How the interval ended: "alias.moved", "alias.removed", or None while it lasts.
    ended_by: Optional[str] = None


def alias_intervals(entries: list[AuditEntry]) -> list[AliasInterval]:
    """The intervals an alias's audit entries (oldest first) describe."""
    intervals: list[AliasInterval] = []
    for entry in entries:
        at = stored_utc(entry.at)
        if intervals and intervals[-1].until is None:
            intervals[-1].until, intervals[-1].ended_by = at, entry.action
        if entry.after is not None:
            intervals.append(AliasInterval(alias=entry.subject, version=entry.after["version"],
                                           handle=entry.after["handle"], sha256=entry.after["sha256"], since=at,
                                           actor=entry.actor, action=entry.action))
    return intervals


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC. A naive value is local time (as Python's ``astimezone`` reads it) — except one read
    back from SQLite, which stores UTC without its zone: those go through ``stored_utc``."""
    return moment.astimezone(timezone.utc)


def stored_utc(moment: datetime) -> datetime:
    """A timestamp read from the database, as an aware UTC value (SQLite returns UTC without its zone)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def append(session: Session, action: str, subject: str, *, publisher: str | None = None,
           model: str | None = None, before: dict | None = None, after: dict | None = None) -> AuditEntry:
    """Add the audit entry of a change to ``session``'s transaction (``registry.catalog.changes.record_change``
    also queues the change's webhook deliveries; webhook administration, which notifies no one, calls this).

    Called last, once the change itself is flushed: the entry's time is then after any
    lock the change waited for, so entries of one subject are in time order.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(at=utcnow(), actor=current_actor(), action=action, subject=subject, publisher=publisher,
                       model=model, before=before, after=after)
    session.add(entry)
    session.flush()
    return entry


def public(entry: AuditEntry) -> AuditRecord:
    assert entry.id is not None  # read back from the database
    return AuditRecord(id=entry.id, at=stored_utc(entry.at), actor=entry.actor, action=entry.action,
                       subject=entry.subject, publisher=entry.publisher, model=entry.model,
                       before=entry.before, after=entry.after)


class AuditLog:
    """Reading the audit log of a ``registry.catalog.store.Catalog``'s database (there is nothing else to do)."""

    def __init__(self, catalog):
        self.catalog = catalog

    def entries(self, *, since: datetime | None = None, until: datetime | None = None, model: str | None = None,
                actor: str | None = None, action: str | None = None, limit: int = 100,
                after: str | int | None = None) -> list[AuditRecord]:
        """Entries newest first, filtered; ``after`` (an entry's id, the previous page's last) pages by key.

        ``model`` is ``publisher/model`` or a publisher alone; ``action`` an exact action
        (``alias.moved``) or a family (``alias``); ``since`` inclusive, ``until`` exclusive.
        """
        statement = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(_limit(limit))
        if after is not None and str(after).strip():
            statement = statement.where(col(AuditEntry.id) < _cursor(after))
        if since is not None:
            statement = statement.where(col(AuditEntry.at) >= as_utc(since))
        if until is not None:
            statement = statement.where(col(AuditEntry.at) < as_utc(until))
        if actor:
            statement = statement.where(col(AuditEntry.actor) == actor)
        if action:
            if action not in ACTIONS and action not in {a.split(".")[0] for a in ACTIONS}:
                raise CatalogError(f"unknown audit action {action!r}; the actions are {', '.join(ACTIONS)} "
                                   f"(or a family: version, alias, token, webhook)")
            statement = statement.where(or_(col(AuditEntry.action) == action,
                                            col(AuditEntry.action).startswith(action + ".")))
        if model:
            publisher, _, name = model.partition("/")
            condition = col(AuditEntry.publisher) == publisher
            statement = statement.where(and_(condition, col(AuditEntry.model) == name) if name else condition)
        with self.catalog._read() as session:
            return [public(entry) for entry in session.exec(statement)]


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise CatalogError(f"an audit page holds 1 to {MAX_PAGE} entries, not {limit!r}")
    return limit


def _cursor(after: str | int) -> int:
    try:
        return int(after)
    except (TypeError, ValueError):
        raise CatalogError(f"'after' is the id of the last entry of the previous page, not {after!r}") from None
