"""The JSON API under ``/api/v1``: what client mode and scripts use.

Every route is a thin shell over a ``Registry`` method, so the server applies
exactly the rules a local call does. Routes are plain functions (FastAPI runs
them on worker threads, since the catalog is synchronous), except the upload,
which streams its body on the event loop. Errors leave through the handlers in
``registry.server.app`` as ``{"error", "message", "type"}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from registry.errors import HandleError
from registry.handles import CatalogHandle, parse, validate_name
from registry.server.auth import require
from registry.server.uploads import receive_upload

router = APIRouter(prefix="/api/v1")

#: Most items one page of a listing returns.
MAX_PAGE = 500


def handle_for(publisher: str, model: str, ref: str | None = None) -> CatalogHandle:
    """The catalog handle named by a URL's parts; ``ref`` is a number, ``latest``, an alias, or ``@alias``."""
    if ref is None or ref == "latest":
        text = f"{publisher}/{model}"
    elif ref.isdigit():
        text = f"{publisher}/{model}/{ref}"
    else:
        text = f"{publisher}/{model}@{ref.removeprefix('@')}"
    parsed = parse(text)
    if not isinstance(parsed, CatalogHandle):
        raise HandleError(f"{text!r} is not a catalog handle")
    return parsed


def registry_of(request: Request):
    return request.app.state.registry


def version_json(request: Request, version) -> dict:
    """A version as JSON, its ``artifact_uri`` being this server's model URL: clients never see the storage."""
    body = version.model_dump(mode="json")
    body["artifact_uri"] = archive_url(request, version.publisher, version.model, version.version)
    return body


def archive_url(request: Request, publisher: str, model: str, version: int) -> str:
    return str(request.url_for("model_version_url", publisher=publisher, model=model,
                               version=str(version))) + "?tf-hub-format=compressed"


def _page_size(limit: int) -> int:
    if limit < 1 or limit > MAX_PAGE:
        raise HandleError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    return limit


# -- models and search -----------------------------------------------------------------------------------------

@router.get("/models", summary="List models (keyset-paginated by publisher/name)")
def list_models(request: Request, publisher: str | None = None, limit: int = 100, after: str | None = None):
    require(request, "read")
    size = _page_size(limit)
    models = registry_of(request).list_models(publisher=publisher, limit=size + 1, after=after)
    page = models[:size]
    return {"items": [model.model_dump(mode="json") for model in page],
            "next": page[-1].model_name if len(models) > size else None}


@router.get("/search", summary="Each model's newest live version matching every criterion")
def search(request: Request, q: str | None = None, publisher: str | None = None, format: str | None = None,
           task: str | None = None, image_size: str | None = None, output_dim: int | None = None,
           limit: int = 100, after: str | None = None):
    """Besides these parameters, each filterable metadata field is a parameter of its own name
    (``registry.catalog.models.filter_names()``: ``?license=MIT``), an equality on the version."""
    require(request, "read")
    size = _page_size(limit)
    found = registry_of(request).search(text=q or None, publisher=publisher or None, format=format or None,
                                        task=task or None, image_size=parse_image_size(image_size),
                                        output_dim=output_dim, limit=size + 1, after=after,
                                        **metadata_filters(request))
    page = found[:size]
    return {"items": [version_json(request, v) for v in page], "next": page[-1].model_name if len(found) > size else None}


def metadata_filters(request: Request) -> dict[str, str]:
    """The query's filterable metadata fields, as given (an empty value means no filter, as for the others)."""
    from registry.catalog.models import filter_names

    return {name: request.query_params[name] for name in filter_names() if request.query_params.get(name)}


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """``224x224`` (height x width) or ``224`` for a square."""
    if not text:
        return None
    height, _, width = text.lower().partition("x")
    try:
        return int(height), int(width or height)
    except ValueError:
        raise HandleError(f"image_size is HEIGHTxWIDTH like 224x224, not {text!r}") from None


@router.get("/models/{publisher}/{model}", summary="One model: description, newest version, aliases")
def get_model(request: Request, publisher: str, model: str):
    require(request, "read")
    return registry_of(request).catalog.get_model(publisher=validate_name(publisher, "publisher"),
                                                  name=validate_name(model, "model name")).model_dump(mode="json")


@router.get("/models/{publisher}/{model}/versions", summary="A model's versions, oldest first")
def list_versions(request: Request, publisher: str, model: str, include_deleted: bool = False):
    require(request, "read")
    versions = registry_of(request).list_versions(f"{publisher}/{model}", include_deleted=include_deleted)
    return {"items": [version_json(request, v) for v in versions]}


@router.get("/models/{publisher}/{model}/versions/{ref}",
            summary="One version (number, 'latest' or '@alias') with its format's matrix row")
def get_version(request: Request, publisher: str, model: str, ref: str, include_deleted: bool = False):
    require(request, "read")
    registry = registry_of(request)
    version = registry.get_version(handle_for(publisher, model, ref), include_deleted=include_deleted)
    body = version_json(request, version)
    body["matrix"] = [cell_json(cell) for cell in registry.matrix.row(version.format)]
    return body


def cell_json(cell) -> dict:
    return {"format": cell.format, "operation": cell.operation, "mode": cell.mode, "supported": cell.supported,
            "note": cell.note, "alternative": cell.alternative}


@router.get("/models/{publisher}/{model}/versions/{ref}/location",
            summary="Where to download a version's archive, and how to check it")
def locate(request: Request, publisher: str, model: str, ref: str):
    require(request, "read")
    location = registry_of(request).catalog.locate(handle_for(publisher, model, ref))
    return {"publisher": location.publisher, "model": location.model, "version": location.version,
            "format": location.format, "sha256": location.sha256, "size": location.size,
            "url": archive_url(request, location.publisher, location.model, location.version)}


