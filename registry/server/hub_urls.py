"""tfhub.dev's model URLs: ``/{publisher}/{model}[/{version}|@{alias}]``.

With ``?tf-hub-format=compressed`` (what tensorflow_hub, DJL and
``curl | tar xz`` send) the answer is the version's ``.tar.gz``, whose root is
the model directory. Without the query a browser gets the model's page. The
hub client caches a URL forever and never revalidates, so pages steer its
users to pinned version URLs (``/publisher/model/3``); the unpinned forms work
but a hub client keeps whatever it downloaded first.

``?tf-hub-format=uncompressed`` (``TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED``) asks
for a ``gs://`` directory the client reads in place; this server keeps only
archives, so it answers 400 saying to use the compressed format.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from registry.access import Grant
from registry.errors import HandleError, ModelNotFound, VersionNotFound
from registry.handles import COMPRESSED_QUERY
from registry.server import web_pages
from registry.server.auth import ACCESS_ATTRIBUTE, READ, access_rule
from registry.server.deps import RegistryDep, ServerSettingsDep, handle_for
from registry.server.downloads import send_archive, wants_archive
from registry.server.legacy_answers import legacy_answer

router = APIRouter(include_in_schema=False)

HubFormat = Annotated[str | None, Query(alias="tf-hub-format")]


async def model_url_reader(request: Request, registry: RegistryDep, settings: ServerSettingsDep,
                           hub_format: HubFormat = None) -> Grant | None:
    """The read check of a model URL: a page's (refused in HTML) without ``?tf-hub-format``, else a download's."""
    if hub_format is None:
        return await web_pages.page_reader(request, registry, settings)
    return await READ(request, registry, settings)


setattr(model_url_reader, ACCESS_ATTRIBUTE, access_rule(READ))


def _split_alias(model_ref: str) -> tuple[str, str | None]:
    model, sep, alias = model_ref.partition("@")
    return model, (alias if sep else None)


async def _answer(request: Request, registry, settings, publisher: str, model: str, ref: str | None,
                  hub_format: str | None):
    """The catalog's version; a path that names none may be a tfhub.dev path (``registry.server.legacy_answers``)."""
    tfhub = ref is None or ref.isdigit()  # an alias is no tfhub.dev path
    spelled = "/".join(["https://tfhub.dev", publisher, model, *([ref] if ref else [])])
    try:
        answer = await _catalog_answer(request, registry, settings, publisher, model, ref, hub_format)
    except (HandleError, ModelNotFound, VersionNotFound):
        legacy = (await legacy_answer(request, registry, settings, spelled, download=hub_format is not None)
                  if tfhub else None)
        if legacy is None:
            raise
        return legacy
    if tfhub and hub_format is None and answer.status_code == 404:  # the page of no catalog version
        legacy = await legacy_answer(request, registry, settings, spelled, download=False)
        if legacy is not None:
            return legacy
    return answer


async def _catalog_answer(request: Request, registry, settings, publisher: str, model: str, ref: str | None,
                          hub_format: str | None):
    handle = handle_for(publisher, model, ref)
    if not wants_archive(hub_format):
        return await web_pages.model_page(request, registry, settings.require_read_token, handle)
    return await send_archive(request, registry, settings, handle, pinned=handle.pinned)


@router.api_route("/{publisher}/{model_ref}", methods=["GET", "HEAD"], name="model_url",
                  dependencies=[Depends(model_url_reader)])
async def model_url(request: Request, registry: RegistryDep, settings: ServerSettingsDep, publisher: str,
                    model_ref: str, hub_format: HubFormat = None):
    model, alias = _split_alias(model_ref)
    return await _answer(request, registry, settings, publisher, model, f"@{alias}" if alias else None, hub_format)


@router.api_route("/{publisher}/{model}/{version}", methods=["GET", "HEAD"], name="model_version_url",
                  dependencies=[Depends(model_url_reader)])
