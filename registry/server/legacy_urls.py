"""The legacy URL shapes, so unmodified code works once a host name points at this server.

Registered last: a path is first a catalog route (``registry.server.hub_urls`` answers
``/{publisher}/{model}[/{version}]``, and asks ``registry.server.legacy_answers`` when that names no catalog
model), then one of these, looked up as the legacy handle it spells:

- ``/<tfhub path>[/<version>]`` (tfhub.dev): the archive with ``?tf-hub-format=compressed`` (what
  tensorflow_hub sends; it never sends a browser's ``Accept``), the version's page without; unversioned, the
  version with the highest tfhub.dev version number;
- ``/tfhub-modules/<path>/<version>.tar.gz`` (storage.googleapis.com, gcs.tensorflow.google.cn): the archive;
- ``/models/<owner>/<model>/<framework>/<variation>[/<version>]`` and Kaggle's long form
  (``.../frameworks/<f>/variations/<v>/versions/<N>``): the page, or the archive with ``/download``
  appended or ``?tf-hub-format=compressed``; ``/api/v1/models/<o>/<m>/<f>/<v>/<N>/download`` (Kaggle's
  public REST download, as kagglehub before 1.0 called it): the archive. kagglehub 1.x's SDK calls
  (``/v1/models.ModelApiService/...`` on api.kaggle.com) are another router's.

Anything else is the 404 it always was. Access: reading, as for the catalog's own model URLs (a page's check
without the query, a download's with it).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException

from registry.access import Grant
from registry.errors import VersionNotFound
from registry.server import web_pages
from registry.server.auth import ACCESS_ATTRIBUTE, READ, access_rule
from registry.server.deps import RegistryDep, ServerSettingsDep
from registry.server.legacy_answers import legacy_answer

router = APIRouter(include_in_schema=False)

KAGGLE_API_PREFIX = "api/v1/models/"


async def legacy_reader(request: Request, registry: RegistryDep, settings: ServerSettingsDep) -> Grant | None:
    """The read check of a legacy URL: a page's (refused in HTML) unless it asks for an archive."""
    if _is_download(request.path_params.get("path", ""), request):
        return await READ(request, registry, settings)
    return await web_pages.page_reader(request, registry, settings)


setattr(legacy_reader, ACCESS_ATTRIBUTE, access_rule(READ))


def _is_download(path: str, request: Request) -> bool:
    return ("tf-hub-format" in request.query_params or path.startswith(("tfhub-modules/", KAGGLE_API_PREFIX))
            or (path.startswith("models/") and path.rstrip("/").endswith("/download")))


def legacy_spelling(path: str) -> str | None:
    """The legacy handle a request path spells, or None for a path that spells none."""
    from registry.legacy.handles import looks_legacy

    path = path.strip("/")
    if path.startswith("tfhub-modules/"):
        text = f"https://storage.googleapis.com/{path}"
    elif path.startswith(KAGGLE_API_PREFIX) and path.endswith("/download"):
        text = "https://www.kaggle.com/models/" + path[len(KAGGLE_API_PREFIX):-len("/download")]
    elif path.startswith("models/"):
        text = "https://www.kaggle.com/" + path.removesuffix("/download")
    else:
        text = f"https://tfhub.dev/{path}"
    return text if looks_legacy(text) else None


@router.api_route("/{path:path}", methods=["GET", "HEAD"], name="legacy_url", dependencies=[Depends(legacy_reader)])
async def legacy_url(request: Request, registry: RegistryDep, settings: ServerSettingsDep, path: str):
    legacy = legacy_spelling(path)
    if legacy is None:
        raise HTTPException(404)
    download = _is_download(path, request)
    answer = await legacy_answer(request, registry, settings, legacy, download=download)
    if answer is None and not download:
        raise HTTPException(404)  # a page nobody has: the 404 any unknown page is
    if answer is None:
        raise VersionNotFound(f"no version in this registry is named by {legacy} (its legacy handle); a publisher "
                              f"records one with `model-registry handles add PUBLISHER/MODEL/N {legacy}`")
    return answer
