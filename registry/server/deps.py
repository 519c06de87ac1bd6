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

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from registry.handles import CatalogHandle, catalog_handle
from registry.server.settings import ServerSettings

if TYPE_CHECKING:  # the routes get the Registry from the application; only the app factory builds one
    from registry.api import Registry


async def get_registry(request: Request) -> Registry:
    """The ``Registry`` this application serves (``create_app`` set it)."""
    return request.app.state.registry


async def get_server_settings(request: Request) -> ServerSettings:
    """The server's own settings (read token required, upload limit)."""
    return request.app.state.server_settings


RegistryDep = Annotated["Registry", Depends(get_registry)]
ServerSettingsDep = Annotated[ServerSettings, Depends(get_server_settings)]


def handle_for(publisher: str, model: str, ref: str | None = None) -> CatalogHandle:
    """The catalog handle named by a URL's parts; ``ref`` is a number, ``latest``, an alias, or ``@alias``."""
    if ref is None or ref == "latest":
        text = f"{publisher}/{model}"
    elif ref.isdigit():
        text = f"{publisher}/{model}/{ref}"
    else:
        text = f"{publisher}/{model}@{ref.removeprefix('@')}"
    return catalog_handle(text)


def utc_instant(moment: datetime | None) -> datetime | None:
    """A moment from a query string: one without a zone is UTC (a server's local time means nothing to a client)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)