async def model_version_url(request: Request, registry: RegistryDep, settings: ServerSettingsDep, publisher: str,
                            model: str, version: str, hub_format: HubFormat = None):
    if not version.isdigit():
        legacy = await legacy_answer(request, registry, settings, f"https://tfhub.dev/{publisher}/{model}/{version}",
                                     download=hub_format is not None)  # a tfhub.dev path of three names
        if legacy is not None:
            return legacy
        raise HandleError(f"/{publisher}/{model}/{version}: a version in a model URL is a number; for an alias "
                          f"use /{publisher}/{model}@{version}")
    answer = await _answer(request, registry, settings, publisher, model, version, hub_format)
    ArchiveShortcut.learn(request, (publisher, model, version), answer)
    return answer


class ArchiveShortcut:
    """ASGI middleware: an anonymous download of a pinned model URL, answered by this route's own code without
    FastAPI's routing and dependency resolution.

    A crowd downloads the same few URLs over and over, and for each download the router's matching (over
    every route before this one) and the dependencies cost about half of the server's Python work — on a
    2-core machine that shares its caches with the transfers, ~1.4 ms of the event loop a download. Which
    route takes a path is fixed once the application is built, so it is learnt, not re-derived: the first
    request for a path goes through the router as always, and when the router gave it to
    ``model_version_url`` and the route answered with success, the route records the path with its
    parameters (``learn``). A later request for that exact path is answered here by the route's own
    ``_answer``, when nothing else could change the answer: a GET whose whole query is
    ``tf-hub-format=compressed`` (what the hub client sends), reads open
    (``MODEL_REGISTRY_REQUIRE_READ_TOKEN`` unset) and no credential sent (a token, even on an open server,
    is checked by the route, which refuses a bad one) — the route's read check lets exactly such a request
    through without looking anything up. A ``RegistryError`` (a version deleted since, a catalog error), or
    any other failure before the answer starts, goes on to the router, which answers it as always; so does
    everything else. It sits in front of FastAPI (``registry.server.front_door``).
    """

    #: Paths remembered at most (the set is emptied when full: the next request of each path learns it again).
    LIMIT = 4096

    def __init__(self, app: Any):
        self.app = app

    @classmethod
    def learn(cls, request: Request, parameters: tuple[str, str, str], answer: Any) -> None:
        """Remember that the router sent this GET's path to the route, once the route answered it with success
        (an archive, a redirect to one, or the version's page: the router's choice does not depend on the
        query); a path that names nothing is not worth a place."""
        if request.method != "GET" or not parameters[2].isdigit() or not 200 <= answer.status_code < 400:
            return
        paths = _learnt(request.app)
        if len(paths) >= cls.LIMIT:
            paths.clear()
        paths[request.scope["path"]] = parameters

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["query_string"] == _ARCHIVE_QUERY:
            parameters = _learnt(scope["app"]).get(scope["path"])
            if parameters is not None:
                try:
                    response = await self._answer(scope, receive, parameters)
                except Exception:  # noqa: BLE001 - the route answers the request, and its error handling reports
                    response = None
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(scope: dict, receive: Any, parameters: tuple[str, str, str]) -> Any:
        from registry.server.auth import open_anonymous_read
        from registry.server.deps import get_registry, get_server_settings

        request = Request(scope, receive)
        settings = await get_server_settings(request)
        if not open_anonymous_read(request, settings):
            return None
        publisher, model, version = parameters
        # A RegistryError (a version deleted since, a catalog error) goes on to the route, which answers it with
        # its error (``__call__``).
        return await _answer(request, await get_registry(request), settings, publisher, model, version, "compressed")


_ARCHIVE_QUERY = COMPRESSED_QUERY.encode("ascii")


def _learnt(app: Any) -> dict[str, tuple[str, str, str]]:
    """The application's ``{path: (publisher, model, version)}`` the router sent to ``model_version_url``."""
    paths = getattr(app.state, "archive_paths", None)
    if paths is None:
        paths = app.state.archive_paths = {}
    return paths
