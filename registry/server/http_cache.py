"""HTTP validators and freshness for version reads: strong ETags, ``304 Not Modified``, ``Cache-Control``.

**ETags of version JSON** are made without the record: of the URL's handle, the
base URL the body's links are made of, a stamp of the code that renders records
(package version, the record's JSON schema, the format matrix rows the API adds),
and the model's *revision* (``registry.catalog.record_cache``: the newest audit
entry about the model, which every catalog write adds). Anything that changes what
a record says — a publish, a deletion, an alias set, moved or removed, and any
later editable field written the way every catalog write is — changes the revision,
so the ETag; so a request carrying a current ETag gets its ``304`` after one
indexed query and no record built. (A change to any version of a model changes
every version's ETag of that model: a revalidation after a publish costs a full
answer once, never a stale one.)

**Pages** depend on more than the revision (download counts, the signed-in state);
their ETag is the hash of the rendered page, so a ``304`` saves the transfer, not
the rendering.

**Cache-Control.** A pinned URL (``/publisher/model/N``) names one version for
ever, but its record is not frozen: it lists the aliases that name it, says whether
it was deleted, and carries editable fields; so it is fresh for
``PINNED_MAX_AGE_S`` and then revalidated, never ``immutable`` (the archive's bytes
are what never change). Aliases and "newest" are ``no-cache``: every use
revalidates (cheaply, with the ETag). Where reads need a token
(``MODEL_REGISTRY_REQUIRE_READ_TOKEN``) every answer is ``private``: a shared cache
(a CDN, a company proxy) must not hand a token-protected record to a caller without
one; with open reads the same body goes to everyone, so it is ``public``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

if TYPE_CHECKING:
    from registry.api import Registry
    from registry.handles import CatalogHandle

#: Seconds a shared or private cache may reuse a pinned version's JSON or page without asking again.
PINNED_MAX_AGE_S = 60
#: The headers a 304 repeats from the 200 it stands for (RFC 9110, 15.4.5).
_REPEATED = ("etag", "cache-control", "vary", "content-location")


def cache_control(*, pinned: bool, private: bool) -> str:
    """The ``Cache-Control`` of a version's JSON or page (see the module's docstring)."""
    audience = "private" if private else "public"
    return f"{audience}, max-age={PINNED_MAX_AGE_S}" if pinned else f"{audience}, no-cache"


def matches(request: Request, etag: str) -> bool:
    """Whether the request's ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 wants for it)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def not_modified(headers: dict[str, str]) -> Response:
    return Response(status_code=304, headers={k: v for k, v in headers.items() if k.lower() in _REPEATED})


def _code_stamp(request: Request, registry: "Registry") -> str:
    """What, besides the catalog, decides a version's JSON: computed once per application."""
    stamp = getattr(request.app.state, "record_stamp", None)
    if stamp is None:
        from registry.catalog.models import VersionPublic

        material = json.dumps([request.app.version, VersionPublic.model_json_schema(),
                               sorted(repr(cell) for cell in registry.matrix)], sort_keys=True, default=str)
        stamp = hashlib.sha256(material.encode()).hexdigest()[:16]
        request.app.state.record_stamp = stamp
    return stamp


