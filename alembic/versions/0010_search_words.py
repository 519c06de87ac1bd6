"""Search's word index: ``search_word``, one row per (word, version), filled for the versions already published.

A search word is a range on the primary key (``word``, ``version_id``); ``ix_search_word_by_version`` lets a
version's words be replaced when its card changes. On PostgreSQL the word is compared in the ``C`` collation
(byte order), so "begins with" is exactly a range, as SQLite's BINARY does by default.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_word",
        sa.Column("word", sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
                  nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("word", "version_id"),
    )
    op.create_index("ix_search_word_by_version", "search_word", ["version_id", "word"])
    # The words of every version already published (the code that writes them on publish, run once over all).
    from registry.catalog.search import index_versions

    index_versions(op.get_bind(), names=False)  # the name words' table is 0011's


def downgrade() -> None:
    op.drop_index("ix_search_word_by_version", table_name="search_word")
    op.drop_table("search_word")
