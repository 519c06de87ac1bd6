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

_EMPTY_LIST = sa.text("'[]'")
_LISTS = ("tags", "datasets", "language", "files")


def upgrade() -> None:
    with op.batch_alter_table("model_version") as batch:
        batch.add_column(sa.Column("card", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default=_EMPTY_LIST))
        batch.add_column(sa.Column("datasets", sa.JSON(), nullable=False, server_default=_EMPTY_LIST))
        batch.add_column(sa.Column("language", sa.JSON(), nullable=False, server_default=_EMPTY_LIST))
        batch.add_column(sa.Column("base_model", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("citation", sa.Text(), nullable=True))
        batch.add_column(sa.Column("files", sa.JSON(), nullable=False, server_default=_EMPTY_LIST))
        batch.add_column(sa.Column("file_count", sa.Integer(), nullable=True))
    # The default filled the existing rows; new rows always carry their values (as the models declare).
    with op.batch_alter_table("model_version") as batch:
        for column in _LISTS:
            batch.alter_column(column, server_default=None)
    op.create_table(
        "publisher_card",
        sa.Column("publisher", sa.String(length=128), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("publisher"),
    )


def downgrade() -> None:
    op.drop_table("publisher_card")
    with op.batch_alter_table("model_version") as batch:
        for column in ("file_count", "files", "citation", "base_model", "language", "datasets", "tags", "card"):
            batch.drop_column(column)
