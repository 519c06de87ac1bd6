"""The web catalog's pages (server-rendered HTML on the same port as the API)."""

from __future__ import annotations

import html

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from registry.server.auth import require


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index(request: Request):
        require(request, "read")
        models = await run_in_threadpool(request.app.state.registry.list_models)
        items = "".join(f'<li><a href="/{html.escape(m.model_name)}">{html.escape(m.model_name)}</a></li>'
                        for m in models)
        return HTMLResponse(f"<!doctype html><title>Models</title><h1>Models</h1><ul>{items}</ul>")


async def model_page(request: Request, handle):
    require(request, "read")
    registry = request.app.state.registry
    version = await run_in_threadpool(registry.get_version, handle)
    url = f"{request.base_url}{version.handle}"
    return HTMLResponse(f"<!doctype html><title>{html.escape(version.model_name)}</title>"
                        f"<h1>{html.escape(version.model_name)}</h1><p>{html.escape(version.description)}</p>"
                        f"<pre>hub.load(\"{html.escape(url)}\")</pre>")
