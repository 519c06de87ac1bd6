"""``model-registry handles``: the tfhub.dev and Kaggle handles that name catalog versions; and
``model-registry export tfhub-cache``, a ``TFHUB_CACHE_DIR`` for machines with no network.
"""

from __future__ import annotations

import click

from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json, table


@click.group()
def handles() -> None:
    """Legacy handles (https://tfhub.dev/..., Kaggle model URLs, kagglehub handles) naming catalog versions."""


@handles.command("add")
@click.argument("handle", metavar="PUBLISHER/MODEL/N")
@click.argument("legacy", nargs=-1, required=True, metavar="URL...")
@pass_context
def add(obj: CliContext, handle: str, legacy: tuple[str, ...]) -> None:
    """Record each URL (any spelling; stored in canonical form) as a name of the version HANDLE."""
    record = obj.registry.add_legacy_handles(handle, legacy)
    for item in record.legacy_handles:
        click.echo(f"{item} -> {record.handle}")


@handles.command("remove")
@click.argument("handle", metavar="PUBLISHER/MODEL/N")
@click.argument("legacy", nargs=-1, required=True, metavar="URL...")
@pass_context
def remove(obj: CliContext, handle: str, legacy: tuple[str, ...]) -> None:
    """Forget each URL as a name of the version HANDLE."""
    from registry.legacy.handles import normalise_all

    record = obj.registry.remove_legacy_handles(handle, legacy)
    for item in normalise_all(list(legacy)):
        click.echo(f"removed {item} (from {record.handle})")


@handles.command("list")
@click.argument("handle", required=False, metavar="[PUBLISHER/MODEL/N | URL]")
@json_option
@pass_context
def list_(obj: CliContext, handle: str | None, as_json: bool) -> None:
    """Every legacy handle and the version it names; or those of one version; or which version a URL names."""
    from registry.legacy.handles import looks_legacy

    if handle is not None and looks_legacy(handle):
        found = obj.registry.find_legacy_handle(handle)
        pairs = {} if found is None else {item: found.handle for item in found.legacy_handles}
        if found is None:
            from registry.errors import VersionNotFound

            raise VersionNotFound(f"no catalog version is named by {handle}; record one with "
                                  f"`model-registry handles add PUBLISHER/MODEL/N {handle}`")
    elif handle is not None:
        record = obj.registry.get_version(handle)
        pairs = {item: record.handle for item in record.legacy_handles}
    else:
        pairs = obj.registry.list_legacy_handles()
    if wants_json(obj, as_json):
        echo_json([{"legacy_handle": legacy, "version": version} for legacy, version in pairs.items()])
        return
    click.echo(table(["LEGACY HANDLE", "VERSION"], sorted(pairs.items())) if pairs else "no legacy handles")


@click.group("export")
def export() -> None:
    """Write what other tools read from the catalog (a tensorflow_hub cache for machines with no network)."""


@export.command("tfhub-cache")
@click.argument("directory", type=click.Path(file_okay=False), metavar="DIR")
@click.argument("handles_", nargs=-1, metavar="[HANDLE...]")
@click.option("--all", "every", is_flag=True, help="Every version that has a legacy handle.")
@json_option
@pass_context
def export_tfhub_cache(obj: CliContext, directory: str, handles_: tuple[str, ...], every: bool, as_json: bool) -> None:
    """Write DIR as a TFHUB_CACHE_DIR holding the versions HANDLE names (PUBLISHER/MODEL/N or a legacy handle),
    or --all: each tfhub.dev handle under every spelling code uses, the model stored once per version.

    On the machine with no network: TFHUB_CACHE_DIR=DIR python your_program.py (hub.load, hub.KerasLayer,
    hub.Module of https://tfhub.dev/... then find the model there).
    """
    from registry.legacy.export import chosen_versions
    from registry.legacy.export import export_tfhub_cache as export_cache

    written = export_cache(obj.registry, directory, chosen_versions(obj.registry, handles_, every=every))
    if wants_json(obj, as_json):
        echo_json([item._asdict() for item in written])
        return
    click.echo(table(["LEGACY HANDLE", "VERSION", "ENTRIES"],
                     [(item.legacy_handle, item.version, item.skipped or item.entries) for item in written])
               if written else "no legacy handles to export")
    total = sum(item.entries for item in written)
    click.echo(f"{total} entries in {directory}; use it with TFHUB_CACHE_DIR={directory}")


COMMANDS = (handles, export)
