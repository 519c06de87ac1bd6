"""A server freezes its heap again once its first requests have compiled what they use (``registry.server.heap``).

Checked on a real ASGI application answering real requests in this process: after the
configured number of answers the objects those requests left alive (compiled statements,
templates, serializers) are out of the collector's generations, and garbage is not frozen.
"""

from __future__ import annotations

import gc
import warnings
import weakref

from registry.server.heap import SettleHeap


def test_the_heap_is_collected_and_frozen_after_the_configured_requests():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    class Node:
        pass

    kept: list = []
    garbage: list[weakref.ref] = []
    app = FastAPI()

    @app.get("/")
    def answer():
        kept.append([object() for _ in range(100)])  # long-lived, like a statement cache
        node = Node()
        node.self = node  # garbage only a collection frees
        garbage.append(weakref.ref(node))
        return {"kept": len(kept)}

    app.add_middleware(SettleHeap, after=(3,))
    frozen = gc.get_freeze_count()
    try:
        with TestClient(app) as client:
            for _ in range(2):
                client.get("/")
            assert gc.get_freeze_count() == frozen
            client.get("/")
            assert gc.get_freeze_count() >= frozen + 200  # what the three requests kept
            assert all(ref() is None for ref in garbage)  # collected before the freeze, not frozen
            after = gc.get_freeze_count()
            client.get("/")
            assert gc.get_freeze_count() <= after  # once per threshold
    finally:
        gc.unfreeze()
