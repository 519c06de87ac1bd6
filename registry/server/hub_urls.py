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

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from registry.errors import HandleError
from registry.server.api_v1 import handle_for, registry_of
from registry.server.auth import require
from registry.server.downloads import archive_response

router = APIRouter(include_in_schema=False)

HUB_FORMAT = Query(None, alias="tf-hub-format")


def _split_alias(model_ref: str) -> tuple[str, str | None]:
    model, sep, alias = model_ref.partition("@")
    return model, (alias if sep else None)


async def _answer(request: Request, publisher: str, model: str, ref: str | None, hub_format: str | None):
    handle = handle_for(publisher, model, ref)
    if hub_format is None:
        from registry.server import pages

        return await pages.model_page(request, handle)
    if hub_format == "uncompressed":
        raise HandleError("this registry serves models as compressed archives only: unset TFHUB_MODEL_LOAD_FORMAT "
                          "(or set it to COMPRESSED), or use ?tf-hub-format=compressed")
    if hub_format != "compressed":
        raise HandleError(f"tf-hub-format must be 'compressed', not {hub_format!r}")
    require(request, "read")
    location = await run_in_threadpool(registry_of(request).catalog.locate, handle)
    return await run_in_threadpool(archive_response, location, store=registry_of(request).store, pinned=handle.pinned,
                                   method=request.method)


@router.api_route("/{publisher}/{model_ref}", methods=["GET", "HEAD"], name="model_url")
async def model_url(request: Request, publisher: str, model_ref: str, hub_format: str | None = HUB_FORMAT):
    model, alias = _split_alias(model_ref)
    return await _answer(request, publisher, model, f"@{alias}" if alias else None, hub_format)


@router.api_route("/{publisher}/{model}/{version}", methods=["GET", "HEAD"], name="model_version_url")
async def model_version_url(request: Request, publisher: str, model: str, version: str,
                            hub_format: str | None = HUB_FORMAT):
    if not version.isdigit():
        raise HandleError(f"/{publisher}/{model}/{version}: a version in a model URL is a number; for an alias "
                          f"use /{publisher}/{model}@{version}")
    return await _answer(request, publisher, model, version, hub_format)
