"""``model-registry compat``: the compatibility matrix of the installed format adapters.

Only the adapters' declared cells are read, so this never imports TensorFlow.
"""

from __future__ import annotations

import click

from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json


@click.command()
@click.option("--format", "format_", metavar="FORMAT",
              help="Only this format's row (one of the formats `model-registry compat` lists).")
@json_option
@pass_context
def compat(obj: CliContext, format_: str | None, as_json: bool) -> None:
    """Print which operations work on which format in which mode (tf1: graph, tf2: eager)."""
    from registry.errors import FormatError

    # The matrix comes from the plugins alone: the catalog is never opened, so this works without a database.
    matrix = obj.registry.matrix
    if format_ is not None and format_ not in matrix.formats:
        raise FormatError(f"no installed adapter provides format {format_!r}; installed: "
                          f"{', '.join(matrix.formats) or 'none'}")
    if wants_json(obj, as_json):
        echo_json([row for row in matrix.as_rows() if format_ is None or row["format"] == format_])
        return
    click.echo(matrix.render(format=format_))


COMMANDS = (compat,)
