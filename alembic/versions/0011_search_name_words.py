"""Search's name words: ``search_name_word``, one row per (word, model) of each model's own publisher and name.

Relevance ranks first the models whose own name holds a search word; this index finds them by the word (a range
on the primary key, as ``search_word`` does), where the ranking used to read every model's name. Filled for the
models already registered.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_name_word",
        sa.Column("word", sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
                  nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["registered_model.id"]),
        sa.PrimaryKeyConstraint("word", "model_id"),
    )
    op.create_index("ix_search_name_word_by_model", "search_name_word", ["model_id", "word"])
    # The name words of every model already registered (the code that writes them on publish, run once over all).
    from registry.catalog.search import index_model_names

    index_model_names(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_search_name_word_by_model", table_name="search_name_word")
    op.drop_table("search_name_word")
