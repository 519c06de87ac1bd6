"""``model-registry token``: the server's access tokens (create, list, revoke).

Run on the server's side, against its catalog database (MODEL_REGISTRY_DATABASE_URL),
or from anywhere in client mode (MODEL_REGISTRY_URL plus an admin MODEL_REGISTRY_TOKEN).
``create`` prints the token alone on stdout — ``TOKEN=$(model-registry token create ...)``
— and everything else on stderr; the token is never stored, so it cannot be shown again.
"""

from __future__ import annotations

import click

from registry.access import SCOPES
from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json


@click.group()
def token() -> None:
    """Create, list and revoke the server's access tokens."""


@token.command()
@click.option("--name", required=True, help="A name to recognise and revoke it by (e.g. ci-vision).")
@click.option("--scope", required=True, type=click.Choice(SCOPES),
              help="read: download when reads need a token; publish: also publish and move aliases; "
                   "admin: also delete versions and manage tokens.")
@click.option("--publisher", default=None, help="Limit writes to this publisher's models.")
@pass_context
def create(obj: CliContext, name: str, scope: str, publisher: str | None) -> None:
    """Create a token and print it (alone, on stdout)."""
    secret, record = obj.registry.catalog.tokens.create(name=name, scope=scope, publisher=publisher)
    limit = f" for publisher {record.publisher}" if record.publisher else ""
    click.echo(f"created token {record.name!r} with scope {record.scope}{limit}; it is shown once, below", err=True)
    click.echo(secret)


@token.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
@json_option
@pass_context
def list_(obj: CliContext, include_revoked: bool, as_json: bool) -> None:
    """List tokens by name and scope (never the tokens themselves)."""
    tokens = obj.registry.catalog.tokens.list(include_revoked=include_revoked)
    if wants_json(obj, as_json):
        echo_json([t.model_dump(mode="json") for t in tokens])
        return
    if not tokens:
        click.echo("no tokens; create one with `model-registry token create --name NAME --scope SCOPE`", err=True)
    for t in tokens:
        state = " (revoked)" if t.revoked else ""
        click.echo(f"{t.name}\t{t.scope}\t{t.publisher or '*'}\t{t.created_at:%Y-%m-%d %H:%M}{state}")


@token.command()
@click.argument("name")
@pass_context
def revoke(obj: CliContext, name: str) -> None:
    """Revoke the token NAME; every server process refuses it from its next request."""
    record = obj.registry.catalog.tokens.revoke(name)
    click.echo(f"revoked token {record.name!r}")


COMMANDS = (token,)
