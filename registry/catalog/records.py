"""Conversions between the API's values and catalog rows, both ways.

Tag sets are stored as sorted, comma-joined strings so they can sit in unique
constraints and indexes; the public records give them back as lists. Public
records are built from plain values inside the session and never keep a
reference to it, so callers can use them after the session is gone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import Table, inspect, null, select
from sqlmodel import Session, SQLModel, col

from registry.catalog.models import (
    Alias,
    ModelVersion,
    RegisteredModel,
    Signature,
    SignaturePublic,
    TaskPublic,
    VersionBase,
    VersionPublic,
    VersionTask,
)
from registry.errors import CatalogError

#: Keys a task dict passed to ``create_version`` may have (``task`` and ``signature`` are required).
TASK_KEYS = frozenset({"task", "signature", "tags", "output_dim", "image_height", "image_width", "evidence"})
#: Bound parameters per ``IN (...)`` query; well under SQLite's limit.
_CHUNK = 500


def table_of(model: type[SQLModel]) -> Table:
    """``model.__table__``, which SQLModel sets on every table model but does not declare to type checkers."""
    table = inspect(model).local_table
    assert isinstance(table, Table)  # a table model is mapped to one Table
    return table


def join_tags(tags: Iterable[str]) -> str:
    tags = sorted(set(tags))
    for tag in tags:
        if "," in tag:
            raise CatalogError(f"graph-variant tag {tag!r} contains a comma; tags are single words like 'serve'")
    return ",".join(tags)


def split_tags(tags: str) -> list[str]:
    return tags.split(",") if tags else []


def normalize_tag_sets(tag_sets: Iterable[Iterable[str]]) -> list[list[str]]:
    """Each tag set sorted, duplicates dropped, order of first appearance kept."""
    result: list[list[str]] = []
    for tag_set in tag_sets:
        if isinstance(tag_set, str):
            raise CatalogError(
                f"tag_sets must be a list of tag lists, e.g. [['serve']], not a string in it: {tag_set!r}")
        tags = split_tags(join_tags(tag_set))
        if tags not in result:
            result.append(tags)
    return result


def signature_rows(signatures: Sequence[Any]) -> list[dict]:
    """``SignatureInfo`` values as ``Signature`` column values; a repeated (tags, name) is a ``CatalogError``."""
    rows, seen = [], set()
    for signature in signatures:
        row = {
            "tags": join_tags(signature.tags),
            "name": signature.name,
            "inputs": {key: info.to_json() for key, info in signature.inputs.items()},
            "outputs": {key: info.to_json() for key, info in signature.outputs.items()},
        }
        if (row["tags"], row["name"]) in seen:
            raise CatalogError(
                f"signature {signature.name!r} is given twice for tag set {split_tags(row['tags'])}; "
                "each graph variant's signature names must be unique")
        seen.add((row["tags"], row["name"]))
        rows.append(row)
    return rows


def task_rows(tasks: Iterable[dict]) -> list[dict]:
    """Task dicts (as produced by the task checks) as ``VersionTask`` column values."""
    rows, seen = [], set()
    for task in tasks:
        unknown = set(task) - TASK_KEYS
        if unknown or "task" not in task or "signature" not in task:
            raise CatalogError(
                f"a task record needs 'task' and 'signature' and may have {sorted(TASK_KEYS - {'task', 'signature'})}; "
                f"got keys {sorted(task)}")
        row = {
            "task": task["task"],
            "signature": task["signature"],
            "tags": join_tags(task.get("tags") or ()),
            "output_dim": task.get("output_dim"),
            "image_height": task.get("image_height"),
            "image_width": task.get("image_width"),
            "evidence": dict(task.get("evidence") or {}),
        }
        key = (row["task"], row["tags"], row["signature"])
        if key in seen:
            raise CatalogError(f"task {row['task']!r} is recorded twice for signature {row['signature']!r}")
        seen.add(key)
        rows.append(row)
    return rows


#: The ``model_version`` columns a public record is built from (all of them): select these (plus
#: ``registered_model``'s ``publisher`` and ``name``) with SQLAlchemy Core instead of loading ORM objects, which
#: costs far more.
VERSION_COLUMNS = tuple(table_of(ModelVersion).c)
#: ``VERSION_COLUMNS`` for listings (a model's versions, search results): the card's text is left out (NULL in its
#: place) — a thousand versions with 50 KB cards would be 50 MB — while its fields (tags...) stay; a single
#: version's record (``get_version``) carries the text.
LISTED_VERSION_COLUMNS = tuple(null().label("card") if column.name == "card" else column
                               for column in VERSION_COLUMNS)
#: The fields a version row and its public record share (``VersionBase``'s), copied as they are.
BASE_FIELDS = tuple(VersionBase.model_fields)
_base_values = attrgetter(*BASE_FIELDS)


def version_records(session: Session, pairs: Sequence[tuple[Any, Any]]) -> list[VersionPublic]:
    """Public records of ``(version, model)`` pairs, loading signatures, tasks, aliases and parents in bulk.

    A version is anything with ``ModelVersion``'s attributes and a model anything with ``publisher`` and
    ``name``: ORM objects, or rows of ``VERSION_COLUMNS`` (one row may serve as both when it also has the
    model's two columns). Related rows are read as plain columns, a few ``IN`` queries whatever the number of
    versions, and the records built without re-validating values the database already typed.
    """
    ids = [version.id for version, _ in pairs]
    signatures = _signatures_by_version(session, ids)
    tasks = _tasks_by_version(session, ids)
    aliases: dict[int, list[str]] = defaultdict(list)
    for chunk in chunks(ids):
        for name, version_id in session.execute(
                select(col(Alias.name), col(Alias.version_id)).where(col(Alias.version_id).in_(chunk))
                .order_by(col(Alias.name))):
            aliases[version_id].append(name)
    known = {version.id: f"{model.publisher}/{model.name}/{version.version}" for version, model in pairs}
    wanted = {version.parent_id for version, _ in pairs} - {None}
    parents = {parent_id: known[parent_id] for parent_id in wanted if parent_id in known}
    parents.update(parent_handles(session, wanted - parents.keys()))
    construct = VersionPublic.model_construct
    return [
        construct(
            **dict(zip(BASE_FIELDS, _base_values(version), strict=True)),
            publisher=model.publisher,
            model=model.name,
            version=version.version,
            created_at=version.created_at,
            deleted=version.deleted_at is not None,
            parent=parents.get(version.parent_id),
            aliases=aliases.get(version.id, []),
            signatures=signatures.get(version.id, []),
            tasks=tasks.get(version.id, []),
        )
        for version, model in pairs
    ]


def parent_handles(session: Session, version_ids: Iterable[int]) -> dict[int, str]:
    """``{version id: "publisher/model/N"}``."""
    handles = {}
    for chunk in chunks(list(version_ids)):
        statement = (
            select(col(ModelVersion.id), col(RegisteredModel.publisher), col(RegisteredModel.name),
                   col(ModelVersion.version))
            .join(RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id))
            .where(col(ModelVersion.id).in_(chunk)))
        for version_id, publisher, name, number in session.execute(statement):
            handles[version_id] = f"{publisher}/{name}/{number}"
    return handles


def _signatures_by_version(session: Session, ids: list[int]) -> dict[int, list[SignaturePublic]]:
    """Each version's signatures, in insertion (id) order."""
    table = table_of(Signature)
    grouped: dict[int, list[SignaturePublic]] = defaultdict(list)
    construct = SignaturePublic.model_construct
    for chunk in chunks(ids):
        statement = (select(table.c.version_id, table.c.tags, table.c.name, table.c.inputs, table.c.outputs)
                     .where(table.c.version_id.in_(chunk)).order_by(table.c.version_id, table.c.id))
        for version_id, tags, name, inputs, outputs in session.execute(statement):
            grouped[version_id].append(construct(name=name, tags=split_tags(tags), inputs=dict(inputs),
                                                 outputs=dict(outputs)))
    return grouped


def _tasks_by_version(session: Session, ids: list[int]) -> dict[int, list[TaskPublic]]:
    """Each version's task records, in insertion (id) order."""
    table = table_of(VersionTask)
    grouped: dict[int, list[TaskPublic]] = defaultdict(list)
    construct = TaskPublic.model_construct
    for chunk in chunks(ids):
        statement = (select(table.c.version_id, table.c.task, table.c.signature, table.c.tags, table.c.output_dim,
                            table.c.image_height, table.c.image_width, table.c.evidence)
                     .where(table.c.version_id.in_(chunk)).order_by(table.c.version_id, table.c.id))
        for version_id, task, signature, tags, output_dim, height, width, evidence in session.execute(statement):
            size = (height, width) if height is not None and width is not None else None
            grouped[version_id].append(construct(task=task, signature=signature, tags=split_tags(tags),
                                                 output_dim=output_dim, image_size=size,
                                                 evidence=dict(evidence or {})))
    return grouped


def chunks(items: list) -> Iterable[list]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]
