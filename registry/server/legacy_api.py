"""The JSON API of legacy handles (``/api/v1``): which version a tfhub.dev or Kaggle handle names, and
recording or removing them (publish scope on the version's publisher).

Thin shells over the ``Registry`` methods, as in ``registry.server.api_v1``; client mode's
``HttpCatalog`` calls these, so ``model-registry handles ...`` works the same through a server.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from registry.errors import HandleError
from registry.server.auth import PUBLISH, READ
from registry.server.deps import RegistryDep, handle_for, version_json

router = APIRouter(prefix="/api/v1")


def _handles(body: Any) -> list[str]:
    handles = body.get("handles") if isinstance(body, dict) else None
    if not isinstance(handles, list) or not all(isinstance(item, str) for item in handles):
        raise HandleError(f'the body must be {{"handles": ["https://tfhub.dev/...", ...]}}, not {body!r:.200}')
    return handles


@router.get("/legacy-handles", summary="Every legacy handle the catalog records, with the version it names",
            dependencies=[Depends(READ)])
def list_legacy_handles(registry: RegistryDep):
    return {"items": [{"legacy_handle": legacy, "version": version}
                      for legacy, version in registry.list_legacy_handles().items()]}


@router.get("/legacy-handles/find", summary="The version a legacy handle (any spelling) names, or null",
            dependencies=[Depends(READ)])
def find_legacy_handle(request: Request, registry: RegistryDep, handle: str):
    found = registry.find_legacy_handle(handle)
    return {"version": version_json(request, found) if found is not None else None}


@router.post("/models/{publisher}/{model}/versions/{ref}/legacy-handles",
             summary="Record legacy handles as names of a version", dependencies=[Depends(PUBLISH)])
def add_legacy_handles(request: Request, registry: RegistryDep, publisher: str, model: str, ref: str,
                       body: Annotated[dict[str, Any], Body(examples=[{"handles": ["https://tfhub.dev/g/m/1"]}])]):
    return version_json(request, registry.add_legacy_handles(handle_for(publisher, model, ref), _handles(body)))


@router.post("/models/{publisher}/{model}/versions/{ref}/legacy-handles/remove",
             summary="Forget legacy handles of a version", dependencies=[Depends(PUBLISH)])
def remove_legacy_handles(request: Request, registry: RegistryDep, publisher: str, model: str, ref: str,
                          body: Annotated[dict[str, Any], Body(examples=[{"handles": ["https://tfhub.dev/g/m/1"]}])]):
    return version_json(request, registry.remove_legacy_handles(handle_for(publisher, model, ref), _handles(body)))
