"""Reading database URLs without importing a database library: the backend, the SQLite file, the redacted form.

SQLAlchemy parses URLs too, but importing it costs a quarter of a second, and
the load path only needs to know whether the catalog is an SQLite file and how
to name it in messages and cache keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)
_PASSWORD = re.compile(r"^(?P<user>[^:/@]*):(?P<password>[^@/]*)@")


def backend(database_url: str) -> str:
    """``sqlite``, ``postgresql``... (the part of the scheme before any ``+driver``)."""
    match = _URL.match(database_url)
    return match.group("scheme").split("+", 1)[0].lower() if match else ""


def redact(database_url: str) -> str:
    """The URL with its password replaced by ``***``: safe for messages, logs and cache keys."""
    match = _URL.match(database_url)
    if not match:
        return database_url
    rest = _PASSWORD.sub(lambda m: f"{m.group('user')}:***@", match.group("rest"), count=1)
    return f"{match.group('scheme')}://{rest}"


def sqlite_file(database_url: str) -> Path | None:
    """The file of an ``sqlite:///PATH`` URL; None for in-memory, ``file:`` URI forms and other backends.

    The one reading of an SQLite URL's file: the load path's reader, the engine and the schema's
    creation lock all take the file from here, so they always agree on which file a URL names.
    """
    match = _URL.match(database_url)
    if not match or backend(database_url) != "sqlite":
        return None
    rest = match.group("rest")
    if not rest.startswith("/"):
        return None  # sqlite://host/... is not a form SQLite has
    path = unquote(rest[1:].split("?", 1)[0])
    if path in ("", ":memory:") or path.startswith("file:") or "mode=memory" in rest:
        return None
    return Path(path).expanduser().resolve()
