"""``model-registry card show|set``: a version's (or a publisher's) model card, in the terminal and edited.

``card show`` renders the card's Markdown in the terminal (``rich``; raw HTML in it is
printed as text) or prints it as it is with ``--raw``; ``card set`` replaces it from a
file or standard input, without touching the artifact (a publish token in client
mode). ``show`` of a version prints the card too (``echo_card``).
"""

from __future__ import annotations

import sys

import click

from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json, record_data
from registry.errors import MetadataError


def echo_card(text: str) -> None:
    """Print a card's body rendered for the terminal (bounded: ``registry.cards.render.MAX_TERMINAL_CHARS``)."""
    from rich.console import Console

    from registry.cards.render import terminal_card

    renderable, left_out = terminal_card(text)
    Console(file=sys.stdout, soft_wrap=False, highlight=False, emoji=False, markup=False).print(renderable)
    if left_out:
        click.echo(f"  … {left_out:,} more characters: `model-registry card show --raw HANDLE` prints them all")


def _is_publisher(handle: str) -> bool:
    return "/" not in handle and "@" not in handle


@click.group("card")
def card() -> None:
    """Show or edit a model card (HANDLE = publisher/model[/N|@alias]) or a publisher's card (HANDLE = publisher)."""


@card.command("show")
@click.argument("handle")
@click.option("--raw", is_flag=True, help="Print the Markdown as it is (front matter included).")
@json_option
@pass_context
def show(obj: CliContext, handle: str, raw: bool, as_json: bool) -> None:
    """Print the card of HANDLE, rendered for the terminal."""
    registry = obj.registry
    if _is_publisher(handle):
        record = registry.publisher_card(handle)
        text, name, data = record.card, f"publisher {handle}", record_data(record)
    else:
        version = registry.get_version(handle)
        text, name = version.card, version.handle
        data = {"handle": version.handle, "card": version.card, "license": version.license, "tags": version.tags,
                "datasets": version.datasets, "language": version.language, "base_model": version.base_model,
                "citation": version.citation}
    if wants_json(obj, as_json):
        echo_json(data)
    elif text is None:
        click.echo(f"{name} has no card; add one with `model-registry card set {handle} CARD.md`")
    elif raw:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        echo_card(text)


@card.command("set")
@click.argument("handle")
@click.argument("source", type=click.Path(dir_okay=False, allow_dash=True), required=False)
@click.option("--remove", is_flag=True, help="Remove the card instead.")
@json_option
@pass_context
def set_(obj: CliContext, handle: str, source: str | None, remove: bool, as_json: bool) -> None:
    """Replace the card of HANDLE with the Markdown file SOURCE ('-': standard input).

    A version's artifact and sha256 do not change; the fields the card's front matter names (licence, tags,
    datasets, language, base_model, citation) are read from it again.
    """
    if remove == (source is not None):
        raise click.UsageError("give a card file (or '-' for standard input), or --remove")
    text = None if remove else read_card(source or "-")
    registry = obj.registry
    if _is_publisher(handle):
        record = registry.set_publisher_card(handle, text)
        if wants_json(obj, as_json):
            echo_json(record_data(record))
        else:
            click.echo(f"{'removed the card of' if record.card is None else 'set the card of'} publisher {handle}")
        return
    version = registry.set_card(handle, text)
    if wants_json(obj, as_json):
        echo_json({**record_data(version), "handle": version.handle})
        return
    click.echo(f"{'removed the card of' if version.card is None else 'set the card of'} {version.handle} "
               f"(artifact unchanged, sha256 {version.sha256[:12]})")
    for label, value in (("license", version.license), ("tags", ", ".join(version.tags)),
                         ("datasets", ", ".join(version.datasets)), ("language", ", ".join(version.language)),
                         ("base_model", version.base_model)):
        if value:
            click.echo(f"  {label + ':':11} {value}")


def read_card(source: str) -> str:
    """A card file's text ('-': standard input); not UTF-8 is a ``MetadataError`` naming the file."""
    try:
        if source == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        with open(source, "rb") as file:
            return file.read().decode("utf-8")
    except UnicodeDecodeError:
        raise MetadataError(f"the card {source!r} is not UTF-8 text") from None
    except OSError as error:
        raise MetadataError(f"cannot read the card {source!r}: {error.strerror or error}") from None


COMMANDS = (card,)
