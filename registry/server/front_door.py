"""The ASGI application a server runs: the FastAPI application behind a front door of what needs no routing.

FastAPI wraps every request in middleware of its own before any of the application's: its error pages,
its telemetry hook, its body limit, each a coroutine and a wrapped ``send``. For a request that the
application then routes, resolves dependencies for and renders, that is a small share; for the answers a
crowd repeats — the same archive downloaded again (``hub_urls.ArchiveShortcut``), the same version JSON
revalidated (``http_cache.NotModifiedShortcut``) — it was about a fifth of the server's work for each.
So those two shortcuts, and the access log that records every answer, sit in front of the FastAPI
application rather than inside it. Outermost first::

    access log -> archive shortcut -> 304 shortcut -> FastAPI (error handling, gzip, routes)

The shortcuts answer only what they are sure of; anything else, and any failure of theirs, goes on to
FastAPI, whose routes and error handlers answer it as always (so no exception reaches a caller from here).
``FrontDoor`` passes attribute access through to the FastAPI application (``app.state``, routes,
``add_middleware``), so code and tests that build an application use it as the FastAPI one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from registry.server.access_log import AccessLogMiddleware
from registry.server.http_cache import NotModifiedShortcut
from registry.server.hub_urls import ArchiveShortcut


class FrontDoor:
    """ASGI: the access log and the shortcuts, then ``fastapi_app``; everything else is ``fastapi_app``'s."""

    def __init__(self, fastapi_app: FastAPI):
        self.fastapi_app = fastapi_app
        self._http = AccessLogMiddleware(ArchiveShortcut(NotModifiedShortcut(fastapi_app)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fastapi_app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # the lifespan (start-up, shutdown) and anything else: FastAPI's alone
            await self.fastapi_app(scope, receive, send)
            return
        scope["app"] = self.fastapi_app  # as FastAPI sets it: the shortcuts reach app.state through it
        await self._http(scope, receive, send)
