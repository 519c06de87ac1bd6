"""``model-registry db``: the catalog database's schema (Alembic migrations)."""

from __future__ import annotations

import click

from registry.cli.context import CliContext, pass_context
from registry.cli.output import echo_json


@click.group()
def db() -> None:
    """Create or migrate the catalog database's schema."""


def _where(settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


@db.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to migrate to.")
@pass_context
def upgrade(obj: CliContext, revision: str) -> None:
    """Create the catalog tables, or migrate them to this code's schema."""
    from registry.catalog import schema

    settings = obj.settings
    before = schema.current(settings.database_url)
    schema.upgrade(settings.database_url, revision)
    after = schema.current(settings.database_url)
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
    revision, head = schema.current(settings.database_url), schema.head()
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
