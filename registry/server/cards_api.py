"""The JSON API of model cards: a version's card and a publisher's card, read and edited.

A card edit needs a publish token for the publisher (``auth.PUBLISH``, checked against the
path's ``{publisher}``) and changes the catalog only: the version's artifact, sha256 and
URL stay as they were (``registry.catalog.cards``). A version's card also travels in its
record (``GET /api/v1/models/{p}/{m}/versions/{ref}``); the routes here are thin shells over
``Registry.set_card``, ``publisher_card`` and ``set_publisher_card``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from starlette.concurrency import run_in_threadpool

from registry.errors import MetadataError
from registry.server.auth import PUBLISH, READ
from registry.server.deps import RegistryDep, handle_for, version_json

router = APIRouter(prefix="/api/v1", tags=["cards"])

_EXAMPLE = {"card": "---\nlicense: apache-2.0\ntags: [image-feature-vector]\n---\n# My model\n\nWhat it is for."}


def _card(body: Any) -> str | None:
    card = body.get("card") if isinstance(body, dict) else ...
    if card is ... or (card is not None and not isinstance(card, str)):
        raise MetadataError('the body must be {"card": "<Markdown>"} (or {"card": null} to remove it)')
    return card


@router.put("/models/{publisher}/{model}/versions/{ref}/card",
            summary="Replace a version's card (Markdown); its artifact and sha256 do not change",
            dependencies=[Depends(PUBLISH)])
async def set_version_card(request: Request, registry: RegistryDep, publisher: str, model: str, ref: str,
                           body: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])]):
    handle = handle_for(publisher, model, ref)
    version = await run_in_threadpool(registry.set_card, handle, _card(body))
    return version_json(request, version)


@router.get("/publishers/{publisher}/card", summary="A publisher's card (card is null when it has none)",
            dependencies=[Depends(READ)])
async def publisher_card(registry: RegistryDep, publisher: str):
    return (await run_in_threadpool(registry.publisher_card, publisher)).model_dump(mode="json")


@router.put("/publishers/{publisher}/card", summary="Set (or with null, remove) a publisher's card",
            dependencies=[Depends(PUBLISH)])
async def set_publisher_card(registry: RegistryDep, publisher: str,
                             body: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])]):
    record = await run_in_threadpool(registry.set_publisher_card, publisher, _card(body))
    return record.model_dump(mode="json")
