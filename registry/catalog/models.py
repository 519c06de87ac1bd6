"""The catalog's tables (SQLModel) and the public records built from them.

Alembic owns the schema (``alembic/``): change a table here, then add a
migration; ``tests/test_migrations.py`` fails while the two disagree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from registry.catalog.interface import VersionLocation  # noqa: F401  (re-exported: defined where no database library is needed)


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


class ModelVersion(SQLModel, table=True):
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
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_model.id", index=True)
    version: int
    format: str = Field(index=True, max_length=64)
    artifact_uri: str
    sha256: str = Field(index=True, max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: Graph-variant tag sets, each a sorted list of tags (``[[]]`` for a single default variant).
    tag_sets: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Format facts recorded at publish (attached messages, expected image size, ...).
    details: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    description: str = Field(default="")
    created_at: datetime = Field(default_factory=utcnow)
    parent_id: Optional[int] = Field(default=None, foreign_key="model_version.id", index=True)
    deleted_at: Optional[datetime] = Field(default=None)


class Alias(SQLModel, table=True):
    """A movable name for one version of a model (``publisher/model@alias``)."""

    __tablename__ = "alias"
    __table_args__ = (UniqueConstraint("model_id", "name", name="uq_alias_model_name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_model.id", index=True)
    name: str = Field(max_length=128)
    version_id: int = Field(foreign_key="model_version.id", index=True)
    updated_at: datetime = Field(default_factory=utcnow)


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


class VersionPublic(SQLModel):
    """What ``registry.get_version`` and ``registry.publish`` return."""

    publisher: str
    model: str
    version: int
    format: str
    artifact_uri: str
    sha256: str
    size: int
    tag_sets: list[list[str]]
    details: dict[str, Any] = {}
    description: str = ""
    created_at: datetime
    deleted: bool = False
    #: ``publisher/model/N`` of the version this one was derived from, if any.
    parent: Optional[str] = None
    aliases: list[str] = []
    signatures: list[SignaturePublic] = []
    tasks: list[TaskPublic] = []

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
