"""Alembic owns the catalog's schema: the migrations build exactly the SQLModel tables, and the startup check
refuses databases that do not match the code (on SQLite files and on PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from registry.catalog import Catalog, schema
from registry.catalog.engine import make_engine
from registry.config import DATABASE_URL_ENV
from registry.errors import SchemaError

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path) -> str:
    """An empty database: a new SQLite file's URL, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return request.getfixturevalue("postgres_url")


def schema_diff(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_alembic_upgrade_head_from_the_repo_root_builds_exactly_the_models(empty_database_url):
    env = {**os.environ, DATABASE_URL_ENV: empty_database_url}
    result = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert schema.current(empty_database_url) == schema.head()
    assert schema_diff(empty_database_url) == []
    assert schema.CATALOG_TABLES <= table_names(empty_database_url)


def test_downgrade_to_base_removes_every_table(empty_database_url):
    schema.upgrade(empty_database_url)
    assert schema.CATALOG_TABLES <= table_names(empty_database_url)
    schema.downgrade(empty_database_url, "base")
    assert schema.current(empty_database_url) is None
    assert table_names(empty_database_url) <= {"alembic_version"}  # Alembic keeps its own, now empty, table
    schema.upgrade(empty_database_url)  # and the way back up still works
    assert schema_diff(empty_database_url) == []


def test_a_new_sqlite_file_is_created_at_head(tmp_path):
    path = tmp_path / "not" / "yet" / "there" / "catalog.db"
    url = f"sqlite:///{path}"
    Catalog(url).close()
    assert path.exists()
    assert schema.current(url) == schema.head()
    assert schema_diff(url) == []


def test_an_empty_sqlite_file_is_created_at_head(tmp_path):
    path = tmp_path / "catalog.db"
    path.touch()
    Catalog(f"sqlite:///{path}").close()
    assert schema.current(f"sqlite:///{path}") == schema.head()


def test_an_in_memory_sqlite_catalog_works():
    with Catalog("sqlite://") as catalog:
        assert catalog.list_models() == []
        assert schema.current(catalog.engine) == schema.head()


@pytest.mark.postgres
def test_an_empty_server_database_is_not_migrated_on_open(postgres_url):
    with pytest.raises(SchemaError, match="no catalog tables yet; create them with `model-registry db upgrade`"):
        Catalog(postgres_url)
    assert table_names(postgres_url) <= {"alembic_version"}


def test_a_sqlite_file_of_another_application_is_not_taken_over(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(SchemaError, match="model-registry db upgrade"):
        Catalog(url)
    assert table_names(url) == {"notes"}


@pytest.fixture
def newer_code(tmp_path, monkeypatch):
    """This code with one more migration than the database has seen: a copy of alembic/ plus a revision."""
    from registry.catalog.revision import HEAD_REVISION

    newer = f"{int(HEAD_REVISION) + 1:04d}"
    scripts = tmp_path / "alembic"
    shutil.copytree(schema.ALEMBIC_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / f"{newer}_probe.py").write_text(
        '"""A later migration."""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "{newer}"\ndown_revision = "{HEAD_REVISION}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade():\n"
        '    op.create_table("probe", sa.Column("id", sa.Integer(), primary_key=True))\n\n\n'
        "def downgrade():\n"
        '    op.drop_table("probe")\n')
    schema.head.cache_clear()
    monkeypatch.setattr(schema, "ALEMBIC_DIR", scripts)
    monkeypatch.setattr(schema, "HEAD_REVISION", newer)  # what the newer code's constant would say
    yield HEAD_REVISION, newer
    monkeypatch.undo()
    schema.head.cache_clear()


def test_the_head_revision_constant_matches_the_migration_scripts():
    """The cheap schema check compares with HEAD_REVISION, read off the scripts' names."""
    from registry.catalog.revision import HEAD_REVISION

    assert HEAD_REVISION == schema.head()


def test_each_script_is_named_after_its_revision_and_revisions_count_up_in_one_line():
    """What lets ``HEAD_REVISION`` be read off the file names: a new migration changes no other file."""
    from alembic.script import ScriptDirectory

    from registry.catalog.revision import SCRIPT_NAME

    scripts = list(ScriptDirectory.from_config(schema.alembic_config()).walk_revisions())
    for script in scripts:
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
        assert SCRIPT_NAME.match(Path(script.path).name), script.path
    numbers = sorted(int(script.revision) for script in scripts)
    assert numbers == list(range(1, len(scripts) + 1))
    for script in scripts:
        assert script.down_revision == (None if script.revision == "0001" else f"{int(script.revision) - 1:04d}")


def test_checking_a_current_schema_imports_neither_alembic_nor_mako(tmp_path):
    """Opening a catalog at head (the common case) is one query; Alembic is for creating and migrating."""
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    Catalog(url).close()  # created at head (this imports Alembic, in this process)
    code = (f"import sys; from registry.catalog.store import Catalog; Catalog({url!r}).close(); "
            "print(sorted(m for m in ('alembic', 'mako') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_database_behind_head_is_refused_with_the_upgrade_command(empty_database_url, newer_code):
    current, newer = newer_code
    schema.upgrade(empty_database_url, current)
    with pytest.raises(SchemaError,
                       match=rf"revision {current}, older than this code's {newer}.*`model-registry db upgrade`"):
        Catalog(empty_database_url)
    schema.upgrade(empty_database_url)
    assert schema.current(empty_database_url) == newer
    Catalog(empty_database_url).close()


def test_a_database_ahead_of_the_code_asks_to_upgrade_the_package(empty_database_url):
    schema.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    with engine.begin() as connection:  # as a newer release's migration would leave it
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(SchemaError, match=r"revision 0099, which this tf-model-registry does not know.*upgrade the "
                                          r"package"):
        Catalog(empty_database_url)


def test_tables_without_alembic_version_are_refused(empty_database_url):
    engine = make_engine(empty_database_url)
    SQLModel.metadata.create_all(engine)  # what a script bypassing the migrations would leave behind
    engine.dispose()
    with pytest.raises(SchemaError, match=r"no alembic_version table.*`model-registry db upgrade`.*alembic stamp"):
        Catalog(empty_database_url)
