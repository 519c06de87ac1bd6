"""The web catalog's routes: the index, the compare page, sign-in, the static files, HTML errors for browsers.

``install`` adds the index (``/``: search and filters, keyset-paginated), the
compare page (``/compare?a=HANDLE&b=HANDLE``), the sign-in form and the
stylesheet and script under ``/static``. A model URL without
``?tf-hub-format`` (``/publisher/model``, ``/publisher/model/N``,
``/publisher/model@alias``) is routed by ``registry.server.hub_urls`` to the
same page builders, in ``registry.server.web_pages``, which also renders every
page and error page.

Pages honour the read-token setting through their access check
(``web_pages.page_reader``). The sign-in form keeps the token in an HttpOnly,
SameSite=Strict cookie that ``registry.server.auth`` accepts for reads.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.errors import RegistryError
from registry.server import web_pages
from registry.server.auth import TOKEN_COOKIE
from registry.server.deps import RegistryDep, ServerSettingsDep, get_server_settings, hide_server_paths
from registry.server.web_pages import page_reader

STATIC_DIR = Path(__file__).with_name("static")

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Add the pages, the static files and HTML errors for browsers (called before the model URLs are routed)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
    _html_errors_for_browsers(app)


@router.api_route("/", methods=["GET", "HEAD"], name="index", dependencies=[Depends(page_reader)])
async def index(request: Request, registry: RegistryDep, settings: ServerSettingsDep):
    return await web_pages.page(request, registry, settings.require_read_token, web_pages.index)


@router.api_route("/compare", methods=["GET", "HEAD"], name="compare", dependencies=[Depends(page_reader)])
async def compare(request: Request, registry: RegistryDep, settings: ServerSettingsDep):
    return await web_pages.page(request, registry, settings.require_read_token, web_pages.compare)


# Signing in and out is open to everyone: it is how a browser gets (or drops) its read credential. Neither may be
# posted from another site (login CSRF: signing a victim in as the attacker, or out): ``same_origin`` checks.


def same_origin(request: Request) -> None:
    """Refuse (403) a POST another site's page made: its ``Origin`` (or, without one, ``Referer``) names another host,
    or the browser says so (``Sec-Fetch-Site: cross-site``). A client that sends none of them is no browser, and
    cannot be made to post by another site."""
    from urllib.parse import urlsplit

    from registry.errors import AccessDenied

    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    source = origin if origin is not None else request.headers.get("referer")
    cross = request.headers.get("sec-fetch-site") == "cross-site"
    if source is not None:
        cross = cross or source == "null" or urlsplit(source).netloc.lower() != host.lower()
    if cross:
        raise AccessDenied("signing in or out from another site's page is refused; use this server's own sign-in "
                           "page")

@router.get("/signin", name="signin")
async def signin_form(request: Request, settings: ServerSettingsDep):
    return await run_in_threadpool(web_pages.signin_page, request, settings.require_read_token,
                                   _next_path(request.query_params.get("next")), "")


@router.post("/signin", dependencies=[Depends(same_origin)])
async def signin(request: Request, registry: RegistryDep, settings: ServerSettingsDep):
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    return await run_in_threadpool(_sign_in, request, registry, settings.require_read_token,
                                   form.get("token", "").strip(), _next_path(form.get("next")))


@router.post("/signout", dependencies=[Depends(same_origin)])
async def signout():
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _sign_in(request: Request, registry, token_required: bool, token: str, next_path: str):
    if not token:
        return web_pages.signin_page(request, token_required, next_path, "Paste a token to sign in.", status=400)
    if registry.catalog.tokens.authenticate(token) is None:
        return web_pages.signin_page(request, token_required, next_path, "That token is not valid (unknown or "
                                     "revoked); ask an admin for a new one.", status=401)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


def _next_path(value: str | None) -> str:
    """Where to go after signing in: a path on this server only (never ``//host`` or a full URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    path, _, query = value.partition("?")
    return web_pages.without_secrets(path, query)


def _html_errors_for_browsers(app: FastAPI) -> None:
    """Errors as HTML pages for browsers and for refused pages (``web_pages.wants_html``).

    Errors raised before a page is built (a malformed model URL, an unknown
    path, a page's refused access check) reach these handlers. Everything else —
    the API, the hub client, curl — keeps the JSON answer of the handlers
    ``create_app`` registered, which these wrap.
    """
    json_registry_error = app.exception_handlers[RegistryError]
    json_http_error = app.exception_handlers[StarletteHTTPException]

    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, error: RegistryError):
        hide_server_paths(error, request)
        if web_pages.wants_html(request):
            settings = await get_server_settings(request)
            return await run_in_threadpool(web_pages.error_page, request, settings.require_read_token, error)
        return await _answer(json_registry_error, request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        if web_pages.wants_html(request):
            settings = await get_server_settings(request)
            message = "There is no page here." if error.status_code == 404 else str(error.detail)
            return await run_in_threadpool(web_pages.error_html, request, settings.require_read_token,
                                           error.status_code, {404: "not_found"}.get(error.status_code, "bad_request"),
                                           message)
        return await _answer(json_http_error, request, error)


async def _answer(handler: Callable[[Request, Exception], Response | Awaitable[Response]], request: Request,
                  error: Exception) -> Response:
    """What an exception handler answers; Starlette's may be a coroutine function or a plain one."""
    response = handler(request, error)
    return await response if inspect.isawaitable(response) else response
