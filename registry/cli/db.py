"""``model-registry db``: the catalog database's schema (Alembic migrations)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import click

from registry.cli.context import CliContext, pass_context
from registry.cli.output import echo_json


@click.group()
def db() -> None:
    """Create or migrate the catalog database's schema."""


def _where(settings) -> str:
    from registry.catalog.urls import redact

    return redact(settings.database_url)


def _refuse_client_mode(settings, command: str) -> None:
    """With ``MODEL_REGISTRY_URL`` set this process is a client: it must not quietly act on a local SQLite catalog."""
    if settings.server_url:
        from registry.cli.context import CliError
        from registry.config import SERVER_URL_ENV

        raise CliError(f"{SERVER_URL_ENV} is set ({settings.server_url}), so this is a client of that server: run "
                       f"`model-registry db {command}` where the server runs, against its database; or unset "
                       f"{SERVER_URL_ENV} to act on the local catalog {_where(settings)}")


@contextlib.contextmanager
def _engine(settings) -> Iterator:
    """One engine for the command, with the settings' SQLite busy timeout (``MODEL_REGISTRY_DATABASE_TIMEOUT``)."""
    from registry.catalog.engine import make_engine

    engine = make_engine(settings.database_url, timeout=settings.database_timeout)
    try:
        yield engine
    finally:
        engine.dispose()


@db.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to migrate to.")
@pass_context
def upgrade(obj: CliContext, revision: str) -> None:
    """Create the catalog tables, or migrate them to this code's schema."""
    from registry.catalog import schema

    settings = obj.settings
    _refuse_client_mode(settings, "upgrade")
    with _engine(settings) as engine:
        before = schema.current(engine)
        schema.upgrade(engine, revision)
        after = schema.current(engine)
    if before == after:
        click.echo(f"{_where(settings)} is already at revision {after}")
    else:
        click.echo(f"{_where(settings)}: migrated from {before or 'an empty database'} to revision {after}")


@db.command()
@click.option("--check", is_flag=True, help="Exit with status 1 unless the database is at the code's head revision.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def current(obj: CliContext, check: bool, as_json: bool) -> None:
    """Show the database's schema revision and the code's head revision."""
    from registry.catalog import schema

    settings = obj.settings
    _refuse_client_mode(settings, "current")
    with _engine(settings) as engine:
        revision, head = schema.current(engine), schema.head()
    if as_json or obj.json:
        echo_json({"database": _where(settings), "revision": revision, "head": head, "at_head": revision == head})
    elif revision == head:
        click.echo(f"{_where(settings)}: revision {revision} (head)")
    elif revision is None:
        click.echo(f"{_where(settings)}: no schema yet (head is {head}); run `model-registry db upgrade` "
                   f"(a new SQLite catalog is also created at head on first use)")
    else:
        click.echo(f"{_where(settings)}: revision {revision}, not head {head}; run `model-registry db upgrade`")
    if check and revision != head:
        raise click.exceptions.Exit(1)


COMMANDS = (db,)
