"""Recording a change: its audit entry and its webhook deliveries, both in the change's transaction.

The one call every catalog write makes last (``registry.catalog.store``, ``registry.catalog.tokens``):
the entry (``registry.catalog.audit.append``) and the outbox rows
(``registry.catalog.webhooks.enqueue``) commit with the change or not at all.
"""

from __future__ import annotations

from sqlmodel import Session

from registry.catalog.audit import AuditEntry, append
from registry.catalog.webhooks import enqueue


def record_change(session: Session, action: str, subject: str, *, publisher: str | None = None,
                  model: str | None = None, before: dict | None = None, after: dict | None = None) -> AuditEntry:
    """Add the change's audit entry and queue its webhook deliveries, in ``session``'s transaction."""
    entry = append(session, action, subject, publisher=publisher, model=model, before=before, after=after)
    enqueue(session, entry)
    return entry