@router.get("/models/{publisher}/{model}/versions/{ref}/lineage",
            summary="This version, its parent, grandparent... (root last)")
def lineage(request: Request, publisher: str, model: str, ref: str):
    require(request, "read")
    return {"items": [version_json(request, v) for v in registry_of(request).lineage(handle_for(publisher, model, ref))]}


@router.get("/models/{publisher}/{model}/versions/{ref}/children",
            summary="Live versions published with this one as their parent")
def children(request: Request, publisher: str, model: str, ref: str):
    require(request, "read")
    return {"items": [version_json(request, v) for v in registry_of(request).children(handle_for(publisher, model, ref))]}


@router.get("/interchangeable", summary="Whether version b can replace version a (for a task)")
def interchangeable(request: Request, a: str, b: str, task: str | None = None):
    require(request, "read")
    result = registry_of(request).interchangeable(a, b, task=task or None)
    return {"a": result.a, "b": result.b, "task": result.task, "interchangeable": bool(result),
            "reasons": list(result.reasons), "notes": list(result.notes)}


@router.get("/tasks", summary="The common signatures this server checks")
def tasks(request: Request):
    require(request, "read")
    return {"items": [{"name": d.name, "description": getattr(d, "description", "")}
                      for d in registry_of(request).tasks]}


@router.get("/matrix", summary="The compatibility matrix: format x operation x mode")
def matrix(request: Request):
    require(request, "read")
    return {"items": [cell_json(cell) for cell in registry_of(request).matrix]}


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
             summary="Publish the next version: a multipart body, a JSON 'manifest' part then the 'archive' part")
async def publish(request: Request, publisher: str, model: str,
                  x_content_sha256: Annotated[str | None, Header()] = None):
    """The body is described in ``registry.server.uploads``; ``X-Content-SHA256`` is the archive's sha256."""
    name = f"{validate_name(publisher, 'publisher')}/{validate_name(model, 'model name')}"
    require(request, "publish", publisher=publisher)
    registry = registry_of(request)
    work = await run_in_threadpool(registry.cache.new_workdir)
    try:
        archive = work / "upload.tar.gz"
        upload = await receive_upload(request, archive, limit=request.app.state.server_settings.max_upload_bytes,
                                      declared_sha256=x_content_sha256)
        manifest = upload.manifest
        version = await run_in_threadpool(lambda: registry.publish(
            str(archive), name=name, metadata=manifest.version_metadata(), parent=manifest.parent,
            tasks=manifest.tasks))
    finally:
        await run_in_threadpool(registry.cache.discard, work)  # removes it and releases its lock
    return JSONResponse(version_json(request, version), status_code=201)


@router.delete("/models/{publisher}/{model}/versions/{version}", summary="Delete (hide) a version")
def delete_version(request: Request, publisher: str, model: str, version: int):
    require(request, "admin", publisher=publisher)
    return version_json(request, registry_of(request).delete_version(f"{publisher}/{model}/{version}"))


@router.get("/models/{publisher}/{model}/aliases", summary="A model's aliases and the versions they name")
def list_aliases(request: Request, publisher: str, model: str):
    require(request, "read")
    return registry_of(request).catalog.get_model(publisher=publisher, name=model).aliases


@router.put("/models/{publisher}/{model}/aliases/{alias}", summary="Point an alias at a version")
def set_alias(request: Request, publisher: str, model: str, alias: str,
              body: Annotated[dict[str, Any], Body(examples=[{"version": 3}])]):
    require(request, "publish", publisher=publisher)
    version = body.get("version") if isinstance(body, dict) else None
    if isinstance(version, bool) or not isinstance(version, int):
        raise HandleError(f"the body must be {{\"version\": N}}, not {body!r}")
    return version_json(request, registry_of(request).set_alias(f"{publisher}/{model}", alias, version))


@router.delete("/models/{publisher}/{model}/aliases/{alias}", status_code=204, summary="Remove an alias")
def remove_alias(request: Request, publisher: str, model: str, alias: str):
    require(request, "publish", publisher=publisher)
    registry_of(request).remove_alias(f"{publisher}/{model}", alias)
    return JSONResponse(None, status_code=204)


# -- tokens ------------------------------------------------------------------------------------------------------

@router.get("/tokens", summary="Live tokens (names and scopes, never the tokens)")
def list_tokens(request: Request, include_revoked: bool = False):
    require(request, "admin", any_publisher=True)
    tokens = registry_of(request).catalog.tokens.list(include_revoked=include_revoked)
    return {"items": [token.model_dump(mode="json") for token in tokens]}


@router.post("/tokens", status_code=201, summary="Create a token; the response is the only time it is shown")
def create_token(request: Request, body: Annotated[dict[str, Any], Body(
        examples=[{"name": "ci", "scope": "publish", "publisher": "vision"}])]):
    require(request, "admin", any_publisher=True)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("scope"), str):
        raise HandleError('the body must be {"name": NAME, "scope": "read"|"publish"|"admin", "publisher": P?}')
    token, record = registry_of(request).catalog.tokens.create(
        name=body["name"], scope=body["scope"], publisher=body.get("publisher") or None)
    return JSONResponse({"token": token, **record.model_dump(mode="json")}, status_code=201)


@router.delete("/tokens/{name}", summary="Revoke a token at once, on every server process")
def revoke_token(request: Request, name: str):
    require(request, "admin", any_publisher=True)
    return registry_of(request).catalog.tokens.revoke(name).model_dump(mode="json")
