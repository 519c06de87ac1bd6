"""A partial index of the versions that have a description of their own, for text search.

Search tests a model's own text (publisher, name, description) on the model row
it walks; a model can otherwise match only through a version's description.
The versions that have one are found through this index (empty in a catalog
whose versions carry no description of their own), by model, live first, with
their format. The description is not in the key: PostgreSQL refuses B-tree
entries larger than about 2.7 kB, and descriptions have no length limit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    described = sa.text("description <> ''")
    op.create_index("ix_version_described", "model_version", ["model_id", "deleted_at", "version", "format"],
                    sqlite_where=described, postgresql_where=described)


def downgrade() -> None:
    op.drop_index("ix_version_described", table_name="model_version")
