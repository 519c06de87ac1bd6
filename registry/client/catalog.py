"""``HttpCatalog``: the catalog interface (``registry.catalog.interface``) filled by a registry server.

Each method is one call to ``/api/v1`` and returns the same records a
``DatabaseCatalog`` does, rebuilt from JSON; errors come back as the same
``registry.errors`` types. ``locate`` points at the server's own model URL,
which client mode's artifact store (``registry.client.storage``) downloads
with the client's token, so a client needs no credentials for the bucket
behind the server. What a server does not offer is refused with a typed error.
"""

from __future__ import annotations

from typing import Any

from registry.catalog.interface import VersionLocation
from registry.client.connection import ServerConnection, quoted
from registry.errors import AccessDenied, CatalogError, QueryError
from registry.handles import LATEST, CatalogHandle
from registry.handles import catalog_handle as _handle

#: Items asked for per page when following a listing to its end.
PAGE = 500


def version_ref(handle: CatalogHandle) -> str:
    """The ``{ref}`` of ``/api/v1/models/{p}/{m}/versions/{ref}``: a number, ``latest`` or ``@alias``."""
    if handle.version is not None:
        return str(handle.version)
    if handle.alias is not None and handle.alias != LATEST:
        return f"@{handle.alias}"
    return "latest"


