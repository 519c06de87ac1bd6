"""Commands on models and versions: ``publish``, ``list``, ``show``, ``resolve``, ``delete``."""

from __future__ import annotations

import click

from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json, record_data, table, tensor_spec, timestamp
from registry.output import format_size


@click.command()
@click.argument("path")
@click.option("--name", required=True, metavar="PUBLISHER/MODEL", help="The model to publish a new version of.")
@click.option("--description", default="", help="What this version is (the model's description, if new).")
@click.option("--license", "license_", metavar="SPDX-ID", help="The version's licence, an SPDX identifier (MIT, "
              "Apache-2.0...).")
@click.option("--parent", metavar="PUBLISHER/MODEL/N", help="The version this one was derived from (lineage).")
@click.option("--task", "tasks", multiple=True, metavar="TASK",
              help="A common signature this model implements (checked before publishing); repeatable.")
@click.option("--card", "card_file", metavar="FILE", help="The version's model card, a Markdown file ('-': standard "
              "input); default: README.md of the model directory.")
@json_option
@pass_context
def publish(obj: CliContext, path: str, name: str, description: str, license_: str | None, parent: str | None,
            tasks: tuple[str, ...], card_file: str | None, as_json: bool) -> None:
    """Publish the model directory or .tar.gz at PATH (or a URL) as the next version of --name."""
    from registry.cli.cards import read_card

    card = {"card": read_card(card_file)} if card_file is not None else {}
    record = obj.registry.publish(path, name=name, description=description, license=license_, parent=parent,
                                  tasks=tasks, **card)
    if wants_json(obj, as_json):
        echo_json({**record_data(record), "handle": record.handle})
        return
    click.echo(f"published {record.handle}")
    click.echo(f"  version: {record.version}")
    click.echo(f"  format:  {record.format}")
    click.echo(f"  sha256:  {record.sha256}")
    click.echo(f"  size:    {format_size(record.size)}")
    if record.license:
        click.echo(f"  license: {record.license}")
    if record.parent:
        click.echo(f"  parent:  {record.parent}")
    if record.card:
        tags = f", tags {', '.join(record.tags)}" if record.tags else ""
        click.echo(f"  card:    {len(record.card.encode('utf-8')):,} bytes{tags}")
    if record.tasks:
        click.echo(f"  tasks:   {', '.join(sorted({t.task for t in record.tasks}))}")


@click.command("list")
@click.option("--publisher", help="Only this publisher's models.")
@click.option("--task", "tasks", multiple=True, metavar="TASK",
              help="Only models with a version checked to implement TASK (e.g. image_feature_vector); repeatable: "
                   "all of them. Shows each model's newest such version.")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="With --task: at most this many models (0: all; listing thousands of records is slow).")
@json_option
@pass_context
def list_(obj: CliContext, publisher: str | None, tasks: tuple[str, ...], limit: int, as_json: bool) -> None:
    """List the catalog's models with their newest version (or newest version implementing --task)."""
    if publisher is not None:
        from registry.handles import validate_name

        validate_name(publisher, "publisher")
    if tasks:
        _list_by_task(obj, publisher, tasks, limit or None, wants_json(obj, as_json))
        return
    models = obj.registry.list_models(publisher=publisher)
    if wants_json(obj, as_json):
        echo_json([{**record_data(m), "handle": m.model_name} for m in models])
        return
    if not models:
        what = f"publisher {publisher} has no models" if publisher else "the catalog is empty"
        click.echo(f"{what}; publish one with `model-registry publish PATH --name publisher/model`")
        return
    click.echo(table(
        ("MODEL", "LATEST", "VERSIONS", "ALIASES", "DESCRIPTION"),
        [(m.model_name, m.latest_version or "-", m.version_count,
          ",".join(f"{alias}={number}" for alias, number in m.aliases.items()) or "-", _one_line(m.description))
         for m in models]))


