"""``model-registry import``: publish what a team kept from TF Hub and Kaggle, with its legacy handles.

The work is ``registry.legacy.importing`` (usable from Python); this module reads the arguments, prints how
names are derived, one progress line per entry on stderr, and the summary table. Every entry is tried; the
command exits 1 when any was refused, after the table says which and why.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from registry.cli.context import CliContext, CliError, json_option, pass_context, wants_json
from registry.cli.output import echo_json, table


@click.group("import")
def import_() -> None:
    """Publish the models of a TFHUB_CACHE_DIR, a kagglehub cache, or a folder of archives, with their handles.

    Each model goes to a catalog name derived from its handle (printed), with the handle recorded; running the
    same import again adds nothing.
    """


def _run(obj: CliContext, as_json: bool, entries_of) -> None:
    from registry.legacy import importing

    registry = obj.registry
    quiet = wants_json(obj, as_json)
    if not quiet:
        click.echo(f"Names: {importing.NAME_RULE}", err=True)
    found = list(entries_of())

    def progress(number: int, total: int, outcome: importing.Outcome) -> None:
        if quiet:
            return
        target = f" -> {outcome.version}" if outcome.version else (f" -> {outcome.name}" if outcome.name else "")
        why = f" ({outcome.reason})" if outcome.reason else ""
        click.echo(f"[{number}/{total}] {outcome.source}{target}: {outcome.status}{why}", err=True)

    outcomes = importing.import_models(registry, found, progress=progress)
    counts = importing.summary_counts(outcomes)
    if quiet:
        echo_json({"outcomes": [vars(outcome) for outcome in outcomes], "counts": counts})
    else:
        click.echo(table(["STATUS", "SOURCE", "HANDLE", "VERSION", "NOTE"],
                         [(o.status, o.source, o.recorded[0] if o.recorded else o.handle or "-", o.version or "-",
                           o.reason or "") for o in outcomes]))
        click.echo(f"{counts[importing.IMPORTED]} imported, {counts[importing.ALREADY_THERE]} already there, "
                   f"{counts[importing.REFUSED]} refused")
    if counts[importing.REFUSED]:
        sys.stdout.flush()
        raise CliError(f"{counts[importing.REFUSED]} of {len(outcomes)} entries were refused (the table says why)")


@import_.command("tfhub-cache")
@click.argument("directory", type=click.Path(path_type=Path), metavar="DIR")
@json_option
@pass_context
def tfhub_cache(obj: CliContext, directory: Path, as_json: bool) -> None:
    """Every entry of a TFHUB_CACHE_DIR (sha1-named directories with their .descriptor.txt)."""
    from registry.legacy import importing

    _run(obj, as_json, lambda: importing.tfhub_cache_entries(directory))


@import_.command("kagglehub-cache")
@click.argument("directory", type=click.Path(path_type=Path), metavar="DIR")
@json_option
@pass_context
def kagglehub_cache(obj: CliContext, directory: Path, as_json: bool) -> None:
    """Every whole model download of a kagglehub cache (KAGGLEHUB_CACHE, default ~/.cache/kagglehub)."""
    from registry.legacy import importing

    _run(obj, as_json, lambda: importing.kagglehub_cache_entries(directory))


@import_.command("archives")
@click.argument("directory", type=click.Path(path_type=Path), metavar="DIR")
@click.option("--map", "map_file", required=True, type=click.Path(path_type=Path),
              help="CSV of 'path,handle' rows: an archive (.tar.gz) or model directory under DIR, and its legacy "
                   "handle (tfhub.dev, bucket, Kaggle or kagglehub).")
@json_option
@pass_context
def archives(obj: CliContext, directory: Path, map_file: Path, as_json: bool) -> None:
    """The archives and model directories of DIR that the map names, each under its handle."""
    from registry.legacy import importing

    _run(obj, as_json, lambda: importing.archive_entries(directory, map_file))


COMMANDS = (import_,)