class HttpCatalog:
    """The catalog of the registry server at ``connection.url``."""

    is_local = False

    def __init__(self, connection: ServerConnection):
        self.connection = connection
        self.identity = f"server {connection.url}"

    def __repr__(self) -> str:
        return f"HttpCatalog({self.connection.url!r})"

    def close(self) -> None:
        pass

    def ping(self) -> None:
        """Return when the server answers and its catalog does (its ``/healthz``); else a typed error."""
        self.connection.call("GET", "/healthz")

    # -- reads ----------------------------------------------------------------------------------------------------

    def locate(self, handle) -> VersionLocation:
        h = _handle(handle)
        body = self.connection.call("GET", self._version_path(h) + "/location")
        return VersionLocation(publisher=body["publisher"], model=body["model"], version=int(body["version"]),
                               format=body["format"], artifact_uri=body["url"], sha256=body["sha256"],
                               size=int(body["size"]))

    def get_version(self, handle, *, include_deleted: bool = False, at=None):
        h = _handle(handle)
        body = self.connection.call("GET", self._version_path(h),
                                    params={"include_deleted": "true" if include_deleted else None,
                                            "at": _instant(at)})
        return _version(body)

    def revision(self, *, publisher: str, name: str) -> int | None:
        """None: a server's records are validated over HTTP (its ETags), not by a revision number."""
        return None

    def alias_history(self, handle):
        from registry.catalog.audit import AliasInterval

        h = _handle(handle)
        if h.alias is None or h.alias == LATEST or h.version is not None:
            raise CatalogError(f"alias history is of an alias (publisher/model@alias), not {h}")
        body = self.connection.call("GET", quoted("api", "v1", "models", h.publisher, h.model, "aliases", h.alias,
                                                  "history"))
        return [AliasInterval.model_validate(item) for item in body["items"]]

    def download_counts(self, *, publisher: str, name: str):
        body = self.connection.call("GET", quoted("api", "v1", "models", publisher, name, "downloads"))
        return {int(version): int(n) for version, n in body["versions"].items()}

    def get_model(self, *, publisher: str, name: str):
        from registry.catalog.models import ModelPublic

        return ModelPublic.model_validate(self.connection.call("GET", quoted("api", "v1", "models", publisher, name)))

    def list_models(self, *, publisher: str | None = None, limit: int | None = None, after: str | None = None):
        from registry.catalog.models import ModelPublic

        items = self._pages("/api/v1/models", {"publisher": publisher}, limit=limit, after=after)
        return [ModelPublic.model_validate(item) for item in items]

    def list_versions(self, *, publisher: str, name: str, include_deleted: bool = False):
        body = self.connection.call("GET", quoted("api", "v1", "models", publisher, name, "versions"),
                                    params={"include_deleted": "true" if include_deleted else None})
        return [_version(item) for item in body["items"]]

    def version_summaries(self, *, publisher: str, name: str, include_deleted: bool = False):
        from registry.catalog.models import VersionSummary

        return [VersionSummary.model_validate(v.model_dump()) for v in
                self.list_versions(publisher=publisher, name=name, include_deleted=include_deleted)]

    def lineage(self, handle):
        body = self.connection.call("GET", self._version_path(_handle(handle)) + "/lineage")
        return [_version(item) for item in body["items"]]

    def children(self, handle):
        body = self.connection.call("GET", self._version_path(_handle(handle)) + "/children")
        return [_version(item) for item in body["items"]]

    def search(self, *, task=None, image_size=None, output_dim=None, format=None, publisher=None, text=None,
               limit: int | None = 100, after: str | None = None, handles_only: bool = False,
               filters: dict[str, Any] | None = None, sort: str | None = None, **unknown: Any):
        if unknown:
            raise QueryError(f"unknown search criteria: {', '.join(sorted(unknown))}")
        size = None
        if image_size is not None:
            height, width = image_size
            size = f"{int(height)}x{int(width)}"
        # Metadata filters travel as query parameters of their own name (``/api/v1/search?license=MIT``).
        params = {**(filters or {}), "task": task, "image_size": size, "output_dim": output_dim, "format": format,
                  "publisher": publisher, "q": text, "sort": sort or "name"}
        found = [_version(item) for item in self._pages("/api/v1/search", params, limit=limit, after=after)]
        return [v.handle for v in found] if handles_only else found

    def publishers(self) -> list[str]:
        return list(self.connection.call("GET", "/api/v1/publishers")["items"])

    def find(self, query):
        """The server's search by need: the same query string its page and ``GET /api/v1/search`` take."""
        from registry.catalog.search import SearchResults

        body = self.connection.call("GET", "/api/v1/search", params=query.params())
        return SearchResults([_version(item) for item in body["items"]], body["total"], body["page"], body["limit"],
                             body["sort"], body.get("total_exact", True))

    def _pages(self, path: str, params: dict, *, limit: int | None, after: str | None) -> list[dict]:
        """Follow a keyset-paginated listing until ``limit`` items (or its end)."""
        items: list[dict] = []
        while limit is None or len(items) < limit:
            want = PAGE if limit is None else min(PAGE, limit - len(items))
            body = self.connection.call("GET", path, params={**params, "limit": want, "after": after})
            items += body["items"]
            after = body.get("next")
            if not after:
                break
        return items

    # -- writes ---------------------------------------------------------------------------------------------------

    def create_version(self, record):
        raise CatalogError("a registry server takes new versions by upload (registry.publish), not as catalog rows")

    def set_alias(self, *, publisher: str, name: str, alias: str, version: int):
        body = self.connection.call("PUT", quoted("api", "v1", "models", publisher, name, "aliases", alias),
                                    body={"version": version})
        return _version(body)

    def remove_alias(self, *, publisher: str, name: str, alias: str) -> None:
        self.connection.call("DELETE", quoted("api", "v1", "models", publisher, name, "aliases", alias))

    def delete_version(self, *, publisher: str, name: str, version: int):
        return _version(self.connection.call("DELETE", quoted("api", "v1", "models", publisher, name, "versions",
                                                              str(version))))

    def add_legacy_handles(self, handle, legacy):
        path = self._version_path(_handle(handle)) + "/legacy-handles"
        return _version(self.connection.call("POST", path, body={"handles": list(legacy)}))

    def remove_legacy_handles(self, handle, legacy):
        path = self._version_path(_handle(handle)) + "/legacy-handles/remove"
        return _version(self.connection.call("POST", path, body={"handles": list(legacy)}))

    def find_legacy_handle(self, legacy: str):
        from registry.legacy.handles import normalise_legacy_handle

        body = self.connection.call("GET", "/api/v1/legacy-handles/find",
                                    params={"handle": normalise_legacy_handle(legacy)})
        return _version(body["version"]) if body.get("version") is not None else None

    def list_legacy_handles(self):
        body = self.connection.call("GET", "/api/v1/legacy-handles")
        return {item["legacy_handle"]: item["version"] for item in body["items"]}

    @property
    def tokens(self) -> "RemoteTokens":
        return RemoteTokens(self.connection)

    @property
    def audit(self) -> "RemoteAudit":
        return RemoteAudit(self.connection)

    @staticmethod
    def _version_path(handle: CatalogHandle) -> str:
        return quoted("api", "v1", "models", handle.publisher, handle.model, "versions", version_ref(handle))


