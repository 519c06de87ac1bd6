"""What the rest of the registry needs from a catalog, and nothing more.

``CatalogBackend`` is the seam: the resolver, the publisher, the API, the
server's routes and the CLI talk to this interface, never to SQL, and use
nothing it does not declare. ``DatabaseCatalog`` (SQLite or PostgreSQL) and
``HttpCatalog`` (a registry server, ``registry.client.catalog``) both fill all
of it, or refuse an operation with a ``registry.errors`` type. Artifacts'
bytes are not the catalog's: they are read and written through the storage
seam (``registry.storage.artifacts``). Nothing in this module imports a
database library, so loading a model does not pay for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from datetime import datetime

    from registry.access import Grant
    from registry.catalog.audit import AliasInterval, AuditRecord
    from registry.catalog.models import ModelPublic, TokenPublic, VersionCreate, VersionPublic, VersionSummary
    from registry.catalog.search import SearchQuery, SearchResults
    from registry.handles import CatalogHandle


class VersionLocation(NamedTuple):
    """Just what loading a version needs: where its artifact is and how to check and read it."""

    publisher: str
    model: str
    version: int
    format: str
    artifact_uri: str
    sha256: str
    size: int

    @property
    def handle(self) -> str:
        return f"{self.publisher}/{self.model}/{self.version}"


@runtime_checkable
class TokenBackend(Protocol):
    """The server's access tokens, kept with the catalog (``registry.catalog.tokens.TokenStore``)."""

    def create(self, *, name: str, scope: str, publisher: str | None = None) -> "tuple[str, TokenPublic]":
        """A new token and its public record; the token itself is shown once and kept nowhere."""
        ...

    def list(self, *, include_revoked: bool = False) -> "list[TokenPublic]": ...

    def revoke(self, name: str) -> "TokenPublic": ...

    def authenticate(self, token: str) -> "Grant | None":
        """The grant of a live token, or None for an unknown or revoked one."""
        ...


@runtime_checkable
class AuditBackend(Protocol):
    """The catalog's audit log (``registry.catalog.audit.AuditLog``): read only, newest first, paged by key."""

    def entries(self, *, since: "datetime | None" = None, until: "datetime | None" = None, model: str | None = None,
                actor: str | None = None, action: str | None = None, limit: int = 100,
                after: str | int | None = None) -> "list[AuditRecord]": ...


@runtime_checkable
class CatalogBackend(Protocol):
    """Models, numbered versions, aliases, lineage and tasks. Raises only ``registry.errors`` types."""

    #: Names this catalog in cache refs (a database URL without its password, a server URL...).
    identity: str
    #: True when reading it never touches the network (an SQLite file): offline mode may still use it.
    is_local: bool

    def locate(self, handle: "CatalogHandle | str") -> VersionLocation: ...

    def get_version(self, handle: "CatalogHandle | str", *, include_deleted: bool = False,
                    at: "datetime | None" = None) -> "VersionPublic":
        """The version ``handle`` names now, or with ``at``, the one it named at that moment."""
        ...

    def revision(self, *, publisher: str, name: str) -> "int | None":
        """A number that changes whenever anything any version record of the model says changes (a publish, a
        deletion, an alias, any later edit), on every process over this catalog: what HTTP validators are made
        of (``registry.catalog.record_cache``). None when this catalog cannot tell cheaply."""
        ...

    def alias_history(self, handle: "CatalogHandle | str") -> "list[AliasInterval]":
        """Every version an alias (``publisher/model@alias``) has named, oldest first, with interval and actor."""
        ...

    def download_counts(self, *, publisher: str, name: str) -> "dict[int, int]":
        """{version number: downloads served} of the model's downloaded versions."""
        ...

    def get_model(self, *, publisher: str, name: str) -> "ModelPublic": ...

    def list_models(self, *, publisher: str | None = None, limit: int | None = None,
                    after: str | None = None) -> "list[ModelPublic]": ...

    def list_versions(self, *, publisher: str, name: str,
                      include_deleted: bool = False) -> "list[VersionPublic]": ...

    def version_summaries(self, *, publisher: str, name: str,
                          include_deleted: bool = False) -> "list[VersionSummary]": ...

    def lineage(self, handle: "CatalogHandle | str") -> "list[VersionPublic]": ...

    def children(self, handle: "CatalogHandle | str") -> "list[VersionPublic]": ...

    def search(self, **criteria: Any) -> "list[VersionPublic] | list[str]": ...

    def publishers(self) -> list[str]:
        """Every publisher that has a model, by name (the search form's choice)."""
        ...

    def find(self, query: "SearchQuery") -> "SearchResults":
        """One page of a search by words, filters and sort (``registry.catalog.search.find``)."""
        ...

    def create_version(self, record: "VersionCreate") -> "VersionPublic":
        """Record ``record`` as the next version of its model (the one create record every publish path builds)."""

    def set_alias(self, *, publisher: str, name: str, alias: str, version: int) -> "VersionPublic": ...

    def remove_alias(self, *, publisher: str, name: str, alias: str) -> None: ...

    def delete_version(self, *, publisher: str, name: str, version: int) -> "VersionPublic": ...

    def add_legacy_handles(self, handle: "CatalogHandle | str", legacy: "list[str]") -> "VersionPublic":
        """Record legacy handles (any spelling; stored canonical, ``registry.legacy.handles``) as names of the
        version; one naming another version is ``LegacyHandleConflict``."""
        ...

    def remove_legacy_handles(self, handle: "CatalogHandle | str", legacy: "list[str]") -> "VersionPublic": ...

    def find_legacy_handle(self, legacy: str) -> "VersionPublic | None":
        """The version a legacy handle (any spelling) names, or None when none does; an unversioned one names
        the version with the highest legacy version number. A deleted version comes back marked deleted."""
        ...

    def list_legacy_handles(self) -> "dict[str, str]":
        """{canonical legacy handle: ``publisher/model/N``} of every legacy handle the catalog records."""
        ...

    def close(self) -> None: ...

    def ping(self) -> None:
        """Return when the catalog answers; raise a typed error saying why not (the server's health check)."""
        ...

    @property
    def tokens(self) -> TokenBackend:
        """Token administration and checks for the server that serves this catalog."""
        ...

    @property
    def audit(self) -> AuditBackend:
        """Every change to this catalog: who, what, when, before and after."""
        ...
