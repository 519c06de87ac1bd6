"""What the rest of the registry needs from a catalog, and nothing more.

``CatalogBackend`` is the seam: the resolver, the publisher and the API talk
to this interface, never to SQL. ``DatabaseCatalog`` (SQLite or PostgreSQL)
fills it today; a catalog served over HTTP fills it the same way. Nothing in
this module imports a database library, so loading a model does not pay for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from registry.catalog.models import ModelPublic, VersionCreate, VersionPublic, VersionSummary
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
class CatalogBackend(Protocol):
    """Models, numbered versions, aliases, lineage and tasks. Raises only ``registry.errors`` types."""

    #: Names this catalog in cache refs (a database URL without its password, a server URL...).
    identity: str
    #: True when reading it never touches the network (an SQLite file): offline mode may still use it.
    is_local: bool

    def locate(self, handle: "CatalogHandle | str") -> VersionLocation: ...

    def get_version(self, handle: "CatalogHandle | str", *, include_deleted: bool = False) -> "VersionPublic": ...

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

    def create_version(self, record: "VersionCreate") -> "VersionPublic":
        """Record ``record`` as the next version of its model (the one create record every publish path builds)."""

    def set_alias(self, *, publisher: str, name: str, alias: str, version: int) -> "VersionPublic": ...

    def remove_alias(self, *, publisher: str, name: str, alias: str) -> None: ...

    def delete_version(self, *, publisher: str, name: str, version: int) -> "VersionPublic": ...

    def close(self) -> None: ...