class VersionValidators:
    """The ETag and ``Cache-Control`` of one version-JSON URL, known before its record is read."""

    def __init__(self, etag: str, cache_control: str):
        self.headers = {"ETag": etag, "Cache-Control": cache_control}

    @classmethod
    def of(cls, request: Request, registry: "Registry", handle: "CatalogHandle", *, include_deleted: bool,
           private: bool) -> "VersionValidators | None":
        """The URL's validators, or None when the catalog cannot tell its revision (or has no such model: the
        read then answers the error)."""
        revision = registry.catalog.revision(publisher=handle.publisher, name=handle.model)
        if revision is None:
            return None
        return cls.at_revision(request, registry, handle, revision, include_deleted=include_deleted, private=private)

    @classmethod
    def at_revision(cls, request: Request, registry: "Registry", handle: "CatalogHandle", revision: int, *,
                    include_deleted: bool, private: bool) -> "VersionValidators":
        """The URL's validators while its model is at ``revision`` (read by the caller)."""
        material = f"{_code_stamp(request, registry)}|{request.base_url}|{handle}|{int(include_deleted)}|{revision}"
        etag = '"' + hashlib.sha256(material.encode()).hexdigest()[:32] + '"'
        return cls(etag, cache_control(pinned=handle.pinned, private=private))

    def fresh(self, request: Request) -> bool:
        return matches(request, self.headers["ETag"])

    def not_modified(self) -> Response:
        return not_modified(self.headers)

    @functools.cached_property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The validators as an ASGI ``http.response.start`` message's headers (made once: the 304 shortcut
        keeps validators and sends them again)."""
        return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers.items()]

    def json(self, body: Any) -> JSONResponse:
        return JSONResponse(body, headers=self.headers)


def page_validated(request: Request, response: Response, *, pinned: bool, private: bool) -> Response:
    """A rendered page (200) with its ETag (its body's hash) and ``Cache-Control``; a 304 if the request has it."""
    if response.status_code != 200:
        return response
    body = bytes(response.body)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache_control(pinned=pinned, private=private)
    if matches(request, etag):
        return not_modified(dict(response.headers))
    return response


#: The version-JSON route's path, in segments: ``/api/v1/models/{publisher}/{model}/versions/{ref}``.
_VERSION_PATH = ("", "api", "v1", "models", None, None, "versions", None)


class NotModifiedShortcut:
    """ASGI middleware: an anonymous ``If-None-Match`` revalidation of version JSON answered before routing.

    The ``304`` itself is one indexed query (the model's revision) and a comparison with the validators, made
    once per URL, host and revision and then kept; what a route costs around it — routing, the dependencies, a
    worker-thread hop, the response machinery — was most of its time, so revalidations ran at the rate of
    full answers. This answers them first (in front of FastAPI:
    ``registry.server.front_door``), when nothing else could decide the answer: a GET of the version route
    with ``If-None-Match``, no query but ``include_deleted``, reads open (``MODEL_REGISTRY_REQUIRE_READ_TOKEN``
    unset) and no credential sent (a token, even on an open server, is checked by the route, which refuses a
    bad one). Anything else, a stale ETag, a handle the catalog does not know, or any failure here goes on to
    the route, which answers as always. On an SQLite catalog the query runs on the event loop (tens of
    microseconds); on a server database, on a worker thread. The ``304`` goes out as two ASGI messages, the
    validators as headers (what ``not_modified`` would send, without building a ``Response``).
    """

    #: Validators kept at most (emptied when full); each is keyed by everything its ETag is made of.
    LIMIT = 4096

    def __init__(self, app: Any):
        self.app = app
        self._known: dict[tuple, VersionValidators] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            try:
                found = await self._not_modified(scope)
            except Exception:  # noqa: BLE001 - the route answers the request, and its error handling reports
                found = None
            if found is not None:
                await send({"type": "http.response.start", "status": 304, "headers": found.raw_headers})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)

    async def _not_modified(self, scope: dict) -> VersionValidators | None:
        """The validators to answer a 304 with, or None when the route must answer."""
        from starlette.concurrency import run_in_threadpool

        from registry.server.auth import open_anonymous_read
        from registry.server.deps import get_registry, get_server_settings, handle_for

        segments = scope["path"].split("/")
        if len(segments) != len(_VERSION_PATH) or any(
                fixed is not None and fixed != part for fixed, part in zip(_VERSION_PATH, segments, strict=True)):
            return None
        request = Request(scope)
        if not request.headers.get("if-none-match"):
            return None
        include_deleted = "false"
        if scope["query_string"]:
            if set(request.query_params) - {"include_deleted"}:
                return None
            include_deleted = request.query_params.get("include_deleted", "false").lower()
            if include_deleted not in ("true", "false", "1", "0"):
                return None
        if not open_anonymous_read(request, await get_server_settings(request)):
            return None
        registry = await get_registry(request)

        def validators() -> VersionValidators | None:
            # What the ETag is made of, but the code stamp (one per application): the model's revision, the
            # URL (handle and include_deleted) and the base URL's parts. Known, the validators are reused;
            # else made as the route makes them at this revision (parsing the handle checks it).
            revision = registry.catalog.revision(publisher=segments[4], name=segments[5])
            if revision is None:
                return None
            key = (revision, scope["path"], scope["query_string"], request.headers.get("host"),
                   scope.get("scheme"), scope.get("server"), scope.get("app_root_path"), scope.get("root_path"))
            known = self._known.get(key)
            if known is None:
                handle = handle_for(segments[4], segments[5], segments[7])
                known = VersionValidators.at_revision(request, registry, handle, revision,
                                                      include_deleted=include_deleted in ("true", "1"), private=False)
                if len(self._known) >= self.LIMIT:
                    self._known.clear()
                self._known[key] = known
            return known

        # A RegistryError (a handle the catalog refuses, a catalog error) goes on to the route, which says what is
        # wrong (``__call__``).
        found = validators() if registry.catalog.is_local else await run_in_threadpool(validators)
        return found if found is not None and found.fresh(request) else None
