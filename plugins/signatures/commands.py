"""Command-line parts: ``model-registry search``, ``model-registry tasks``, and what ``list --task`` prints.

Click is imported here only, so the publish-time check never imports it.
"""

from __future__ import annotations

from typing import Any

import click

from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json, record_data, table
from registry.handles import parse_image_size


def echo_search(obj: CliContext, *, as_json: bool, task: str | None = None, image_size: str | None = None,
                format: str | None = None, publisher: str | None = None, text: str | None = None,
                limit: int | None = 100, filters: tuple[str, ...] = ()) -> None:
    """Print the versions ``registry.search`` finds, one line each (or JSON)."""
    metadata: dict[str, Any] = metadata_filters(filters)  # registry.search's **filters, no named parameter
    found = obj.registry.search(task=task, image_size=parse_image_size(image_size, "--image-size"), format=format,
                                publisher=publisher, text=text, limit=limit, **metadata)
    if wants_json(obj, as_json):
        echo_json([{**record_data(v), "handle": v.handle} for v in found])
        return
    if not found:
        click.echo("no version matches")
        return
    rows = []
    for version in found:
        tasks = [t for t in version.tasks if task is None or t.task == task]
        rows.append((version.handle, version.format, ", ".join(sorted({t.task for t in tasks})) or "-",
                     _sizes(tasks), _dims(tasks), version.description.splitlines()[0] if version.description else ""))
    click.echo(table(("VERSION", "FORMAT", "TASKS", "IMAGE SIZE", "OUTPUT DIM", "DESCRIPTION"), rows))


def metadata_filters(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--filter FIELD=VALUE`` options as keyword arguments of ``registry.search``; which fields can be
    filtered on is the registry's to say (``registry.catalog.models.filter_names()``), so none is named here."""
    options = {param.name: param.opts[0] for param in search.params if param.opts}
    filters: dict[str, str] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        field = field.strip()
        if not sep or not field:
            raise click.BadParameter(f"{pair!r} is not FIELD=VALUE (e.g. license=MIT)", param_hint="--filter")
        own = options.get(field) or options.get(f"{field}_")
        if own is not None or field in ("limit", "after"):
            raise click.BadParameter(f"{field} is not a metadata field" + (f": use {own}" if own else ""),
                                     param_hint="--filter")
        filters[field] = value.strip()
    return filters


def _sizes(tasks) -> str:
    return ",".join(sorted({f"{t.image_size[0]}x{t.image_size[1]}" for t in tasks if t.image_size})) or "-"


def _dims(tasks) -> str:
    return ",".join(sorted({str(t.output_dim) for t in tasks if t.output_dim is not None})) or "-"


@click.command("search")
@click.option("--task", help="A common signature the version implements (checked at publish), e.g. "
                             "image_feature_vector.")
@click.option("--image-size", metavar="HxW", help="The input image size the task's signature expects, e.g. 224x224.")
@click.option("--format", "format_", metavar="FORMAT", help="Only this format: tf1_hub or tf2_saved_model.")
@click.option("--publisher", help="Only this publisher's models.")
@click.option("--text", help="A word in the model's name or description.")
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE",
              help="An equality on a metadata field of the version, e.g. license=MIT; repeatable (all must hold).")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many versions.")
@json_option
@pass_context
def search(obj: CliContext, task, image_size, format_, publisher, text, filters, limit, as_json) -> None:
    """Find, for each model, its newest version that matches; tasks come from the publish-time check."""
    echo_search(obj, as_json=as_json, task=task, image_size=image_size, format=format_, publisher=publisher,
                text=text, limit=limit, filters=filters)


@click.command("tasks")
@json_option
@pass_context
def tasks(obj: CliContext, as_json: bool) -> None:
    """List the common signatures (tasks) and what the publish-time check verifies for each."""
    from registry.tasks.conformance import DefinitionSet

    definitions = DefinitionSet(obj.registry.plugin_manager)
    if wants_json(obj, as_json):
        echo_json([{"task": d.name, "summary": d.summary, "checks": d.checks(),
                    "plugin": definitions.source(d.name)} for d in definitions])
        return
    for definition in definitions:
        click.echo(f"{definition.name}: {definition.summary}")
        for line in definition.checks():
            click.echo(f"  - {line}")
