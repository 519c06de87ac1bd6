"""The schema revision this code reads and writes, known without loading Alembic.

Checking a database is then one query (``SELECT version_num FROM
alembic_version``) compared with this constant; Alembic and its templates are
imported only to create or migrate a database, or to explain a mismatch.

It is read off the migration scripts' file names, so adding a migration is
the whole change: revisions are numbered ``0001``, ``0002``... in one line, and
each script's file name starts with its revision (``0005_version_license.py``).
``tests/test_migrations.py`` checks both rules, and that this equals the head
Alembic computes from the scripts.
"""

from __future__ import annotations

import os
import re

from registry.catalog.migrations_dir import migrations_directory

#: A migration script's file name: its revision, an underscore, a slug.
SCRIPT_NAME = re.compile(r"^(\d{4})_\w+\.py$")


def newest_revision() -> str:
    """The highest revision among the migration scripts (a listing of one directory, no imports)."""
    names = os.listdir(migrations_directory() / "versions")
    revisions = [match.group(1) for match in map(SCRIPT_NAME.match, names) if match]
    if not revisions:
        from registry.errors import SchemaError

        raise SchemaError(f"no migration scripts in {migrations_directory() / 'versions'}; reinstall tf-model-registry")
    return max(revisions)


HEAD_REVISION = newest_revision()
