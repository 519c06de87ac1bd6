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

Text is words, the same as the search by need's (``find``, below): each word of ``text`` must begin a word of
the version's searchable text (``search_word``: its model's publisher, name and description, its own
description, card and other metadata text, its format's and tasks' names). A rare word's versions are looked up
from the word index and the other plan is taken; otherwise each word is a probe of the version's own words in
the walk. ``registry.search(text=...)`` locally and in client mode (which asks ``GET /api/v1/search``) so give
the same answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Text,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    union,
)
from sqlmodel import Session, col

from registry.catalog import records
from registry.catalog.models import (
    MAX_WORD_LENGTH,
    ModelVersion,
    RegisteredModel,
    SearchNameWord,
    SearchWord,
    VersionMetadata,
    VersionPublic,
    VersionTask,
    checked_filters,
    filter_names,
)
from registry.errors import QueryError, SignatureError
from registry.handles import parse_image_size, shown

#: How many versions a search returns unless told otherwise.
DEFAULT_LIMIT = 100



#: With a limit, a task matching at most this many rows per result wanted is looked up from the task index first.
SPARSE_ROWS_PER_RESULT = 10



def search_catalog(engine: Engine, *, task: str | None = None, image_size: tuple[int, int] | None = None,
                   output_dim: int | None = None, format: str | None = None, publisher: str | None = None,
                   text: str | None = None, limit: int | None = DEFAULT_LIMIT, after: str | None = None,
                   handles_only: bool = False, filters: Mapping[str, Any] | None = None,
                   ) -> list[VersionPublic] | list[str]:
    """For each model, its newest live version that matches every criterion given; sorted by model name.

    ``image_size`` is ``(height, width)`` and matches the size recorded for the
    task (from ``image_module_info`` or the input shape); a model whose input
    size is flexible and carries no ``image_module_info`` records none, and is
    found only by searches without ``image_size``. ``text`` is words, as
    ``find``'s ``q``: every word must begin a word of the version's searchable
    text (publisher, name, descriptions, card, tags, task and format names).
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
    words = tuple(dict.fromkeys(words_of(text)))[:MAX_QUERY_WORDS] if text else ()
    model_where = _model_where(rm, publisher, after)

    with Session(engine) as session:
        driving, rows_of_driving = _rarest_word(session, words)
        rare_word = driving is not None and rows_of_driving < WALK_ABOVE_ROWS
        # A rare word's versions are looked up (and the walk would pass most models by); otherwise each word is a
        # probe of the version's own words.
        version_where += _word_conditions(words, driving if rare_word else None)
        if limit is not None and not rare_word and not (task_where and _is_sparse(session, task_where, int(limit))):
            newest = _newest_per_model_in_name_order(task_where, version_where, int(limit),
                                                     publisher=publisher, after=after)
        else:
            newest = _newest_per_model_from_task_index(task_where, version_where, model_where)
        if handles_only:
            statement = (select(col(RegisteredModel.publisher), col(RegisteredModel.name), newest.c.version)
                         .join(newest, col(RegisteredModel.id) == newest.c.model_id))
        else:
            # Plain columns (one row serves as both the version and its model), not ORM objects.
            statement = (select(*records.LISTED_VERSION_COLUMNS, rm.c.publisher, rm.c.name)
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


def _newest_per_model_in_name_order(task_where, version_where, limit: int, *, publisher, after):
    """Walk models in name order, asking each for its newest matching version, until ``limit`` have one.

    Cheap when matches are common: the walk stops after a little more than
    ``limit`` models, whatever the catalog's size. Search words are in
    ``version_where`` as probes of each version's own words.
    """
    mv, rm, vt = records.table_of(ModelVersion), records.table_of(RegisteredModel), records.table_of(VersionTask)
    source = mv.join(vt, vt.c.version_id == mv.c.id) if task_where else mv
    version = (select(func.max(mv.c.version)).select_from(source)
               .where(mv.c.model_id == rm.c.id, *version_where, *task_where)
               .correlate(rm).scalar_subquery())
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


# -- search by need: words, every filter, a sort and numbered pages ----------------------------------------------
#
# What the catalog page, ``GET /api/v1/search`` and ``model-registry search`` all run (``Registry.find``): the
# parameters are one record, ``SearchQuery``, read whole from a form, a query string or the CLI's options.
#
# Words are found through ``search_word`` (``SearchWord``, migration 0010): every word of a version's searchable
# text — its model's publisher, name and description, its own metadata text (description, card, tags, data
# sets, languages, licence...), its format's name and its tasks' names and facts (``224x224``, ``224``, the
# output dimension) — written when the version is published or its card edited (``index_version``). A search
# word matches a version that has a word it begins, so each is one range on the index's primary key; the
# version must match every search word. "my_format" and "my format" are the same two words, "224x224" one.

#: How the results can be ordered. ``relevance`` (the default with words): most search words matching a word of the
#: model's own publisher/name first (``search_name_word``), then the most downloaded, then by name; ``name`` (the
#: default without words).
SORTS = ("relevance", "name", "newest", "downloads")
#: Results per page unless told otherwise, and the most one page may hold.
PAGE_SIZE = 25
MAX_PAGE_SIZE = 500
#: The most distinct words indexed per version (a long card's first ones) and taken from one query.
MAX_WORDS_PER_VERSION = 3000
MAX_QUERY_WORDS = 16
#: Search words' index rows are counted up to this many to find the rarest (the one whose versions are read).
RAREST_WORD_CAP = 20_000
#: In name order with words, the models are walked (a page's worth, then stop) when the rarest word has at least
#: this many index rows; below, its versions are read and sorted (the walk would pass most models by).
WALK_ABOVE_ROWS = 2_000
#: Matching models are counted exactly up to this many; past it the count is "at least this many" (``1,000+``).
COUNT_CAP = 1_000
#: Letters and digits: ``_``, ``-``, ``.``, ``/`` and spaces separate words.
_WORD = re.compile(r"[^\W_]+")
#: The greatest code point: ``word <= w < w + _LAST`` is "begins with ``w``" in byte order.
_LAST = "\U0010ffff"


def words_of(text: str | None) -> list[str]:
    """The words of ``text`` as search compares them: case-folded runs of letters and digits, at most
    ``MAX_WORD_LENGTH`` characters each."""
    return [word[:MAX_WORD_LENGTH] for word in _WORD.findall((text or "").casefold())]


class SearchQuery(BaseModel):
    """A search's words, filters, sort and page: declared once, read whole from the page's form, the API's query
    string and the CLI's options (``from_params``), and checked once (``checked``).

    Besides these, each filterable metadata field (``registry.catalog.models.filter_names()``: ``license``,
    ``tags``...) is a parameter of its own name (``filters``).
    """

    q: str = Field(default="", description="Words; each must match the name, publisher, description, card, "
                                           "tags, task or format of a version (a word may be the start of one).")
    task: Optional[str] = Field(default=None, description="A common signature the version implements.")
    format: Optional[str] = Field(default=None, description="The version's format.")
    publisher: Optional[str] = Field(default=None, description="Only this publisher's models.")
    image_size: Optional[str] = Field(default=None, description="HEIGHTxWIDTH (or one number) of the task's input.")
    output_dim: Optional[int] = Field(default=None, description="The task's output dimension.")
    sort: Optional[str] = Field(default=None, description="relevance (the default with words), name (without), "
                                                          "newest or downloads.")
    page: int = Field(default=1, description="Which page of results, from 1.")
    limit: int = Field(default=PAGE_SIZE, description=f"Results per page (at most {MAX_PAGE_SIZE}).")
    after: Optional[str] = Field(default=None, description="publisher/model: the page after this model, by name "
                                                           "(the keyset cursor the API's 'next' gives).")
    filters: dict[str, Any] = Field(default_factory=dict, description="Filterable metadata fields: name -> value.")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "SearchQuery":
        """The query of a form or query string: empty values are no filter; metadata fields by their own names.
        An unparseable number is a ``QueryError`` naming the parameter."""
        own = {name: value for name, value in params.items()
               if name in cls.model_fields and name != "filters" and value not in (None, "")}
        for name in ("output_dim", "page", "limit"):
            if name in own:
                try:
                    own[name] = int(own[name])
                except (TypeError, ValueError):
                    raise QueryError(f"{name} takes a whole number, not {shown(str(own[name]))}") from None
        metadata = {name: params[name] for name in filter_names() if params.get(name) not in (None, "")}
        return cls(**own, filters=metadata)

    def params(self) -> dict[str, str]:
        """The query as query-string parameters (the inverse of ``from_params``), leaving out defaults."""
        values: dict[str, Any] = {name: getattr(self, name) for name in type(self).model_fields if name != "filters"}
        values.update(self.filters)
        defaults = {"q": "", "page": 1, "limit": PAGE_SIZE}
        return {name: str(value) for name, value in values.items()
                if value is not None and value != "" and defaults.get(name) != value}

    def words(self) -> list[str]:
        """The search words, each once, in order."""
        return list(dict.fromkeys(words_of(self.q)))[:MAX_QUERY_WORDS]

    def effective_sort(self) -> str:
        return self.sort or ("relevance" if self.words() else "name")

    def checked(self) -> "CheckedQuery":
        """The query with its values checked: a typed error naming the first one that is wrong."""
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise QueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}, not {self.limit}")
        if self.page < 1:
            raise QueryError(f"page counts from 1, not {self.page}")
        sort = self.effective_sort()
        if sort not in SORTS:
            raise QueryError(f"sort is one of {', '.join(SORTS)}, not {shown(sort)}")
        if self.after is not None and sort != "name":
            raise QueryError("'after' continues a search sorted by name; with another sort, ask for a page")
        return CheckedQuery(words=tuple(self.words()), task=self.task, format=self.format,
                            publisher=self.publisher, image_size=parse_image_size(self.image_size, "image_size"),
                            output_dim=self.output_dim, sort=sort, page=self.page, limit=self.limit,
                            after=self.after, filters=checked_filters(self.filters) if self.filters else {})

    def is_filtered(self) -> bool:
        return bool(self.words() or self.task or self.format or self.publisher or self.image_size
                    or self.output_dim is not None or self.filters)


@dataclass(frozen=True)
class CheckedQuery:
    """A ``SearchQuery`` whose values were checked and parsed (what ``find`` runs)."""

    words: tuple[str, ...]
    task: str | None
    format: str | None
    publisher: str | None
    image_size: tuple[int, int] | None
    output_dim: int | None
    sort: str
    page: int
    limit: int
    after: str | None
    filters: dict[str, Any]


@dataclass(frozen=True)
class SearchResults:
    """One page of a search: each matching model's newest matching live version, how many models match.

    ``total`` is exact up to ``COUNT_CAP`` models; past it, ``total_exact`` is false and ``total`` is
    ``COUNT_CAP``: "at least", shown as ``1,000+`` (``total_shown``), as big catalogs do. Counting every match of a
    common word means reading every version that has it; the page itself never needs that (``find``).
    """

    items: list[VersionPublic]
    total: int
    page: int
    limit: int
    sort: str
    total_exact: bool = True

    @property
    def pages(self) -> int:
        """How many pages there are (at least, when ``total_exact`` is false: this page and the next count)."""
        known = max(1, -(-self.total // self.limit))
        return known if self.total_exact else max(known, self.page + (1 if self.has_next else 0))

    @property
    def has_next(self) -> bool:
        if self.total_exact:
            return self.page * self.limit < self.total
        return self.page * self.limit < self.total or len(self.items) == self.limit

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def total_shown(self) -> str:
        """The count as people read it: ``1,234``, or ``1,000+`` past the cap."""
        return f"{self.total:,}" + ("" if self.total_exact else "+")

    @property
    def pages_shown(self) -> str:
        return f"{self.pages:,}" + ("" if self.total_exact else "+")


def find(engine: Engine, query: SearchQuery) -> SearchResults:
    """The page ``query`` asks for: for each model, its newest live version matching every word and filter.

    Nothing reads every match of a common word. When the rarest search word has fewer than ``WALK_ABOVE_ROWS``
    index rows, its versions are few: they are read, grouped by model, sorted and counted exactly in one
    statement. Otherwise (common words, or filters only) the page is found by walking, each step a probe on
    covering indexes, stopping once the page is full:

    - by name: the models in (publisher, name) order, each asked for its newest matching version;
    - newest: the matching versions from the newest down (a model's newest matching version is the first of its
      versions met), ``_newest_first``;
    - relevance and downloads: first the few models that rank above the rest (words in their own name, or
      downloads), sorted; then the rest, which tie, in name order (the walk), ``_ranked``;

    and the count stops at ``COUNT_CAP`` models (``SearchResults.total_exact``).
    """
    checked = query.checked()
    mv, rm = records.table_of(ModelVersion), records.table_of(RegisteredModel)
    with Session(engine) as session:
        driving, rows_of_driving = _rarest_word(session, checked.words)
        total_exact = True
        if driving is not None and rows_of_driving < WALK_ABOVE_ROWS:
            # A rare word finds few versions: reading them beats walking every model to find those few.
            newest = _newest_matching(checked, driving)
            total_column = func.count().over().label("search_total")
            statement = (select(newest.c.model_id, newest.c.version, total_column)
                         .join(rm, rm.c.id == newest.c.model_id))
            statement = _ordered(statement, checked, newest, rm).limit(checked.limit)
            statement = statement.offset((checked.page - 1) * checked.limit)
            found = session.execute(statement).all()
            keys = [(row.model_id, row.version) for row in found]
            total = found[0].search_total if found else \
                session.execute(select(func.count()).select_from(newest)).scalar_one()
        else:
            if checked.sort == "name":
                keys = _walk_in_name_order(session, checked, (checked.page - 1) * checked.limit, checked.limit)
            elif checked.sort == "newest":
                keys = _newest_first(session, checked)
            else:
                keys = _ranked(session, checked)
            # Counting from the rarest word's versions pays when they are not too many to list first; past
            # ``RAREST_WORD_CAP`` rows, matches are dense and a pass in any order meets the cap sooner.
            total, total_exact = _capped_count(session, checked,
                                               driving if rows_of_driving < RAREST_WORD_CAP else None)
        if not keys:
            return SearchResults([], total, checked.page, checked.limit, checked.sort, total_exact)
        # Results leave the card's text out, as every listing does (``records.LISTED_VERSION_COLUMNS``).
        rows = session.execute(select(*records.LISTED_VERSION_COLUMNS, rm.c.publisher, rm.c.name)
                               .join(rm, rm.c.id == mv.c.model_id)
                               .where(or_(*(and_(mv.c.model_id == model_id, mv.c.version == number)
                                            for model_id, number in keys)))).all()
        by_key = {(row.model_id, row.version): row for row in rows}
        pairs = [(by_key[key], by_key[key]) for key in keys]
        return SearchResults(records.version_records(session, pairs), total, checked.page, checked.limit,
                             checked.sort, total_exact)


def _capped_count(session: Session, query: CheckedQuery, driving: str | None) -> tuple[int, bool]:
    """How many models match, counted up to ``COUNT_CAP`` (then ``(COUNT_CAP, False)``): distinct models of the
    matching versions, read in any order (the rarest word's first), stopping at the cap's next one."""
    mv = records.table_of(ModelVersion)
    models = (select(mv.c.model_id).where(*_matching_where(query, driving)).distinct().limit(COUNT_CAP + 1)
              .subquery("counted"))
    counted = session.execute(select(func.count()).select_from(models)).scalar_one()
    return (counted, True) if counted <= COUNT_CAP else (COUNT_CAP, False)


def _walk_in_name_order(session: Session, query: CheckedQuery, offset: int, limit: int,
                        extra: "list | None" = None) -> list[tuple[int, int]]:
    """(model_id, version) of the page in name order: models walked by (publisher, name) from the cursor, each
    asked for its newest version matching everything (a probe on its own versions), until the page is full.
    ``extra`` are conditions on ``registered_model`` (the models ``_ranked`` already placed are left out)."""
    rm = records.table_of(RegisteredModel)
    # Every word a probe here (no word's whole set is built: the walk stops after a page of models).
    matching = _newest_matching(query, None, per_model=rm.c.id)
    per_model = (select(rm.c.id.label("model_id"), matching.label("version"))
                 .where(*_model_where(rm, query.publisher, query.after), *(extra or []))
                 .order_by(rm.c.publisher, rm.c.name).subquery())
    statement = (select(per_model.c.model_id, per_model.c.version).where(per_model.c.version.is_not(None))
                 .limit(limit))
    if query.after is None:
        statement = statement.offset(offset)
    return [(row.model_id, row.version) for row in session.execute(statement)]


def _newest_first(session: Session, query: CheckedQuery) -> list[tuple[int, int]]:
    """(model_id, version) of the page by newest: the matching versions read from the newest down (``id``
    order: a model's later versions have larger ids), grouped by model, so each model sorts by its newest
    matching version. Reads a prefix of the matching versions, four times longer each try, until it holds the
    page's models (those of a longer prefix sort after them) or every matching version."""
    mv = records.table_of(ModelVersion)
    wanted = query.page * query.limit
    prefix = max(4 * wanted, 256)
    while True:
        newest = (select(mv.c.id, mv.c.model_id, mv.c.version).where(*_matching_where(query, None))
                  .order_by(mv.c.id.desc()).limit(prefix).subquery("newest_versions"))
        grouped = (select(newest.c.model_id, func.max(newest.c.version).label("version"),
                          func.max(newest.c.id).label("version_id")).group_by(newest.c.model_id)
                   .subquery("newest_models"))
        rows = session.execute(select(grouped.c.model_id, grouped.c.version, func.count().over().label("models"))
                               .order_by(grouped.c.version_id.desc())
                               .limit(query.limit).offset(wanted - query.limit)).all()
        if (rows and rows[0].models >= wanted) or \
                session.execute(select(func.count()).select_from(newest)).scalar_one() < prefix:
            return [(row.model_id, row.version) for row in rows]
        prefix *= 4


def _ranked(session: Session, query: CheckedQuery) -> list[tuple[int, int]]:
    """(model_id, version) of the page by relevance or downloads, ranked without reading every match.

    Only a few models rank above the others: by relevance, those with a search word in their own publisher/name
    or with downloads; by downloads, those with downloads. They are found from ``registered_model`` and the
    download counts (not from the matches), asked whether they match, and sorted. Every other matching model
    ties with the rest on both keys, so they follow in name order: the walk, past the ranked ones.
    """
    rm = records.table_of(RegisteredModel)
    downloads = _downloads_per_model()
    downloaded = func.coalesce(downloads.c.total, 0)
    by_name = query.sort == "relevance" and bool(query.words)
    score = _name_score(query, rm) if by_name else None
    keys = [downloaded.desc()] if score is None else [score.desc(), downloaded.desc()]
    # The candidates (from the name-word index and the download counts), each asked whether it matches, sorted.
    candidates: Any = select(downloads.c.model_id).where(downloads.c.total > 0)
    if by_name:
        candidates = union(candidates, *_named_models(query))
    matching = _newest_matching(query, None, per_model=rm.c.id)
    ahead = (select(rm.c.id.label("model_id"), matching.label("version"))
             .select_from(rm.outerjoin(downloads, downloads.c.model_id == rm.c.id))
             .where(rm.c.id.in_(candidates), *_model_where(rm, query.publisher, None))
             .order_by(*keys, rm.c.publisher, rm.c.name).subquery("ahead"))
    ranked = [(row.model_id, row.version) for row in session.execute(
        select(ahead.c.model_id, ahead.c.version).where(ahead.c.version.is_not(None)))]
    offset, limit = (query.page - 1) * query.limit, query.limit
    page = ranked[offset:offset + limit]
    if len(page) < limit:
        rest_models = select(downloads.c.model_id).where(downloads.c.total > 0)
        rest = [rm.c.id.not_in(rest_models), *([] if score is None else [score == 0])]
        page += _walk_in_name_order(session, query, max(0, offset - len(ranked)), limit - len(page), rest)
    return page


def _rarest_word(session: Session, words: tuple[str, ...]) -> tuple[str | None, int]:
    """The word with the fewest index rows and how many (counted up to ``RAREST_WORD_CAP`` each, on the
    primary key); (None, 0) without words."""
    sw = records.table_of(SearchWord)
    counts = {}
    for word in words:
        capped = (select(sw.c.version_id).where(sw.c.word >= word, sw.c.word < word + _LAST)
                  .limit(RAREST_WORD_CAP).subquery())
        counts[word] = session.execute(select(func.count()).select_from(capped)).scalar_one()
    if not counts:
        return None, 0
    rarest = min(words, key=lambda word: counts[word])
    return rarest, counts[rarest]


def _matching_where(query: CheckedQuery, driving: str | None = None, *, publisher: bool = True
                    ) -> list[ColumnElement[bool]]:
    """The conditions on ``model_version`` of a live version matching ``query``'s words and filters (and its
    publisher, unless the caller tests that on the model, as the walk's per-model probe does); ``driving`` is
    the word whose versions are looked up first (the others are probed). Tasks are a list of matching versions
    to look ids up in, or, in the per-model probe, a probe of the version's own task rows (PostgreSQL would
    otherwise scan the whole list once per version)."""
    mv, vt = records.table_of(ModelVersion), records.table_of(VersionTask)
    where: list[ColumnElement[bool]] = [mv.c.deleted_at.is_(None)]
    if query.format is not None:
        where.append(mv.c.format == query.format)
    for name, value in query.filters.items():
        where.append(filter_condition(mv.c[name], value))
    task_where = []
    if query.task is not None:
        task_where.append(vt.c.task == query.task)
    if query.image_size is not None:
        task_where += [vt.c.image_height == query.image_size[0], vt.c.image_width == query.image_size[1]]
    if query.output_dim is not None:
        task_where.append(vt.c.output_dim == int(query.output_dim))
    if task_where and publisher:
        where.append(mv.c.id.in_(select(vt.c.version_id).where(*task_where)))
    elif task_where:
        # LIMIT 1 keeps PostgreSQL from turning the probe into a semi-join that rescans the matching task rows
        # for every version; each version's own rows are read through ``ix_task_by_version_facts``.
        where.append(select(vt.c.version_id).where(vt.c.version_id == mv.c.id, *task_where).limit(1)
                     .scalar_subquery().is_not(None))
    where += _word_conditions(query.words, driving)
    if publisher and query.publisher is not None:
        rm = records.table_of(RegisteredModel)
        where.append(mv.c.model_id.in_(select(rm.c.id).where(rm.c.publisher == query.publisher)))
    return where


def _word_conditions(words: "tuple[str, ...]", driving: str | None) -> list[ColumnElement[bool]]:
    """A version has every word (a word of its own it begins). The ``driving`` word's versions are looked up by
    id (a rare word: few); every other word is a probe of the version's own words on
    ``ix_search_word_by_version``, so no large word's set is ever built."""
    mv, sw = records.table_of(ModelVersion), records.table_of(SearchWord)
    where: list[ColumnElement[bool]] = []
    for word in words:
        if word == driving:
            where.append(mv.c.id.in_(select(sw.c.version_id).where(sw.c.word >= word, sw.c.word < word + _LAST)))
        else:
            probe = sw.alias("word_probe")
            where.append(select(probe.c.version_id).where(probe.c.version_id == mv.c.id, probe.c.word >= word,
                                                          probe.c.word < word + _LAST).exists())
    return where


def _newest_matching(query: CheckedQuery, driving: str | None = None, per_model: Any = None):
    """(model_id, version) of each model's newest live version matching ``query``'s words and filters;
    ``driving`` is the word whose versions are looked up first (the others are probed)."""
    mv = records.table_of(ModelVersion)
    where = _matching_where(query, driving, publisher=per_model is None)
    if per_model is not None:  # one model's newest matching version (the walk in name order asks each model)
        return (select(func.max(mv.c.version)).where(mv.c.model_id == per_model, *where)
                .correlate(records.table_of(RegisteredModel)).scalar_subquery())
    # A model's newer versions have larger ids too (both count up as they are published): the newest matching
    # version's id orders "newest" without reading its row.
    return (select(mv.c.model_id.label("model_id"), func.max(mv.c.version).label("version"),
                   func.max(mv.c.id).label("version_id"))
            .where(*where).group_by(mv.c.model_id).subquery("newest_matching"))


def _ordered(statement, query: CheckedQuery, newest, rm):
    by_name = (rm.c.publisher, rm.c.name)
    if query.sort == "name":
        return statement.order_by(*by_name)
    if query.sort == "newest":
        return statement.order_by(newest.c.version_id.desc())
    downloads = _downloads_per_model()
    statement = statement.outerjoin(downloads, downloads.c.model_id == rm.c.id)
    most_downloaded = func.coalesce(downloads.c.total, 0).desc()
    if query.sort == "downloads":
        return statement.order_by(most_downloaded, *by_name)
    return statement.order_by(_name_score(query, rm).desc(), most_downloaded, *by_name)


def _name_score(query: CheckedQuery, rm) -> Any:
    """Relevance: how many of the search words match a word of the model's own publisher or name (as a search
    word matches any word: the start of it), each a probe of ``search_name_word``'s primary key."""
    nw = records.table_of(SearchNameWord)
    score: Any = literal_column("0")
    for word in query.words:
        probe = nw.alias("name_probe")
        holds = (select(probe.c.model_id).where(probe.c.word >= word, probe.c.word < word + _LAST,
                                                probe.c.model_id == rm.c.id).exists())
        score = score + case((holds, 1), else_=0)
    return score


def _named_models(query: CheckedQuery):
    """The models with a search word in their own publisher or name (relevance ranks them first)."""
    nw = records.table_of(SearchNameWord)
    return [select(nw.c.model_id).where(nw.c.word >= word, nw.c.word < word + _LAST) for word in query.words]


def _downloads_per_model():
    from registry.catalog.downloads import DownloadCount

    mv, dc = records.table_of(ModelVersion), records.table_of(DownloadCount)
    # Read from the counts (each version's model looked up by id), never by a pass over every version.
    model = select(mv.c.model_id).where(mv.c.id == dc.c.version_id).correlate(dc).scalar_subquery()
    counted = select(model.label("model_id"), dc.c.count).subquery("counted_downloads")
    return (select(counted.c.model_id, func.sum(counted.c.count).label("total"))
            .group_by(counted.c.model_id).subquery("downloads_per_model"))


# -- the word index ----------------------------------------------------------------------------------------------

def version_words(*, publisher: str, name: str, model_description: str, metadata: Mapping[str, Any], format: str,
                  tasks: "list[Mapping[str, Any]]") -> list[str]:
    """Every searchable word of one version, each once, at most ``MAX_WORDS_PER_VERSION`` (the first ones).

    ``metadata`` holds its ``VersionMetadata`` values: every text or list-of-text field is searched (a new one is
    searched without a change here). ``tasks`` are its ``version_task`` rows: the task's name, its image size as
    ``224x224`` and ``224``, its output dimension.
    """
    found: dict[str, None] = {}

    def add(text: Any) -> None:
        if isinstance(text, str):
            for word in words_of(text):
                found.setdefault(word)
        elif isinstance(text, (list, tuple)):
            for item in text:
                add(item)

    for text in (publisher, name, format, model_description):
        add(text)
    for row in tasks:
        add(row.get("task"))
        height, width = row.get("image_height"), row.get("image_width")
        if height is not None and width is not None:
            add(f"{height}x{width} {height} {width}")
        if row.get("output_dim") is not None:
            add(str(row["output_dim"]))
    for field_name in VersionMetadata.model_fields:  # the short fields first: a long card cannot crowd them out
        if field_name not in ("card", "description"):
            add(metadata.get(field_name))
    add(metadata.get("description"))
    add(metadata.get("card"))
    return list(found)[:MAX_WORDS_PER_VERSION]


def index_version(connection: Connection | Session, version_id: int) -> None:
    """(Re)write the words of the version ``version_id`` from its rows: on publish, and when its card or metadata
    is edited (in the writing transaction: the words change with the text)."""
    index_versions(connection, [version_id])


def index_versions(connection: Connection | Session, version_ids: "list[int] | None" = None,
                   batch: int = 500, *, names: bool = True) -> int:
    """(Re)write the words of these versions (every version when None), and their models' name words unless
    ``names`` is false; how many versions were indexed. Migration 0010 fills the index of an existing catalog
    through this (without the name words: their table is 0011's, which fills it)."""
    mv, rm, vt = records.table_of(ModelVersion), records.table_of(RegisteredModel), records.table_of(VersionTask)
    sw = records.table_of(SearchWord)
    metadata_columns = [mv.c[name] for name in VersionMetadata.model_fields if name in mv.c]
    ids = version_ids if version_ids is not None else list(connection.execute(select(mv.c.id).order_by(mv.c.id))
                                                           .scalars())
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        rows = connection.execute(select(mv.c.id, mv.c.model_id, mv.c.format, rm.c.publisher, rm.c.name,
                                         rm.c.description.label("model_description"), *metadata_columns)
                                  .join(rm, rm.c.id == mv.c.model_id).where(mv.c.id.in_(chunk))).mappings().all()
        tasks: dict[int, list] = {}
        for task in connection.execute(select(vt.c.version_id, vt.c.task, vt.c.image_height, vt.c.image_width,
                                              vt.c.output_dim).where(vt.c.version_id.in_(chunk))).mappings():
            tasks.setdefault(task["version_id"], []).append(task)
        connection.execute(delete(sw).where(sw.c.version_id.in_(chunk)))
        values = []
        for row in rows:
            words = version_words(publisher=row["publisher"], name=row["name"],
                                  model_description=row["model_description"] or "", metadata=dict(row),
                                  format=row["format"], tasks=tasks.get(row["id"], []))
            values += [{"word": word, "version_id": row["id"]} for word in words]
        if values:
            connection.execute(insert(sw), values)
        if names:
            index_model_names(connection, sorted({row["model_id"] for row in rows}))
    return len(ids)


def index_model_names(connection: Connection | Session, model_ids: "list[int] | None" = None) -> int:
    """(Re)write the words of these models' own publisher and name (every model's when None) in
    ``search_name_word``; how many models. Migration 0011 fills it for an existing catalog through this."""
    rm, nw = records.table_of(RegisteredModel), records.table_of(SearchNameWord)
    statement = select(rm.c.id, rm.c.publisher, rm.c.name)
    if model_ids is not None:
        statement = statement.where(rm.c.id.in_(model_ids))
    rows = connection.execute(statement).all()
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        connection.execute(delete(nw).where(nw.c.model_id.in_([row.id for row in chunk])))
        values = [{"word": word, "model_id": row.id}
                  for row in chunk for word in dict.fromkeys(words_of(row.publisher) + words_of(row.name))]
        if values:
            connection.execute(insert(nw), values)
    return len(rows)

