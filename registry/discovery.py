"""Finding models by task and swapping them: ``registry.search`` and ``registry.interchangeable``.

Search is SQL over the catalog's indexed columns — ``version_task`` (task,
image height and width, output dimension), ``model_version.format`` and
``registered_model.publisher`` — so it stays fast on a catalog of 100,000
versions; no JSON is read to decide what matches. What a version implements was
checked when it was published (``plugins.signatures``), not claimed.

"Each model's newest matching version, in name order, first ``limit``" has two
good plans and the database cannot tell which applies: when matches are common,
walk the models in name order and stop after ``limit`` (a few hundred index
probes); when they are rare, start from the matching task rows. A capped count
on the task index picks one (``bench/bench_search.py`` measures both).

(The module is not called ``registry.search`` because importing a submodule of
that name would replace the ``registry.search`` function with the module.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session

from registry.catalog import records
from registry.catalog.models import ModelVersion, RegisteredModel, VersionPublic, VersionTask
from registry.errors import SignatureError

if TYPE_CHECKING:
    from registry.api import Registry
    from registry.catalog.store import Catalog

#: How many versions a search returns unless told otherwise.
DEFAULT_LIMIT = 100


#: With a limit, a task matching at most this many rows per result wanted is looked up from the task index first.
SPARSE_ROWS_PER_RESULT = 10


def search_catalog(catalog: "Catalog", *, task: str | None = None, image_size: tuple[int, int] | None = None,
                   output_dim: int | None = None, format: str | None = None, publisher: str | None = None,
                   text: str | None = None, limit: int | None = DEFAULT_LIMIT,
                   handles_only: bool = False) -> list[VersionPublic] | list[str]:
    """For each model, its newest live version that matches every criterion given; sorted by model name.

    ``image_size`` is ``(height, width)`` and matches the size recorded for the
    task (from ``image_module_info`` or the input shape); a model whose input
    size is flexible and carries no ``image_module_info`` records none, and is
    found only by searches without ``image_size``. ``text`` is a
    case-insensitive substring of the publisher, model name or descriptions.
    ``handles_only`` returns ``publisher/model/N`` strings instead of records
    (building thousands of full records costs far more than finding them).
    """
    mv, rm, vt = ModelVersion.__table__, RegisteredModel.__table__, VersionTask.__table__
    task_where = []
    if task is not None:
        task_where.append(vt.c.task == task)
    if image_size is not None:
        height, width = _size(image_size)
        task_where += [vt.c.image_height == height, vt.c.image_width == width]
    if output_dim is not None:
        task_where.append(vt.c.output_dim == int(output_dim))
    version_where = [mv.c.deleted_at.is_(None)]
    if format is not None:
        version_where.append(mv.c.format == format)
    if text:
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        version_where.append(or_(*(func.lower(column).like(pattern, escape="\\")
                                   for column in (rm.c.publisher, rm.c.name, rm.c.description, mv.c.description))))
    model_where = [rm.c.publisher == publisher] if publisher is not None else []

    with Session(catalog.engine) as session:
        if limit is not None and not (task_where and _is_sparse(session, task_where, int(limit))):
            newest = _newest_per_model_in_name_order(task_where, version_where, model_where, int(limit))
        else:
            newest = _newest_per_model_from_task_index(task_where, version_where, model_where)
        if handles_only:
            statement = (select(RegisteredModel.publisher, RegisteredModel.name, newest.c.version)
                         .join(newest, RegisteredModel.id == newest.c.model_id))
        else:
            statement = (select(ModelVersion, RegisteredModel)
                         .join(newest, and_(ModelVersion.model_id == newest.c.model_id,
                                            ModelVersion.version == newest.c.version))
                         .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id))
        statement = statement.order_by(RegisteredModel.publisher, RegisteredModel.name)
        if limit is not None:
            statement = statement.limit(int(limit))
        if handles_only:
            return [f"{publisher}/{name}/{number}" for publisher, name, number in session.execute(statement)]
        pairs = [(version, model) for version, model in session.execute(statement)]
        return records.version_records(session, pairs)


def _is_sparse(session: Session, task_where: list, limit: int) -> bool:
    """Whether few task rows match: counted on the (task, image_height, image_width, output_dim) index alone."""
    vt = VersionTask.__table__
    cap = SPARSE_ROWS_PER_RESULT * max(limit, 1)
    capped = select(vt.c.id).where(*task_where).limit(cap + 1).subquery()
    return session.execute(select(func.count()).select_from(capped)).scalar_one() <= cap


def _newest_per_model_in_name_order(task_where, version_where, model_where, limit: int):
    """Walk models in name order, asking each for its newest matching version, until ``limit`` have one.

    Cheap when matches are common: the walk stops after a little more than
    ``limit`` models, whatever the catalog's size.
    """
    mv, rm, vt = ModelVersion.__table__, RegisteredModel.__table__, VersionTask.__table__
    source = mv.join(vt, vt.c.version_id == mv.c.id) if task_where else mv
    newest_version = (select(func.max(mv.c.version)).select_from(source)
                      .where(mv.c.model_id == rm.c.id, *version_where, *task_where)
                      .correlate(rm).scalar_subquery())
    per_model = (select(rm.c.id.label("model_id"), rm.c.publisher, rm.c.name, newest_version.label("version"))
                 .where(*model_where).subquery())
    return (select(per_model.c.model_id, per_model.c.version).where(per_model.c.version.is_not(None))
            .order_by(per_model.c.publisher, per_model.c.name).limit(limit).subquery())


def _newest_per_model_from_task_index(task_where, version_where, model_where):
    """Start from the matching task rows (or every version) and keep each model's newest: for rare matches."""
    mv, rm, vt = ModelVersion.__table__, RegisteredModel.__table__, VersionTask.__table__
    where = [*version_where, *model_where]
    if task_where:
        where.append(mv.c.id.in_(select(vt.c.version_id).where(*task_where)))
    return (select(mv.c.model_id.label("model_id"), func.max(mv.c.version).label("version"))
            .select_from(mv.join(rm, rm.c.id == mv.c.model_id)).where(*where)
            .group_by(mv.c.model_id).subquery())


