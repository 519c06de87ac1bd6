"""The JSON API under ``/api/v1``: what client mode and scripts use.

Every route is a thin shell over a ``Registry`` method (``RegistryDep``), so
the server applies exactly the rules a local call does, and declares the access
it needs (``registry.server.auth``), which FastAPI checks before the body runs. Routes are plain functions (FastAPI runs
them on worker threads, since the catalog is synchronous), except the upload,
which streams its body on the event loop. Errors leave through the handlers in
``registry.server.app`` as ``{"error", "message", "type"}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from registry.errors import HandleError, QueryError
from registry.handles import validate_name
from registry.server import http_cache
from registry.server.auth import ADMIN, ADMIN_EVERY_PUBLISHER, PUBLISH, READ
from registry.server.deps import RegistryDep, ServerSettingsDep, archive_url, handle_for, utc_instant, version_json
from registry.server.uploads import receive_upload

router = APIRouter(prefix="/api/v1")

#: Most items one page of a listing returns.
MAX_PAGE = 500


def _page_size(limit: int) -> int:
    if limit < 1 or limit > MAX_PAGE:
        raise QueryError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    return limit


# -- models and search -----------------------------------------------------------------------------------------
# Each route declares its access check (``registry.server.auth``) in its decorator or signature; FastAPI runs
# it before the body.

@router.get("/models", summary="List models (keyset-paginated by publisher/name)", dependencies=[Depends(READ)])
def list_models(registry: RegistryDep, publisher: str | None = None, limit: int = 100, after: str | None = None):
    size = _page_size(limit)
    models = registry.list_models(publisher=publisher, limit=size + 1, after=after)
    page = models[:size]
    return {"items": [model.model_dump(mode="json") for model in page],
            "next": page[-1].model_name if len(models) > size else None}


def _search_parameters() -> list[dict]:
    """The search's query parameters for the OpenAPI document, from ``SearchQuery`` (declared there once)."""
    from registry.catalog.models import filter_names
    from registry.catalog.search import SearchQuery

    kinds = {"output_dim": "integer", "page": "integer", "limit": "integer"}
    parameters = [{"name": name, "in": "query", "required": False, "description": field.description or "",
                   "schema": {"type": kinds.get(name, "string")}}
                  for name, field in SearchQuery.model_fields.items() if name != "filters"]
    return parameters + [{"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                          "description": "A filterable metadata field of the version (equality; a list field "
                                         "holds the value)."} for name in filter_names()]


@router.get("/search", summary="Search by need: each model's newest live version matching every word and filter",
            dependencies=[Depends(READ)], openapi_extra={"parameters": _search_parameters()})
def search(request: Request, registry: RegistryDep):
    """The catalog page's search (``Registry.find``), the same parameters: every word of ``q`` must match
    somewhere; ``total`` counts the matching models (exactly up to 1,000; past that ``total_exact`` is false and
    ``total`` means "at least"); ``page`` and ``limit`` page through them; with the name
    order, ``next`` is also the keyset cursor for ``after`` (page N costs what page 1 does)."""
    from registry.catalog.search import SearchQuery

    query = SearchQuery.from_params(request.query_params)
    found = registry.find(query)
    next_cursor = None
    if found.sort == "name" and found.items and (found.has_next if query.after is None
                                                 else len(found.items) == found.limit):
        next_cursor = found.items[-1].model_name
    return {"items": [version_json(request, v) for v in found.items], "total": found.total,
            "total_exact": found.total_exact, "page": found.page,
            "pages": found.pages, "limit": found.limit, "sort": found.sort, "next": next_cursor}


@router.get("/publishers", summary="Every publisher that has a model, by name", dependencies=[Depends(READ)])
def publishers(registry: RegistryDep):
    return {"items": registry.catalog.publishers()}


@router.get("/models/{publisher}/{model}", summary="One model: description, newest version, aliases",
            dependencies=[Depends(READ)])
def get_model(registry: RegistryDep, publisher: str, model: str):
    return registry.catalog.get_model(publisher=validate_name(publisher, "publisher"),
                                      name=validate_name(model, "model name")).model_dump(mode="json")


@router.get("/models/{publisher}/{model}/versions", summary="A model's versions, oldest first",
            dependencies=[Depends(READ)])
def list_versions(request: Request, registry: RegistryDep, publisher: str, model: str, include_deleted: bool = False):
    versions = registry.list_versions(f"{publisher}/{model}", include_deleted=include_deleted)
    return {"items": [version_json(request, v) for v in versions]}


@router.get("/models/{publisher}/{model}/versions/{ref}",
            summary="One version (number, 'latest' or '@alias') with its format's matrix row",
            dependencies=[Depends(READ)])
def get_version(request: Request, registry: RegistryDep, settings: ServerSettingsDep, publisher: str, model: str,
                ref: str, include_deleted: bool = False, at: datetime | None = None):
    """``at`` (ISO 8601; UTC unless it names a zone): the version the handle named at that moment.

    Without ``at`` the answer has an ETag and ``Cache-Control`` (``registry.server.http_cache``), and a request
    that sends a current ETag in ``If-None-Match`` gets ``304`` before any record is read."""
    handle = handle_for(publisher, model, ref)
    validators = (http_cache.VersionValidators.of(request, registry, handle, include_deleted=include_deleted,
                                                  private=settings.require_read_token) if at is None else None)
    if validators is not None and validators.fresh(request):
        return validators.not_modified()
    version = registry.get_version(handle, include_deleted=include_deleted, at=utc_instant(at))
    body = version_json(request, version)
    body["matrix"] = [cell_json(cell) for cell in registry.matrix.row(version.format)]
    return validators.json(body) if validators is not None else JSONResponse(body)


def cell_json(cell) -> dict:
    return {"format": cell.format, "operation": cell.operation, "mode": cell.mode, "supported": cell.supported,
            "note": cell.note, "alternative": cell.alternative}


@router.get("/models/{publisher}/{model}/versions/{ref}/location",
            summary="Where to download a version's archive, and how to check it", dependencies=[Depends(READ)])
def locate(request: Request, registry: RegistryDep, publisher: str, model: str, ref: str):
    location = registry.catalog.locate(handle_for(publisher, model, ref))
    return {"publisher": location.publisher, "model": location.model, "version": location.version,
            "format": location.format, "sha256": location.sha256, "size": location.size,
            "url": archive_url(request, location.publisher, location.model, location.version)}


@router.get("/models/{publisher}/{model}/versions/{ref}/lineage",
            summary="This version, its parent, grandparent... (root last)", dependencies=[Depends(READ)])
def lineage(request: Request, registry: RegistryDep, publisher: str, model: str, ref: str):
    return {"items": [version_json(request, v) for v in registry.lineage(handle_for(publisher, model, ref))]}


@router.get("/models/{publisher}/{model}/versions/{ref}/children",
            summary="Live versions published with this one as their parent", dependencies=[Depends(READ)])
def children(request: Request, registry: RegistryDep, publisher: str, model: str, ref: str):
    return {"items": [version_json(request, v) for v in registry.children(handle_for(publisher, model, ref))]}


@router.get("/interchangeable", summary="Whether version b can replace version a (for a task)",
            dependencies=[Depends(READ)])
def interchangeable(registry: RegistryDep, a: str, b: str, task: str | None = None):
    result = registry.interchangeable(a, b, task=task or None)
    return {"a": result.a, "b": result.b, "task": result.task, "interchangeable": bool(result),
            "reasons": list(result.reasons), "notes": list(result.notes)}


@router.get("/tasks", summary="The common signatures this server checks", dependencies=[Depends(READ)])
def tasks(registry: RegistryDep):
    return {"items": [{"name": d.name, "description": getattr(d, "description", "")} for d in registry.tasks]}


@router.get("/matrix", summary="The compatibility matrix: format x operation x mode", dependencies=[Depends(READ)])
def matrix(registry: RegistryDep):
    return {"items": [cell_json(cell) for cell in registry.matrix]}


# -- writes ------------------------------------------------------------------------------------------------------

def _publish_body() -> dict:
    """The publish route's body for the OpenAPI document (read by ``registry.server.uploads``, not by FastAPI)."""
    from registry.catalog.models import PublishManifest

    schema = {"type": "object", "required": ["manifest", "archive"],
              "properties": {"manifest": PublishManifest.model_json_schema(),
                             "archive": {"type": "string", "format": "binary", "description": "the model's .tar.gz"}}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": schema, "encoding": {"manifest": {"contentType": "application/json"},
                                       "archive": {"contentType": "application/gzip"}}}}}}


