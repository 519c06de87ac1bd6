"""The part of Kaggle's model API that ``kagglehub.model_download`` calls, answered from the catalog.

kagglehub (1.0.3, through kagglesdk 0.1.38) sends every call as ``POST https://api.kaggle.com/v1/
models.ModelApiService/<Method>`` with a JSON body (camelCase fields, the framework as the enum name
``MODEL_FRAMEWORK_TENSOR_FLOW_2``); the host is fixed by ``KAGGLE_API_ENVIRONMENT`` (production:
``api.kaggle.com``), so unmodified code reaches this server once that host name points at it (with TLS).
``model_download("<owner>/<model>/<framework>/<variation>[/<version>]")`` calls, in order:

1. ``GetModelInstance`` — only without a version: ``versionNumber`` of the answer is the newest version;
2. ``ListModelInstanceVersionFiles`` with ``pageSize`` 25 — ``files[].name`` and ``nextPageToken``: no token
   means "download these files one by one", a token means "more than 25: fetch the whole archive";
3. ``DownloadModelInstanceVersion`` per file (``path``), or once without ``path`` for the archive. Kaggle
   answers with a redirect to the bytes (a signed bucket URL), which ``requests`` follows as a GET; here the
   redirect goes to this server: a file of the version's model directory (``/kaggle/files/...``, as a
   ``application/octet-stream`` whose URL ends in the file's name, with the bucket's ``X-Goog-Hash: md5=...``
   that kagglehub checks), or the version's ``.tar.gz`` at its model URL
   (``/<publisher>/<model>/<N>?tf-hub-format=compressed``), which kagglehub extracts with ``tarfile``.

A Kaggle handle names a catalog version through the version's legacy handles (``registry.legacy.handles``:
the kaggle family, ``https://www.kaggle.com/models/<o>/<m>/<f>/<v>/<N>``); the version number kagglehub sees
is the Kaggle one, from that handle, never the catalog's own number.

Errors come back in the SDK's shape, ``{"code": <HTTP status>, "message": ...}`` with that status (kagglesdk
raises ``HTTPError(message)`` for it and kagglehub prints "Resource not found at URL ..." for a 404); any
other method of any service is 501 in the same shape. Reads follow the server's read rule: with
``MODEL_REGISTRY_REQUIRE_READ_TOKEN`` a registry read token works as ``KAGGLE_API_TOKEN`` (kagglesdk sends
it as ``Authorization: Bearer``); Kaggle's legacy username/key (HTTP Basic) is not a registry credential.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import posixpath
from pathlib import Path
from typing import Any, Callable, Coroutine
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.error_codes import status_of
from registry.errors import HandleError, RegistryError, VersionNotFound
from registry.handles import COMPRESSED_QUERY
from registry.server.auth import READ
from registry.server.deps import RegistryDep, hide_server_paths

SERVICE = "models.ModelApiService"
#: The path prefix of Kaggle's API on its production host (kagglesdk ``KaggleHttpClient._get_request_url``).
PREFIX = "/v1"
#: Where the redirects of ``DownloadModelInstanceVersion`` send a single file.
FILES_PREFIX = "/kaggle/files"
#: The methods this server answers; ``model_download`` calls no others.
SERVED = ("GetModelInstance", "ListModelInstanceVersionFiles", "DownloadModelInstanceVersion")
#: kagglesdk's ``ModelFramework`` enum names start with this; the rest is the framework in upper snake case.
FRAMEWORK_ENUM_PREFIX = "MODEL_FRAMEWORK_"
#: What kagglehub asks per page (``MAX_NUM_FILES_DIRECT_DOWNLOAD``) when the request names no page size.
DEFAULT_PAGE_SIZE = 25


def kaggle_error(status: int, message: str) -> JSONResponse:
    """The SDK's error shape: kagglesdk raises for a JSON body whose ``code`` is 400 or more."""
    return JSONResponse({"code": status, "message": message}, status_code=status)


