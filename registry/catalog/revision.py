"""The schema revision this code reads and writes, known without loading Alembic.

Checking a database is then one query (``SELECT version_num FROM
alembic_version``) compared with this constant; Alembic and its templates are
imported only to create or migrate a database, or to explain a mismatch.
``tests/test_migrations.py`` checks that it equals the migration scripts' head:
a new migration must update it.
"""

HEAD_REVISION = "0004"