@router.post("/models/{publisher}/{model}/versions", status_code=201, openapi_extra=_publish_body(),
             summary="Publish the next version: a multipart body, a JSON 'manifest' part then the 'archive' part",
             dependencies=[Depends(PUBLISH)])
async def publish(request: Request, registry: RegistryDep, settings: ServerSettingsDep, publisher: str, model: str,
                  x_content_sha256: Annotated[str | None, Header()] = None):
    """The body is described in ``registry.server.uploads``; ``X-Content-SHA256`` is the archive's sha256."""
    name = f"{validate_name(publisher, 'publisher')}/{validate_name(model, 'model name')}"
    await run_in_threadpool(registry.cache.clean_leftovers)  # what killed processes' uploads left
    work = await run_in_threadpool(registry.cache.new_workdir)
    try:
        archive = work / "upload.tar.gz"
        upload = await receive_upload(request, archive, limit=settings.max_upload_bytes,
                                      declared_sha256=x_content_sha256, idle_timeout=settings.upload_idle_timeout,
                                      min_rate=settings.upload_min_rate)
        manifest = upload.manifest
        version = await run_in_threadpool(lambda: registry.publish(
            str(archive), name=name, metadata=manifest.version_metadata(), parent=manifest.parent,
            tasks=manifest.tasks, idempotency_key=manifest.idempotency_key, legacy_handles=manifest.legacy_handles))
    finally:
        await run_in_threadpool(registry.cache.discard, work)  # removes it and releases its lock
    return JSONResponse(version_json(request, version), status_code=201)


