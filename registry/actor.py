"""Who is making a change: the name the audit log records for every write.

Declared once, here, and read by the catalog when it records a change
(``registry.catalog.audit``). A server sets it for each request from the
caller's token (``registry.server.auth.caller``: the token's name); a process
working on a catalog directly is ``user@host``. A ``ContextVar``, so each
request (and each thread it runs on, which copies the request's context) sees
its own caller, and nothing has to be threaded through every write call.
Imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
from collections.abc import Iterator
from contextvars import ContextVar

_ACTOR: ContextVar[str | None] = ContextVar("model_registry_actor", default=None)
#: The base URL of the server a change came through (``http://host:port``), for links in webhook bodies.
_BASE_URL: ContextVar[str | None] = ContextVar("model_registry_base_url", default=None)


def local_actor() -> str:
    """``user@host`` of this process: who changes a catalog opened directly (no server in between)."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001  (no login name in a bare container: still someone, on some host)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def current_actor() -> str:
    """The actor of the change being made now: the one set by ``acting_as``, else ``local_actor()``."""
    return _ACTOR.get() or local_actor()


def current_base_url() -> str | None:
    """The base URL of the server the change being made came through; None for a local change."""
    return _BASE_URL.get()


def set_actor(name: str | None, base_url: str | None = None) -> None:
    """Make ``name`` the actor (and ``base_url`` the server) for the rest of this context: a server request's,
    which ends with it."""
    _ACTOR.set(name)
    _BASE_URL.set(base_url.rstrip("/") if base_url else None)


@contextlib.contextmanager
def acting_as(name: str, base_url: str | None = None) -> Iterator[None]:
    """Changes made inside the block are recorded as made by ``name`` (through the server at ``base_url``)."""
    tokens = _ACTOR.set(name), _BASE_URL.set(base_url.rstrip("/") if base_url else None)
    try:
        yield
    finally:
        _ACTOR.reset(tokens[0])
        _BASE_URL.reset(tokens[1])
