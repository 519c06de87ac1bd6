"""One parser for every handle the registry accepts.

Grammar (also in the README)::

    catalog   publisher/model            newest version
              publisher/model/N          version N (N >= 1)
              publisher/model@alias      the version the alias points at
    url       SCHEME://...               any fsspec URL of a model directory or a .tar.gz
                                         (file://, gs://, http(s)://, memory://, ...)
    path      /..., ./..., ../..., ~...  a local model directory or .tar.gz

Names (publisher, model, alias) are lowercase letters, digits, ``-``, ``_`` and
``.``, and are never empty or made only of dots.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from registry.errors import HandleError

NAME_RE = re.compile(r"^[a-z0-9._-]+$")
SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
LATEST = "latest"

GRAMMAR = (
    "a handle is one of: a catalog handle 'publisher/model', 'publisher/model/N' or 'publisher/model@alias' "
    "(names of lowercase letters, digits, '-', '_', '.'); a URL 'scheme://...' of a model directory or .tar.gz "
    "(file://, gs://, http(s)://, memory://); or a local path starting with '/', './', '../' or '~'"
)


def validate_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid publisher, model or alias name, else raise ``HandleError``."""
    if not value or not NAME_RE.match(value) or set(value) == {"."}:
        raise HandleError(
            f"invalid {what} {value!r}: use lowercase letters, digits, '-', '_' and '.', not empty or only dots")
    return value


@dataclass(frozen=True)
class CatalogHandle:
    """``publisher/model`` with at most one of ``version`` or ``alias``."""

    publisher: str
    model: str
    version: int | None = None
    alias: str | None = None

    @property
    def model_name(self) -> str:
        return f"{self.publisher}/{self.model}"

    @property
    def pinned(self) -> bool:
        """True if the handle names one version for all time (a number, not an alias)."""
        return self.version is not None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.model_name}/{self.version}"
        if self.alias is not None:
            return f"{self.model_name}@{self.alias}"
        return self.model_name


@dataclass(frozen=True)
class UrlHandle:
    """An fsspec URL of a model directory or archive."""

    url: str

    @property
    def protocol(self) -> str:
        return SCHEME_RE.match(self.url).group(1).lower()

    @property
    def is_archive(self) -> bool:
        return urlsplit(self.url).path.endswith(ARCHIVE_SUFFIXES)

    def download_url(self) -> str:
        """The URL to fetch: HTTP(S) URLs of a directory ask for the compressed form, as tfhub.dev served it."""
        if self.protocol in ("http", "https") and not self.is_archive:
            parts = urlsplit(self.url)
            query = parts.query + ("&" if parts.query else "") + "tf-hub-format=compressed"
            return urlunsplit(parts._replace(query=query))
        return self.url

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class PathHandle:
    """A local model directory or archive."""

    path: str

    @property
    def expanded(self) -> str:
        return os.path.abspath(os.path.expanduser(self.path))

    @property
    def is_archive(self) -> bool:
        return self.path.endswith(ARCHIVE_SUFFIXES)

    def __str__(self) -> str:
        return self.path


Handle = CatalogHandle | UrlHandle | PathHandle


def parse(handle: "str | Handle | os.PathLike") -> Handle:
    """Parse a handle string; raise ``HandleError`` (a ``ValueError``) showing the grammar if it is none."""
    if isinstance(handle, (CatalogHandle, UrlHandle, PathHandle)):
        return handle
    if isinstance(handle, os.PathLike):
        return PathHandle(os.fspath(handle))
    if not isinstance(handle, str):
        raise HandleError(f"a handle must be a string, not {type(handle).__name__}; {GRAMMAR}")
    text = handle.strip()
    if not text:
        raise HandleError(f"empty handle; {GRAMMAR}")
    if SCHEME_RE.match(text):
        rest = text[SCHEME_RE.match(text).end():]
        if not rest.strip("/"):
            raise HandleError(f"URL handle {handle!r} names no location; {GRAMMAR}")
        return UrlHandle(text)
    if text.startswith(("/", "./", "../", "~")) or text in (".", ".."):
        return PathHandle(text)
    return _parse_catalog(text, handle)


def _parse_catalog(text: str, original: str) -> CatalogHandle:
    alias = None
    if "@" in text:
        text, alias = text.split("@", 1)
    parts = text.split("/")
    if len(parts) not in (2, 3) or (alias is not None and len(parts) != 2):
        raise HandleError(f"not a handle: {original!r}; {GRAMMAR}")
    try:
        publisher = validate_name(parts[0], "publisher")
        model = validate_name(parts[1], "model name")
        if alias is not None:
            validate_name(alias, "alias")
    except HandleError as e:
        raise HandleError(f"not a handle: {original!r}: {e}; {GRAMMAR}") from None
    version = None
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 1 or parts[2] != str(int(parts[2])):
            raise HandleError(f"not a handle: {original!r}: the version must be a whole number from 1; {GRAMMAR}")
        version = int(parts[2])
    if alias == LATEST:
        alias = None  # 'latest' always means the newest version
    return CatalogHandle(publisher=publisher, model=model, version=version, alias=alias)


def parse_model_name(name: str) -> tuple[str, str]:
    """Parse ``publisher/model`` (as given to publish); raise ``HandleError`` otherwise."""
    handle = parse(name) if isinstance(name, str) else None
    if not isinstance(handle, CatalogHandle) or handle.version is not None or handle.alias is not None or "@" in name:
        raise HandleError(f"a model name is 'publisher/model' (lowercase letters, digits, '-', '_', '.'), not {name!r}")
    return handle.publisher, handle.model
