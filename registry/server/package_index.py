"""A PEP 503 package index at ``/simple/`` holding one project: this server's own client wheel.

A model page's setup line installs the registry client from the server that shows it
(``registry.server.client_wheel``: the running project's wheel, made once per process), so
it works on a network that reaches only this server and a package registry.

The index is open to everyone, whatever the read-token setting: it serves the client
code, which is no secret, to ``pip``, which cannot send this server's bearer token.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from registry.server.client_wheel import PROJECT, client_wheel

router = APIRouter(prefix="/simple", include_in_schema=False)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta name="pypi:repository-version" content="1.0"><title>{title}</title></head>
<body><h1>{title}</h1>
{links}
</body></html>
"""


@router.get("/", name="simple_index")
async def index():
    return HTMLResponse(_PAGE.format(title="Simple index", links=f'<a href="/simple/{PROJECT}/">{PROJECT}</a>'))


@router.get("/{project}/", name="simple_project")
async def project(project: str):
    if _normalised(project) != PROJECT:
        return HTMLResponse("Not found", status_code=404)
    wheel = await run_in_threadpool(client_wheel)
    link = f'<a href="/simple/{PROJECT}/{wheel.filename}#sha256={wheel.sha256}">{wheel.filename}</a>'
    return HTMLResponse(_PAGE.format(title=f"Links for {PROJECT}", links=link))


@router.get("/{project}/{filename}", name="simple_file")
async def wheel_file(request: Request, project: str, filename: str):
    if _normalised(project) != PROJECT:
        return HTMLResponse("Not found", status_code=404)
    wheel = await run_in_threadpool(client_wheel)
    if filename != wheel.filename:
        return HTMLResponse("Not found", status_code=404)
    return FileResponse(wheel.path, media_type="application/octet-stream", filename=wheel.filename)


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
