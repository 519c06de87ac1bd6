"""History: the audit log, webhooks with their outbox and delivery log, download counts.

The audit log is append-only in the database itself: triggers refuse UPDATE and
DELETE on ``audit_entry`` (SQLite and PostgreSQL). Aliases that exist when this
runs get one ``alias.set`` entry each, dated by the alias's last change, so an
alias's history (which is read off the log) starts where the catalog's memory does.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Who the seeded entries name: the changes were made before anyone recorded who made them.
SEEDED_ACTOR = "(before the audit log)"
REFUSAL = "the audit log is append-only"


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("publisher", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_entry_at", "audit_entry", ["at"])
    op.create_index("ix_audit_entry_subject", "audit_entry", ["subject", "id"])
    op.create_index("ix_audit_entry_model", "audit_entry", ["publisher", "model", "id"])
    op.create_index("ix_audit_entry_actor", "audit_entry", ["actor", "id"])
    op.create_index("ix_audit_entry_action", "audit_entry", ["action", "id"])
    op.create_table(
        "webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.String(length=512), nullable=False),
        sa.Column("publisher", sa.String(length=128), nullable=True),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=2048), nullable=True),
        sa.Column("failure_run", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hook_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["hook_id"], ["webhook.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_webhook_delivery_hook_id", "webhook_delivery", ["hook_id"])
    op.create_index("ix_webhook_delivery_due", "webhook_delivery", ["status", "next_attempt_at"])
    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("hook_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=1024), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_delivery.id"]),
        sa.ForeignKeyConstraint(["hook_id"], ["webhook.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_attempt_delivery_id", "webhook_attempt", ["delivery_id"])
    op.create_index("ix_webhook_attempt_hook_id", "webhook_attempt", ["hook_id"])
    op.create_table(
        "download_count",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("version_id", "day"),
    )
    _seed_alias_history()
    _append_only()


def _seed_alias_history() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT m.publisher, m.name, a.name, v.version, v.format, v.sha256, v.size, a.updated_at "
        "FROM alias a JOIN registered_model m ON m.id = a.model_id JOIN model_version v ON v.id = a.version_id "
        "ORDER BY a.updated_at, a.id")).all()
    table = sa.table("audit_entry", sa.column("at", sa.DateTime(timezone=True)), sa.column("actor"),
                     sa.column("action"), sa.column("subject"), sa.column("publisher"), sa.column("model"),
                     sa.column("before", sa.JSON()), sa.column("after", sa.JSON()))
    entries = [{"at": _moment(updated_at), "actor": SEEDED_ACTOR, "action": "alias.set",
                "subject": f"{publisher}/{model}@{alias}", "publisher": publisher, "model": model, "before": None,
                "after": {"version": version, "handle": f"{publisher}/{model}/{version}", "format": fmt,
                          "sha256": sha256, "size": size}}
               for publisher, model, alias, version, fmt, sha256, size, updated_at in rows]
    if entries:
        op.bulk_insert(table, entries)


def _moment(value):
    """A timestamp as read by plain SQL: SQLite gives back the text it stored (UTC, without a zone)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$")
        op.execute("CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
                   "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_entry_no_{event.lower()} BEFORE {event} ON audit_entry "
                       f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entry_append_only ON audit_entry")
        op.execute("DROP FUNCTION audit_entry_append_only()")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_entry_no_{event}")
    op.drop_table("download_count")
    op.drop_index("ix_webhook_attempt_hook_id", table_name="webhook_attempt")
    op.drop_index("ix_webhook_attempt_delivery_id", table_name="webhook_attempt")
    op.drop_table("webhook_attempt")
    op.drop_index("ix_webhook_delivery_due", table_name="webhook_delivery")
    op.drop_index("ix_webhook_delivery_hook_id", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_table("webhook")
    for name in ("ix_audit_entry_action", "ix_audit_entry_actor", "ix_audit_entry_model", "ix_audit_entry_subject",
                 "ix_audit_entry_at"):
        op.drop_index(name, table_name="audit_entry")
    op.drop_table("audit_entry")
