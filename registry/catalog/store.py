"""The catalog's data access: models, their numbered versions, aliases and lineage.

Version numbers are handed out by the database, never computed in Python: the
model row's ``last_version`` is incremented with ``UPDATE ... RETURNING`` in
the same transaction that inserts the version, so concurrent publishers queue
on that row and each gets the next number. A number is never reused, even
after its version is deleted (deleting only hides a version).

Every method takes keyword arguments, returns the ``*Public`` records from
``registry.catalog.models`` (plain values, safe to keep after the call) and
raises ``ModelNotFound``, ``VersionNotFound`` or ``CatalogError``.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import and_, func, or_, text, update
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from registry.actor import current_base_url
from registry.catalog import records
from registry.catalog.audit import AliasInterval, AuditEntry, AuditLog, alias_intervals, as_utc, stored_utc
from registry.catalog.changes import record_change
from registry.catalog.downloads import DownloadCount
from registry.catalog.engine import SQLITE_BUSY_TIMEOUT_S, make_engine, write_engine
from registry.catalog.failures import database_errors
from registry.catalog.models import (
    Alias,
    ModelPublic,
    ModelVersion,
    RegisteredModel,
    Signature,
    VersionCreate,
    VersionLegacyHandle,
    VersionLocation,
    VersionPublic,
    VersionSummary,
    VersionTask,
    utcnow,
)
from registry.catalog.record_cache import DEFAULT_RECORD_CACHE_SIZE, RecordCache, model_revision_of
from registry.catalog.schema import check_schema
from registry.catalog.search import SearchQuery, SearchResults, find, index_version, search_catalog
from registry.catalog.sqlite_reader import locate_query, location_of
from registry.catalog.urls import sqlite_file
from registry.catalog.webhooks import Webhook  # noqa: F401  (its tables are part of the schema)
from registry.errors import CatalogError, LegacyHandleConflict, ModelNotFound, VersionNotFound
from registry.handles import COMPRESSED_QUERY, LATEST, CatalogHandle, validate_name
from registry.handles import catalog_handle as _catalog_handle

Pair = tuple[ModelVersion, RegisteredModel]


class Catalog:
    """The catalog in one database (SQLite file or PostgreSQL); checks the schema when opened.

    Every database failure leaves as a ``registry.errors`` type naming the
    database (``registry.catalog.failures``): a user of the API never sees an
    SQLAlchemy exception.
    """

    def __init__(self, database_url: str | URL, *, timeout: float = SQLITE_BUSY_TIMEOUT_S,
                 record_cache_size: int = DEFAULT_RECORD_CACHE_SIZE):
        self.database_url = database_url
        with database_errors(database_url):
            self.engine = make_engine(database_url, timeout=timeout)
        #: The SQLite file, whose revision reads go through ``sqlite_reader`` (``record_cache.model_revision_of``).
        self._sqlite_file = sqlite_file(self.engine.url.render_as_string(hide_password=False))
        self._writer = write_engine(self.engine)
        #: Version records read lately, each valid while its model's revision stands (``record_cache``).
        self.records = RecordCache(record_cache_size)
        try:
            with database_errors(database_url):
                check_schema(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Catalog({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close the pooled connections (the catalog reconnects if used again)."""
        self.engine.dispose()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ping(self) -> None:
        """One trivial query: raises ``CatalogUnavailable`` (or another typed error) if the database cannot answer."""
        with self._read() as session:
            session.exec(select(1)).one()

    # --- writes -------------------------------------------------------------------------------------------------

    def create_version(self, record: VersionCreate) -> VersionPublic:
        """Record a new version of ``record.publisher/record.name`` (creating the model if new) under the next
        free number. The version row takes every ``VersionBase`` field of the record as it is."""
        validate_name(record.publisher, "publisher")
        validate_name(record.name, "model name")
        signature_rows = records.signature_rows(record.signatures)
        task_rows = records.task_rows(record.tasks)
        fields = {name: getattr(record, name) for name in records.BASE_FIELDS}
        fields.update(tag_sets=records.normalize_tag_sets(record.tag_sets), details=dict(record.details))
        with self._write() as session:
            parent_row = (self._resolve(session, _catalog_handle(record.parent), include_deleted=False)[0]
                          if record.parent else None)
            model = self._get_or_create_model(session, record.publisher, record.name)
            if record.idempotency_key:
                committed = self._published_with_key(session, model, record)
                if committed is not None:
                    return committed
            if record.description and not model.description:
                model.description = record.description
            try:
                # A savepoint: a retry racing its own first try for the same key undoes only this insert.
                with session.begin_nested():
                    number = session.exec(
                        update(RegisteredModel)
                        .where(col(RegisteredModel.id) == model.id)
                        .values(last_version=col(RegisteredModel.last_version) + 1)
                        .returning(col(RegisteredModel.last_version))
                        .execution_options(synchronize_session=False)
                    ).scalar_one()
                    version = ModelVersion(model_id=_id(model), version=number,
                                           idempotency_key=record.idempotency_key,
                                           parent_id=parent_row.id if parent_row is not None else None, **fields)
                    session.add(version)
                    session.flush()
            except IntegrityError:
                committed = self._published_with_key(session, model, record) if record.idempotency_key else None
                if committed is None:
                    raise
                return committed
            session.add_all(Signature(version_id=_id(version), **row) for row in signature_rows)
            session.add_all(VersionTask(version_id=_id(version), **row) for row in task_rows)
            session.flush()
            self._add_legacy(session, version, model, record.legacy_handles)
            index_version(session, _id(version))  # its words, for search (registry.catalog.search)
            after = _state(version, model)
            if record.legacy_handles:
                after["legacy_handles"] = sorted(record.legacy_handles)
            record_change(session, "version.published", _subject(model, version), publisher=model.publisher,
                          model=model.name, after=after)
            return records.version_records(session, [(version, model)])[0]

    def _published_with_key(self, session: Session, model: RegisteredModel, record: VersionCreate
                            ) -> VersionPublic | None:
        """The version an earlier try of this publish (same idempotency key) committed, if any."""
        row = session.exec(select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.idempotency_key == record.idempotency_key)).first()
        if row is None:
            return None
        if row.sha256 != record.sha256:
            raise CatalogError(f"the idempotency key {record.idempotency_key!r} already published "
                               f"{model.publisher}/{model.name}/{row.version} with other content; a new publish "
                               f"needs a new key")
        return records.version_records(session, [(row, model)])[0]

    def set_alias(self, *, publisher: str, name: str, alias: str, version: int) -> VersionPublic:
        """Point ``publisher/name@alias`` at ``version`` (creating or moving the alias)."""
        _check_alias(alias)
        with self._write() as session:
            row, model = self._resolve(session, CatalogHandle(publisher, name, version=_number(version)),
                                       include_deleted=False)
            existing = self._alias(session, _id(model), alias, lock=True)
            before = None
            if existing is not None:
                previous = session.get(ModelVersion, existing.version_id)
                before = _state(previous, model) if previous is not None else None
            if existing is None:
                try:
                    with session.begin_nested():  # another writer may create the same alias at the same moment
                        session.add(Alias(model_id=_id(model), name=alias, version_id=_id(row)))
                except IntegrityError:
                    existing = self._alias(session, _id(model), alias, lock=True)
                    if existing is None:
                        raise
                    previous = session.get(ModelVersion, existing.version_id)
                    before = _state(previous, model) if previous is not None else None
            if existing is not None and existing.version_id != row.id:
                existing.version_id = _id(row)
                existing.updated_at = utcnow()
            elif existing is not None:
                before = _state(row, model)  # already there: a change of nothing, recorded as nothing
            session.flush()
            if before is None or before["version"] != row.version:
                record_change(session, "alias.moved" if before else "alias.set", f"{model.publisher}/{model.name}@"
                              f"{alias}", publisher=model.publisher, model=model.name, before=before,
                              after=_state(row, model))
            return records.version_records(session, [(row, model)])[0]

    def remove_alias(self, *, publisher: str, name: str, alias: str) -> None:
        """Delete the alias; the version it pointed at is untouched."""
        _check_alias(alias)
        with self._write() as session:
            model = self._model(session, publisher, name)
            existing = self._alias(session, _id(model), alias, lock=True)
            if existing is None:
                raise VersionNotFound(
                    f"{publisher}/{name} has no alias {alias!r}; {self._aliases_hint(session, model)}")
            previous = session.get(ModelVersion, existing.version_id)
            session.delete(existing)
            session.flush()
            record_change(session, "alias.removed", f"{model.publisher}/{model.name}@{alias}",
                          publisher=model.publisher, model=model.name,
                          before=_state(previous, model) if previous is not None else None)

    def delete_version(self, *, publisher: str, name: str, version: int) -> VersionPublic:
        """Hide a version. Its number is never reused; aliases pointing at it stop resolving. Idempotent."""
        with self._write() as session:
            row, model = self._resolve(session, CatalogHandle(publisher, name, version=_number(version)),
                                       include_deleted=True)
            # Locked and read again: of concurrent deletes of one version, exactly one changes (and records) it.
            row = session.exec(select(ModelVersion).where(ModelVersion.id == row.id).with_for_update()
                               .execution_options(populate_existing=True)).one()
            if row.deleted_at is None:
                before = _state(row, model)
                row.deleted_at = utcnow()
                session.flush()
                record_change(session, "version.deleted", _subject(model, row), publisher=model.publisher,
                              model=model.name, before=before, after=_state(row, model))
            self.records.discard_model(model.publisher, model.name)
            return records.version_records(session, [(row, model)])[0]

    # --- legacy handles -----------------------------------------------------------------------------------------

    def add_legacy_handles(self, handle: CatalogHandle | str, legacy: list[str]) -> VersionPublic:
        """Record ``legacy`` (canonical legacy handles) as naming the version ``handle`` names; one already
        naming this version is kept, one naming another is ``LegacyHandleConflict`` and nothing is added."""
        with self._write() as session:
            row, model = self._resolve(session, _catalog_handle(handle), include_deleted=False)
            before = self._legacy_of(session, row)
            new = [item for item in dict.fromkeys(legacy) if item not in before]
            if new:
                self._add_legacy(session, row, model, new)
                record_change(session, "legacy_handles.added", _subject(model, row), publisher=model.publisher,
                              model=model.name, before={"legacy_handles": before},
                              after={"legacy_handles": sorted([*before, *new])})
            return records.version_records(session, [(row, model)])[0]

    def remove_legacy_handles(self, handle: CatalogHandle | str, legacy: list[str]) -> VersionPublic:
        """Forget ``legacy`` as names of the version ``handle`` names; one it does not have is a
        ``CatalogError`` naming the ones it has, and nothing is removed."""
        with self._write() as session:
            row, model = self._resolve(session, _catalog_handle(handle), include_deleted=True)
            before = self._legacy_of(session, row)
            missing = [item for item in legacy if item not in before]
            if missing:
                has = ", ".join(before) if before else "none"
                raise CatalogError(f"{_subject(model, row)} is not named by {', '.join(missing)}; its legacy "
                                   f"handles are {has}")
            gone = set(legacy)
            for found in session.exec(select(VersionLegacyHandle).where(
                    VersionLegacyHandle.version_id == row.id, col(VersionLegacyHandle.handle).in_(gone))):
                session.delete(found)
            session.flush()
            if gone:
                record_change(session, "legacy_handles.removed", _subject(model, row), publisher=model.publisher,
                              model=model.name, before={"legacy_handles": before},
                              after={"legacy_handles": [item for item in before if item not in gone]})
            return records.version_records(session, [(row, model)])[0]

    def find_legacy_handle(self, legacy: str, *, newest_under: str | None = None) -> VersionPublic | None:
        """The version the canonical legacy handle ``legacy`` names (deleted ones too, marked), or None.

        With ``newest_under`` (an unversioned canonical handle), when ``legacy`` itself is not recorded: the live
        version named by ``newest_under/<N>`` with the highest N (what "the newest" meant on tfhub.dev and Kaggle).
        """
        with self._read() as session:
            pair = session.exec(
                select(ModelVersion, RegisteredModel)
                .join(VersionLegacyHandle, col(VersionLegacyHandle.version_id) == col(ModelVersion.id))
                .join(RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id))
                .where(VersionLegacyHandle.handle == legacy)).first()
            if pair is None and newest_under is not None:
                candidates = session.exec(
                    select(VersionLegacyHandle.handle, ModelVersion, RegisteredModel)
                    .join(ModelVersion, col(VersionLegacyHandle.version_id) == col(ModelVersion.id))
                    .join(RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id))
                    .where(col(VersionLegacyHandle.handle).startswith(newest_under + "/", autoescape=True),
                           col(ModelVersion.deleted_at).is_(None))).all()
                numbered = [(int(name[len(newest_under) + 1:]), version.version, version, model)
                            for name, version, model in candidates if name[len(newest_under) + 1:].isdigit()]
                if numbered:
                    _, _, version, model = max(numbered, key=lambda item: (item[0], item[1]))
                    pair = (version, model)
            return records.version_records(session, [pair])[0] if pair is not None else None

    def list_legacy_handles(self) -> dict[str, str]:
        """{legacy handle: catalog handle ``publisher/model/N``} of every recorded legacy handle, sorted."""
        with self._read() as session:
            rows = session.execute(
                select_columns(col(VersionLegacyHandle.handle), col(RegisteredModel.publisher),
                               col(RegisteredModel.name), col(ModelVersion.version))
                .join(ModelVersion, col(VersionLegacyHandle.version_id) == col(ModelVersion.id))
                .join(RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id))
                .order_by(col(VersionLegacyHandle.handle)))
            return {legacy: f"{publisher}/{name}/{number}" for legacy, publisher, name, number in rows}

    @staticmethod
    def _legacy_of(session: Session, row: ModelVersion) -> list[str]:
        return sorted(session.exec(select(VersionLegacyHandle.handle).where(VersionLegacyHandle.version_id == row.id)))

    @staticmethod
    def _add_legacy(session: Session, row: ModelVersion, model: RegisteredModel, legacy: list[str]) -> None:
        """Insert the rows; a handle another version has is ``LegacyHandleConflict`` naming that version."""
        if not legacy:
            return
        taken = session.execute(
            select_columns(col(VersionLegacyHandle.handle), col(RegisteredModel.publisher),
                           col(RegisteredModel.name), col(ModelVersion.version))
            .join(ModelVersion, col(VersionLegacyHandle.version_id) == col(ModelVersion.id))
            .join(RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id))
            .where(col(VersionLegacyHandle.handle).in_(legacy), col(VersionLegacyHandle.version_id) != row.id)).first()
        if taken is not None:
            raise _conflict(taken[0], f"{taken[1]}/{taken[2]}/{taken[3]}", _subject(model, row))
        try:
            with session.begin_nested():  # another writer may record the same handle at the same moment
                session.add_all(VersionLegacyHandle(version_id=_id(row), handle=item) for item in legacy)
                session.flush()
        except IntegrityError:
            raise _conflict(", ".join(legacy), "another version (recorded at the same moment)",
                            _subject(model, row)) from None

    # --- reads --------------------------------------------------------------------------------------------------

    def get_version(self, handle: CatalogHandle | str, *, include_deleted: bool = False,
                    at: datetime | None = None) -> VersionPublic:
        """The version a catalog handle names: newest (skipping deleted ones), number N, or ``@alias``;
        with ``at``, the one it named at that moment (``_resolve_at``).

        Without ``at``: the model's revision first (one indexed query), then the record kept for the handle
        at that revision (``registry.catalog.record_cache``), else one query resolving the handle to its row
        (with its model's columns and its parent's handle) and three for its signatures, tasks and aliases
        (``records.version_record``): statements built once, plain columns, no ORM objects, no validation
        of what the database already typed.
        """
        parsed = _catalog_handle(handle)
        if at is not None:
            with self._read() as session:
                pair = self._resolve_at(session, parsed, as_utc(at), include_deleted=include_deleted)
                return records.version_records(session, [pair])[0]
        key = (parsed.publisher, parsed.model, parsed.version,
               parsed.alias if parsed.alias != LATEST else None, include_deleted)
        with database_errors(self.database_url):
            revision = model_revision_of(self.engine, parsed.publisher, parsed.model,  # before the record: see there
                                         sqlite_path=self._sqlite_file)
        kept = self.records.get(key, revision) if revision is not None else None
        if kept is not None:
            return kept
        with self._connect() as connection:
            row = connection.execute(records.resolve_statement(parsed), records.resolve_parameters(parsed)).first()
            if row is None or (row.deleted_at is not None and not include_deleted):
                row = None
            else:
                record = records.version_record(connection, row)
        if row is None:
            # Not there (or deleted): ask again the way every other read does, for its precise error, or the
            # version a concurrent write has just made.
            with self._read() as session:
                pair = self._resolve(session, parsed, include_deleted=include_deleted)
                record = records.version_records(session, [pair])[0]
        if revision is not None:
            self.records.put(key, revision, record)
        return record

    def revision(self, *, publisher: str, name: str) -> int | None:
        """The model's revision: the id of the newest audit entry about it, 0 if none, None for no such model
        (``record_cache``)."""
        with database_errors(self.database_url):
            return model_revision_of(self.engine, publisher, name, sqlite_path=self._sqlite_file)

    def alias_history(self, handle: CatalogHandle | str) -> list[AliasInterval]:
        """Every version ``publisher/model@alias`` has named, oldest first, each with its interval and actor
        (read off the audit log, which records every alias change)."""
        parsed = _catalog_handle(handle)
        if parsed.alias is None or parsed.alias == LATEST or parsed.version is not None:
            raise CatalogError(f"alias history is of an alias (publisher/model@alias), not {parsed}")
        with self._read() as session:
            model = self._model(session, parsed.publisher, parsed.model)
            entries = list(session.exec(self._alias_entries(model, parsed.alias).order_by(col(AuditEntry.id))))
            if not entries:
                raise VersionNotFound(f"{model.publisher}/{model.name} has never had an alias {parsed.alias!r}; "
                                      f"{self._aliases_hint(session, model)}")
            return alias_intervals(entries)

    def download_counts(self, *, publisher: str, name: str) -> dict[int, int]:
        """{version number: archives the registry's servers served of it}, for the versions downloaded at all."""
        with self._read() as session:
            model = self._model(session, publisher, name)
            # One join, summed by the database: not every version's id sent back in an IN list (a model page
            # asks this of a model of a thousand versions).
            return {number: int(total) for number, total in session.execute(
                select_columns(col(ModelVersion.version), func.sum(col(DownloadCount.count)))
                .join(ModelVersion, col(ModelVersion.id) == col(DownloadCount.version_id))
                .where(col(ModelVersion.model_id) == model.id).group_by(col(ModelVersion.version)))}

    @property
    def audit(self) -> AuditLog:
        """The audit log of this database (read-only: see ``registry.catalog.audit``)."""
        return AuditLog(self)

    def locate(self, handle: CatalogHandle | str) -> VersionLocation:
        """Where the version a handle names lives, and its format: the one read that loading needs."""
        parsed = _catalog_handle(handle)
        query, params = locate_query(parsed)  # the same SQL as the load path's sqlite3 reader
        with self._read() as session:
            found = session.connection().execute(text(query), params).first()
            if found is not None:
                return location_of(found)
            # Not found: ask again the way every other read does, for its precise error (no such model, a
            # deleted version, an unknown alias...), or the version a concurrent write has just made.
            row, model = self._resolve(session, parsed, include_deleted=False)
            return VersionLocation(publisher=model.publisher, model=model.name, version=row.version,
                                   format=row.format, artifact_uri=row.artifact_uri, sha256=row.sha256,
                                   size=row.size)

    def get_model(self, *, publisher: str, name: str) -> ModelPublic:
        with self._read() as session:
            return self._model_records(session, [self._model(session, publisher, name)])[0]

    def list_models(self, *, publisher: str | None = None, limit: int | None = None,
                    after: str | None = None) -> list[ModelPublic]:
        """Every model (of one publisher, if given), sorted by publisher and name.

        ``after`` (``publisher/model``) and ``limit`` page through them by key, so
        a deep page costs what the first one does.
        """
        with self._read() as session:
            statement = select(RegisteredModel).order_by(RegisteredModel.publisher, RegisteredModel.name)
            if publisher is not None:
                statement = statement.where(RegisteredModel.publisher == publisher)
            if after is not None:
                after_publisher, _, after_name = after.partition("/")
                statement = statement.where(or_(col(RegisteredModel.publisher) > after_publisher,
                                                and_(col(RegisteredModel.publisher) == after_publisher,
                                                     col(RegisteredModel.name) > after_name)))
            if limit is not None:
                statement = statement.limit(int(limit))
            return self._model_records(session, list(session.exec(statement)))

    def list_versions(self, *, publisher: str, name: str, include_deleted: bool = False) -> list[VersionPublic]:
        """The model's versions, oldest first (each without its card's text: ``records.LISTED_VERSION_COLUMNS``)."""
        with self._read() as session:
            model = self._model(session, publisher, name)
            # Plain columns, not ORM objects: building those cost most of a long list's time.
            statement = (select_columns(*records.LISTED_VERSION_COLUMNS).where(col(ModelVersion.model_id) == model.id)
                         .order_by(col(ModelVersion.version)))
            if not include_deleted:
                statement = statement.where(col(ModelVersion.deleted_at).is_(None))
            return records.version_records(session, [(row, model) for row in session.execute(statement)])

    def version_summaries(self, *, publisher: str, name: str, include_deleted: bool = False) -> list[VersionSummary]:
        """The model's versions, oldest first, as light rows (two queries, whatever the number of versions)."""
        with self._read() as session:
            model = self._model(session, publisher, name)
            # SQLAlchemy's select: sqlmodel's is typed for at most four columns
            columns = select_columns(col(ModelVersion.id), col(ModelVersion.version), col(ModelVersion.format),
                                     col(ModelVersion.sha256), col(ModelVersion.size), col(ModelVersion.created_at),
                                     col(ModelVersion.deleted_at))
            statement = columns.where(col(ModelVersion.model_id) == model.id).order_by(col(ModelVersion.version))
            if not include_deleted:
                statement = statement.where(col(ModelVersion.deleted_at).is_(None))
            rows = session.execute(statement).all()
            aliases: dict[int, list[str]] = {}
            for version_id, alias in session.execute(select(Alias.version_id, Alias.name)
                                                     .where(Alias.model_id == model.id).order_by(Alias.name)):
                aliases.setdefault(version_id, []).append(alias)
            # Built without validation (the database typed every value): a page lists a thousand of them.
            summary = VersionSummary.model_construct
            return [summary(publisher=model.publisher, model=model.name, version=row.version, format=row.format,
                            sha256=row.sha256, size=row.size, created_at=row.created_at,
                            deleted=row.deleted_at is not None, aliases=aliases.get(row.id, []))
                    for row in rows]

    def publishers(self) -> list[str]:
        """Every publisher with a model, by name (from the index on ``registered_model.publisher``)."""
        with self._read() as session:
            return list(session.execute(select_columns(col(RegisteredModel.publisher)).distinct()
                                        .order_by(col(RegisteredModel.publisher))).scalars())

    def find(self, query: SearchQuery) -> SearchResults:
        """A page of the search by need (words, filters, sort): see ``registry.catalog.search.find``."""
        with database_errors(self.database_url):
            return find(self.engine, query)

    def search(self, *, sort: str | None = None, **criteria) -> list[VersionPublic] | list[str]:
        """Each model's newest live version matching every criterion: see ``registry.catalog.search``.

        ``sort="downloads"`` orders the results by their model's downloads (every version's,
        all time; most first, then by name) instead of by name; ``after`` pages by name
        only, so with it ask for a larger ``limit`` instead.
        """
        if sort in (None, "name"):
            with database_errors(self.database_url):
                return search_catalog(self.engine, **criteria)
        if sort != "downloads":
            raise CatalogError(f"search sorts by 'name' (the default) or 'downloads', not {sort!r}")
        if criteria.get("after"):
            raise CatalogError("'after' continues a search sorted by name; sorted by downloads, ask for a larger "
                               "limit instead")
        limit, handles_only = criteria.pop("limit", 100), criteria.pop("handles_only", False)
        with database_errors(self.database_url):
            handles = search_catalog(self.engine, **criteria, limit=None, handles_only=True)
        ranked = self._by_downloads([str(h) for h in handles])[:limit]
        return ranked if handles_only else [self.get_version(handle) for handle in ranked]

    def _by_downloads(self, handles: list[str]) -> list[str]:
        with self._read() as session:
            totals = {(publisher, model): int(n) for publisher, model, n in session.execute(
                select_columns(col(RegisteredModel.publisher), col(RegisteredModel.name),
                               func.sum(col(DownloadCount.count)))
                .join(ModelVersion, col(ModelVersion.model_id) == col(RegisteredModel.id))
                .join(DownloadCount, col(DownloadCount.version_id) == col(ModelVersion.id))
                .group_by(RegisteredModel.publisher, RegisteredModel.name))}

        def key(handle: str) -> tuple[int, str]:
            publisher, model, _ = handle.split("/")
            return -totals.get((publisher, model), 0), handle

        return sorted(handles, key=key)

    def lineage(self, handle: CatalogHandle | str) -> list[VersionPublic]:
        """This version, its parent, grandparent, ... (the root last). Deleted ancestors are included, marked."""
        with self._read() as session:
            chain = [self._resolve(session, _catalog_handle(handle), include_deleted=False)]
            seen = {chain[0][0].id}
            while chain[-1][0].parent_id is not None and chain[-1][0].parent_id not in seen:
                pair = session.exec(
                    select(ModelVersion, RegisteredModel)
                    .join(RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id))
                    .where(ModelVersion.id == chain[-1][0].parent_id)).one()
                seen.add(pair[0].id)
                chain.append((pair[0], pair[1]))
            return records.version_records(session, chain)

    def children(self, handle: CatalogHandle | str) -> list[VersionPublic]:
        """The live versions published with this version as their parent, oldest first."""
        with self._read() as session:
            row, _ = self._resolve(session, _catalog_handle(handle), include_deleted=True)
            pairs = session.exec(
                select(ModelVersion, RegisteredModel)
                .join(RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id))
                .where(ModelVersion.parent_id == row.id, col(ModelVersion.deleted_at).is_(None))
                .order_by(col(ModelVersion.id))).all()
            return records.version_records(session, [(version, model) for version, model in pairs])

    # --- helpers ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        with database_errors(self.database_url), Session(self.engine) as session:
            yield session

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A plain connection for Core reads: no ORM session to set up for a read that loads no ORM object."""
        with database_errors(self.database_url), self.engine.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def _write(self) -> Iterator[Session]:
        """One transaction that holds the write lock from its start on SQLite; commits on success."""
        with database_errors(self.database_url), Session(self._writer) as session, session.begin():
            yield session

    def _get_or_create_model(self, session: Session, publisher: str, name: str) -> RegisteredModel:
        model = self._find_model(session, publisher, name)
        if model is not None:
            return model
        try:
            # A savepoint, so losing a race to create the same model only undoes this insert.
            with session.begin_nested():
                model = RegisteredModel(publisher=publisher, name=name)
                session.add(model)
            return model
        except IntegrityError:
            model = self._find_model(session, publisher, name)
            if model is None:
                raise
            return model

    @staticmethod
    def _find_model(session: Session, publisher: str, name: str) -> RegisteredModel | None:
        return session.exec(select(RegisteredModel).where(
            RegisteredModel.publisher == publisher, RegisteredModel.name == name)).first()

    def _model(self, session: Session, publisher: str, name: str) -> RegisteredModel:
        model = self._find_model(session, publisher, name)
        if model is None:
            known = [f"{p}/{n}" for p, n in session.exec(select(RegisteredModel.publisher, RegisteredModel.name))]
            close = difflib.get_close_matches(f"{publisher}/{name}", known, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "list the catalog's models to see what exists"
            raise ModelNotFound(f"the catalog has no model {publisher}/{name}; {hint} (publishing a first version "
                                f"creates a model)")
        return model

    def _resolve(self, session: Session, handle: CatalogHandle, *, include_deleted: bool) -> Pair:
        model = self._model(session, handle.publisher, handle.model)
        base = select(ModelVersion).where(ModelVersion.model_id == model.id)
        if handle.version is not None:
            row = session.exec(base.where(ModelVersion.version == handle.version)).first()
            if row is None:
                raise VersionNotFound(f"{model.publisher}/{model.name} has no version {handle.version}; "
                                      f"{self._versions_hint(session, model)}")
            if row.deleted_at is not None and not include_deleted:
                raise VersionNotFound(
                    f"{handle} was deleted on {row.deleted_at:%Y-%m-%d %H:%M} UTC; use {model.publisher}/"
                    f"{model.name} for the newest version, or another version: {self._versions_hint(session, model)}")
        elif handle.alias is not None and handle.alias != LATEST:
            alias = self._alias(session, _id(model), handle.alias)
            if alias is None:
                raise VersionNotFound(f"{model.publisher}/{model.name} has no alias {handle.alias!r}; "
                                      f"{self._aliases_hint(session, model)}")
            row = session.get(ModelVersion, alias.version_id)
            if row is None:  # the foreign key forbids it, and versions are only ever marked deleted
                raise CatalogError(f"alias {handle} points at a version the catalog does not have (id "
                                   f"{alias.version_id})")
            if row.deleted_at is not None and not include_deleted:
                raise VersionNotFound(
                    f"alias {handle} points at version {row.version}, which was deleted on "
                    f"{row.deleted_at:%Y-%m-%d %H:%M} UTC; move the alias to a live version or use another handle")
        else:
            # LIMIT 1: an ORM result is buffered whole, so without it every version's row (JSON columns and all)
            # would be loaded to keep the first.
            row = session.exec(base.where(col(ModelVersion.deleted_at).is_(None))
                               .order_by(col(ModelVersion.version).desc()).limit(1)).first()
            if row is None:
                what = "every version of it was deleted" if model.last_version else "it has no versions yet"
                raise VersionNotFound(f"{model.publisher}/{model.name} has no version to load: {what}; "
                                      "publish a new version")
        return row, model

    @staticmethod
    def _alias_entries(model: RegisteredModel, alias: str):
        return select(AuditEntry).where(AuditEntry.subject == f"{model.publisher}/{model.name}@{alias}",
                                        col(AuditEntry.action).startswith("alias."))

    def _resolve_at(self, session: Session, handle: CatalogHandle, at: datetime, *, include_deleted: bool) -> Pair:
        """What ``handle`` named at ``at`` (UTC): an alias, by its history; the newest version, among those
        published by then and not yet deleted; a number, if that version existed then."""
        model = self._model(session, handle.publisher, handle.model)
        when = f"{at:%Y-%m-%d %H:%M:%S} UTC"
        if handle.alias is not None and handle.alias != LATEST:
            entry = session.exec(self._alias_entries(model, handle.alias).where(col(AuditEntry.at) <= at)
                                 .order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())).first()
            if entry is None or entry.after is None:
                state = "had been removed" if entry is not None else "did not exist yet"
                raise VersionNotFound(f"at {when}, the alias {handle} {state}; "
                                      f"registry.alias_history({str(handle)!r}) lists what it named when")
            row = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                                          ModelVersion.version == entry.after["version"])).one()
            if row.deleted_at is not None and not include_deleted:
                raise VersionNotFound(f"at {when}, {handle} named version {row.version}, which was deleted on "
                                      f"{row.deleted_at:%Y-%m-%d %H:%M} UTC")
            return row, model
        if handle.version is not None:
            row, model = self._resolve(session, handle, include_deleted=include_deleted)
            if stored_utc(row.created_at) > at:
                raise VersionNotFound(f"{handle} was published on {row.created_at:%Y-%m-%d %H:%M:%S} UTC, after "
                                      f"{when}")
            return row, model
        newest = session.exec(select(ModelVersion).where(
            ModelVersion.model_id == model.id, col(ModelVersion.created_at) <= at,
            or_(col(ModelVersion.deleted_at).is_(None), col(ModelVersion.deleted_at) > at))
            .order_by(col(ModelVersion.version).desc())).first()
        if newest is None:
            raise VersionNotFound(f"{model.publisher}/{model.name} had no live version at {when}")
        row = newest
        if row.deleted_at is not None and not include_deleted:
            raise VersionNotFound(f"at {when}, {handle} was version {row.version}, which was deleted on "
                                  f"{row.deleted_at:%Y-%m-%d %H:%M} UTC")
        return row, model

    @staticmethod
    def _alias(session: Session, model_id: int, alias: str, *, lock: bool = False) -> Alias | None:
        """The alias row; with ``lock``, locked until the transaction ends (PostgreSQL's ``FOR UPDATE``; SQLite's
        write transaction holds the whole database already), so concurrent moves of one alias queue, and each
        records as ``before`` what the previous one left."""
        statement = select(Alias).where(Alias.model_id == model_id, Alias.name == alias)
        if lock:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return session.exec(statement).first()

    @staticmethod
    def _versions_hint(session: Session, model: RegisteredModel) -> str:
        live = list(session.exec(select(col(ModelVersion.version)).where(
            ModelVersion.model_id == model.id, col(ModelVersion.deleted_at).is_(None))
            .order_by(col(ModelVersion.version))))
        if not live:
            return "it has no live versions"
        shown = ", ".join(str(number) for number in live[-10:])
        return f"its live versions are {'..., ' if len(live) > 10 else ''}{shown}"

    @staticmethod
    def _aliases_hint(session: Session, model: RegisteredModel) -> str:
        names = list(session.exec(select(Alias.name).where(Alias.model_id == model.id).order_by(Alias.name)))
        existing = f"its aliases are {', '.join(names)}" if names else "it has no aliases"
        return f"{existing} ('latest' always means the newest version); set one with set_alias"

    @staticmethod
    def _model_records(session: Session, models: list[RegisteredModel]) -> list[ModelPublic]:
        ids = [_id(model) for model in models]
        stats: dict[int, tuple[int | None, int]] = {}
        aliases: dict[int, dict[str, int]] = {model_id: {} for model_id in ids}
        for chunk in records.chunks(ids):
            for model_id, newest, count in session.exec(
                    select(col(ModelVersion.model_id), func.max(ModelVersion.version), func.count())
                    .where(col(ModelVersion.model_id).in_(chunk), col(ModelVersion.deleted_at).is_(None))
                    .group_by(col(ModelVersion.model_id))):
                stats[model_id] = (newest, count)
            for model_id, alias, number in session.exec(
                    select(Alias.model_id, Alias.name, ModelVersion.version)
                    .join(ModelVersion, col(ModelVersion.id) == col(Alias.version_id))
                    .where(col(Alias.model_id).in_(chunk)).order_by(Alias.name)):
                aliases[model_id][alias] = number
        return [
            ModelPublic(publisher=model.publisher, name=model.name, description=model.description,
                        created_at=model.created_at, latest_version=stats.get(_id(model), (None, 0))[0],
                        version_count=stats.get(_id(model), (None, 0))[1], aliases=aliases[_id(model)])
            for model in models
        ]


def _id(row: RegisteredModel | ModelVersion) -> int:
    """The primary key of a row read from the database or flushed to it (None only before its first flush)."""
    if row.id is None:
        raise CatalogError(f"this {type(row).__name__} row was never written to the catalog, so it has no id")
    return row.id


def _check_alias(alias: str) -> None:
    if alias == LATEST:
        raise CatalogError("the alias 'latest' is reserved: it always means the newest version of a model, so it "
                           "cannot be set or removed; choose another alias name")
    validate_name(alias, "alias")


def _subject(model: RegisteredModel, version: ModelVersion) -> str:
    return f"{model.publisher}/{model.name}/{version.version}"


def _state(version: ModelVersion, model: RegisteredModel) -> dict:
    """A version as the audit log and webhook bodies describe it: handle, pinned URL, sha256 and what else
    identifies its bytes. The URL is the server's model URL when the change came through a server, else
    where the archive is stored."""
    base = current_base_url()
    handle = _subject(model, version)
    return {"version": version.version, "handle": handle, "format": version.format, "sha256": version.sha256,
            "size": version.size, "url": f"{base}/{handle}?{COMPRESSED_QUERY}" if base else version.artifact_uri,
            "deleted": version.deleted_at is not None}


def _conflict(legacy: str, owner: str, wanted: str) -> LegacyHandleConflict:
    return LegacyHandleConflict(f"the legacy handle {legacy} already names {owner}, so it cannot name {wanted} "
                                f"too; remove it there first (model-registry handles remove {owner} {legacy})")


def _number(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CatalogError(f"a version number is a whole number from 1, not {version!r}")
    return version
