"""The initial catalog: models, versions, aliases, signatures and version tasks.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _name(length: int | None = None) -> sa.String:
    return sa.String(length=length)


def _timestamp() -> sa.DateTime:
    # SQLModel stores aware datetimes in UTC (TIMESTAMP WITH TIME ZONE on PostgreSQL).
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registered_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("publisher", _name(128), nullable=False),
        sa.Column("name", _name(128), nullable=False),
        sa.Column("description", _name(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("publisher", "name", name="uq_model_publisher_name"),
    )
    op.create_index("ix_registered_model_publisher", "registered_model", ["publisher"])
    op.create_index("ix_registered_model_name", "registered_model", ["name"])

    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("format", _name(64), nullable=False),
        sa.Column("artifact_uri", _name(), nullable=False),
        sa.Column("sha256", _name(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("tag_sets", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("description", _name(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["registered_model.id"]),
        sa.ForeignKeyConstraint(["parent_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "version", name="uq_version_model_version"),
    )
    op.create_index("ix_model_version_model_id", "model_version", ["model_id"])
    op.create_index("ix_model_version_format", "model_version", ["format"])
    op.create_index("ix_model_version_sha256", "model_version", ["sha256"])
    op.create_index("ix_model_version_parent_id", "model_version", ["parent_id"])

    op.create_table(
        "alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("name", _name(128), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["registered_model.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "name", name="uq_alias_model_name"),
    )
    op.create_index("ix_alias_model_id", "alias", ["model_id"])
    op.create_index("ix_alias_version_id", "alias", ["version_id"])

    op.create_table(
        "signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("tags", _name(256), nullable=False),
        sa.Column("name", _name(256), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id", "tags", "name", name="uq_signature_version_tags_name"),
    )
    op.create_index("ix_signature_version_id", "signature", ["version_id"])

    op.create_table(
        "version_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("task", _name(64), nullable=False),
        sa.Column("signature", _name(256), nullable=False),
        sa.Column("tags", _name(256), nullable=False),
        sa.Column("output_dim", sa.Integer(), nullable=True),
        sa.Column("image_height", sa.Integer(), nullable=True),
        sa.Column("image_width", sa.Integer(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id", "task", "tags", "signature", name="uq_task_version_task_sig"),
    )
    op.create_index("ix_version_task_version_id", "version_task", ["version_id"])
    op.create_index("ix_task_search", "version_task", ["task", "image_height", "image_width", "output_dim"])


def downgrade() -> None:
    # Children first; dropping a table drops its indexes.
    for table in ("version_task", "signature", "alias", "model_version", "registered_model"):
        op.drop_table(table)
