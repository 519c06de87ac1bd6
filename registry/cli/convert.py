"""``model-registry convert``: a version converted to another format, published as a version derived from it."""

from __future__ import annotations

import click

from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json, record_data


@click.command()
@click.argument("handle", metavar="HANDLE")
@click.option("--to", "to", required=True, metavar="FORMAT",
              help="The format to convert to: one that HANDLE's format converts to (`model-registry compat` names "
                   "it where converting is the way to do something).")
@click.option("--name", metavar="PUBLISHER/MODEL",
              help="The model to publish the converted version as (default: HANDLE's own model, as its next version).")
@click.option("--description", default="", help="What the converted version is.")
@click.option("--license", "license_", metavar="SPDX-ID", help="The converted version's licence, an SPDX identifier.")
@json_option
@pass_context
def convert(obj: CliContext, handle: str, to: str, name: str | None, description: str, license_: str | None,
            as_json: bool) -> None:
    """Convert the catalog version HANDLE to --to FORMAT and publish it, with HANDLE as its parent.

    Nothing is published when the conversion is refused; the error says why.
    """
    converted = obj.registry.convert(handle, to=to, name=name, description=description, license=license_)
    version, summary = converted.version, converted.report.summary()
    if wants_json(obj, as_json):
        echo_json({**record_data(version), "handle": version.handle, "conversion": summary})
        return
    for line in summary:
        click.echo(line)
    click.echo(f"published {version.handle} (format {version.format}, parent {version.parent})")


COMMANDS = (convert,)
