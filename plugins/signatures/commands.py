"""Command-line parts: ``model-registry search``, ``model-registry tasks``, and what ``list --task`` prints.

Click is imported here only, so the publish-time check never imports it.
"""

from __future__ import annotations

import click

from registry.catalog.search import PAGE_SIZE, SORTS, SearchQuery
from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json, record_data, table
from registry.handles import parse_image_size


def echo_search(obj: CliContext, query: "SearchQuery", *, as_json: bool) -> None:
    """Print one page of ``Registry.find`` (the catalog page's search), one line per model (or JSON)."""
    found = obj.registry.find(query)
    if wants_json(obj, as_json):
        echo_json([{**record_data(v), "handle": v.handle} for v in found.items])
        return
    if not found.items:
        click.echo("no model matches" if found.total == 0 else
                   f"no page {found.page}: {found.total_shown} models match, {found.pages_shown} pages")
        return
    rows = []
    for version in found.items:
        tasks = [t for t in version.tasks if query.task is None or t.task == query.task]
        rows.append((version.handle, version.format, ", ".join(sorted({t.task for t in tasks})) or "-",
                     _sizes(tasks), _dims(tasks), version.license or "-",
                     version.description.splitlines()[0] if version.description else ""))
    click.echo(table(("VERSION", "FORMAT", "TASKS", "IMAGE SIZE", "OUTPUT DIM", "LICENSE", "DESCRIPTION"), rows))
    if found.pages > 1:  # one page says all by itself; more say where the rest is
        more = f"; next: --page {found.page + 1}" if found.has_next else ""
        click.echo(f"{found.total_shown} models match, by {found.sort}; page {found.page} of {found.pages_shown}{more}")


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
        if own is not None or field in ("limit", "after", "page", "q"):
            raise click.BadParameter(f"{field} is not a metadata field" + (f": use {own}" if own else ""),
                                     param_hint="--filter")
        filters[field] = value.strip()
    return filters


def _sizes(tasks) -> str:
    return ",".join(sorted({f"{t.image_size[0]}x{t.image_size[1]}" for t in tasks if t.image_size})) or "-"


def _dims(tasks) -> str:
    return ",".join(sorted({str(t.output_dim) for t in tasks if t.output_dim is not None})) or "-"


@click.command("search")
@click.argument("words", nargs=-1)
@click.option("--task", help="A common signature the version implements (checked at publish), e.g. "
                             "image_feature_vector.")
@click.option("--image-size", metavar="HxW", help="The input image size the task's signature expects, e.g. 224x224.")
@click.option("--output-dim", type=int, help="The task's output dimension, e.g. 1280.")
@click.option("--format", "format_", metavar="FORMAT", help="Only this format: tf1_hub or tf2_saved_model.")
@click.option("--publisher", help="Only this publisher's models.")
@click.option("--text", help="More words (as the WORDS arguments).")
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE",
              help="A metadata field of the version, e.g. license=MIT or tags=vision; repeatable (all must hold).")
@click.option("--sort", type=click.Choice(SORTS), help="relevance (the default with words), name (without), newest "
                                                       "or downloads.")
@click.option("--page", type=int, default=1, show_default=True, help="Which page of results.")
@click.option("--limit", type=int, default=PAGE_SIZE, show_default=True, help="Results per page.")
@json_option
@pass_context
def search(obj: CliContext, words, task, image_size, output_dim, format_, publisher, text, filters, sort, page, limit,
           as_json) -> None:
    """Find models by need, as the catalog page does: every WORD must match the name, publisher, description,
    card, tags, task or format of a model's version (a word may be the start of one); the newest matching
    version of each model is shown."""
    parse_image_size(image_size, "--image-size")  # a malformed size named as the option the user typed
    query = SearchQuery.from_params({"q": " ".join([*words, text or ""]).strip(), "task": task,
                                     "image_size": image_size, "output_dim": output_dim, "format": format_,
                                     "publisher": publisher, "sort": sort, "page": page, "limit": limit,
                                     **metadata_filters(filters)})
    echo_search(obj, query, as_json=as_json)


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
