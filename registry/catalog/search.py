"""Search over the catalog's indexed columns, in SQL: the newest matching live version of each model.

Search is SQL over ``version_task`` (task, image height and width, output
dimension), ``model_version.format`` and ``registered_model.publisher`` — so it
stays fast on a catalog of 100,000 versions; no JSON is read to decide what
matches. What a version implements was checked when it was published
(``registry.tasks``), not claimed.

"Each model's newest matching version, in name order, first ``limit``" has two
good plans and the database cannot tell which applies: when matches are common,
walk the models in name order and stop after ``limit`` (a few hundred index
probes); when they are rare, start from the matching task rows. A capped count
on the task index picks one (``bench/bench_search.py`` measures both). The
walk's per-model probe reads only covering indexes (migration 0003: a model's
live versions with their format; a version's task rows with their facts), and
the records are built from plain columns, never ORM objects.
"""

from __future__ import annotations

from sqlalchemy import Engine, and_, func, or_, select
from sqlmodel import Session

from registry.catalog import records
from registry.catalog.models import ModelVersion, RegisteredModel, VersionPublic, VersionTask
from registry.errors import SignatureError

#: How many versions a search returns unless told otherwise.
DEFAULT_LIMIT = 100


#: With a limit, a task matching at most this many rows per result wanted is looked up from the task index first.
SPARSE_ROWS_PER_RESULT = 10


def search_catalog(engine: Engine, *, task: str | None = None, image_size: tuple[int, int] | None = None,
                   output_dim: int | None = None, format: str | None = None, publisher: str | None = None,
                   text: str | None = None, limit: int | None = DEFAULT_LIMIT, after: str | None = None,
                   handles_only: bool = False) -> list[VersionPublic] | list[str]:
    """For each model, its newest live version that matches every criterion given; sorted by model name.

    ``image_size`` is ``(height, width)`` and matches the size recorded for the
    task (from ``image_module_info`` or the input shape); a model whose input
    size is flexible and carries no ``image_module_info`` records none, and is
    found only by searches without ``image_size``. ``text`` is a
    case-insensitive substring of the publisher, model name or descriptions.
    ``handles_only`` returns ``publisher/model/N`` strings instead of records
    (building thousands of full records costs far more than finding them).
    ``after`` (``publisher/model``) is a keyset cursor: only models sorting after
    it, so page N costs what page 1 does however deep it is.
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
    if after is not None:
        after_publisher, _, after_name = after.partition("/")
        model_where.append(or_(rm.c.publisher > after_publisher,
                               and_(rm.c.publisher == after_publisher, rm.c.name > after_name)))

    with Session(engine) as session:
        if limit is not None and not (task_where and _is_sparse(session, task_where, int(limit))):
            newest = _newest_per_model_in_name_order(task_where, version_where, model_where, int(limit))
        else:
            newest = _newest_per_model_from_task_index(task_where, version_where, model_where)
        if handles_only:
            statement = (select(RegisteredModel.publisher, RegisteredModel.name, newest.c.version)
                         .join(newest, RegisteredModel.id == newest.c.model_id))
        else:
            # Plain columns (one row serves as both the version and its model), not ORM objects.
            statement = (select(*records.VERSION_COLUMNS, rm.c.publisher, rm.c.name)
                         .join(newest, and_(mv.c.model_id == newest.c.model_id, mv.c.version == newest.c.version))
                         .join(rm, rm.c.id == mv.c.model_id))
        statement = statement.order_by(RegisteredModel.publisher, RegisteredModel.name)
        if limit is not None:
            statement = statement.limit(int(limit))
        if handles_only:
            return [f"{publisher}/{name}/{number}" for publisher, name, number in session.execute(statement)]
        pairs = [(row, row) for row in session.execute(statement)]
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


def _size(image_size) -> tuple[int, int]:
    try:
        height, width = image_size
        return int(height), int(width)
    except (TypeError, ValueError):
        raise SignatureError(f"image_size must be (height, width), not {image_size!r}") from None
