"""Alembic environment of the catalog: migrates ``SQLModel.metadata`` as defined in ``registry.catalog.models``.

Two ways in:

* ``alembic upgrade head`` from the repository root: the URL is ``sqlalchemy.url``
  from ``alembic.ini`` if set, else ``MODEL_REGISTRY_DATABASE_URL``, else the
  default SQLite catalog.
* ``registry.catalog.schema`` (``model-registry db upgrade`` and the startup
  check): it sets the URL, and may hand over an open connection in
  ``config.attributes["connection"]`` so an in-memory database survives.

SQLite cannot ``ALTER`` most things, so migrations run in batch mode there.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

import registry.catalog.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from registry.catalog.engine import make_engine, write_engine
from registry.config import Settings

config = context.config
target_metadata = SQLModel.metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the SQL instead of running it."""
    url = database_url()
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(database_url(), timeout=Settings.from_env().database_timeout)
    try:
        with write_engine(engine).connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # Our engines emit BEGIN themselves on SQLite (registry.catalog.engine), so DDL there is
    # transactional too: a failed migration leaves the database as it was.
    _configure(connection=connection, render_as_batch=sqlite, transactional_ddl=True if sqlite else None)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
