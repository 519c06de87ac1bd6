"""The ASGI application: routes, error handlers and the access log around one ``Registry``.

``create_app`` returns it behind its ``FrontDoor`` (``registry.server.front_door``): the access log and the
shortcuts that answer repeated reads before FastAPI's own middleware.

``create_app`` takes a ``Registry`` (tests pass one), or builds one from the
environment as ``model-registry serve`` does — each uvicorn worker process calls
``app_from_env`` and so opens its own connections to the shared catalog and
bucket. Whatever goes wrong, a caller gets JSON ``{"error", "message"}`` and
never a stack trace; the trace goes to the server's log.
"""

from __future__ import annotations

import gc
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

from registry.config import quiet_tensorflow_logs
from registry.error_codes import error_body, status_of
from registry.errors import RegistryError
from registry.server import (
    api_docs,
    api_v1,
    background,
    cards_api,
    downloads,
    history_api,
    hub_urls,
    kaggle_api,
    legacy_api,
    legacy_urls,
    package_index,
    pages,
    publisher_pages,
)
from registry.server.auth import bearer_token
from registry.server.deps import RegistryDep, ServerSettingsDep, hide_server_paths
from registry.server.downloads import ARCHIVE_TYPE
from registry.server.front_door import FrontDoor
from registry.server.heap import SettleHeap
from registry.server.sendfile import PathsendMiddleware
from registry.server.settings import ServerSettings

logger = logging.getLogger("registry.server")

API_DESCRIPTION = """A catalog of TensorFlow models (TF1 Hub format and TF2 SavedModel).

Reads are open unless the server requires a read token; writes need
`Authorization: Bearer TOKEN` with the right scope. Errors are
`{"error": code, "message": text}`. Model archives are at tfhub.dev-style URLs:
`/{publisher}/{model}/{version}?tf-hub-format=compressed`.
"""


def server_registry():
    """The registry a server process serves: the environment's catalog and storage, never client mode."""
    from registry.api import Registry
    from registry.config import Settings

    return Registry(settings=Settings.from_env()._replace(server_url=None, token=None))


def create_app(registry=None, settings: ServerSettings | None = None) -> FrontDoor:
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version("tf-model-registry")
    except PackageNotFoundError:
        package_version = "0"
    app = FastAPI(title="TensorFlow model registry", version=package_version, description=API_DESCRIPTION,
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None)  # docs: registry.server.api_docs
    # The one place both are set: routes reach them through registry.server.deps (RegistryDep, ServerSettingsDep).
    app.state.registry = registry if registry is not None else server_registry()
    app.state.server_settings = settings or ServerSettings.from_env()
    downloads.check_settings(app.state.registry.store, app.state.server_settings)
    _add_error_handlers(app)
    compress_when_accepted(app)  # the access log and the shortcuts are in front of FastAPI (FrontDoor)

    # Open to everyone, whatever the read-token setting: a load balancer's probe has no token. Where reads need a
    # token, an anonymous probe learns only the status: the catalog's location (a file path, user@host:port/db),
    # the version and the error are for callers with a valid token.
    # GET in the OpenAPI document, HEAD beside it unlisted: one route for both would give both one operation ID.
    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz", tags=["health"], summary="200 when the catalog answers")
    async def healthz(request: Request, registry: RegistryDep, settings: ServerSettingsDep):
        try:
            await run_in_threadpool(registry.catalog.ping)
        except RegistryError as error:
            if not await _may_see_details(request, registry, settings):
                return JSONResponse({"status": "unavailable"}, status_code=503)
            hide_server_paths(error, request)
            return JSONResponse({"status": "unavailable", "catalog": registry.catalog.identity,
                                 "message": str(error)}, status_code=503)
        if not await _may_see_details(request, registry, settings):
            return {"status": "ok"}
        return {"status": "ok", "catalog": registry.catalog.identity, "version": package_version}

    app.include_router(api_v1.router)
    app.include_router(history_api.router)
    app.include_router(legacy_api.router)
    app.include_router(kaggle_api.router)  # Kaggle's model API (POST /v1/...) and the files it redirects to
    app.include_router(cards_api.router)
    background.install(app, app.state.registry)  # webhook deliveries and download counts, off the request path
    api_docs.install(app)  # before pages: its /static/swagger-ui mount inside /static
    pages.install(app)
    app.include_router(package_index.router)  # /simple/: this server's own client wheel (PEP 503)
    app.include_router(publisher_pages.router)  # /{publisher}: after every fixed one-segment path
    app.include_router(hub_urls.router)  # after the fixed paths: its /{publisher}/{model} would shadow them
    app.include_router(legacy_urls.router)  # last of all: its /{path:path} takes whatever nothing else did
    return FrontDoor(app)


