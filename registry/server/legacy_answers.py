"""Answering a legacy URL (tfhub.dev, its bucket, Kaggle) with the catalog version it names: shared by the
routers that meet such paths (``registry.server.legacy_urls``, and ``registry.server.hub_urls`` for a
``/{publisher}/{model}[/{version}]`` path that is no catalog name). No routes here: routers never import
each other.

A page for a browser (the version's page, at the legacy URL), the archive for a client (tensorflow_hub's
``?tf-hub-format=compressed``, the bucket's ``.tar.gz``, a Kaggle download): through
``registry.server.downloads.archive_response``, counted once sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from registry.handles import CatalogHandle
from registry.server import web_pages
from registry.server.downloads import send_archive, wants_archive

if TYPE_CHECKING:
    from registry.api import Registry
    from registry.server.settings import ServerSettings

async def legacy_answer(request: Request, registry: "Registry", settings: "ServerSettings", legacy: str, *,
                        download: bool) -> Response | None:
    """The answer for the legacy handle ``legacy`` (any spelling), or None when it is none or no catalog version
    has it.

    ``download``: the archive whatever the query (a bucket object, a Kaggle download); otherwise the query
    decides, as on tfhub.dev: ``?tf-hub-format=compressed`` the archive, none the page.
    """
    from registry.legacy.handles import is_legacy_handle, parse_legacy_handle

    if not is_legacy_handle(legacy):
        return None
    parsed = parse_legacy_handle(legacy)
    found = await run_in_threadpool(registry.find_legacy_handle, str(parsed))
    if found is None:
        return None
    handle = CatalogHandle(found.publisher, found.model, found.version)
    hub_format = request.query_params.get("tf-hub-format")
    if not wants_archive(hub_format) and not download:
        return await web_pages.model_page(request, registry, settings.require_read_token, handle)
    return await send_archive(request, registry, settings, handle, pinned=parsed.version is not None)
