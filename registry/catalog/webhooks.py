"""Webhooks: who is told of a change, and the outbox that makes sure they are, at least once.

A hook is a URL, the events it wants (``EVENTS``), optionally one publisher, and
a signing secret (``whsec_`` + base64 of 24 random bytes, as the Standard Webhooks
specification defines it) shown once, when the hook is added. The secret is kept
in the catalog as it is — signing needs it — and never appears in the audit log,
a listing or the delivery log.

**The outbox.** ``enqueue`` runs inside the transaction of the change
(``registry.catalog.changes.record_change``) and writes one ``webhook_delivery`` row
per hook that wants the event: the delivery commits with the change or not at all.
Any server process delivers them (``registry.server.webhook_sender``): it *claims*
due rows in a short transaction — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
write lock of ``BEGIN IMMEDIATE`` on SQLite — by setting a lease
(``claimed_until``), sends outside any transaction, and records the attempt
(``finish``). A process killed after claiming leaves a lease that expires, so
another sends the message again, with the same ``webhook-id``: at least once.
A failed attempt is retried with exponential backoff and full jitter, up to
``WebhookSettings.max_attempts``; while a hook is failing only its oldest pending
message is tried (``_due``); a hook whose last
``WebhookSettings.disable_after`` attempts all failed is disabled, the reason kept
on it, until ``webhook enable``.

**Destinations** must match ``MODEL_REGISTRY_WEBHOOK_ALLOW`` (host names, ``*.domain``
suffixes, IP networks; nothing by default), checked when a hook is added and
again before every attempt, so a token holder cannot make the server call an
internal address. A host name allowed only by network must resolve, every
address of it, inside the allowed networks.
"""

from __future__ import annotations

import base64
import builtins
import ipaddress
import random
import secrets
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Optional
from urllib.parse import urlsplit

from sqlalchemy import JSON, Column, Index, func, or_
from sqlmodel import Field, Session, SQLModel, col, select

from registry.catalog.audit import AuditEntry, append, stored_utc
from registry.catalog.models import utcnow
from registry.config import WebhookSettings
from registry.errors import AccessDenied, CatalogError
from registry.handles import validate_name

#: The events a hook may subscribe to: the audit actions about versions and aliases.
EVENTS = ("version.published", "version.deleted", "alias.set", "alias.moved", "alias.removed",
          "legacy_handles.added", "legacy_handles.removed")
#: The event ``webhook test`` sends (to one hook, outside the audit log: it changes nothing).
TEST_EVENT = "webhook.test"
SECRET_PREFIX = "whsec_"
#: The first retry's delay in seconds; each further one doubles it, up to ``MAX_BACKOFF_S``, with full jitter.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 300.0
#: How long a claim on a delivery lasts: twice what one attempt may take (``SEND_TIMEOUT_S``; a process sends
#: what it claimed at once, ``registry.server.background.SENDERS`` at a time, and claims no more than that).
LEASE_S = 30.0
#: Seconds one attempt may take, connecting and reading the answer.
SEND_TIMEOUT_S = 15.0


class Webhook(SQLModel, table=True):
    """A destination for the catalog's events."""

    __tablename__ = "webhook"

    id: Optional[int] = Field(default=None, primary_key=True)
    url: str = Field(max_length=2048)
    #: The events it wants, comma-separated (``EVENTS``).
    events: str = Field(max_length=512)
    #: When set, only changes to this publisher's models.
    publisher: Optional[str] = Field(default=None, max_length=128)
    #: The signing secret, ``whsec_...``; never shown after ``add``.
    secret: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=256)
    enabled: bool = Field(default=True)
    #: Why the hook was disabled (the failures that did it), shown by ``webhook list``.
    disabled_reason: Optional[str] = Field(default=None, max_length=2048)
    #: Attempts failed in a row, across its deliveries; reset by any success.
    failure_run: int = Field(default=0)
    removed_at: Optional[datetime] = Field(default=None)