def search(*, task: str | None = None, image_size: tuple[int, int] | None = None, output_dim: int | None = None,
           format: str | None = None, publisher: str | None = None, text: str | None = None,
           limit: int | None = DEFAULT_LIMIT, registry: "Registry | None" = None) -> list[VersionPublic]:
    """Search the catalog of ``registry`` (default: the one configured from the environment); see ``search_catalog``."""
    if task is not None:
        _definitions(_registry(registry)).get(task)  # an unknown task is a typo, not an empty result
    return search_catalog(_registry(registry).catalog, task=task, image_size=image_size, output_dim=output_dim,
                          format=format, publisher=publisher, text=text, limit=limit)


@dataclass(frozen=True)
class Interchangeability:
    """Whether ``b`` can replace ``a`` for ``task``: truthy if so; ``reasons`` say why not, ``notes`` what to mind."""

    a: str
    b: str
    task: str | None
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return not self.reasons

    def __str__(self) -> str:
        if self:
            head = f"{self.b} can replace {self.a} as {self.task}"
            return head + (f" ({'; '.join(self.notes)})" if self.notes else "")
        return f"{self.b} cannot replace {self.a}" + (f" as {self.task}" if self.task else "") + \
            ": " + "; ".join(self.reasons)


def interchangeable(handle_a, handle_b, *, task: str | None = None,
                    registry: "Registry | None" = None) -> Interchangeability:
    """Whether the model of ``handle_b`` can stand in for ``handle_a`` for ``task``.

    Without ``task``, the tasks both implement are tried in the order the
    definitions are registered, and the first that allows the swap is reported.
    What must match is the task definition's rule: an image feature vector
    swapped under a new head needs the same input image size (the head adapts
    to a different feature size); an image classifier also the same number of
    classes; text embeddings take strings, so only the embedding size differs.
    """
    reg = _registry(registry)
    definitions = _definitions(reg)
    a, b = reg.get_version(handle_a), reg.get_version(handle_b)
    tasks_a, tasks_b = _tasks_by_name(a), _tasks_by_name(b)
    if task is not None:
        definitions.get(task)
        candidates = [task]
    else:
        candidates = [d.name for d in definitions if d.name in tasks_a and d.name in tasks_b]
        if not candidates:
            return Interchangeability(a.handle, b.handle, None, reasons=(
                f"they implement no common task ({a.handle}: {_listing(tasks_a)}; "
                f"{b.handle}: {_listing(tasks_b)})",))
    first = None
    for name in candidates:
        result = _compare(definitions.get(name), a, b, tasks_a.get(name, []), tasks_b.get(name, []))
        if result:
            return result
        first = first or result
    return first


def _compare(definition, a: VersionPublic, b: VersionPublic, impls_a, impls_b) -> Interchangeability:
    missing = [v.handle for v, impls in ((a, impls_a), (b, impls_b)) if not impls]
    if missing:
        return Interchangeability(a.handle, b.handle, definition.name, reasons=tuple(
            f"{handle} does not implement {definition.name}" for handle in missing))
    best = None
    for impl_a in impls_a:
        for impl_b in impls_b:
            check = definition.compare(impl_a, impl_b)
            if not check.reasons:
                return Interchangeability(a.handle, b.handle, definition.name, notes=check.notes)
            best = best or check
    return Interchangeability(a.handle, b.handle, definition.name, reasons=best.reasons, notes=best.notes)


def _tasks_by_name(version: VersionPublic) -> dict[str, list]:
    from plugins.signatures.definitions import Implementation

    grouped: dict[str, list] = {}
    for task in version.tasks:
        grouped.setdefault(task.task, []).append(Implementation(
            task=task.task, signature=task.signature, tags=frozenset(task.tags), output_dim=task.output_dim,
            image_size=tuple(task.image_size) if task.image_size else None, evidence=dict(task.evidence)))
    return grouped


def _listing(tasks: dict) -> str:
    return ", ".join(tasks) or "none"


def _definitions(reg: "Registry"):
    from plugins.signatures.conformance import DefinitionSet

    return DefinitionSet(reg.plugin_manager)


def _registry(registry: "Registry | None") -> "Registry":
    if registry is not None:
        return registry
    from registry.api import default_registry

    return default_registry()


def _size(image_size) -> tuple[int, int]:
    try:
        height, width = image_size
        return int(height), int(width)
    except (TypeError, ValueError):
        raise SignatureError(f"image_size must be (height, width), not {image_size!r}") from None
