"""``http.response.pathsend`` for uvicorn: local archives go from the page cache to the socket with ``sendfile``.

Starlette's ``FileResponse`` hands a file to the server in one message when the
server offers the ASGI ``http.response.pathsend`` extension, and otherwise reads
it in chunks on a worker thread and copies each through Python. uvicorn 0.54
(pinned) offers no such extension, and the copying is what held
``model-registry serve`` to ~0.6 x nginx on an 18 MB download (bench/bench_server.py).

``PathsendMiddleware`` wraps the whole application (outside Starlette's own
middleware, so it sees uvicorn's ``send``) and offers the extension where it can
honour it: a plain-TCP connection of uvicorn's HTTP protocol (its request cycle
has the ``transport`` and the ``expected_content_length`` it checks the body
against). A ``pathsend`` message is then served by ``os.sendfile`` straight on the
connection's socket, on a worker thread that waits for the socket with ``poll``,
after uvicorn has written the headers; uvicorn is told the body is complete with
an empty last message. Anything else — TLS, another server, a test client — is
not offered the extension, and Starlette copies as before.

A client that goes away mid-file leaves the transport closed and the extension's
record marked ``incomplete``, so the download is not counted
(``registry.server.downloads``).
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
from typing import Any

from starlette.concurrency import run_in_threadpool

PATHSEND = "http.response.pathsend"
#: Seconds the socket may accept nothing before a download is given up (the client stopped reading).
STALL_TIMEOUT_S = 60.0


class PathsendMiddleware:
    def __init__(self, app):
        self.app = app

    def __getattr__(self, name: str) -> Any:  # app.state and the rest stay reachable through the wrapper
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and PATHSEND not in scope.get("extensions", {}):
            cycle = getattr(send, "__self__", None)
            transport = getattr(cycle, "transport", None)
            if (transport is not None and hasattr(cycle, "expected_content_length")
                    and transport.get_extra_info("sslcontext") is None
                    and transport.get_extra_info("socket") is not None):
                record: dict[str, Any] = {}
                scope["extensions"] = {**scope.get("extensions", {}), PATHSEND: record}
                send = _Sender(cycle, transport, send, record)
        await self.app(scope, receive, send)


class _Sender:
    def __init__(self, cycle, transport, send, record: dict):
        self.cycle, self.transport, self.send, self.record = cycle, transport, send, record

    async def __call__(self, message) -> None:
        if message["type"] != PATHSEND:
            await self.send(message)
            return
        size = self.cycle.expected_content_length
        if self.cycle.chunked_encoding or self.cycle.scope["method"] == "HEAD":  # no Content-Length to send against
            await _copy(self.send, message["path"])
            return
        # The headers first: uvicorn wrote them to the transport, which sends at once unless the socket was full.
        while self.transport.get_write_buffer_size() and not self.transport.is_closing():
            await asyncio.sleep(0.001)
        # A duplicate of the socket's descriptor: should uvicorn close the connection meanwhile (the client went
        # away), its number could be given to the next connection, which must never receive this file.
        fd = os.dup(self.transport.get_extra_info("socket").fileno())
        try:
            sent = await run_in_threadpool(_sendfile, fd, message["path"], size) if size else 0
        finally:
            os.close(fd)
        if sent < size:
            self.record["incomplete"] = True
            self.cycle.disconnected = True  # as uvicorn marks a connection lost: its sends become no-ops
            self.transport.close()
            return
        self.cycle.expected_content_length = 0
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})


async def _copy(send, path: str) -> None:
    """The file as ordinary body messages (what Starlette does without the extension)."""
    with open(path, "rb") as file:
        while chunk := await run_in_threadpool(file.read, 1 << 20):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _sendfile(socket_fd: int, path: str, size: int) -> int:
    """Send ``size`` bytes of ``path`` to the non-blocking socket ``socket_fd``; the number sent (short: the client
    went away, or read nothing for ``STALL_TIMEOUT_S``)."""
    poller = select.poll()
    poller.register(socket_fd, select.POLLOUT)
    sent = 0
    with open(path, "rb") as file:
        while sent < size:
            try:
                n = os.sendfile(socket_fd, file.fileno(), sent, size - sent)
            except BlockingIOError:
                if not poller.poll(STALL_TIMEOUT_S * 1000):
                    return sent
                continue
            except OSError as error:
                if error.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF):
                    return sent
                raise
            if n == 0:  # the file is shorter than it was: nothing more to send
                return sent
            sent += n
    return sent