def _list_by_task(obj: CliContext, publisher: str | None, tasks: tuple[str, ...], limit: int | None,
                  as_json: bool) -> None:
    registry = obj.registry
    for task in tasks[1:]:
        registry.search(task=task, limit=1)  # an unknown task name is an error, not an empty list
    wanted = set(tasks)
    found = []
    # The search gives each model's newest version implementing the first task; with more tasks, walk back
    # from there to the newest version implementing all of them.
    for version in registry.search(task=tasks[0], publisher=publisher, limit=None if len(tasks) > 1 else limit):
        if wanted <= {t.task for t in version.tasks}:
            found.append(version)
            continue
        for older in reversed(registry.list_versions(version.model_name)):
            if older.version < version.version and wanted <= {t.task for t in older.tasks}:
                found.append(older)
                break
    found = found[:limit] if limit else found
    if as_json:
        echo_json([{**record_data(v), "handle": v.handle} for v in found])
        return
    if not found:
        click.echo(f"no model has a version implementing {', '.join(tasks)}")
        return
    click.echo(table(
        ("MODEL", "VERSION", "FORMAT", "TASKS", "DESCRIPTION"),
        [(v.model_name, v.version, v.format, ",".join(sorted({t.task for t in v.tasks})),
          _one_line(v.description)) for v in found]))


@click.command()
@click.argument("handle")
@click.option("--deleted", "include_deleted", is_flag=True, help="Also show deleted versions.")
@json_option
@pass_context
def show(obj: CliContext, handle: str, include_deleted: bool, as_json: bool) -> None:
    """Show a model (HANDLE = publisher/model) or one version (publisher/model/N or publisher/model@alias).

    A version is shown with its artifact, aliases, lineage, signatures per graph
    variant, the tasks it implements and its format's row of the compatibility matrix.
    """
    from registry.handles import catalog_handle

    parsed = catalog_handle(handle)
    registry = obj.registry
    as_json = wants_json(obj, as_json)
    if parsed.version is None and parsed.alias is None:
        _show_model(registry, parsed, include_deleted, as_json)
    else:
        _show_version(registry, registry.get_version(parsed, include_deleted=include_deleted), as_json)


def _show_model(registry, handle, include_deleted: bool, as_json: bool) -> None:
    from registry.errors import VersionNotFound

    model = registry.catalog.get_model(publisher=handle.publisher, name=handle.model)
    versions = registry.list_versions(handle.model_name, include_deleted=include_deleted)
    try:
        newest = registry.get_version(handle)
    except VersionNotFound:
        newest = None  # every version deleted: the model is still shown, with nothing to load
    if as_json:
        echo_json({**record_data(model), "handle": model.model_name,
                   "versions": [record_data(v) for v in versions],
                   "latest": _version_data(registry, newest) if newest else None})
        return
    click.echo(f"{model.model_name}")
    if model.description:
        click.echo(f"  description: {_one_line(model.description)}")
    click.echo(f"  created:     {timestamp(model.created_at)}")
    click.echo(f"  versions:    {model.version_count} live, newest {model.latest_version or '-'}")
    click.echo("")
    if versions:
        click.echo(table(
            ("VERSION", "FORMAT", "SIZE", "CREATED", "ALIASES", "PARENT", "SHA256"),
            [(f"{v.version}{' (deleted)' if v.deleted else ''}", v.format, format_size(v.size),
              timestamp(v.created_at), ",".join(v.aliases) or "-", v.parent or "-", v.sha256[:12])
             for v in versions]))
    else:
        click.echo("no live versions")
    if newest is not None:
        click.echo("")
        click.echo(f"newest version, {newest.handle}:")
        _echo_version(registry, newest)


def _show_version(registry, record, as_json: bool) -> None:
    if as_json:
        echo_json(_version_data(registry, record))
        return
    click.echo(f"{record.handle}{' (deleted)' if record.deleted else ''}")
    _echo_version(registry, record)


def _version_data(registry, record) -> dict:
    data = record_data(record)
    data["handle"] = record.handle
    data["lineage"] = [v.handle for v in _lineage(registry, record)]
    data["compatibility"] = [row for row in registry.matrix.as_rows() if row["format"] == record.format]
    return data


def _lineage(registry, record) -> list:
    return registry.lineage(record.handle) if record.parent else [record]