class WebhookDelivery(SQLModel, table=True):
    """One message to one hook (the outbox row), written in the transaction of the change it tells of."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    hook_id: int = Field(foreign_key="webhook.id", index=True)
    #: The Standard Webhooks ``webhook-id``: the same on every attempt, so a receiver can de-duplicate.
    message_id: str = Field(max_length=64, unique=True)
    event: str = Field(max_length=32)
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    #: "pending", "delivered" or "failed" (attempts exhausted).
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    #: While set and in the future, one server process is sending it (``claim``).
    claimed_until: Optional[datetime] = Field(default=None)
    claim: Optional[str] = Field(default=None, max_length=32)
    last_error: Optional[str] = Field(default=None, max_length=1024)
    finished_at: Optional[datetime] = Field(default=None)


class WebhookAttempt(SQLModel, table=True):
    """One attempt to deliver a message: the delivery log of a hook."""

    __tablename__ = "webhook_attempt"

    id: Optional[int] = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_delivery.id", index=True)
    hook_id: int = Field(foreign_key="webhook.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    attempt: int
    #: The receiver's HTTP status; None when no answer came (refused, timed out, not allowed).
    status_code: Optional[int] = Field(default=None)
    error: Optional[str] = Field(default=None, max_length=1024)
    duration_ms: int = Field(default=0)


class WebhookPublic(SQLModel):
    """A hook as listings show it: never its secret."""

    id: int
    url: str
    events: list[str]
    publisher: Optional[str] = None
    created_at: datetime
    created_by: str
    enabled: bool
    disabled_reason: Optional[str] = None
    pending: int = 0


class AttemptPublic(SQLModel):
    """One line of a hook's delivery log."""

    message_id: str
    event: str
    attempt: int
    at: datetime
    status_code: Optional[int] = None
    error: Optional[str] = None
    duration_ms: int
    #: The delivery's state now: pending, delivered or failed.
    delivery_status: str


class Claimed(NamedTuple):
    """A delivery this process holds the lease of, with what sending it needs."""

    delivery_id: int
    claim: str
    hook_id: int
    url: str
    secret: str
    message_id: str
    payload: dict
    attempt: int


def new_secret() -> str:
    """A signing secret as the specification writes one: ``whsec_`` and base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def check_destination(url: str, allow: tuple[str, ...], *, resolve: bool = True) -> None:
    """Refuse (``AccessDenied``) a URL whose host the allow-list does not name, or that is not http(s).

    Entries are host names (``hooks.example.com``), domain suffixes (``*.example.com``)
    or IP networks and addresses (``10.1.0.0/16``, ``127.0.0.1``). A host name no name
    entry matches is allowed when every address it resolves to is in an allowed network.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CatalogError(f"a webhook's URL is http:// or https:// with a host, not {url!r}")
    if parts.username or parts.password:
        raise CatalogError("a webhook's URL carries no credentials (the signature authenticates the sender)")
    host = parts.hostname.lower().rstrip(".")
    names = {entry.lower() for entry in allow if not _network(entry)}
    networks = [net for net in (_network(entry) for entry in allow) if net is not None]
    if host in names or any(n.startswith("*.") and host.endswith(n[1:]) for n in names):
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = _resolve(host) if resolve and networks else []
    if addresses and all(any(address in net for net in networks) for address in addresses):
        return
    listed = ", ".join(allow) if allow else "nothing (the default)"
    raise AccessDenied(f"webhook destination {host!r} is not allowed: MODEL_REGISTRY_WEBHOOK_ALLOW allows "
                       f"{listed}; a server admin adds host names or networks there")


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return None


