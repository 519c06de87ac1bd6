"""A publisher's page, ``/{publisher}``: its card and its models.

A router of its own, included after every fixed one-segment path (``/compare``,
``/signin``, ``/simple/``...) and before the model URLs, so a fixed path always wins
over a publisher of the same name. The page is built in ``registry.server.web_pages``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from registry.server import web_pages
from registry.server.deps import RegistryDep, ServerSettingsDep
from registry.server.web_pages import page_reader

router = APIRouter(include_in_schema=False)


@router.api_route("/{publisher}", methods=["GET", "HEAD"], name="publisher_page", dependencies=[Depends(page_reader)])
async def publisher_page(request: Request, registry: RegistryDep, settings: ServerSettingsDep, publisher: str):
    return await web_pages.page(request, registry, settings.require_read_token,
                                lambda req, reg, required: web_pages.publisher(req, reg, required, publisher))
