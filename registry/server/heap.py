"""Keeping a server's long-lived objects out of the garbage collector's full collections.

A full (generation 2) collection walks every tracked object. ``settle_start_up_heap``
(``registry.server.app``) freezes what start-up made, but a server makes many more
long-lived objects on its first requests: SQLAlchemy compiles and caches each
statement on first use, Jinja compiles each template, FastAPI and pydantic build
their serializers. On a model page's first requests that is ~20,000 objects, which
every later full collection walks again (~12 ms each, measured by
``bench/bench_pages.py``) for as long as the process lives. ``SettleHeap`` freezes a
second and third time, once the server has answered ``FREEZE_AFTER`` requests: one
collection then (what is garbage by then is collected, not frozen), and the
collector's full walks are back to what requests allocate.
"""

from __future__ import annotations

import gc
from typing import Any, Awaitable, Callable

#: After how many answered requests the heap is collected and frozen again.
FREEZE_AFTER = (50, 500)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SettleHeap:
    """ASGI middleware: ``gc.collect()`` then ``gc.freeze()`` after the ``FREEZE_AFTER``-th requests."""

    def __init__(self, app: Callable[..., Awaitable[None]], after: tuple[int, ...] = FREEZE_AFTER):
        self.app = app
        self._pending = sorted(after)
        self._answered = 0

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] != "http" or not self._pending:
            return
        self._answered += 1
        if self._answered >= self._pending[0]:
            self._pending.pop(0)
            gc.collect()
            gc.freeze()