class KaggleRoute(APIRoute):
    """A route whose every failure, its access check's included, answers in the SDK's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def kaggle_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RegistryError as error:
                hide_server_paths(error, request)
                status, _ = status_of(error)
                response = kaggle_error(status, str(error))
                if status == 401:
                    response.headers["WWW-Authenticate"] = "Bearer"
                return response
            except RequestValidationError as error:
                return kaggle_error(400, "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: "
                                                   f"{e.get('msg', '')}" for e in error.errors()))
            except StarletteHTTPException as error:
                return kaggle_error(error.status_code, str(error.detail))

        return kaggle_handler


router = APIRouter(include_in_schema=False, route_class=KaggleRoute, dependencies=[Depends(READ)])


def framework_name(enum_name: str) -> str:
    """kagglesdk's ``MODEL_FRAMEWORK_TENSOR_FLOW_2`` as Kaggle's URLs write it, ``tensorFlow2``
    (kagglehub's ``enum_to_str``); the legacy handle's parser lower-cases it."""
    if not enum_name.startswith(FRAMEWORK_ENUM_PREFIX) or enum_name == f"{FRAMEWORK_ENUM_PREFIX}UNSPECIFIED":
        raise HandleError(f"framework {enum_name!r} is not one of kagglesdk's ModelFramework names "
                          f"({FRAMEWORK_ENUM_PREFIX}...)")
    words = enum_name.removeprefix(FRAMEWORK_ENUM_PREFIX).lower().split("_")
    return words[0] + "".join(word.capitalize() for word in words[1:])


def _text(body: dict, field: str) -> str:
    value = body.get(field, "")
    if not isinstance(value, str) or not value:
        raise HandleError(f"the request's {field!r} must be a non-empty string")
    return value


def kaggle_handle(body: dict, *, versioned: bool) -> str:
    """The kagglehub handle ``owner/model/framework/variation[/N]`` a request body names."""
    parts = [_text(body, "ownerSlug"), _text(body, "modelSlug"), framework_name(_text(body, "framework")),
             _text(body, "instanceSlug")]
    if versioned:
        number = body.get("versionNumber")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise HandleError("the request's 'versionNumber' must be a version number (1 or more)")
        parts.append(str(number))
    return "/".join(parts)


def _catalogued(registry, handle: str):
    """(the catalog version a kagglehub handle names, its Kaggle version number); ``VersionNotFound`` if none."""
    from registry.legacy.handles import KAGGLE, parse_legacy_handle

    asked = parse_legacy_handle(handle)
    version = registry.find_legacy_handle(str(asked))
    if version is None:
        raise VersionNotFound(f"no version in this catalog carries the Kaggle handle {handle!r} "
                              f"({asked}); record it with 'model-registry handles add'")
    if version.deleted:
        raise VersionNotFound(f"the Kaggle handle {handle!r} names {version.handle}, which was deleted")
    if asked.version is not None:
        return version, asked.version
    numbers = [found.version for found in map(parse_legacy_handle, version.legacy_handles)
               if found.family == KAGGLE and found.path == asked.path and found.version is not None]
    if not numbers:
        raise VersionNotFound(f"{version.handle} carries no versioned Kaggle handle under {asked}")
    return version, max(numbers)


def _files(registry, version) -> list[tuple[str, Path]]:
    """(relative POSIX path, local path) of every file of ``version``'s model, from the server's cache."""
    from registry.storage.archive import walk_model_directory

    root = registry.resolve_path(version.handle)
    return [(rel, path) for rel, path, is_dir in walk_model_directory(root) if not is_dir]


async def _body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise HandleError("the request body must be a JSON object (kagglesdk sends one)") from None
    if not isinstance(body, dict):
        raise HandleError("the request body must be a JSON object (kagglesdk sends one)")
    return body


@router.post(f"{PREFIX}/{SERVICE}/GetModelInstance")
async def get_model_instance(request: Request, registry: RegistryDep):
    """An ``ApiModelInstance``: kagglehub reads ``versionNumber``, the newest version of the instance."""
    body = await _body(request)
    handle = kaggle_handle(body, versioned=False)
    version, number = await run_in_threadpool(_catalogued, registry, handle)
    base = str(request.base_url).rstrip("/")
    return {"slug": body["instanceSlug"], "framework": body["framework"], "versionNumber": number,
            "overview": version.description, "licenseName": version.license or "",
            "url": f"{base}/{version.handle}", "downloadUrl": f"{base}/{version.handle}?{COMPRESSED_QUERY}"}


@router.post(f"{PREFIX}/{SERVICE}/ListModelInstanceVersionFiles")
async def list_model_instance_version_files(request: Request, registry: RegistryDep):
    """``files[]`` (name, size, creationDate), a page of ``pageSize`` from ``pageToken`` (an offset here)."""
    body = await _body(request)
    version, _ = await run_in_threadpool(_catalogued, registry, kaggle_handle(body, versioned=True))
    files = await run_in_threadpool(_files, registry, version)
    size = body.get("pageSize") or DEFAULT_PAGE_SIZE
    token = body.get("pageToken") or "0"
    if not isinstance(size, int) or size < 1 or not isinstance(token, str) or not token.isdigit():
        raise HandleError("pageSize must be a positive number and pageToken one this server gave")
    start = int(token)
    page = files[start:start + size]
    created = version.created_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{version.created_at.microsecond // 1000:03d}Z"
    return {"files": [{"name": rel, "size": path.stat().st_size, "creationDate": created} for rel, path in page],
            "nextPageToken": str(start + size) if start + size < len(files) else ""}


@router.post(f"{PREFIX}/{SERVICE}/DownloadModelInstanceVersion")
async def download_model_instance_version(request: Request, registry: RegistryDep):
    """A redirect to the bytes, as Kaggle's (to a bucket) is: one file with ``path``, else the archive."""
    body = await _body(request)
    version, _ = await run_in_threadpool(_catalogued, registry, kaggle_handle(body, versioned=True))
    path = body.get("path")
    if path is None:
        return RedirectResponse(f"/{version.handle}?{COMPRESSED_QUERY}", status_code=302)
    if not isinstance(path, str) or not path:
        raise HandleError("the request's 'path' must be a file of the model")
    rel = _relative(path)
    names = {name for name, _ in await run_in_threadpool(_files, registry, version)}
    if rel not in names:
        raise VersionNotFound(f"{version.handle} has no file {path!r}")
    return RedirectResponse(f"{FILES_PREFIX}/{version.handle}/{quote(rel)}", status_code=302)


@router.get(FILES_PREFIX + "/{publisher}/{model}/{number}/{path:path}")
async def model_file(registry: RegistryDep, publisher: str, model: str, number: int, path: str):
    """One file of a catalog version's model directory: where ``DownloadModelInstanceVersion`` redirects."""
    rel = _relative(path)
    version = await run_in_threadpool(registry.get_version, f"{publisher}/{model}/{number}")
    files = dict(await run_in_threadpool(_files, registry, version))
    if rel not in files:
        raise VersionNotFound(f"{version.handle} has no file {path!r}")
    stat = files[rel].stat()
    md5 = await run_in_threadpool(_md5, str(files[rel]), stat.st_size, stat.st_mtime_ns)
    return FileResponse(files[rel], media_type="application/octet-stream",
                        headers={"Cache-Control": "public, max-age=31536000, immutable",
                                 "X-Model-Handle": version.handle, "X-Goog-Hash": f"md5={md5}"})


@functools.lru_cache(maxsize=4096)
def _md5(path: str, size: int, mtime_ns: int) -> str:
    """The file's MD5 as Kaggle's bucket sends it (``X-Goog-Hash: md5=<base64>``), which kagglehub checks the
    download against; keyed by size and mtime too, so a cache entry replaced on disk is hashed again."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode("ascii")


def _relative(path: str) -> str:
    rel = posixpath.normpath(path.lstrip("/"))
    if rel in (".", "") or rel.startswith("../") or rel == "..":
        raise HandleError(f"{path!r} is not a path inside the model")
    return rel


@router.post(PREFIX + "/{service}/{method}")
async def unimplemented(service: str, method: str):
    """Every other method of Kaggle's API: 501 in the SDK's shape, naming what this server does answer."""
    return kaggle_error(501, f"{service}/{method} is not served by this model registry; it answers "
                             f"{', '.join(f'{SERVICE}/{name}' for name in SERVED)} (what kagglehub.model_download "
                             f"calls)")