class RemoteTokens:
    """Token administration through the server (needs an admin token): the ``TokenStore`` methods."""

    def __init__(self, connection: ServerConnection):
        self.connection = connection

    def create(self, *, name: str, scope: str, publisher: str | None = None):
        from registry.catalog.models import TokenPublic

        body = self.connection.call("POST", "/api/v1/tokens", body={"name": name, "scope": scope,
                                                                    "publisher": publisher})
        return body.pop("token"), TokenPublic.model_validate(body)

    def list(self, *, include_revoked: bool = False):
        from registry.catalog.models import TokenPublic

        body = self.connection.call("GET", "/api/v1/tokens",
                                    params={"include_revoked": "true" if include_revoked else None})
        return [TokenPublic.model_validate(item) for item in body["items"]]

    def revoke(self, name: str):
        from registry.catalog.models import TokenPublic

        return TokenPublic.model_validate(self.connection.call("DELETE", quoted("api", "v1", "tokens", name)))

    def authenticate(self, token: str):
        """Refused: only the server that keeps the tokens checks one (a client's token is checked on each call)."""
        raise AccessDenied(f"tokens are checked by the registry server that keeps them ({self.connection.url}), "
                           f"not by a client")


class RemoteCards:
    """Card edits through the server (a publish token for the publisher): ``registry.catalog.cards.CardStore``."""

    def __init__(self, connection: ServerConnection):
        self.connection = connection

    def set_version_card(self, handle, card: str | None):
        return _version(self.connection.call("PUT", HttpCatalog._version_path(_handle(handle)) + "/card",
                                             body={"card": card}))

    def publisher_card(self, publisher: str):
        from registry.catalog.models import PublisherCardPublic

        return PublisherCardPublic.model_validate(self.connection.call("GET", quoted("api", "v1", "publishers",
                                                                                     publisher, "card")))

    def set_publisher_card(self, publisher: str, card: str | None):
        from registry.catalog.models import PublisherCardPublic

        return PublisherCardPublic.model_validate(self.connection.call(
            "PUT", quoted("api", "v1", "publishers", publisher, "card"), body={"card": card}))


class RemoteAudit:
    """The server's audit log (needs an admin token): ``AuditLog.entries``."""

    def __init__(self, connection: ServerConnection):
        self.connection = connection

    def entries(self, *, since=None, until=None, model: str | None = None, actor: str | None = None,
                action: str | None = None, limit: int = 100, after: str | int | None = None):
        from registry.catalog.audit import AuditRecord

        body = self.connection.call("GET", "/api/v1/audit", params={
            "since": _instant(since), "until": _instant(until), "model": model, "actor": actor, "action": action,
            "limit": limit, "after": after})
        return [AuditRecord.model_validate(item) for item in body["items"]]


def _instant(moment) -> str | None:
    """A moment as the API takes it: ISO 8601 in UTC (a naive datetime is local time)."""
    if moment is None:
        return None
    from datetime import timezone

    return moment.astimezone(timezone.utc).isoformat()


def _version(body: dict):
    from registry.catalog.models import VersionPublic

    return VersionPublic.from_json(body)
