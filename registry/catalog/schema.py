"""The catalog's schema version: migrate with Alembic, and refuse to run on a database that does not match.

The migration scripts live in ``alembic/`` at the top of the project (next to
``alembic.ini``); this module drives them programmatically, for
``model-registry db upgrade`` and for the check every ``Catalog`` runs when it
opens a database:

* at the code's head revision: fine;
* a new or empty SQLite database (no tables at all): created at head on the spot, under a file lock
  beside the database so processes starting together do not race;
* anything else (behind head, not created by our migrations, an empty server
  database): ``SchemaError`` naming the command to run. Server databases are
  never migrated behind an operator's back.
"""

from __future__ import annotations

import contextlib
import functools

import filelock
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import DBAPIError

from registry.catalog.engine import make_engine, normalize_url, sqlite_path, write_engine
from registry.catalog.migrations_dir import migrations_directory
from registry.catalog.revision import HEAD_REVISION
from registry.errors import SchemaError

#: The migration scripts: the clone's alembic/, or registry/catalog/migrations/ in an installed wheel.
ALEMBIC_DIR = migrations_directory()
#: What an operator runs to bring a database to the code's schema.
UPGRADE_COMMAND = "model-registry db upgrade"
#: The tables our migrations create (alembic_version aside).
CATALOG_TABLES = frozenset({"registered_model", "model_version", "alias", "signature", "version_task"})
#: How long a process waits for another to finish creating a new SQLite catalog, in seconds.
CREATE_LOCK_TIMEOUT_S = 120.0

Bind = str | URL | Engine


def alembic_config(database_url: str | URL | None = None):
    """An Alembic config for our scripts, without ``alembic.ini`` (so it never reconfigures logging)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if database_url is not None:
        rendered = normalize_url(database_url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # configparser interpolation
    return config


@functools.lru_cache(maxsize=1)
def head() -> str:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    heads = script.get_heads()
    if len(heads) != 1:
        raise SchemaError(f"the migration scripts in {ALEMBIC_DIR} have {len(heads)} heads {heads}; merge them")
    return heads[0]


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def current(database_url: Bind) -> str | None:
    """The database's revision, or ``None`` if Alembic never ran on it."""
    from alembic.runtime.migration import MigrationContext

    with _engine(database_url) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database_url: Bind, revision: str = "head") -> None:
    """Migrate the database up to ``revision``, in one transaction."""
    with _engine(database_url) as engine:
        _run(engine, "upgrade", revision)


def downgrade(database_url: Bind, revision: str = "base") -> None:
    """Migrate the database down to ``revision`` ("base" drops every catalog table), in one transaction."""
    with _engine(database_url) as engine:
        _run(engine, "downgrade", revision)


def check_schema(database_url: Bind) -> None:
    """Return if the database is at head (creating a new SQLite catalog first); else raise ``SchemaError``.

    The common case is one query compared with ``HEAD_REVISION``; Alembic is
    imported only to create a catalog or to explain why a database does not match.
    """
    with _engine(database_url) as engine:
        if _recorded_revision(engine) == HEAD_REVISION:
            return
        revision, tables = _state(engine)
        if revision is None and not tables and engine.dialect.name == "sqlite":
            with _creation_lock(engine):
                revision, tables = _state(engine)  # another process may have created it meanwhile
                if revision is None and not tables:
                    _run(engine, "upgrade", "head")
                    return
        # Tables of other applications do not make a database ours; only the catalog's tables count from here.
        tables &= CATALOG_TABLES
        problem = _problem(engine, revision, tables)
        if problem:
            raise SchemaError(problem)


def _problem(engine: Engine, revision: str | None, tables: set[str]) -> str | None:
    where = f"the catalog database {engine.url.render_as_string(hide_password=True)}"
    code_head = head()
    if revision == code_head:
        return None
    if revision is None and not tables:
        return f"{where} has no catalog tables yet; create them with `{UPGRADE_COMMAND}`"
    if revision is None:
        return (
            f"{where} has catalog tables ({', '.join(sorted(tables))}) but no alembic_version table, so its "
            f"schema is unknown; point MODEL_REGISTRY_DATABASE_URL at a new database and run `{UPGRADE_COMMAND}`, "
            f"or, if you know these tables match revision {code_head}, record that with `alembic stamp {code_head}`")
    if revision in known_revisions():
        return (
            f"{where} is at schema revision {revision}, older than this code's {code_head}; back it up and run "
            f"`{UPGRADE_COMMAND}`")
    return (
        f"{where} is at schema revision {revision}, which this tf-model-registry does not know (its newest is "
        f"{code_head}): a newer release migrated it; upgrade the package (pip install -U tf-model-registry)")


def _recorded_revision(engine: Engine) -> str | None:
    """``alembic_version.version_num`` by one plain query; None when there is no such table (or row)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except DBAPIError as error:
        if "alembic_version" in str(error) or "no such table" in str(error).lower():
            return None
        raise
    return rows[0][0] if len(rows) == 1 else None


def _state(engine: Engine) -> tuple[str | None, set[str]]:
    """The database's revision and its tables (besides alembic_version)."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        rows = [] if not inspect(connection).has_table("alembic_version") else [
            row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version")).fetchall()]
    if len(rows) > 1:
        raise SchemaError(_several_revisions(engine, rows))
    return (rows[0] if rows else None), tables


def _several_revisions(engine: Engine, rows: list[str]) -> str:
    return (f"the catalog database {engine.url.render_as_string(hide_password=True)} records {len(rows)} schema "
            f"revisions ({', '.join(sorted(rows))}) in its alembic_version table, which must hold one (an "
            f"interrupted or hand-made migration): back it up, delete the rows of the revisions not applied "
            f"(DELETE FROM alembic_version WHERE version_num = '...'), then run `{UPGRADE_COMMAND}`")


def _run(engine: Engine, operation: str, revision: str) -> None:
    """Run Alembic's ``upgrade`` or ``downgrade`` command."""
    from alembic.util import CommandError

    from alembic import command

    # One outer transaction (BEGIN IMMEDIATE on SQLite) shared with Alembic, so a migration is all or nothing
    # and an in-memory database is migrated on the connection that keeps it alive.
    _state(engine)  # SchemaError for a version table Alembic would refuse with a bare CommandError
    config = alembic_config(engine.url)
    try:
        with write_engine(engine).begin() as connection:
            config.attributes["connection"] = connection
            getattr(command, operation)(config, revision)
    except CommandError as error:
        raise SchemaError(f"cannot {operation} the catalog database {engine.url.render_as_string(hide_password=True)} "
                          f"to {revision}: {error}") from error


@contextlib.contextmanager
def _creation_lock(engine: Engine):
    path = sqlite_path(engine.url)
    if path is None:  # in memory: only this process can see it
        yield
        return
    lock = filelock.FileLock(f"{path}.lock", timeout=CREATE_LOCK_TIMEOUT_S)
    try:
        with lock:
            yield
    except filelock.Timeout:
        raise SchemaError(
            f"waited {CREATE_LOCK_TIMEOUT_S:.0f}s for another process to create the catalog {path}; if none is "
            f"running, delete {path}.lock and try again") from None


@contextlib.contextmanager
def _engine(bind: Bind):
    """Use the caller's engine as is, or make (and dispose of) one for a URL."""
    if isinstance(bind, Engine):
        yield bind
        return
    engine = make_engine(bind)
    try:
        yield engine
    finally:
        engine.dispose()
