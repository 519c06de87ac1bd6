"""``model-registry cache``: inspect, verify and prune the local cache of extracted models.

The cache is keyed by content hash and can always be refilled from storage, so
pruning never loses a published model; it only costs a download next time.
"""

from __future__ import annotations

import click

from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json, table, timestamp
from registry.output import format_size


@click.group()
def cache() -> None:
    """Inspect, verify and prune the local model cache (MODEL_REGISTRY_CACHE_DIR)."""


def _cache(obj: CliContext):
    return obj.registry.cache  # opens no catalog: the cache is a folder


@cache.command("ls")
@json_option
@pass_context
def ls(obj: CliContext, as_json: bool) -> None:
    """List complete entries, corrupt ones (an unreadable record), and leftovers of interrupted downloads."""
    model_cache = _cache(obj)
    entries, leftovers, corrupt = model_cache.entries(), model_cache.incomplete(), model_cache.corrupt()
    if wants_json(obj, as_json):
        echo_json({
            "root": str(model_cache.root),
            "entries": [{"sha256": e.sha256, "path": str(e.path), "size": e.size, "source": e.record.get("source"),
                         "completed_at": e.record.get("completed_at")} for e in entries],
            "incomplete": [str(p) for p in leftovers],
            "corrupt": [{"sha256": sha, "path": str(model_cache.models / sha)} for sha in corrupt],
        })
        return
    click.echo(f"cache {model_cache.root}: {len(entries)} entries, "
               f"{format_size(sum(e.size for e in entries))}")
    if entries:
        click.echo(table(("SHA256", "SIZE", "CACHED", "SOURCE"),
                         [(e.sha256[:16], format_size(e.size), timestamp(e.record.get("completed_at")),
                           e.record.get("source", "-")) for e in entries]))
    if corrupt:
        click.echo(f"{len(corrupt)} corrupt (record unreadable; never used, removed by `model-registry cache prune`):")
        for sha in corrupt:
            click.echo(f"  {sha}  CORRUPT")
    if leftovers:
        click.echo(f"{len(leftovers)} incomplete (removed by `model-registry cache prune`):")
        for path in leftovers:
            click.echo(f"  {path}")


@cache.command()
@click.argument("sha256", required=False)
@pass_context
def verify(obj: CliContext, sha256: str | None) -> None:
    """Re-hash every cached file (or one entry's); exit with status 1 if any changed or went missing."""
    model_cache = _cache(obj)
    entries = [e.sha256 for e in model_cache.entries()] + model_cache.corrupt()
    entries = [sha for sha in entries if sha256 is None or sha.startswith(sha256)]
    if sha256 is not None and not entries:
        from registry.errors import ArtifactNotFound

        raise ArtifactNotFound(f"the cache has no entry whose sha256 starts with {sha256!r}; "
                               f"see `model-registry cache ls`")
    problems = {}
    for sha in entries:
        problems.update(model_cache.verify(sha))
    for sha, found in problems.items():
        click.echo(f"{sha}: CORRUPT")
        for problem in found:
            click.echo(f"  {problem}")
    click.echo(f"{len(entries) - len(problems)} of {len(entries)} entries intact")
    if problems:
        click.echo(f"Error: {len(problems)} cache entries are corrupt; remove them with "
                   f"`model-registry cache prune --corrupt` (they are downloaded again when next used)", err=True)
        raise click.exceptions.Exit(1)


@cache.command()
@click.option("--all", "everything", is_flag=True, help="Remove every entry, not only leftovers.")
@click.option("--corrupt", is_flag=True, help="Also remove entries whose files fail verification.")
@click.option("--older-than", "older_than_days", type=click.FloatRange(min=0), metavar="DAYS",
              help="Also remove entries cached more than DAYS days ago.")
@pass_context
def prune(obj: CliContext, everything: bool, corrupt: bool, older_than_days: float | None) -> None:
    """Remove leftovers of interrupted downloads, and (with options) cached models.

    Cached models are downloaded again from storage when next used.
    """
    model_cache = _cache(obj)
    entries = {e.sha256 for e in model_cache.entries()}
    removed_corrupt = []
    if corrupt:
        for sha in model_cache.verify():  # corrupt records included
            model_cache.remove(sha)
            removed_corrupt.append(sha)
    if everything:
        removed = model_cache.prune()
    elif older_than_days is not None:
        removed = model_cache.prune(older_than_s=older_than_days * 86400)
    else:
        removed = model_cache.prune(keep=entries)  # leftovers only
    removed = removed_corrupt + removed
    for item in removed:
        click.echo(f"removed {item}")
    click.echo(f"removed {len(removed)} item{'s' if len(removed) != 1 else ''}")


COMMANDS = (cache,)