#: Responses never compressed: archives (already gzip: a download keeps its bytes, its sha256 and its
#: Content-Length) and other binary files, besides Starlette's own list (images, fonts, zip, gzip...).
UNCOMPRESSED_TYPES = (*DEFAULT_EXCLUDED_CONTENT_TYPES, ARCHIVE_TYPE, "application/octet-stream")
#: Pages and JSON of at least this many bytes are gzipped for a client that accepts it.
GZIP_MINIMUM_SIZE = 1000


def compress_when_accepted(app: FastAPI) -> None:
    """Gzip pages, JSON, stylesheets and scripts for clients that send ``Accept-Encoding: gzip``.

    Starlette's ``GZipMiddleware`` adds ``Vary: Accept-Encoding`` and leaves alone a
    response that already has a ``Content-Encoding``, a partial one (206) and the types in
    ``UNCOMPRESSED_TYPES``. Level 6 compresses a page about as well as 9 in a third of the time.
    """
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_SIZE, compresslevel=6,
                       exclude_content_types=UNCOMPRESSED_TYPES)


async def _may_see_details(request: Request, registry, settings: ServerSettings) -> bool:
    """Whether /healthz may say more than its status: reads are open, or the request carries a valid token."""
    if not settings.require_read_token:
        return True
    token = bearer_token(request)
    if token is None:
        return False
    try:
        return await run_in_threadpool(registry.catalog.tokens.authenticate, token) is not None
    except RegistryError:
        return False


def app_from_env() -> PathsendMiddleware:
    """uvicorn's factory for ``model-registry serve`` (each worker process builds its own app), wrapped so that
    local archives go out with sendfile (``registry.server.sendfile``: uvicorn offers no ``pathsend``)."""
    quiet_tensorflow_logs()  # a worker process of its own imports TensorFlow quietly too (MODEL_REGISTRY_TF_LOGS=1)
    app = create_app()
    reclaim_dead_uploads(app)
    settle_start_up_heap(app)
    app.add_middleware(SettleHeap)  # and again once the first requests have compiled what they use
    return PathsendMiddleware(app)


def reclaim_dead_uploads(app: FrontDoor) -> None:
    """Remove the upload work directories that server processes killed mid-upload left in the cache.

    Each live upload holds an flock on its directory (``ModelCache.new_workdir``), which the kernel drops when
    its process dies; what is unlocked is removed here at start-up, and again before each upload.
    """
    try:
        removed = app.state.registry.cache.clean_leftovers()
    except OSError as error:
        logger.warning("could not clean the cache's work directories: %s", error)
        return
    if removed:
        logger.info("removed %d work directories of server processes that ended mid-upload", len(removed))


def settle_start_up_heap(app: FrontDoor) -> None:
    """Load the database stack now and take everything alive out of the garbage collector's reach.

    A full (generation 2) collection walks every tracked object; a server's ~100,000
    from start-up (SQLAlchemy, FastAPI, pydantic, the catalog's tables) never become
    garbage, yet walking them took ~35 ms each time, in ~4 % of catalog reads: the whole
    of search's p99 above its p50 (``bench/bench_search.py``). ``gc.freeze()`` moves
    them to a generation the collector skips; what requests allocate is collected as
    before. The catalog is asked once first so its libraries are imported and frozen too;
    a catalog that does not answer yet is /healthz's to report, not a reason not to start.
    """
    try:
        app.state.registry.catalog.ping()
    except RegistryError as error:
        logger.warning("the catalog does not answer yet: %s", error)
    gc.collect()
    gc.freeze()


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, error: RegistryError):
        hide_server_paths(error, request)
        status, _ = status_of(error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(error), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                             for e in error.errors())
        return JSONResponse({"error": "bad_request", "message": problems or "the request is malformed",
                             "type": "RegistryError"}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "bad_request")
        message = "no such page or API route" if error.status_code == 404 else str(error.detail)
        return JSONResponse({"error": code, "message": message, "type": "RegistryError"},
                            status_code=error.status_code, headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception):
        logger.error("unexpected failure on %s %s", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": "internal", "message": "the server failed unexpectedly; its log has the "
                             "details", "type": "ServerError"}, status_code=500)