@router.delete("/models/{publisher}/{model}/versions/{version}", summary="Delete (hide) a version",
               dependencies=[Depends(ADMIN)])
def delete_version(request: Request, registry: RegistryDep, publisher: str, model: str, version: int):
    return version_json(request, registry.delete_version(f"{publisher}/{model}/{version}"))


@router.get("/models/{publisher}/{model}/aliases", summary="A model's aliases and the versions they name",
            dependencies=[Depends(READ)])
def list_aliases(registry: RegistryDep, publisher: str, model: str):
    return registry.catalog.get_model(publisher=publisher, name=model).aliases


@router.put("/models/{publisher}/{model}/aliases/{alias}", summary="Point an alias at a version",
            dependencies=[Depends(PUBLISH)])
def set_alias(request: Request, registry: RegistryDep, publisher: str, model: str, alias: str,
              body: Annotated[dict[str, Any], Body(examples=[{"version": 3}])]):
    version = body.get("version") if isinstance(body, dict) else None
    if isinstance(version, bool) or not isinstance(version, int):
        raise HandleError(f"the body must be {{\"version\": N}}, not {body!r}")
    return version_json(request, registry.set_alias(f"{publisher}/{model}", alias, version))


@router.delete("/models/{publisher}/{model}/aliases/{alias}", status_code=204, summary="Remove an alias",
               dependencies=[Depends(PUBLISH)])
def remove_alias(registry: RegistryDep, publisher: str, model: str, alias: str):
    registry.remove_alias(f"{publisher}/{model}", alias)
    return JSONResponse(None, status_code=204)


# -- tokens ------------------------------------------------------------------------------------------------------

@router.get("/tokens", summary="Live tokens (names and scopes, never the tokens)",
            dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def list_tokens(registry: RegistryDep, include_revoked: bool = False):
    tokens = registry.catalog.tokens.list(include_revoked=include_revoked)
    return {"items": [token.model_dump(mode="json") for token in tokens]}


@router.post("/tokens", status_code=201, summary="Create a token; the response is the only time it is shown",
             dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def create_token(registry: RegistryDep, body: Annotated[dict[str, Any], Body(
        examples=[{"name": "ci", "scope": "publish", "publisher": "vision"}])]):
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("scope"), str):
        raise HandleError('the body must be {"name": NAME, "scope": "read"|"publish"|"admin", "publisher": P?}')
    token, record = registry.catalog.tokens.create(
        name=body["name"], scope=body["scope"], publisher=body.get("publisher") or None)
    return JSONResponse({"token": token, **record.model_dump(mode="json")}, status_code=201)


@router.delete("/tokens/{name}", summary="Revoke a token at once, on every server process",
               dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def revoke_token(registry: RegistryDep, name: str):
    return registry.catalog.tokens.revoke(name).model_dump(mode="json")
