"""A version's licence: an SPDX identifier, optional (``VersionMetadata.license``).

Nullable, so every existing version simply has none. Not indexed: search tests
it as an equality on the candidate version's row, which the walk reads anyway.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_version", sa.Column("license", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("model_version", "license")
