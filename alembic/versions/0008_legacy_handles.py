"""Legacy handles: tfhub.dev, bucket and Kaggle handles naming catalog versions (``VersionLegacyHandle``).

A table of its own, since a version has any number of them; each handle (canonical,
``registry.legacy.handles``) names one version in the whole catalog, which the unique
constraint keeps true however many servers write at once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legacy_handle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("handle", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("handle", name="uq_legacy_handle_handle"),
    )
    op.create_index("ix_legacy_handle_version_id", "legacy_handle", ["version_id"])


def downgrade() -> None:
    op.drop_index("ix_legacy_handle_version_id", table_name="legacy_handle")
    op.drop_table("legacy_handle")
