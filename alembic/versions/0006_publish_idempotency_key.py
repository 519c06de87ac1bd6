"""A version remembers the idempotency key of the publish that made it (``PublishManifest.idempotency_key``).

A client retrying a publish whose response it lost sends the same key; the
catalog then returns the version the first try committed instead of recording a
second one. Unique per model; NULL (a local publish, or a version from before
this revision) never clashes, on SQLite and PostgreSQL alike.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_version", sa.Column("idempotency_key", sa.String(length=128), nullable=True))
    op.create_index("uq_version_idempotency_key", "model_version", ["model_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_version_idempotency_key", table_name="model_version")
    op.drop_column("model_version", "idempotency_key")
