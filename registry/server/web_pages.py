"""Building and rendering the web catalog's pages, and its HTML error pages; no routes.

The routes are in ``registry.server.pages`` (``/``, ``/compare``, sign-in) and
``registry.server.hub_urls`` (a model URL without ``?tf-hub-format`` is its
page); both call in here, so neither router imports the other.

Pages read through the same ``Registry`` methods as the API. A page that fails
is an HTML page with the error's status (``registry.error_codes.status_of``),
never JSON, whatever the client accepts: ``page`` catches what building it
raises, and ``page_reader``, the pages' access check, marks its refusal so the
error handlers answer it in HTML too (with the sign-in form on a read-token
server). Templates are autoescaped and pages carry a Content-Security-Policy
allowing only this server's own stylesheet and script, so a description holding
markup shows as text and could not run even if it slipped through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from registry.access import Grant
from registry.cards.render import render_card
from registry.error_codes import status_of
from registry.errors import FormatError, HandleError, MetadataError, QueryError, RegistryError, SignatureError
from registry.handles import COMPRESSED_QUERY, CatalogHandle, catalog_handle
from registry.server import http_cache, web_views
from registry.server.auth import ACCESS_ATTRIBUTE, READ, TOKEN_COOKIE, access_rule
from registry.server.deps import RegistryDep, ServerSettingsDep
from registry.server.web_templates import render

if TYPE_CHECKING:
    from registry.api import Registry

#: The search form's labels of the filterable metadata fields (others: their name, capitalised).
FILTER_LABELS = {"license": "Licence (SPDX)", "tags": "Tag", "datasets": "Data set", "language": "Language",
                 "base_model": "Base model"}
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
#: Set on a request whose page was refused by its access check: its error is a page, whatever it accepts.
_REFUSED_PAGE = "refused_page"

PageBuilder = Callable[[Request, "Registry", bool], tuple[str, dict]]


async def page_reader(request: Request, registry: RegistryDep, settings: ServerSettingsDep) -> Grant | None:
    """The read check of a page: ``auth.READ``, its refusal marked to be answered in HTML (see ``wants_html``)."""
    try:
        return await READ(request, registry, settings)
    except RegistryError:
        setattr(request.state, _REFUSED_PAGE, True)
        raise


setattr(page_reader, ACCESS_ATTRIBUTE, access_rule(READ))  # what it checks is READ's rule


def wants_html(request: Request) -> bool:
    """Whether an error on this request is answered as an HTML page rather than JSON.

    A page refused by its access check always is; otherwise a browser asking for
    a page: HTML accepted, not the API, not a download (``?tf-hub-format``).
    """
    if getattr(request.state, _REFUSED_PAGE, False):
        return True
    return (request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")
            and not request.url.path.startswith("/api/") and "tf-hub-format" not in request.query_params)


async def page(request: Request, registry: Registry, token_required: bool, build: PageBuilder) -> HTMLResponse:
    """Build the page on a worker thread and render it; any registry error becomes an HTML error page."""
    return await run_in_threadpool(_page, request, registry, token_required, build)


async def model_page(request: Request, registry: Registry, token_required: bool,
                     handle: CatalogHandle) -> Response:
    """The page of ``handle``'s version: the newest for ``publisher/model``, else the one named; with an ETag
    and ``Cache-Control`` (``registry.server.http_cache``: a pinned version's page is fresh for a while)."""
    response = await page(request, registry, token_required,
                          lambda req, reg, required: _model(req, reg, required, handle))
    return http_cache.page_validated(request, response, pinned=handle.pinned, private=token_required)


# -- pages -------------------------------------------------------------------------------------------------------

def index(request: Request, registry: Registry, token_required: bool) -> tuple[str, dict]:
    """The search page: the form holds every parameter the API takes (``SearchQuery``), read whole from the URL."""
    from registry.catalog.search import SORTS, SearchQuery

    problem = None
    try:
        query = SearchQuery.from_params(request.query_params)
        found = registry.find(query)
    except (HandleError, QueryError, SignatureError, FormatError, MetadataError) as error:  # shown by the form
        query, problem = SearchQuery.from_params({}), str(error)
        found = None
    from registry.catalog.models import filter_names

    form = {name: request.query_params.get(name, "") for name in ("q", "task", "format", "publisher",
                                                                  "image_size", "output_dim", "sort")}
    # A field of the form for each filterable metadata field (the API filters on each by its own name).
    metadata_fields = [(name, FILTER_LABELS.get(name, name.replace("_", " ").capitalize()),
                        request.query_params.get(name, "")) for name in filter_names()]
    params = query.params()

    def page_href(number: int) -> str:
        kept = {**params, "page": str(number)} if number > 1 else {k: v for k, v in params.items() if k != "page"}
        return "/?" + urlencode(kept) if kept else "/"

    return "index.html", {
        "found": found, "results": found.items if found else [], "form": form,
        "tasks": [d.name for d in registry.tasks], "formats": web_views.formats_of(registry.matrix),
        "publishers": registry.catalog.publishers(), "sorts": SORTS,
        "sort": found.sort if found else "name",
        "previous_href": page_href(found.page - 1) if found and found.has_previous else None,
        "next_href": page_href(found.page + 1) if found and found.has_next else None,
        "filtered": query.is_filtered(), "problem": problem,
        "title": "Search models" if query.is_filtered() else "Models",
        "result_facts": web_views.result_facts, "metadata_fields": metadata_fields,
    }


def _model(request: Request, registry: Registry, token_required: bool, handle: CatalogHandle) -> tuple[str, dict]:
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
    base_url = str(request.base_url)
    converted = version.details.get("converted_from") if version.details else None
    return "model.html", {
        # The card first (rendered bounded and inert: registry.cards.render), the archive and its files.
        "card": render_card(version.card) if version.card else None,
        "card_facts": web_views.card_facts(version),
        "download_href": f"/{version.handle}?{COMPRESSED_QUERY}",
        "files": version.files, "file_count": version.file_count,
        "converted": converted,
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
        # What was downloaded, and what each alias named when (registry.catalog.downloads, .audit).
        "downloads": registry.download_counts(handle.model_name),
        "alias_histories": {alias: registry.alias_history(f"{model.model_name}@{alias}") for alias in model.aliases},
    }


#: Models listed on one publisher page.
PUBLISHER_PAGE_SIZE = 100


def publisher(request: Request, registry: Registry, token_required: bool, name: str) -> tuple[str, dict]:
    """A publisher's page: its card (if it wrote one), its models with their version counts, a page at a time."""
    from registry.errors import ModelNotFound
    from registry.handles import validate_name

    try:
        validate_name(name, "publisher")
    except HandleError:
        raise ModelNotFound(f"there is no publisher {name!r} (and no page at /{name})") from None
    after = request.query_params.get("after") or None
    models = registry.list_models(publisher=name, limit=PUBLISHER_PAGE_SIZE + 1, after=after)
    card = registry.publisher_card(name)
    if not models and card.card is None and after is None:
        raise ModelNotFound(f"the catalog has no models of publisher {name!r}, and {name!r} wrote no card; "
                            f"publishing a first model creates a publisher")
    shown = models[:PUBLISHER_PAGE_SIZE]
    return "publisher.html", {
        "title": f"{name} · publisher", "publisher": name, "models": shown,
        "card": render_card(card.card) if card.card else None,
        "model_total": None if len(models) > PUBLISHER_PAGE_SIZE or after else len(shown),
        "version_total": sum(m.version_count for m in shown),
        "next_href": f"/{name}?{urlencode({'after': shown[-1].model_name})}" if len(models) > PUBLISHER_PAGE_SIZE
        else None,
        "first_href": f"/{name}" if after else None,
    }


def _selected_by(handle: CatalogHandle, version) -> str:
    if handle.alias is not None:
        return f"alias @{handle.alias} names version {version.version}"
    if handle.version is None:
        return f"the newest version is {version.version}"
    return ""


def compare(request: Request, registry: Registry, token_required: bool) -> tuple[str, dict]:
    """Two versions side by side: picked from a versions table (``?v=H&v=H``) or the page's own pickers
    (``?a=H&b=H``); differences marked, identical parts once, and a verdict per task."""
    from registry.discovery import verdicts

    params = request.query_params
    picked = [value.strip() for value in params.getlist("v") if value.strip()]
    a = (params.get("a") or (picked[0] if len(picked) == 2 else "")).strip()
    b = (params.get("b") or (picked[1] if len(picked) == 2 else "")).strip()
    context: dict[str, Any] = {"title": "Compare versions", "a": None, "b": None, "choices_a": [], "choices_b": [],
                               "facts": [], "pairs": [], "verdicts": [], "tensors": web_views.tensors,
                               "problem": None}
    if params.getlist("v") and len(picked) != 2:
        context["problem"] = f"Pick exactly two versions to compare ({len(picked)} picked)."
    if not a:
        return "compare.html", context
    version_a = registry.get_version(catalog_handle(a))
    context["a"], context["choices_a"] = version_a, _choices(registry, version_a)
    context["choices_b"] = _choices(registry, version_a, extra=version_a)
    if not b:
        return "compare.html", context
    version_b = registry.get_version(catalog_handle(b))
    context["b"] = version_b
    context["choices_b"] = _choices(registry, version_b, extra=version_a)
    context["facts"] = web_views.compare_facts(version_a, version_b)
    context["pairs"] = web_views.signature_pairs(version_a, version_b)
    context["verdicts"] = verdicts(version_a, version_b, registry.tasks)
    context["title"] = f"Compare {version_a.handle} and {version_b.handle}"
    return "compare.html", context


def _choices(registry: Registry, version, extra=None) -> list[tuple[str, list[str]]]:
    """The pickers' options: (model name, its live versions' handles, newest first) for ``version``'s model, and
    for ``extra``'s (the other side) and the lineage of both when they differ."""
    names = [version.model_name]
    for other in (extra, *registry.lineage(version.handle)[1:2], *registry.children(version.handle)[:5]):
        if other is not None and other.model_name not in names:
            names.append(other.model_name)
    return [(name, [f"{name}/{v.version}" for v in reversed(registry.version_summaries(name)) if not v.deleted])
            for name in names]


# -- rendering and errors ----------------------------------------------------------------------------------------

def _page(request: Request, registry: Registry, token_required: bool, build: PageBuilder) -> HTMLResponse:
    try:
        template, context = build(request, registry, token_required)
    except RegistryError as error:
        return error_page(request, token_required, error)
    return html(request, token_required, template, context)


def html(request: Request, token_required: bool, template: str, context: dict, status: int = 200,
         headers: dict | None = None) -> HTMLResponse:
    common = {"signed_in": bool(request.cookies.get(TOKEN_COOKIE)), "token_required": token_required}
    return HTMLResponse(render(template, {**common, **context}), status_code=status,
                        headers={**SECURITY_HEADERS, **(headers or {})})


def error_page(request: Request, token_required: bool, error: RegistryError) -> HTMLResponse:
    status, code = status_of(error)
    return error_html(request, token_required, status, code, str(error))


def error_html(request: Request, token_required: bool, status: int, code: str, message: str) -> HTMLResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return html(request, token_required, "error.html",
                {"title": _TITLES.get(status, "Error"), "status": status, "code": code, "message": message,
                 "next": _current_path(request)}, status=status, headers=headers)


def signin_page(request: Request, token_required: bool, next_path: str, message: str,
                status: int = 200) -> HTMLResponse:
    return html(request, token_required, "signin.html",
                {"title": "Sign in", "next": next_path, "signin_message": message}, status=status)


def _current_path(request: Request) -> str:
    """The path and query to come back to after signing in, less any parameter that may carry a credential
    (``?token=``, ``access_token``, ``api_key``...): a page never echoes a secret someone put in a URL."""
    return without_secrets(request.url.path, request.url.query)


def without_secrets(path: str, query: str) -> str:
    """``path?query`` less the query parameters whose names say they hold a credential (``SECRET_PARAMETER_WORDS``)."""
    from urllib.parse import unquote_plus

    kept = [part for part in query.split("&") if part and not any(
        word in unquote_plus(part.partition("=")[0]).lower() for word in SECRET_PARAMETER_WORDS)]
    return path + (f"?{'&'.join(kept)}" if kept else "")


#: A query parameter whose name holds one of these is never written into a page.
SECRET_PARAMETER_WORDS = ("token", "key", "secret", "password", "auth", "credential", "session")
