"""The API's interactive documentation at ``/api/docs``, from this server's own files: it works with no internet.

Swagger UI comes from the pinned ``swagger-ui-bundle`` package (its files,
Apache-2.0, served under ``/static/swagger-ui/``), started by this server's
``/static/api-docs.js`` rather than an inline script, so the page keeps the
catalog's Content-Security-Policy; the one thing it adds is ``connect-src
'self'``, for Swagger UI to read ``/openapi.json`` and try the routes.
FastAPI's own docs route (``docs_url``) points at a CDN, and is switched off.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from registry.server.web_templates import render

#: Where Swagger UI's files are served from (``swagger_ui_bundle.swagger_ui_path``).
ASSETS = "/static/swagger-ui"
DOCS_PATH = "/api/docs"
#: The pages' policy (``web_pages.SECURITY_HEADERS``) plus reading this server's own API.
DOCS_POLICY = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Serve Swagger UI's files and the docs page (before ``/static`` is mounted, which would shadow them)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
    app.include_router(router)


@router.get(DOCS_PATH, name="api_docs")
async def api_docs(request: Request) -> HTMLResponse:
    body = render("api_docs.html", {"title": request.app.title, "openapi_url": request.app.openapi_url or "",
                                    "assets": ASSETS})
    return HTMLResponse(body, headers={"Content-Security-Policy": DOCS_POLICY, "X-Content-Type-Options": "nosniff",
                                       "Referrer-Policy": "same-origin", "Cache-Control": "no-cache"})
