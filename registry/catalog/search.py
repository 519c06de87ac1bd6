"""Search over the catalog's indexed columns, in SQL: the newest matching live version of each model.

Search is SQL over ``version_task`` (task, image height and width, output
dimension), ``model_version.format`` (and the filterable metadata columns, when
filtered on) and ``registered_model.publisher`` — so it
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

Text is a substring, which no B-tree index can look up, so the walk splits it
by where it can match. A model whose own publisher, name or description
matches (tested on the model row the walk reads anyway) is probed exactly as
without text. Any other model can match only through a live version's own
description: early in the walk it is asked directly (migration 0004's partial
index finds the versions that have a description, whose rows alone are read);
once the walk has gone far without finding enough, the models that have a
matching described version are found all at once, in one pass over the
described versions, and only those are asked. A text that matches nothing thus
costs one pass over the models plus at most one over the described versions,
instead of a read of every version row; the walk still stops after ``limit``
models. The other plan filters the rows it finds on the same test.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnClause, ColumnElement, Engine, Text, and_, case, cast, func, literal_column, or_, select
from sqlmodel import Session, col

from registry.catalog import records
from registry.catalog.models import ModelVersion, RegisteredModel, VersionPublic, VersionTask, checked_filters
from registry.errors import SignatureError

#: How many versions a search returns unless told otherwise.
DEFAULT_LIMIT = 100


#: The partial index ``ix_version_described``'s condition is ``description <> ''``, spelled the same in queries.
_EMPTY: ColumnClause[str] = literal_column("''")

#: With a limit, a task matching at most this many rows per result wanted is looked up from the task index first.
SPARSE_ROWS_PER_RESULT = 10

#: With text, the walk's first this-many models per result wanted are asked one by one about their described
#: versions; past them, the models with a matching described version are found all at once. Asking one model
#: reads its described versions' rows; finding them all reads every described version once, which costs about
#: what asking a fifth of the models does. Of 0, 10, 20, 30, 50 and unbounded, 20 did best (median and worst
#: case together) on 100,000 versions (``bench/bench_search.py``'s catalog) with none, 30% and all described.
TEXT_PROBES_PER_RESULT = 20


def search_catalog(engine: Engine, *, task: str | None = None, image_size: tuple[int, int] | None = None,
                   output_dim: int | None = None, format: str | None = None, publisher: str | None = None,
                   text: str | None = None, limit: int | None = DEFAULT_LIMIT, after: str | None = None,
                   handles_only: bool = False, filters: Mapping[str, Any] | None = None,
                   ) -> list[VersionPublic] | list[str]:
    """For each model, its newest live version that matches every criterion given; sorted by model name.

    ``image_size`` is ``(height, width)`` and matches the size recorded for the
    task (from ``image_module_info`` or the input shape); a model whose input
    size is flexible and carries no ``image_module_info`` records none, and is
    found only by searches without ``image_size``. ``text`` is a
    case-insensitive substring of the publisher, model name or descriptions.
    ``handles_only`` returns ``publisher/model/N`` strings instead of records
    (building thousands of full records costs far more than finding them).
    ``after`` (``publisher/model``) is a keyset cursor: only models sorting after
    it, so page N costs what page 1 does however deep it is. ``filters`` are
    equalities on the candidate version's filterable metadata columns
    (``registry.catalog.models.filter_names()``, e.g. ``{"license": "MIT"}``),
    tested with its other conditions; without them the queries are unchanged.
    """
    mv, rm, vt = records.table_of(ModelVersion), records.table_of(RegisteredModel), records.table_of(VersionTask)
    task_where = []
    if task is not None:
        task_where.append(vt.c.task == task)
    if image_size is not None:
        height, width = _size(image_size)
        task_where += [vt.c.image_height == height, vt.c.image_width == width]
    if output_dim is not None:
        task_where.append(vt.c.output_dim == int(output_dim))
    version_where: list[ColumnElement[bool]] = [mv.c.deleted_at.is_(None)]
    if format is not None:
        version_where.append(mv.c.format == format)
    for name, value in (checked_filters(filters).items() if filters else ()):
        version_where.append(filter_condition(mv.c[name], value))
    matcher = _TextMatcher(engine.dialect.name, text) if text else None
    model_where = _model_where(rm, publisher, after)

    with Session(engine) as session:
        if limit is not None and not (task_where and _is_sparse(session, task_where, int(limit))):
            newest = _newest_per_model_in_name_order(task_where, version_where, matcher, int(limit),
                                                     publisher=publisher, after=after)
        else:
            if matcher is not None:
                version_where.append(or_(matcher.model_matches(), matcher.version_matches(mv)))
            newest = _newest_per_model_from_task_index(task_where, version_where, model_where)
        if handles_only:
            statement = (select(col(RegisteredModel.publisher), col(RegisteredModel.name), newest.c.version)
                         .join(newest, col(RegisteredModel.id) == newest.c.model_id))
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


def filter_condition(column, value: Any) -> ColumnElement[bool]:
    """A filter on a version column: equality, or for a list field (tags...) containing each value given.

    A list is a JSON array stored as its text (``["a", "b"]``, written by the same ``json.dumps`` on SQLite and
    PostgreSQL); an entry is found as its own JSON string, quotes included, so ``"a"`` never matches ``"ab"``
    (entries hold no quotes or backslashes: ``registry.catalog.models.checked_labels``). Case is ignored, the
    same on both databases (``Vision`` finds ``vision``).
    """
    if not isinstance(value, list):
        return column == value
    text = func.lower(cast(column, Text))
    return and_(*(text.like("%" + _like_escape(json.dumps(item.lower())) + "%", escape="\\") for item in value))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _TextMatcher:
    """``text`` as a case-insensitive substring test on the model's and a version's text columns.

    PostgreSQL compares ``lower(column)`` with the lower-cased pattern. SQLite's
    own ``LIKE`` already ignores case exactly as far as its ``lower()`` does
    (ASCII letters only), so there the column is compared as it is: the same
    answer without building a lower-cased copy of every value tested.
    """

    def __init__(self, dialect: str, text: str):
        self.pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        self.fold = dialect != "sqlite"

    def like(self, column):
        return (func.lower(column) if self.fold else column).like(self.pattern, escape="\\")

    def model_matches(self):
        rm = records.table_of(RegisteredModel)
        return or_(self.like(rm.c.publisher), self.like(rm.c.name), self.like(rm.c.description))

    def version_matches(self, versions):
        """The version's own description matches. ``<> ''`` (implied: the pattern is never empty) is what lets
        the planner use the partial index ``ix_version_described``: a literal, since a bound parameter would not."""
        return and_(versions.c.description != _EMPTY, self.like(versions.c.description))


def _model_where(models, publisher: str | None, after: str | None) -> list:
    """The conditions on ``models`` (``registered_model`` or an alias of it) of ``publisher`` and the cursor."""
    where = [models.c.publisher == publisher] if publisher is not None else []
    if after is not None:
        after_publisher, _, after_name = after.partition("/")
        where.append(or_(models.c.publisher > after_publisher,
                         and_(models.c.publisher == after_publisher, models.c.name > after_name)))
    return where


def _is_sparse(session: Session, task_where: list, limit: int) -> bool:
    """Whether few task rows match: counted on the (task, image_height, image_width, output_dim) index alone."""
    vt = records.table_of(VersionTask)
    cap = SPARSE_ROWS_PER_RESULT * max(limit, 1)
    capped = select(vt.c.id).where(*task_where).limit(cap + 1).subquery()
    return session.execute(select(func.count()).select_from(capped)).scalar_one() <= cap


def _newest_per_model_in_name_order(task_where, version_where, matcher, limit: int, *, publisher, after):
    """Walk models in name order, asking each for its newest matching version, until ``limit`` have one.

    Cheap when matches are common: the walk stops after a little more than
    ``limit`` models, whatever the catalog's size.

    With text, a model whose own text does not match is asked about its
    described versions directly while the walk is among its first
    ``TEXT_PROBES_PER_RESULT * limit`` models (matches come early: no more is
    read); past them, only if it is in the set of models with a matching
    described version, made then, once (matches are rare: the walk would
    otherwise read every described version, one model at a time).
    """
    mv, rm, vt = records.table_of(ModelVersion), records.table_of(RegisteredModel), records.table_of(VersionTask)
    source = mv.join(vt, vt.c.version_id == mv.c.id) if task_where else mv

    def newest_version(*extra):
        return (select(func.max(mv.c.version)).select_from(source)
                .where(mv.c.model_id == rm.c.id, *version_where, *task_where, *extra)
                .correlate(rm).scalar_subquery())

    if matcher is None:
        version = newest_version()
    else:
        # The last model of the walk's first stretch (NULL when the walk has fewer models).
        first = rm.alias("first_models")
        last_first = (select(first.c.publisher, first.c.name).where(*_model_where(first, publisher, after))
                      .order_by(first.c.publisher, first.c.name)
                      .offset(max(TEXT_PROBES_PER_RESULT * limit - 1, 0)).limit(1)
                      .cte("last_first").prefix_with("MATERIALIZED"))
        last_publisher = select(last_first.c.publisher).scalar_subquery()
        last_name = select(last_first.c.name).scalar_subquery()
        in_first_stretch = or_(last_publisher.is_(None), rm.c.publisher < last_publisher,
                               and_(rm.c.publisher == last_publisher, rm.c.name <= last_name))
        # Models with a live version whose own description matches: made once (MATERIALIZED: the walk's
        # expression is used twice, in its filter and its result). Nothing else narrows it: a format test here
        # had SQLite read every version of that format instead.
        described = mv.alias("described")
        described_models = (select(described.c.model_id)
                            .where(described.c.deleted_at.is_(None), matcher.version_matches(described))
                            .cte("described_models").prefix_with("MATERIALIZED"))
        newest_described = newest_version(matcher.version_matches(mv))
        version = case(
            (matcher.model_matches(), newest_version()),
            *([(in_first_stretch, newest_described)] if TEXT_PROBES_PER_RESULT > 0 else []),
            (rm.c.id.in_(select(described_models.c.model_id)), newest_described),
            else_=None)
    per_model = (select(rm.c.id.label("model_id"), rm.c.publisher, rm.c.name, version.label("version"))
                 .where(*_model_where(rm, publisher, after)).subquery())
    return (select(per_model.c.model_id, per_model.c.version).where(per_model.c.version.is_not(None))
            .order_by(per_model.c.publisher, per_model.c.name).limit(limit).subquery())


def _newest_per_model_from_task_index(task_where, version_where, model_where):
    """Start from the matching task rows (or every version) and keep each model's newest: for rare matches."""
    mv, rm, vt = records.table_of(ModelVersion), records.table_of(RegisteredModel), records.table_of(VersionTask)
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
