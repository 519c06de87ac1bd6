"""Conversions between the API's values and catalog rows, both ways.

Tag sets are stored as sorted, comma-joined strings so they can sit in unique
constraints and indexes; the public records give them back as lists. Public
records are built from plain values inside the session and never keep a
reference to it, so callers can use them after the session is gone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlmodel import Session, col, select

from registry.catalog.models import (
    Alias,
    ModelVersion,
    RegisteredModel,
    Signature,
    SignaturePublic,
    TaskPublic,
    VersionPublic,
    VersionTask,
)
from registry.errors import CatalogError

#: Keys a task dict passed to ``create_version`` may have (``task`` and ``signature`` are required).
TASK_KEYS = frozenset({"task", "signature", "tags", "output_dim", "image_height", "image_width", "evidence"})
#: Bound parameters per ``IN (...)`` query; well under SQLite's limit.
_CHUNK = 500


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
            raise CatalogError(f"tag_sets must be a list of tag lists, e.g. [['serve']], not a string in it: {tag_set!r}")
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


def version_records(session: Session, pairs: Sequence[tuple[ModelVersion, RegisteredModel]]) -> list[VersionPublic]:
    """Public records of ``(version, model)`` rows, loading signatures, tasks, aliases and parents in bulk."""
    ids = [version.id for version, _ in pairs]
    signatures = _by_version(session, Signature, ids)
    tasks = _by_version(session, VersionTask, ids)
    aliases: dict[int, list[str]] = defaultdict(list)
    for chunk in chunks(ids):
        for name, version_id in session.exec(
                select(Alias.name, Alias.version_id).where(col(Alias.version_id).in_(chunk)).order_by(Alias.name)):
            aliases[version_id].append(name)
    parents = parent_handles(session, {version.parent_id for version, _ in pairs} - {None})
    return [
        VersionPublic(
            publisher=model.publisher,
            model=model.name,
            version=version.version,
            format=version.format,
            artifact_uri=version.artifact_uri,
            sha256=version.sha256,
            size=version.size,
            tag_sets=[list(tags) for tags in version.tag_sets],
            details=dict(version.details or {}),
            description=version.description,
            created_at=version.created_at,
            deleted=version.deleted_at is not None,
            parent=parents.get(version.parent_id),
            aliases=aliases.get(version.id, []),
            signatures=[_signature_record(row) for row in signatures.get(version.id, [])],
            tasks=[_task_record(row) for row in tasks.get(version.id, [])],
        )
        for version, model in pairs
    ]


def parent_handles(session: Session, version_ids: Iterable[int]) -> dict[int, str]:
    """``{version id: "publisher/model/N"}``."""
    handles = {}
    for chunk in chunks(list(version_ids)):
        statement = (
            select(ModelVersion.id, RegisteredModel.publisher, RegisteredModel.name, ModelVersion.version)
            .join(RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id))
            .where(col(ModelVersion.id).in_(chunk)))
        for version_id, publisher, name, number in session.exec(statement):
            handles[version_id] = f"{publisher}/{name}/{number}"
    return handles


def _signature_record(row: Signature) -> SignaturePublic:
    return SignaturePublic(name=row.name, tags=split_tags(row.tags), inputs=dict(row.inputs),
                           outputs=dict(row.outputs))


def _task_record(row: VersionTask) -> TaskPublic:
    size = (row.image_height, row.image_width) if row.image_height is not None and row.image_width is not None else None
    return TaskPublic(task=row.task, signature=row.signature, tags=split_tags(row.tags), output_dim=row.output_dim,
                      image_size=size, evidence=dict(row.evidence or {}))


def _by_version(session: Session, table, ids: list[int]) -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for chunk in chunks(ids):
        for row in session.exec(select(table).where(col(table.version_id).in_(chunk)).order_by(table.id)):
            grouped[row.version_id].append(row)
    return grouped


def chunks(items: list) -> Iterable[list]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]
