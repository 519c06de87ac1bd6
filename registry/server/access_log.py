"""One access-log line per request, written by the application rather than uvicorn.

uvicorn's own access log prints the raw request line; this one is built from
parts that cannot hold a credential: the method, the path, and the query with
any token-like parameter masked. Tokens travel only in the Authorization
header, which is never logged.
"""

from __future__ import annotations

import logging
import os
import time
from urllib.parse import parse_qsl, urlencode

logger = logging.getLogger("registry.server.access")

_SECRET_PARAMS = {"token", "access_token", "api_key", "apikey", "key", "password", "secret", "sig", "signature"}


def masked_query(query: bytes) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    shown = [(name, "***" if name.lower() in _SECRET_PARAMS or "token" in name.lower() else value)
             for name, value in pairs]
    return "?" + urlencode(shown, safe="/@:,")


class AccessLogMiddleware:
    """Pure ASGI (no buffering of streamed bodies): logs status, bytes sent and duration when a response ends."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        state = {"status": 0, "bytes": 0}

        async def logging_send(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":  # a whole file, sent by registry.server.sendfile
                state["bytes"] += os.path.getsize(message["path"])
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            if logger.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                logger.info('%s "%s %s%s HTTP/%s" %d %d %.1fms', client[0], scope["method"], scope["path"],
                            masked_query(scope.get("query_string", b"")), scope.get("http_version", "1.1"),
                            state["status"] or 500, state["bytes"], (time.perf_counter() - started) * 1000)
