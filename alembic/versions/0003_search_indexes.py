"""Covering indexes for search's per-model walk.

Search asks each model, in name order, for its newest live version with a
matching task row. These two indexes answer that from the indexes alone (no
table rows read): a model's live versions newest first with their format, and a
version's task rows with the searchable facts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_version_by_model_live", "model_version", ["model_id", "deleted_at", "version", "format"])
    op.create_index("ix_task_by_version_facts", "version_task",
                    ["version_id", "task", "image_height", "image_width", "output_dim"])


def downgrade() -> None:
    op.drop_index("ix_task_by_version_facts", table_name="version_task")
    op.drop_index("ix_version_by_model_live", table_name="model_version")
