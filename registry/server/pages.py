"""The web catalog: server-rendered pages on the same port as the API and the model URLs.

``install`` adds the index (``/``: search and filters, keyset-paginated), the
compare page (``/compare?a=HANDLE&b=HANDLE``), the sign-in form and the
stylesheet and script under ``/static``. ``model_page`` answers a model URL
without ``?tf-hub-format`` (``/publisher/model``, ``/publisher/model/N``,
``/publisher/model@alias``), which ``registry.server.hub_urls`` routes here.

Pages read through the same ``Registry`` methods as the API and honour the
read-token setting; a page that fails is an HTML page with the error's status
(``registry.error_codes.status_of``), never JSON. Templates are autoescaped and
pages carry a Content-Security-Policy allowing only this server's own
stylesheet and script, so a description holding markup shows as text and could
not run even if it slipped through. The sign-in form keeps the token in an
HttpOnly, SameSite=Strict cookie that ``registry.server.auth`` accepts for reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.error_codes import status_of
from registry.errors import HandleError, RegistryError, SignatureError
from registry.handles import CatalogHandle, parse
from registry.server import web_views
from registry.server.auth import TOKEN_COOKIE, require
from registry.server.web_templates import render

STATIC_DIR = Path(__file__).with_name("static")
#: Results per index page.
PAGE_SIZE = 25
#: Rows of a model page's versions table before "show all" (the selected version is always shown).
VERSIONS_SHOWN = 100
#: Only this server's own files; inline scripts and styles are refused, so injected markup cannot run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
    "Vary": "Cookie",
}
_TITLES = {400: "Bad request", 401: "Sign in to read this catalog", 403: "Not allowed", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 422: "Refused", 500: "Server error", 502: "Bad gateway",
           503: "Unavailable"}


def install(app: FastAPI) -> None:
    """Add the pages, the static files and HTML errors for browsers (called before the model URLs are routed)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False, name="index")
    async def index(request: Request):
        return await run_in_threadpool(_page, request, _index)

    @app.api_route("/compare", methods=["GET", "HEAD"], include_in_schema=False, name="compare")
    async def compare(request: Request):
        return await run_in_threadpool(_page, request, _compare)

    @app.get("/signin", include_in_schema=False, name="signin")
    async def signin_form(request: Request):
        return await run_in_threadpool(_signin_page, request, _next_path(request.query_params.get("next")), "")

    @app.post("/signin", include_in_schema=False)
    async def signin(request: Request):
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        return await run_in_threadpool(_sign_in, request, form.get("token", "").strip(), _next_path(form.get("next")))

    @app.post("/signout", include_in_schema=False)
    async def signout(request: Request):
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    _html_errors_for_browsers(app)


async def model_page(request: Request, handle: CatalogHandle):
    """The page of ``handle``'s version: the newest for ``publisher/model``, else the one named."""
    return await run_in_threadpool(_page, request, lambda req: _model(req, handle))


# -- pages -------------------------------------------------------------------------------------------------------

def _index(request: Request) -> tuple[str, dict]:
    registry = request.app.state.registry
    params = request.query_params
    criteria = {"text": params.get("q", "").strip() or None, "task": params.get("task") or None,
                "format": params.get("format") or None, "publisher": params.get("publisher", "").strip() or None}
    after = params.get("after") or None
    tasks = [d.name for d in registry.tasks]
    formats = web_views.formats_of(registry.matrix)
    form = {"q": criteria["text"] or "", "task": criteria["task"] or "", "format": criteria["format"] or "",
            "publisher": criteria["publisher"] or ""}
    problem = None
    try:
        found = registry.search(**criteria, limit=PAGE_SIZE + 1, after=after)
    except (HandleError, SignatureError) as error:  # a malformed filter or unknown task: shown by the form
        found, problem = [], str(error)
    results = found[:PAGE_SIZE]
    kept = {key: value for key, value in form.items() if value}
    next_href = "/?" + urlencode({**kept, "after": results[-1].model_name}) if len(found) > PAGE_SIZE else None
    first_href = ("/?" + urlencode(kept)) if kept else "/"
    filtered = any(criteria.values())
    return "index.html", {"results": results, "form": form, "tasks": tasks, "formats": formats,
                          "next_href": next_href, "first_href": first_href if after else None,
                          "filtered": filtered, "problem": problem, "title": "Search models" if filtered else "Models"}


def _model(request: Request, handle: CatalogHandle) -> tuple[str, dict]:
    registry = request.app.state.registry
    # A pinned version may be a deleted one (shown, marked); "newest" and aliases only ever name live ones.
    version = registry.get_version(handle, include_deleted=handle.pinned)
    versions = list(reversed(registry.version_summaries(handle.model_name, include_deleted=True)))
    show_all = request.query_params.get("versions") == "all"
    shown = versions if show_all else versions[:VERSIONS_SHOWN]
    if all(v.version != version.version for v in shown):
        shown = shown + [version]
    model = registry.catalog.get_model(publisher=handle.publisher, name=handle.model)
    pinned = version.handle
    ancestors = registry.lineage(pinned)[1:] if not version.deleted else []
    children = registry.children(pinned)
    token_required = request.app.state.server_settings.require_read_token
    base_url = str(request.base_url)
    return "model.html", {
        "title": f"{version.model_name} · version {version.version}",
        "model": model, "version": version, "versions": shown, "version_total": len(versions),
        "newest_shown": min(len(versions), VERSIONS_SHOWN),
        "all_versions_href": None if len(shown) >= len(versions) else f"{request.url.path}?versions=all#versions",
        "newest": model.latest_version, "selected_by": _selected_by(handle, version),
        "description": version.description or model.description,
        "snippets": web_views.usage_snippets(version, base_url=base_url, token_required=token_required,
                                             adapters=registry.adapters),
        "pinned_url": web_views.pinned_url(base_url, version),
        "groups": web_views.signature_groups(version),
        "ancestors": ancestors, "children": children, "matrix": registry.matrix.row(version.format),
        "tensors": web_views.tensors, "evidence_facts": web_views.evidence_facts,
    }