def _echo_version(registry, record) -> None:
    click.echo(f"  format:      {record.format}")
    click.echo(f"  license:     {record.license or '-'}")
    if record.description:
        click.echo(f"  description: {_one_line(record.description)}")
    click.echo(f"  sha256:      {record.sha256}")
    click.echo(f"  size:        {format_size(record.size)} ({record.size} bytes)")
    click.echo(f"  created:     {timestamp(record.created_at)}")
    click.echo(f"  artifact:    {record.artifact_uri}")
    click.echo(f"  aliases:     {', '.join(record.aliases) or '-'}")
    if record.parent:
        chain = [f"{v.handle}{' (deleted)' if v.deleted else ''}" for v in _lineage(registry, record)]
        click.echo(f"  lineage:     {' <- '.join(chain)}")
    click.echo(f"  tag sets:    {', '.join(_tags(t) for t in record.tag_sets) or '{}'}")
    for label, values in (("tags", record.tags), ("datasets", record.datasets), ("language", record.language)):
        if values:
            click.echo(f"  {label + ':':12} {', '.join(values)}")
    if record.base_model:
        click.echo(f"  base model:  {record.base_model}")
    if record.files:
        more = f" (first {len(record.files)} listed)" if (record.file_count or 0) > len(record.files) else ""
        click.echo(f"  files:       {record.file_count or len(record.files)}{more}")
        for entry in record.files[:20]:
            click.echo(f"    {format_size(entry['size']):>10}  {entry['path']}")
        if len(record.files) > 20:
            click.echo(f"    … {len(record.files) - 20} more (`--json` lists them)")
    if record.card:
        from registry.cli.cards import echo_card

        click.echo("")
        click.echo("card:")
        echo_card(record.card)

    click.echo("")
    click.echo("signatures:")
    if not record.signatures:
        click.echo("  (none recorded)")
    for tags in _tag_set_order(record):
        click.echo(f"  graph variant {_tags(tags)}:")
        for signature in (s for s in record.signatures if s.tags == tags):
            click.echo(f"    {signature.name}")
            for label, tensors in (("in ", signature.inputs), ("out", signature.outputs)):
                for key, info in sorted(tensors.items()):
                    click.echo(f"      {label} {key}: {tensor_spec(info)}")

    click.echo("")
    click.echo("tasks:")
    if not record.tasks:
        click.echo("  (none)")
    for task in record.tasks:
        facts = [f"signature {task.signature}", f"graph variant {_tags(task.tags)}"]
        if task.output_dim is not None:
            facts.append(f"output_dim {task.output_dim}")
        if task.image_size is not None:
            facts.append(f"image size {task.image_size[0]}x{task.image_size[1]}")
        click.echo(f"  {task.task}: {', '.join(facts)}")

    click.echo("")
    click.echo(f"compatibility ({record.format}):")
    if not registry.matrix.row(record.format):
        click.echo(f"  no adapter for {record.format} is installed, so nothing can be done with it here")
    else:
        for line in registry.matrix.render(format=record.format).splitlines():
            click.echo(f"  {line}".rstrip())


def _tag_set_order(record) -> list[list[str]]:
    order = [sorted(t) for t in record.tag_sets]
    for signature in record.signatures:
        if signature.tags not in order:
            order.append(signature.tags)
    return order


def _tags(tags) -> str:
    return "{" + ", ".join(sorted(tags)) + "}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


@click.command()
@click.argument("handle")
@pass_context
def resolve(obj: CliContext, handle: str) -> None:
    """Print the local directory of HANDLE's model, downloading it into the cache if needed."""
    click.echo(obj.registry.resolve(handle))


@click.command()
@click.argument("handle")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def delete(obj: CliContext, handle: str, yes: bool) -> None:
    """Delete (hide) the version HANDLE names (publisher/model/N or publisher/model@alias).

    Its number is never reused; aliases on it stop resolving. A bare publisher/model is refused, --yes or not:
    --yes only skips the confirmation.
    """
    from registry.handles import explicit_version

    registry = obj.registry
    record = registry.get_version(explicit_version(handle, "delete"))
    if not yes:
        click.confirm(f"Delete {record.handle} ({record.format}, created {timestamp(record.created_at)})?",
                      abort=True, err=True)
    registry.delete_version(record.handle)
    click.echo(f"deleted {record.handle}")


COMMANDS = (publish, list_, show, resolve, delete)
