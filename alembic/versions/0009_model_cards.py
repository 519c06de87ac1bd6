"""Model cards: a version's card and the fields its front matter fills, its file list; publishers' cards.

Every new ``model_version`` column is nullable or has a server default, so existing
versions simply have no card, no tags and an unknown file list (``file_count`` NULL:
they were published before the catalog recorded it). Nothing is indexed: search tests
these as conditions on the candidate version's row, which it reads anyway.

Revision ID: 0009
Revises: 0007 (for now: 0008, another branch's migration, comes between when the branches meet)
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

_LISTS = ("tags", "datasets", "language", "files")


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild: on SQLite that would drop a table others reference). The list columns are
    # nullable so no server default is needed (PostgreSQL cannot compare JSON defaults); existing rows get [].
    for column in (sa.Column("card", sa.Text(), nullable=True), *(sa.Column(name, sa.JSON(), nullable=True)
                                                                for name in _LISTS),
                   sa.Column("base_model", sa.String(length=256), nullable=True),
                   sa.Column("citation", sa.Text(), nullable=True),
                   sa.Column("file_count", sa.Integer(), nullable=True)):
        op.add_column("model_version", column)
    op.execute(sa.text("UPDATE model_version SET " + ", ".join(f"{name} = '[]'" for name in _LISTS)))
    op.create_table(
        "publisher_card",
        sa.Column("publisher", sa.String(length=128), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("publisher"),
    )


def downgrade() -> None:
    op.drop_table("publisher_card")
    for column in ("file_count", "files", "citation", "base_model", "language", "datasets", "tags", "card"):
        op.drop_column("model_version", column)
