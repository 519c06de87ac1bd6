"""The catalog's tables (SQLModel) and the public records built from them.

Alembic owns the schema (``alembic/``): change a table here, then add a
migration; ``tests/test_migrations.py`` fails while the two disagree.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Self

from pydantic import ValidationError, ValidationInfo, field_validator, model_validator
from sqlalchemy import JSON, BigInteger, Column, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from registry.adapter import SignatureInfo
from registry.catalog.interface import VersionLocation  # noqa: F401  (re-exported: defined where no database library is needed)
from registry.errors import MetadataError

#: The validation context of records read back (``VersionPublic.from_json``): input rules do not apply to them.
RECORDED = "recorded"


def is_recorded(info: ValidationInfo) -> bool:
    """Whether a validator is checking a record read back rather than input: input rules (a known licence...)
    then let the value through, as the recording side checked it with the rules it had."""
    return isinstance(info.context, dict) and bool(info.context.get(RECORDED))


def checked(model: type[SQLModel], values: Mapping[str, Any]):
    """``model`` validated from ``values``; unknown names and invalid values are one ``MetadataError`` naming each."""
    unknown = sorted(set(values) - set(model.model_fields))
    if unknown:
        raise MetadataError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                            f"the known fields are {', '.join(model.model_fields)}")
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        raise MetadataError("; ".join(_problem(problem) for problem in error.errors())) from None


def _problem(problem: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in problem.get("loc", ())) or "value"
    message = str(problem.get("msg", "invalid"))
    if problem.get("type") == "value_error":
        message = message.removeprefix("Value error, ")  # our validators' own words
    else:
        message = f"{message} (got {problem.get('input')!r:.80})"
    return f"{where}: {message}"


#: The SPDX License List this project ships: its identifiers, one a line, after a header naming its version.
SPDX_LICENSES = Path(__file__).with_name("spdx_licenses.txt")


@functools.cache
def spdx_licenses() -> tuple[str, dict[str, str]]:
    """(the list's version, {lower-cased identifier: identifier}), read once."""
    text = SPDX_LICENSES.read_text(encoding="utf-8")
    version = re.search(r"SPDX License List (\S+)", text)
    ids = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return (version.group(1) if version else "?"), {identifier.lower(): identifier for identifier in ids}


def spdx_identifier(text: str) -> Optional[str]:
    """``text`` as the SPDX identifier it names, in the list's case (``mit`` is ``MIT``); empty is None.

    Anything else is a ``ValueError`` naming the value and the closest identifier.
    """
    text = text.strip()
    if not text:
        return None
    version, known = spdx_licenses()
    found = known.get(text.lower())
    if found is not None:
        return found
    # A deprecated or shortened identifier names its successors' beginning (GPL-2.0: GPL-2.0-only, -or-later).
    close = sorted((key for key in known if key.startswith(text.lower())), key=len)[:2] or \
        difflib.get_close_matches(text.lower(), known, n=1, cutoff=0.6)
    hint = (f"; did you mean {' or '.join(known[key] for key in close)}?" if close
            else "; see https://spdx.org/licenses/")
    raise ValueError(f"{text!r} is not a licence identifier of the SPDX License List {version} (deprecated "
                     f"identifiers excluded){hint}")


#: The largest model card accepted, in bytes of UTF-8: a long card, not a book (pages show a bounded part of it).
MAX_CARD_BYTES = 1024 * 1024
#: The largest citation accepted, in bytes of UTF-8.
MAX_CITATION_BYTES = 16 * 1024
#: Most files a version's record lists (``VersionBase.files``); a page shows the count beside them.
MAX_LISTED_FILES = 1000
#: Most tags (datasets, languages) one version may list.
MAX_LABELS = 100
#: What a tag, data set or language may not contain: control characters, quotes and backslashes (they would
#: need escaping in every place a tag is shown or matched), and commas (the CLI's list separator).
_BAD_LABEL = re.compile(r'[\x00-\x1f\x7f"\\,]')


def checked_card(text: str) -> Optional[str]:
    """``text`` as a card: at most ``MAX_CARD_BYTES``, no NUL; blank is None (no card)."""
    if "\x00" in text:
        raise ValueError("a card is text: it may not contain NUL characters")
    size = len(text.encode("utf-8"))
    if size > MAX_CARD_BYTES:
        raise ValueError(f"a card is at most {MAX_CARD_BYTES // 1024} KiB of UTF-8; this one is "
                         f"{size / 1024:,.0f} KiB")
    return text if text.strip() else None


def checked_labels(values: Any, what: str, *, max_length: int = 128) -> list[str]:
    """Tags (data sets, languages) stripped, duplicates dropped; a bad one is a ``ValueError`` naming it."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{what} is a list of strings, not {type(values).__name__}")
    result: list[str] = []
    for value in values:
        label = str(value).strip()
        if not label or len(label) > max_length or _BAD_LABEL.search(label):
            raise ValueError(f"{label!r:.80} is not a valid entry of {what}: 1 to {max_length} characters, "
                             f"without quotes, backslashes, commas or control characters")
        if label not in result:
            result.append(label)
    if len(result) > MAX_LABELS:
        raise ValueError(f"{what} lists {len(result)} entries; at most {MAX_LABELS}")
    return result


def utcnow() -> datetime:
    """Now, timezone-aware in UTC (SQLModel's datetime columns refuse naive values)."""
    return datetime.now(timezone.utc)


class RegisteredModel(SQLModel, table=True):
    """A model: ``publisher/name`` and its description. Versions hang off it."""

    __tablename__ = "registered_model"
    __table_args__ = (UniqueConstraint("publisher", "name", name="uq_model_publisher_name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    publisher: str = Field(index=True, max_length=128)
    name: str = Field(index=True, max_length=128)
    description: str = Field(default="")
    created_at: datetime = Field(default_factory=utcnow)
    #: The last version number handed out; numbers are allocated by incrementing this row in the database.
    last_version: int = Field(default=0)


#: The mark ``filter_field`` puts in a field's JSON schema extras.
FILTER_MARK = "filter"


def filter_field(**field: Any) -> Any:
    """A ``VersionMetadata`` field that search accepts as an equality filter (``search(license="MIT")``)."""
    return Field(schema_extra={"json_schema_extra": {FILTER_MARK: True}}, **field)


class VersionMetadata(SQLModel):
    """What a publisher says about a version, declared once: every publish path carries this record.

    ``Registry.publish(..., description=...)``, the CLI's options and client
    mode's upload manifest all become this record, validated here; the catalog
    stores each field as a ``model_version`` column (a new field needs a
    migration) and the public record carries it back. A field marked with
    ``filter_field()`` is also a search filter (an equality on the version's column).
    Its validators are rules for input: a record read back is not checked again
    (see ``VersionPublic.from_json``).
    """

    description: str = Field(default="")
    #: An SPDX licence identifier of the list the project ships (``spdx_licenses.txt``), canonical case.
    license: Optional[str] = filter_field(default=None, max_length=64)
    #: The model card: Markdown (``README.md`` of the model directory, ``--card FILE``, ``card set``), at most
    #: ``MAX_CARD_BYTES``. Its front matter (or tfhub.dev metadata lines) fills the fields below that are not
    #: given (``registry.cards.parse``); editing it later changes the catalog only, never the artifact. Listings
    #: (``list_versions``, search results) leave its text out (None); ``get_version`` has it.
    card: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    #: Free-form tags (Hugging Face ``tags`` + ``pipeline_tag``; tfhub.dev ``task``, ``network-architecture``).
    #: The list columns are nullable only so that migration 0009 could add them without rebuilding the table
    #: (it fills existing rows with ``[]``); every row written since carries a list.
    tags: list[str] = filter_field(default_factory=list, sa_column=Column(JSON, nullable=True))
    #: Data sets it was trained or evaluated on (Hugging Face ``datasets``; tfhub.dev ``dataset``).
    datasets: list[str] = filter_field(default_factory=list, sa_column=Column(JSON, nullable=True))
    #: Natural languages it handles (ISO 639 codes by convention: ``en``, ``fr``...).
    language: list[str] = filter_field(default_factory=list, sa_column=Column(JSON, nullable=True))
    #: What it was fine-tuned or derived from, as its card names it (a hub id, a URL, a handle); the catalog's
    #: own lineage is ``parent``.
    base_model: Optional[str] = filter_field(default=None, max_length=256)
    #: How to cite it (BibTeX or plain text).
    citation: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))

    @field_validator("license")
    @classmethod
    def _spdx_identifier(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        return value if value is None or is_recorded(info) else spdx_identifier(value)

    @field_validator("card")
    @classmethod
    def _card(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        return value if value is None or is_recorded(info) else checked_card(value)

    @field_validator("tags", "datasets", "language", mode="before")
    @classmethod
    def _labels(cls, value: Any, info: ValidationInfo) -> Any:
        """One entry or a list of them (a search filter gives one: ``tags="vision"``)."""
        return value if is_recorded(info) else checked_labels(value, info.field_name or "value")

    @field_validator("base_model")
    @classmethod
    def _base_model(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        if value is None or is_recorded(info):
            return value
        return checked_labels([value], "base_model", max_length=256)[0] if value.strip() else None

    @field_validator("citation")
    @classmethod
    def _citation(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        if value is None or is_recorded(info):
            return value
        if len(value.encode("utf-8")) > MAX_CITATION_BYTES:
            raise ValueError(f"a citation is at most {MAX_CITATION_BYTES // 1024} KiB")
        return value.strip() or None

    @model_validator(mode="before")
    @classmethod
    def _fields_from_card(cls, values: Any, info: ValidationInfo) -> Any:
        """The fields the card's front matter names fill those not given with it (given ones win)."""
        if not isinstance(values, dict) or is_recorded(info) or not isinstance(values.get("card"), str):
            return values
        from registry.cards.parse import parse_card

        suggested = parse_card(values["card"]).fields
        return {**{name: value for name, value in suggested.items() if values.get(name) in (None, "", [])},
                **{name: value for name, value in values.items() if value not in (None, "", []) or
                   name not in suggested}}

    @classmethod
    def checked(cls, values: Mapping[str, Any]) -> Self:
        """The record of ``values``, or ``MetadataError`` naming each field that is unknown or invalid."""
        return checked(cls, values)

    def metadata_values(self) -> dict[str, Any]:
        """This record's ``VersionMetadata`` fields (a subclass's other fields left out)."""
        return {name: getattr(self, name) for name in VersionMetadata.model_fields}

    @classmethod
    def merged(cls, metadata: "VersionMetadata | Mapping[str, Any] | None", values: Mapping[str, Any]) -> Self:
        """``metadata`` (a record, a mapping or None) with ``values`` replacing its fields, validated."""
        if isinstance(metadata, VersionMetadata):
            base = metadata.metadata_values()
        elif isinstance(metadata, Mapping) or metadata is None:
            base = dict(metadata or {})
        else:
            raise MetadataError(f"metadata must be a VersionMetadata or a dict of its fields, not "
                                f"{type(metadata).__name__}")
        return cls.checked({**base, **values})

    @classmethod
    def split(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Remove this record's fields from ``options`` (keyword arguments of a publish) and return them."""
        return {name: options.pop(name) for name in list(options) if name in VersionMetadata.model_fields}


def filter_names() -> tuple[str, ...]:
    """The ``VersionMetadata`` fields search filters on, in declaration order."""
    return tuple(name for name, info in VersionMetadata.model_fields.items()
                 if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(FILTER_MARK))


def checked_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Search filters validated as the fields they filter on (``license="mit"`` is ``"MIT"``); a value that is
    or becomes None (unset) filters nothing.

    An unknown name or an invalid value is ``MetadataError``: a typo, not an empty result.
    """
    allowed = filter_names()
    unknown = sorted(set(filters) - set(allowed))
    if unknown:
        raise MetadataError(f"unknown search filter {', '.join(map(repr, unknown))}; versions can be filtered on "
                            f"{', '.join(allowed) or 'no metadata field'}")
    given = {name: value for name, value in filters.items() if value is not None}
    record = VersionMetadata.checked(given)
    return {name: getattr(record, name) for name in given if getattr(record, name) is not None}


#: What ``PublishManifest.idempotency_key`` may be.
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def checked_idempotency_key(value: Optional[str]) -> Optional[str]:
    if value is not None and not IDEMPOTENCY_KEY.fullmatch(value):
        raise ValueError("an idempotency key is 8 to 128 letters, digits and . _ : - (a fresh random one per "
                         "publish, sent again with its retries)")
    return value


def checked_legacy_handles(values: list[str]) -> list[str]:
    """Legacy handles (tfhub.dev, bucket, Kaggle: ``registry.legacy.handles``) in canonical form, each once, in
    the order given; a malformed one is a ``ValueError`` naming it."""
    from registry.errors import LegacyHandleError
    from registry.legacy.handles import normalise_all

    try:
        return normalise_all(values)
    except LegacyHandleError as error:
        raise ValueError(str(error)) from None


class PublishManifest(VersionMetadata):
    """What a publish says besides its model: the metadata, the parent, the tasks it claims.

    Client mode uploads it as JSON, the ``manifest`` part before the ``archive``
    (``registry.server.uploads``), so text of any reasonable size travels.
    """

    #: The catalog handle of the version this one was derived from (``publisher/model/N``).
    parent: Optional[str] = None
    #: Common signatures the model is claimed to implement (checked before anything is written).
    tasks: list[str] = []
    #: Chosen by the client for one publish and sent again with each retry of it: a retry whose first try was
    #: committed (its response lost) gets that version back instead of a second one (``ModelVersion``).
    idempotency_key: Optional[str] = None
    #: Legacy handles (``https://tfhub.dev/...``, Kaggle...) that name this version, normalised.
    legacy_handles: list[str] = []

    @field_validator("idempotency_key")
    @classmethod
    def _idempotency_key(cls, value: Optional[str]) -> Optional[str]:
        return checked_idempotency_key(value)

    @field_validator("legacy_handles")
    @classmethod
    def _legacy_handles(cls, value: list[str]) -> list[str]:
        return checked_legacy_handles(value)

    def version_metadata(self) -> VersionMetadata:
        """The ``VersionMetadata`` part (already validated)."""
        return VersionMetadata.model_construct(**self.metadata_values())


class VersionBase(VersionMetadata):
    """A version's own fields: what its publisher says, and what publishing read from its artifact."""

    format: str = Field(index=True, max_length=64)
    artifact_uri: str
    sha256: str = Field(index=True, max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: Graph-variant tag sets, each a sorted list of tags (``[[]]`` for a single default variant).
    tag_sets: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Format facts recorded at publish (attached messages, expected image size, ...).
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: The artifact's files, ``{"path", "size"}`` in path order, as publishing found them (at most
    #: ``MAX_LISTED_FILES``; ``file_count`` is the whole number). Empty for versions published before 0009.
    files: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=True))
    #: How many files the artifact holds (None: published before the catalog recorded it).
    file_count: Optional[int] = Field(default=None)


class ModelVersion(VersionBase, table=True):
    """One immutable published artifact of a model. Deleting hides it; its number is never reused."""

    __tablename__ = "model_version"
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_version_model_version"),
        # Search's per-model probe (newest live version, its format) from the index alone (migration 0003).
        Index("ix_version_by_model_live", "model_id", "deleted_at", "version", "format"),
        # Text search: the versions that have a description of their own, by model (migration 0004). The
        # description itself stays out of the key: PostgreSQL refuses B-tree entries over about 2.7 kB.
        Index("ix_version_described", "model_id", "deleted_at", "version", "format",
              sqlite_where=text("description <> ''"), postgresql_where=text("description <> ''")),
        # One version per publish however often it is retried (migration 0006); NULLs (local publishes) never clash.
        Index("uq_version_idempotency_key", "model_id", "idempotency_key", unique=True),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_model.id", index=True)
    version: int
    created_at: datetime = Field(default_factory=utcnow)
    parent_id: Optional[int] = Field(default=None, foreign_key="model_version.id", index=True)
    deleted_at: Optional[datetime] = Field(default=None)
    #: ``PublishManifest.idempotency_key`` of the publish that made it (None for a local publish).
    idempotency_key: Optional[str] = Field(default=None, max_length=128)


class VersionCreate(VersionBase):
    """The create record: everything ``CatalogBackend.create_version`` needs to record a new version.

    The publisher builds it from a ``VersionMetadata`` and what it read from the
    artifact; the catalog assigns the number, the time and the row ids.
    """

    publisher: str
    name: str
    signatures: list[SignatureInfo] = []
    #: Task records as the task checks produce them (``registry.catalog.records.TASK_KEYS``).
    tasks: list[dict[str, Any]] = []
    #: The catalog handle (``publisher/model/N``) of the version this one was derived from.
    parent: Optional[str] = None
    #: ``PublishManifest.idempotency_key``: a second create with it returns the first one's version.
    idempotency_key: Optional[str] = None
    #: Legacy handles naming the new version (``LegacyHandle`` rows), normalised; each unique in the catalog.
    legacy_handles: list[str] = []

    @field_validator("idempotency_key")
    @classmethod
    def _idempotency_key(cls, value: Optional[str]) -> Optional[str]:
        return checked_idempotency_key(value)

    @field_validator("legacy_handles")
    @classmethod
    def _legacy_handles(cls, value: list[str]) -> list[str]:
        return checked_legacy_handles(value)


class Alias(SQLModel, table=True):
    """A movable name for one version of a model (``publisher/model@alias``)."""

    __tablename__ = "alias"
    __table_args__ = (UniqueConstraint("model_id", "name", name="uq_alias_model_name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_model.id", index=True)
    name: str = Field(max_length=128)
    version_id: int = Field(foreign_key="model_version.id", index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class VersionLegacyHandle(SQLModel, table=True):
    """A legacy handle (``https://tfhub.dev/...``, a Kaggle model URL...) naming one version, in the canonical
    form ``registry.legacy.handles`` gives it: a version has any number, and each names one version only."""

    __tablename__ = "legacy_handle"
    __table_args__ = (UniqueConstraint("handle", name="uq_legacy_handle_handle"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="model_version.id", index=True)
    handle: str = Field(max_length=1024)
    created_at: datetime = Field(default_factory=utcnow)


class Signature(SQLModel, table=True):
    """One named signature of one graph variant of a version, with its inputs and outputs."""

    __tablename__ = "signature"
    __table_args__ = (UniqueConstraint("version_id", "tags", "name", name="uq_signature_version_tags_name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="model_version.id", index=True)
    #: The graph variant's tags, sorted and comma-joined ("" for the default variant).
    tags: str = Field(default="", max_length=256)
    name: str = Field(max_length=256)
    #: ``{input name: {"dtype", "shape", "kind"}}``
    inputs: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    outputs: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class VersionTask(SQLModel, table=True):
    """A common signature (task) a version was checked to implement, with indexed facts for search."""

    __tablename__ = "version_task"
    __table_args__ = (
        UniqueConstraint("version_id", "task", "tags", "signature", name="uq_task_version_task_sig"),
        Index("ix_task_search", "task", "image_height", "image_width", "output_dim"),
        # Does this version implement the task (with these facts)? From the index alone (migration 0003).
        Index("ix_task_by_version_facts", "version_id", "task", "image_height", "image_width", "output_dim"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="model_version.id", index=True)
    task: str = Field(max_length=64)
    #: Which signature (and graph variant) implements it.
    signature: str = Field(max_length=256)
    tags: str = Field(default="", max_length=256)
    output_dim: Optional[int] = Field(default=None)
    image_height: Optional[int] = Field(default=None)
    image_width: Optional[int] = Field(default=None)
    evidence: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


#: A word of the search index is at most this long (longer ones are cut: a prefix still finds them).
MAX_WORD_LENGTH = 64


class SearchWord(SQLModel, table=True):
    """One word of a version's searchable text: search's word index (``registry.catalog.search``, migration 0010).

    A search word matches the versions having a word it begins (``feat`` finds ``feature``): a range on the
    primary key, whose byte order (SQLite's BINARY, PostgreSQL's ``C`` collation) makes the range exact.
    """

    __tablename__ = "search_word"
    __table_args__ = (Index("ix_search_word_by_version", "version_id", "word"),)

    word: str = Field(sa_column=Column(String(MAX_WORD_LENGTH).with_variant(
        String(MAX_WORD_LENGTH, collation="C"), "postgresql"), primary_key=True))
    version_id: int = Field(foreign_key="model_version.id", primary_key=True)


class SearchNameWord(SQLModel, table=True):
    """One word of a model's own ``publisher`` and ``name``: what search's relevance ranks first
    (``registry.catalog.search``, migration 0011). The models whose name holds a search word are looked up here,
    never found by reading every model's name."""

    __tablename__ = "search_name_word"
    __table_args__ = (Index("ix_search_name_word_by_model", "model_id", "word"),)

    word: str = Field(sa_column=Column(String(MAX_WORD_LENGTH).with_variant(
        String(MAX_WORD_LENGTH, collation="C"), "postgresql"), primary_key=True))
    model_id: int = Field(foreign_key="registered_model.id", primary_key=True)


# Public records: plain values detached from any session, returned by the API.

class SignaturePublic(SQLModel):
    name: str
    tags: list[str]
    inputs: dict[str, Any]
    outputs: dict[str, Any]


class TaskPublic(SQLModel):
    task: str
    signature: str
    tags: list[str]
    output_dim: Optional[int] = None
    image_size: Optional[tuple[int, int]] = None
    evidence: dict[str, Any] = {}


class VersionPublic(VersionBase):
    """What ``registry.get_version`` and ``registry.publish`` return."""

    publisher: str
    model: str
    version: int
    created_at: datetime
    deleted: bool = False
    #: ``publisher/model/N`` of the version this one was derived from, if any.
    parent: Optional[str] = None
    aliases: list[str] = []
    signatures: list[SignaturePublic] = []
    tasks: list[TaskPublic] = []
    #: The legacy handles (tfhub.dev, Kaggle...) that name this version, canonical, sorted.
    legacy_handles: list[str] = []

    @classmethod
    def from_json(cls, body: Any) -> "VersionPublic":
        """A record a server sent, rebuilt: types are checked, but ``VersionMetadata``'s input rules are not
        applied again (the server applied its own when it recorded the version; a newer server may know more)."""
        return cls.model_validate(body, context={RECORDED: True})

    @property
    def model_name(self) -> str:
        return f"{self.publisher}/{self.model}"

    @property
    def handle(self) -> str:
        return f"{self.publisher}/{self.model}/{self.version}"


class VersionSummary(SQLModel):
    """One row of a model's version list: what a table of versions shows, without signatures or tasks."""

    publisher: str
    model: str
    version: int
    format: str
    sha256: str
    size: int
    created_at: datetime
    deleted: bool = False
    aliases: list[str] = []

    @property
    def handle(self) -> str:
        return f"{self.publisher}/{self.model}/{self.version}"


class ModelPublic(SQLModel):
    publisher: str
    name: str
    description: str
    created_at: datetime
    latest_version: Optional[int] = None
    version_count: int = 0
    aliases: dict[str, int] = {}

    @property
    def model_name(self) -> str:
        return f"{self.publisher}/{self.name}"


class PublisherCard(SQLModel, table=True):
    """A publisher's own card (Markdown), shown on its page ``/<publisher>``; at most one per publisher.

    A publisher is a name that models share, not a row of its own: this table holds only the publishers that
    wrote a card, and removing the card removes the row.
    """

    __tablename__ = "publisher_card"

    publisher: str = Field(primary_key=True, max_length=128)
    card: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class PublisherCardPublic(SQLModel):
    publisher: str
    card: Optional[str] = None
    updated_at: Optional[datetime] = None


class ApiToken(SQLModel, table=True):
    """A server access token: only its sha256 is stored; the token itself is shown once, at creation.

    Names identify tokens to people (``token revoke NAME``); a revoked token keeps
    its row (when it was revoked is worth knowing) and frees its name.
    """

    __tablename__ = "api_token"
    __table_args__ = (
        Index("uq_api_token_active_name", "name", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    #: "read", "publish" or "admin" (each includes the ones before it).
    scope: str = Field(max_length=16)
    #: When set, writes are limited to this publisher's models.
    publisher: Optional[str] = Field(default=None, max_length=128)
    #: Hex sha256 of the token; tokens are long random strings, so no salt or slow hash is needed.
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: Optional[datetime] = Field(default=None)


class TokenPublic(SQLModel):
    """What ``token list`` shows: never the token or its hash."""

    name: str
    scope: str
    publisher: Optional[str] = None
    created_at: datetime
    revoked: bool = False
