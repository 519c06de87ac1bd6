"""A version remembers the idempotency key of the publish that made it (``PublishManifest.idempotency_key``).

A client retrying a publish whose response it lost sends the same key; the
catalog then returns the version the first try committed instead of recording a
second one. Unique per model; NULL (a local publish, or a version from before
this revision) never clashes, on SQLite and PostgreSQL alike.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
# The lead assigned 0006 to the audit/webhooks migration being written at the same time; until it is merged into
# this tree, this revision follows 0005 (set back to "0006" when both are in).
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_version", sa.Column("idempotency_key", sa.String(length=128), nullable=True))
    op.create_index("uq_version_idempotency_key", "model_version", ["model_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_version_idempotency_key", table_name="model_version")
    op.drop_column("model_version", "idempotency_key")
