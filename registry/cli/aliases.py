"""``model-registry alias``: movable names for versions (``publisher/model@alias``)."""

from __future__ import annotations

import click

from registry.cli.context import CliContext, pass_context


@click.group()
def alias() -> None:
    """Set, move or remove aliases ('latest' is reserved: it always means the newest version)."""


@alias.command("set")
@click.argument("name", metavar="PUBLISHER/MODEL")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=click.IntRange(min=1), metavar="VERSION")
@pass_context
def set_(obj: CliContext, name: str, alias_name: str, version: int) -> None:
    """Point NAME@ALIAS at VERSION, creating the alias or moving it."""
    record = obj.registry.set_alias(name, alias_name, version)
    click.echo(f"{record.model_name}@{alias_name} -> {record.handle}")


@alias.command("rm")
@click.argument("name", metavar="PUBLISHER/MODEL")
@click.argument("alias_name", metavar="ALIAS")
@pass_context
def rm(obj: CliContext, name: str, alias_name: str) -> None:
    """Remove NAME@ALIAS; the version it pointed at is untouched."""
    obj.registry.remove_alias(name, alias_name)
    click.echo(f"removed {name}@{alias_name}")


COMMANDS = (alias,)
