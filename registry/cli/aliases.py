"""``model-registry alias``: movable names for versions (``publisher/model@alias``)."""

from __future__ import annotations

import click

from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json, table, timestamp


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


@alias.command("history")
@click.argument("handle", metavar="PUBLISHER/MODEL@ALIAS")
@json_option
@pass_context
def alias_history(obj: CliContext, handle: str, as_json: bool) -> None:
    """Every version an alias has named, oldest first, with when and by whom."""
    intervals = obj.registry.alias_history(handle)
    if wants_json(obj, as_json):
        echo_json([interval.model_dump(mode="json") for interval in intervals])
        return
    click.echo(table(["VERSION", "SINCE (UTC)", "UNTIL (UTC)", "BY"],
                     [(i.handle, timestamp(i.since), timestamp(i.until) if i.until else
                       ("(removed)" if i.ended_by == "alias.removed" else "now"), i.actor) for i in intervals]))


COMMANDS = (alias,)