def _resolve(host: str) -> list[Any]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def backoff(attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1, 2, ...): exponential, capped, with full jitter (half to all)."""
    ceiling = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def enqueue(session: Session, entry: AuditEntry) -> int:
    """Queue ``entry``'s event for every enabled hook that wants it, in the change's transaction; how many."""
    if entry.action not in EVENTS:
        return 0
    hooks = session.exec(select(Webhook).where(col(Webhook.removed_at).is_(None), col(Webhook.enabled).is_(True),
                                               or_(col(Webhook.publisher).is_(None),
                                                   col(Webhook.publisher) == entry.publisher))).all()
    queued = 0
    for hook in hooks:
        assert hook.id is not None
        if entry.action in hook.events.split(","):
            session.add(WebhookDelivery(hook_id=hook.id, message_id=_message_id(), event=entry.action,
                                        payload=_payload(entry), next_attempt_at=entry.at))
            queued += 1
    return queued


def _message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def _payload(entry: AuditEntry) -> dict:
    """The Standard Webhooks body: ``type``, ``timestamp`` and ``data`` (the change: subject, actor, before,
    after; a version's state names its handle, pinned URL and sha256)."""
    return {"type": entry.action, "timestamp": stored_utc(entry.at).isoformat(),
            "data": {"subject": entry.subject, "publisher": entry.publisher, "model": entry.model,
                     "actor": entry.actor, "before": entry.before, "after": entry.after, "audit_id": entry.id}}


class WebhookStore:
    """Add, list, remove, enable and test hooks, read their delivery logs, and claim and finish deliveries."""

    def __init__(self, catalog, settings: WebhookSettings | None = None):
        self.catalog = catalog
        self.policy = settings or WebhookSettings()

    # -- administration ----------------------------------------------------------------------------------------

    def add(self, url: str, *, events: list[str] | tuple[str, ...], publisher: str | None = None
            ) -> tuple[str, WebhookPublic]:
        """A new hook and its signing secret (shown now, never again)."""
        from registry.actor import current_actor

        wanted = [event.strip() for event in events if event.strip()]
        unknown = sorted(set(wanted) - set(EVENTS))
        if not wanted or unknown:
            raise CatalogError(f"a webhook's events are some of {', '.join(EVENTS)}"
                               + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        if publisher is not None:
            validate_name(publisher, "publisher")
        if len(url) > 2048:
            raise CatalogError("a webhook's URL is at most 2048 characters")
        check_destination(url, self.policy.allow)
        secret = new_secret()
        with self.catalog._write() as session:
            hook = Webhook(url=url, events=",".join(dict.fromkeys(wanted)), publisher=publisher, secret=secret,
                           created_by=current_actor())
            session.add(hook)
            session.flush()
            append(session, "webhook.added", f"webhook:{hook.id}", publisher=publisher,
                          after=_audit_state(hook))
            return secret, self._public(session, hook)

    def list(self, *, include_removed: bool = False) -> "builtins.list[WebhookPublic]":
        with self.catalog._read() as session:
            statement = select(Webhook).order_by(col(Webhook.id))
            if not include_removed:
                statement = statement.where(col(Webhook.removed_at).is_(None))
            return [self._public(session, hook) for hook in session.exec(statement)]

    def remove(self, hook_id: int) -> WebhookPublic:
        """Stop a hook: it gets no new events, and what is still pending for it is not sent."""
        with self.catalog._write() as session:
            hook = self._hook(session, hook_id)
            before = _audit_state(hook)
            hook.removed_at = utcnow()
            session.flush()
            append(session, "webhook.removed", f"webhook:{hook.id}", publisher=hook.publisher,
                          before=before)
            return self._public(session, hook)

    def enable(self, hook_id: int) -> WebhookPublic:
        """Enable a hook that failures disabled: its pending deliveries are sent again from now."""
        with self.catalog._write() as session:
            hook = self._hook(session, hook_id)
            if hook.enabled:
                return self._public(session, hook)
            before = _audit_state(hook)
            hook.enabled, hook.disabled_reason, hook.failure_run = True, None, 0
            now = utcnow()
            for delivery in session.exec(select(WebhookDelivery).where(WebhookDelivery.hook_id == hook.id,
                                                                       WebhookDelivery.status == "pending")):
                delivery.next_attempt_at = now
            session.flush()
            append(session, "webhook.enabled", f"webhook:{hook.id}", publisher=hook.publisher,
                          before=before, after=_audit_state(hook))
            return self._public(session, hook)

    def test(self, hook_id: int) -> str:
        """Queue a ``webhook.test`` message to the hook (a running server sends it); its ``webhook-id``."""
        with self.catalog._write() as session:
            hook = self._hook(session, hook_id)
            assert hook.id is not None
            message_id = _message_id()
            session.add(WebhookDelivery(hook_id=hook.id, message_id=message_id, event=TEST_EVENT,
                                        payload={"type": TEST_EVENT, "timestamp": utcnow().isoformat(),
                                                 "data": {"webhook": hook.id, "url": hook.url}}))
            return message_id

    def attempts(self, hook_id: int, *, limit: int = 100) -> "builtins.list[AttemptPublic]":
        """The hook's delivery log, newest first."""
        with self.catalog._read() as session:
            self._hook(session, hook_id, include_removed=True)
            rows = session.exec(select(WebhookAttempt, WebhookDelivery)
                                .join(WebhookDelivery, col(WebhookDelivery.id) == col(WebhookAttempt.delivery_id))
                                .where(WebhookAttempt.hook_id == hook_id)
                                .order_by(col(WebhookAttempt.id).desc()).limit(max(1, min(int(limit), 1000))))
            return [AttemptPublic(message_id=delivery.message_id, event=delivery.event, attempt=attempt.attempt,
                                  at=stored_utc(attempt.at), status_code=attempt.status_code, error=attempt.error,
                                  duration_ms=attempt.duration_ms, delivery_status=delivery.status)
                    for attempt, delivery in rows]

    # -- delivery ---------------------------------------------------------------------------------------------

    def claim(self, *, limit: int = 10) -> "builtins.list[Claimed]":
        """Take the lease of up to ``limit`` due deliveries of enabled hooks, for this process to send now.

        A plain read first: with nothing due (the usual case) no write transaction is
        started, so looking twice a second never takes SQLite's write lock from a publisher.
        """
        now = utcnow()
        with self.catalog._read() as session:
            if session.exec(self._due(now).limit(1)).first() is None:
                return []
        with self.catalog._write() as session:
            statement = self._due(now).order_by(col(WebhookDelivery.next_attempt_at),
                                                col(WebhookDelivery.id)).limit(limit)
            if session.get_bind().dialect.name == "postgresql":
                statement = statement.with_for_update(of=WebhookDelivery, skip_locked=True)
            claimed = []
            for delivery, hook in session.exec(statement).all():
                delivery.claim = secrets.token_hex(8)
                delivery.claimed_until = now + timedelta(seconds=LEASE_S)
                claimed.append(Claimed(delivery.id, delivery.claim, hook.id, hook.url, hook.secret,
                                       delivery.message_id, dict(delivery.payload), delivery.attempts + 1))
            return claimed

    def finish(self, claimed: Claimed, *, status_code: int | None, error: str | None, duration_ms: int) -> None:
        """Record one attempt; on failure schedule the retry (or give up), and disable the hook after a run of
        ``settings.disable_after`` failed attempts. A claim that has since expired records the attempt only."""
        ok = error is None and status_code is not None and 200 <= status_code < 300
        now = utcnow()
        with self.catalog._write() as session:
            delivery = session.get(WebhookDelivery, claimed.delivery_id)
            hook = session.get(Webhook, claimed.hook_id)
            if delivery is None or hook is None:
                return
            problem = None if ok else (error or f"the receiver answered HTTP {status_code}")[:1000]
            session.add(WebhookAttempt(delivery_id=delivery.id, hook_id=hook.id, at=now, attempt=claimed.attempt,
                                       status_code=status_code, error=problem, duration_ms=duration_ms))
            if delivery.claim != claimed.claim or delivery.status != "pending":
                return
            delivery.claim, delivery.claimed_until = None, None
            delivery.attempts = claimed.attempt
            if ok:
                delivery.status, delivery.finished_at, delivery.last_error = "delivered", now, None
                hook.failure_run = 0
                return
            delivery.last_error = problem
            if delivery.attempts >= self.policy.max_attempts:
                delivery.status, delivery.finished_at = "failed", now
            else:
                delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts))
            hook.failure_run += 1
            if hook.enabled and hook.failure_run >= self.policy.disable_after:
                hook.enabled = False
                hook.disabled_reason = (f"disabled at {now:%Y-%m-%d %H:%M:%S} UTC after {hook.failure_run} failed "
                                        f"attempts in a row; the last: {problem}")[:2000]

    # -- helpers ----------------------------------------------------------------------------------------------

    @staticmethod
    def _due(now: datetime):
        """Deliveries of enabled hooks due now and not leased by a live claim.

        A hook whose last attempt failed gets one message at a time — its oldest pending
        one, retried on its backoff — until an attempt succeeds: a receiver that is down is
        probed, not flooded, and its run of failures counts retries over time, not the
        number of messages that happened to be waiting.
        """
        oldest = (select(func.min(col(WebhookDelivery.id))).where(
            col(WebhookDelivery.hook_id) == col(Webhook.id), col(WebhookDelivery.status) == "pending")
            .correlate(Webhook).scalar_subquery())
        return (select(WebhookDelivery, Webhook)
                .join(Webhook, col(Webhook.id) == col(WebhookDelivery.hook_id))
                .where(col(WebhookDelivery.status) == "pending", col(WebhookDelivery.next_attempt_at) <= now,
                       or_(col(WebhookDelivery.claimed_until).is_(None), col(WebhookDelivery.claimed_until) < now),
                       col(Webhook.enabled).is_(True), col(Webhook.removed_at).is_(None),
                       or_(col(Webhook.failure_run) == 0, col(WebhookDelivery.id) == oldest)))

    @staticmethod
    def _hook(session: Session, hook_id: int, *, include_removed: bool = False) -> Webhook:
        hook = session.get(Webhook, int(hook_id))
        if hook is None or (hook.removed_at is not None and not include_removed):
            raise CatalogError(f"no webhook has id {hook_id}; `model-registry webhook list` shows them")
        return hook

    @staticmethod
    def _public(session: Session, hook: Webhook) -> WebhookPublic:
        assert hook.id is not None  # flushed or read back
        pending = session.exec(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.hook_id == hook.id, WebhookDelivery.status == "pending")).one()
        return WebhookPublic(id=hook.id, url=hook.url, events=hook.events.split(","), publisher=hook.publisher,
                             created_at=stored_utc(hook.created_at), created_by=hook.created_by,
                             enabled=hook.enabled and hook.removed_at is None,
                             disabled_reason=hook.disabled_reason, pending=pending)


def _audit_state(hook: Webhook) -> dict:
    """What the audit log says of a hook: never its secret, nor its URL's query (where some receivers take a
    token of their own)."""
    parts = urlsplit(hook.url)
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?..." if parts.query else "")
    return {"url": shown, "events": hook.events.split(","), "publisher": hook.publisher, "enabled": hook.enabled}
