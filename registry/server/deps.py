"""What routes depend on, as FastAPI dependencies: the registry, the server's settings, a URL's catalog handle.

``create_app`` puts one ``Registry`` and one ``ServerSettings`` on the
application's state; routes, pages and the access checks
(``registry.server.auth``) reach them only through ``RegistryDep`` and
``ServerSettingsDep``, so there is one way to get at them and a test can build
an app around any registry. This module holds no routes: routers import it,
never each other (``tests/test_server_routes.py`` checks both).

The dependencies are ``async`` on purpose: FastAPI runs a plain ``def``
dependency on a worker thread, a hop that would cost every request for
reading an attribute.
"""

from __future__ import annotations

import functools
import os
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from registry.handles import COMPRESSED_QUERY, CatalogHandle, catalog_handle
from registry.server.settings import ServerSettings

if TYPE_CHECKING:  # the routes get the Registry from the application; only the app factory builds one
    from registry.api import Registry
    from registry.errors import RegistryError


async def get_registry(request: Request) -> Registry:
    """The ``Registry`` this application serves (``create_app`` set it)."""
    return request.app.state.registry


async def get_server_settings(request: Request) -> ServerSettings:
    """The server's own settings (read token required, upload limit)."""
    return request.app.state.server_settings


RegistryDep = Annotated["Registry", Depends(get_registry)]
ServerSettingsDep = Annotated[ServerSettings, Depends(get_server_settings)]


@functools.lru_cache(maxsize=4096)
def handle_for(publisher: str, model: str, ref: str | None = None) -> CatalogHandle:
    """The catalog handle named by a URL's parts; ``ref`` is a number, ``latest``, an alias, or ``@alias``.

    Kept for the URLs most recently asked (a handle is an immutable tuple; a refused one is not kept): a crowd
    asks the same few, and parsing one costs more than the rest of a ``304``."""
    if ref is None or ref == "latest":
        text = f"{publisher}/{model}"
    elif ref.isdigit():
        text = f"{publisher}/{model}/{ref}"
    else:
        text = f"{publisher}/{model}@{ref.removeprefix('@')}"
    return catalog_handle(text)


def hide_server_paths(error: "RegistryError", request: Request) -> None:
    """Take the server's own folders (its cache, a local storage folder) out of ``error``'s message.

    Messages are written for a local user, who is helped by the path; a server's callers are not, and its
    layout is none of their business. Each folder becomes a name for it: ``<server cache>``, ``<storage>``.
    """
    from registry.handles import is_local_url, local_path

    settings = request.app.state.registry.settings
    folders = [(str(settings.cache_dir), "<server cache>")]
    if is_local_url(settings.storage_url):
        folders.append((str(local_path(settings.storage_url)), "<storage>"))
    message = str(error)
    for variant in {str(settings.cache_dir), os.path.realpath(settings.cache_dir)}:
        # An upload's work directory (ModelCache.new_workdir) is what the caller sent: call it that.
        message = re.sub(re.escape(variant) + r"/tmp/w-[0-9]+-[0-9a-f]+(/model)?", "the uploaded model", message)
    for folder, name in sorted(folders, key=lambda item: -len(item[0])):
        for variant in {folder, os.path.realpath(folder)}:
            if len(variant) > 1:
                message = message.replace(variant, name)
    if message != str(error):
        error.args = (message,)


def utc_instant(moment: datetime | None) -> datetime | None:
    """A moment from a query string: one without a zone is UTC (a server's local time means nothing to a client)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def version_json(request: Request, version) -> dict:
    """A version as JSON, its ``artifact_uri`` being this server's model URL: clients never see the storage."""
    body = version.model_dump(mode="json")
    body["artifact_uri"] = archive_url(request, version.publisher, version.model, version.version)
    return body


def archive_url(request: Request, publisher: str, model: str, version: int) -> str:
    return str(request.url_for("model_version_url", publisher=publisher, model=model,
                               version=str(version))) + f"?{COMPRESSED_QUERY}"