def _selected_by(handle: CatalogHandle, version) -> str:
    if handle.alias is not None:
        return f"alias @{handle.alias} names version {version.version}"
    if handle.version is None:
        return f"the newest version is {version.version}"
    return ""


def _compare(request: Request) -> tuple[str, dict]:
    registry = request.app.state.registry
    params = request.query_params
    a, b, task = params.get("a", "").strip(), params.get("b", "").strip(), params.get("task") or None
    context: dict[str, Any] = {"title": "Compare versions", "form": {"a": a, "b": b, "task": task or ""},
                               "tasks": [d.name for d in registry.tasks], "result": None, "sides": [],
                               "tensors": web_views.tensors}
    if not (a and b):
        return "compare.html", context
    version_a, version_b = registry.get_version(_catalog_handle(a)), registry.get_version(_catalog_handle(b))
    context["result"] = registry.interchangeable(version_a.handle, version_b.handle, task=task)
    context["sides"] = [(label, version, web_views.signature_groups(version))
                        for label, version in (("A", version_a), ("B", version_b))]
    context["title"] = f"Compare {version_a.handle} and {version_b.handle}"
    return "compare.html", context


def _catalog_handle(text: str) -> CatalogHandle:
    handle = parse(text)
    if not isinstance(handle, CatalogHandle):
        raise HandleError(f"{text!r} is not a catalog handle: use publisher/model, publisher/model/N or "
                          f"publisher/model@alias")
    return handle


# -- rendering and errors ----------------------------------------------------------------------------------------

def _page(request: Request, build: Callable[[Request], tuple[str, dict]]) -> HTMLResponse:
    """Check the read right, build the page, render it; any registry error becomes an HTML error page."""
    try:
        require(request, "read")
        template, context = build(request)
    except RegistryError as error:
        return _error_page(request, error)
    return _html(request, template, context)


def _html(request: Request, template: str, context: dict, status: int = 200, headers: dict | None = None):
    common = {"signed_in": bool(request.cookies.get(TOKEN_COOKIE)),
              "token_required": request.app.state.server_settings.require_read_token}
    return HTMLResponse(render(template, {**common, **context}), status_code=status,
                        headers={**SECURITY_HEADERS, **(headers or {})})


def _error_page(request: Request, error: RegistryError) -> HTMLResponse:
    status, code = status_of(error)
    return _error_html(request, status, code, str(error))


def _error_html(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _html(request, "error.html", {"title": _TITLES.get(status, "Error"), "status": status, "code": code,
                                         "message": message, "next": _current_path(request)},
                 status=status, headers=headers)


def _signin_page(request: Request, next_path: str, message: str, status: int = 200) -> HTMLResponse:
    return _html(request, "signin.html", {"title": "Sign in", "next": next_path, "signin_message": message},
                 status=status)


def _sign_in(request: Request, token: str, next_path: str):
    if not token:
        return _signin_page(request, next_path, "Paste a token to sign in.", status=400)
    if request.app.state.registry.catalog.tokens.authenticate(token) is None:
        return _signin_page(request, next_path, "That token is not valid (unknown or revoked); ask an admin for a "
                            "new one.", status=401)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


def _next_path(value: str | None) -> str:
    """Where to go after signing in: a path on this server only (never ``//host`` or a full URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _current_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _wants_html(request: Request) -> bool:
    """A browser asking for a page: HTML accepted, not the API, not a download (``?tf-hub-format``)."""
    return (request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")
            and not request.url.path.startswith("/api/") and "tf-hub-format" not in request.query_params)


def _html_errors_for_browsers(app: FastAPI) -> None:
    """Errors raised before a page is reached (a malformed model URL, an unknown path) as HTML for browsers.

    Everything else — the API, the hub client, curl — keeps the JSON answer of
    the handlers ``create_app`` registered, which these wrap.
    """
    json_registry_error = app.exception_handlers[RegistryError]
    json_http_error = app.exception_handlers[StarletteHTTPException]

    async def registry_error(request: Request, error: RegistryError):
        if _wants_html(request):
            return await run_in_threadpool(_error_page, request, error)
        return await json_registry_error(request, error)

    async def http_error(request: Request, error: StarletteHTTPException):
        if _wants_html(request):
            message = "There is no page here." if error.status_code == 404 else str(error.detail)
            return await run_in_threadpool(_error_html, request, error.status_code,
                                           {404: "not_found"}.get(error.status_code, "bad_request"), message)
        return await json_http_error(request, error)

    app.add_exception_handler(RegistryError, registry_error)
    app.add_exception_handler(StarletteHTTPException, http_error)

