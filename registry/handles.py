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

Whatever is refused is refused here, as a ``HandleError``, before any file
system, database or network sees the string: control characters (a NUL makes
``os.stat`` raise a bare ``ValueError``), text the OS cannot encode, strings
longer than any real handle, paths the OS would refuse as too long, URL schemes
no fsspec backend implements, and URLs ``urllib`` cannot split.
"""

from __future__ import annotations

import functools
import os
import re
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from registry.errors import HandleError, QueryError

NAME_RE = re.compile(r"^[a-z0-9._-]+$")
#: ASCII only: with Unicode case folding, "İHTTP" would match and lower-case to a longer, different string.
SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE | re.ASCII)
#: As tensorflow_hub: a handle ending so is an archive (its compression is told from its bytes, not this suffix).
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
#: The query that asks a model URL for its archive (tfhub.dev's protocol, which tensorflow_hub sends), declared
#: once for every URL this project writes.
COMPRESSED_QUERY = "tf-hub-format=compressed"
LATEST = "latest"
#: The catalog's name columns hold this many characters (PostgreSQL refuses more; SQLite would store them).
MAX_NAME_LENGTH = 128
#: The catalog's version column is a 32-bit integer; SQLite cannot even bind a number past 2**63 - 1.
MAX_VERSION = 2**31 - 1
#: No model path, URL (signed ones included) or catalog handle comes near this; anything longer is an accident.
MAX_HANDLE_LENGTH = 4096
#: C0 and C1 control characters and DEL: never part of a name, a path anyone types, or a valid URL.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Schemes whose location is ``host[:port]``, so a host and a numeric port can be checked before connecting.
HOST_SCHEMES = frozenset({"http", "https", "ftp", "sftp", "ssh", "smb", "webhdfs"})
#: fsspec's schemes for this machine's own files.
LOCAL_SCHEMES = frozenset({"file", "local"})

GRAMMAR = (
    "a handle is one of: a catalog handle 'publisher/model', 'publisher/model/N' or 'publisher/model@alias' "
    "(names of lowercase letters, digits, '-', '_', '.'); a URL 'scheme://...' of a model directory or .tar.gz "
    "(file://, gs://, http(s)://, memory://); or a local path starting with '/', './', '../' or '~'"
)


def validate_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid publisher, model or alias name, else raise ``HandleError``."""
    # fullmatch: NAME_RE.match would let a trailing newline through ('$' matches before one)
    if not isinstance(value, str) or not NAME_RE.fullmatch(value) or set(value) == {"."}:
        raise HandleError(
            f"invalid {what} {shown(str(value))}: use lowercase letters, digits, '-', '_' and '.', not empty or "
            f"only dots")
    if len(value) > MAX_NAME_LENGTH:
        raise HandleError(f"invalid {what} {shown(value)}: {len(value)} characters, at most {MAX_NAME_LENGTH}")
    return value


def is_local_url(url: str) -> bool:
    """True for a plain path or a ``file://`` or ``local://`` URL (fsspec's two names for this machine's files)."""
    match = SCHEME_RE.match(url)
    return match is None or match.group(1).lower() in LOCAL_SCHEMES


def local_path(url: str) -> str:
    """The path of a ``file://`` or ``local://`` URL (a plain path as is)."""
    match = SCHEME_RE.match(url)
    return url[match.end():] if match is not None and match.group(1).lower() in LOCAL_SCHEMES else url


def _same_kind_and_fields(self, other) -> bool:
    """Handles are named tuples (cheap to import, unlike dataclasses), but a URL and a path never equal each other."""
    return type(other) is type(self) and tuple.__eq__(self, other)


def _not_same_kind_and_fields(self, other) -> bool:
    return not _same_kind_and_fields(self, other)


class CatalogHandle(NamedTuple):
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


class UrlHandle(NamedTuple):
    """An fsspec URL of a model directory or archive."""

    url: str

    def __eq__(self, other: object) -> bool:
        return _same_kind_and_fields(self, other)

    def __ne__(self, other: object) -> bool:
        return _not_same_kind_and_fields(self, other)

    def __hash__(self) -> int:
        return tuple.__hash__(self)

    @property
    def protocol(self) -> str:
        match = SCHEME_RE.match(self.url)
        if match is None:  # a UrlHandle made directly, not by parse()
            raise HandleError(f"URL handle {shown(self.url)} has no scheme; {GRAMMAR}")
        return match.group(1).lower()

    @property
    def is_archive(self) -> bool:
        return urlsplit(self.url).path.endswith(ARCHIVE_SUFFIXES)

    def download_url(self) -> str:
        """The URL to fetch: HTTP(S) URLs of a directory ask for the compressed form, as tfhub.dev served it."""
        if self.protocol in ("http", "https") and not self.is_archive:
            parts = urlsplit(self.url)
            query = parts.query + ("&" if parts.query else "") + COMPRESSED_QUERY
            return urlunsplit(parts._replace(query=query))
        return self.url

    def __str__(self) -> str:
        return self.url


class PathHandle(NamedTuple):
    """A local model directory or archive."""

    path: str

    def __eq__(self, other: object) -> bool:
        return _same_kind_and_fields(self, other)

    def __ne__(self, other: object) -> bool:
        return _not_same_kind_and_fields(self, other)

    def __hash__(self) -> int:
        return tuple.__hash__(self)

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
        return _parse_path(_fspath(handle), handle)
    if not isinstance(handle, str):
        raise HandleError(f"a handle must be a string, not {type(handle).__name__}; {GRAMMAR}")
    text = handle.strip()
    if not text:
        raise HandleError(f"empty handle; {GRAMMAR}")
    _check_text(text, handle)
    if SCHEME_RE.match(text):
        return _parse_url(text, handle)
    if text.startswith(("/", "./", "../", "~")) or text in (".", ".."):
        return _parse_path(text, handle)
    return _parse_catalog(text, handle)


def shown(text: str, limit: int = 80) -> str:
    """``repr(text)``, cut to ``limit`` characters: an error message must stay readable for a 10 MB handle."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _fspath(handle: os.PathLike) -> str:
    """The text of a path object; ``HandleError`` when its ``__fspath__`` returns neither str nor bytes."""
    try:
        path = os.fspath(handle)
    except TypeError as error:
        raise HandleError(f"{type(handle).__name__} is not a usable path ({error}); {GRAMMAR}") from error
    return os.fsdecode(path) if isinstance(path, bytes) else path


def _check_text(text: str, original: str) -> None:
    """Refuse what no handle contains, before a file system or the network sees it."""
    if len(text) > MAX_HANDLE_LENGTH:
        raise HandleError(
            f"handle {shown(original)} is longer than {MAX_HANDLE_LENGTH} characters, so it names nothing this "
            f"registry can load; check where the string came from (a file read whole, a concatenation?)")
    control = CONTROL_RE.search(text)
    if control:
        raise HandleError(
            f"handle {shown(original)} contains the control character U+{ord(control.group()):04X} at position "
            f"{control.start()}; handles are printable text: remove it (a stray NUL or newline from a file or "
            f"a shell variable?)")


def _parse_url(text: str, original: str) -> UrlHandle:
    """A URL with a known scheme (lower-cased: schemes are case-insensitive) that ``urllib`` can split."""
    match = SCHEME_RE.match(text)
    assert match is not None  # parse() calls this only for text SCHEME_RE matches
    scheme, rest = match.group(1).lower(), text[match.end():]
    if not rest.strip("/"):
        raise HandleError(f"URL handle {shown(original)} names no location; {GRAMMAR}")
    url = f"{scheme}://{rest}"
    try:
        url.encode("utf-8")
    except UnicodeEncodeError as error:
        raise HandleError(f"URL handle {shown(original)} is not valid Unicode ({error.reason} at position "
                          f"{error.start}); retype it") from None
    check_scheme(url)
    try:
        parts = urlsplit(url)  # UrlHandle splits it again later: a malformed one must fail here
        if scheme in HOST_SCHEMES:
            parts.port  # noqa: B018 - raises ValueError unless the port is a number from 0 to 65535
    except ValueError as error:
        raise HandleError(f"URL handle {shown(original)} is malformed ({error}); fix the host and port") from None
    if scheme in HOST_SCHEMES and not parts.hostname:
        raise HandleError(f"URL handle {shown(original)} names no host; write it as {scheme}://HOST[:PORT]/PATH")
    if scheme in ("file", "local"):
        _check_path(rest)  # these are read with os calls, which would raise on a path too long
    return UrlHandle(url)


def known_schemes() -> frozenset[str]:
    """URL schemes fsspec has an implementation for (installed or not; a missing backend is a clearer error later)."""
    # imported here: only URL handles need fsspec, and it is slow to import
    from fsspec.registry import known_implementations, registry

    return frozenset(known_implementations) | frozenset(registry)


def check_scheme(url: str) -> None:
    """Raise ``HandleError`` naming the scheme of ``url`` and the known ones, unless fsspec knows that scheme."""
    match = SCHEME_RE.match(url)
    if match is None:
        return
    scheme = match.group(1).lower()
    if scheme in ("http", "https"):  # fsspec's own; asking it would import fsspec (~0.1 s) for every download
        return
    known = known_schemes()
    if scheme not in known:
        raise HandleError(
            f"unknown URL scheme {scheme!r} in {shown(url)}: fix the scheme, or install the fsspec package that "
            f"implements {scheme!r}; the known schemes are {', '.join(sorted(known))}")


@functools.cache
def _path_limits() -> tuple[int, int]:
    """(longest path, longest file name) in bytes the OS accepts; Linux's limits where it will not say."""
    try:
        return os.pathconf("/", "PC_PATH_MAX") - 1, os.pathconf("/", "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or the file system will not tell
        return 4095, 255


def _parse_path(text: str, original) -> PathHandle:
    """A local path; for path objects, the checks ``parse`` runs on strings first."""
    if not isinstance(original, str):
        _check_text(text, text)
    _check_path(text)
    return PathHandle(text)


def _check_path(text: str) -> None:
    """Refuse a path the OS cannot be asked about: ``os.stat`` raises a bare error for these, not "not found"."""
    try:
        encoded = os.fsencode(os.path.abspath(os.path.expanduser(text)))
    except UnicodeEncodeError as error:
        raise HandleError(f"path {shown(text)} cannot be encoded for the file system ({error.reason} at "
                          f"position {error.start}); retype it") from None
    max_path, max_name = _path_limits()
    if len(encoded) > max_path:
        raise HandleError(f"path {shown(text)} is {len(encoded)} bytes long once absolute, more than the "
                          f"{max_path} the OS accepts; move the model somewhere with a shorter path")
    longest = max(encoded.split(b"/"), key=len)
    if len(longest) > max_name:
        raise HandleError(f"path {shown(text)} has a component of {len(longest)} bytes, more than the {max_name} "
                          f"a file name may have, so no such file can exist; check the path")


def _parse_catalog(text: str, original: str) -> CatalogHandle:
    alias = None
    if "@" in text:
        text, alias = text.split("@", 1)
    parts = text.split("/")
    if len(parts) not in (2, 3) or (alias is not None and len(parts) != 2):
        raise HandleError(f"not a handle: {shown(original)}; {GRAMMAR}")
    try:
        publisher = validate_name(parts[0], "publisher")
        model = validate_name(parts[1], "model name")
        if alias is not None:
            validate_name(alias, "alias")
    except HandleError as e:
        raise HandleError(f"not a handle: {shown(original)}: {e}; {GRAMMAR}") from None
    version = None
    if len(parts) == 3:
        # ASCII digits only: str.isdigit() is true for '²', which int() refuses, and for '١', which it accepts
        digits = parts[2]
        if not (digits.isascii() and digits.isdigit() and not digits.startswith("0")
                and len(digits) <= len(str(MAX_VERSION)) and int(digits) <= MAX_VERSION):
            raise HandleError(f"not a handle: {shown(original)}: the version must be a whole number from 1 to "
                              f"{MAX_VERSION}, without leading zeros; {GRAMMAR}")
        version = int(digits)
    if alias == LATEST:
        alias = None  # 'latest' always means the newest version
    return CatalogHandle(publisher=publisher, model=model, version=version, alias=alias)


def parse_model_name(name: str) -> tuple[str, str]:
    """Parse ``publisher/model`` (as given to publish); raise ``HandleError`` otherwise."""
    handle = parse(name) if isinstance(name, str) else None
    if not isinstance(handle, CatalogHandle) or handle.version is not None or handle.alias is not None or "@" in name:
        raise HandleError(f"a model name is 'publisher/model' (lowercase letters, digits, '-', '_', '.'), not {name!r}")
    return handle.publisher, handle.model


def catalog_handle(handle: "str | Handle | os.PathLike") -> CatalogHandle:
    """``handle`` parsed (if it is not already) as a catalog handle; any other handle is a ``HandleError``.

    The one place that decides "this must name a catalog version": the API, the catalogs, the
    server's routes and pages and the CLI all ask here, so each refuses a URL or a path in the same words.
    """
    parsed = parse(handle)
    if not isinstance(parsed, CatalogHandle):
        raise HandleError(f"{shown(str(handle))} is not a catalog handle: use 'publisher/model', 'publisher/model/N' "
                          f"or 'publisher/model@alias' (URLs and paths are not in the catalog)")
    return parsed


def explicit_version(handle: "str | Handle | os.PathLike", action: str) -> CatalogHandle:
    """``handle`` as a catalog handle that names one version (``/N``) or an alias; ``publisher/model`` is refused.

    For what cannot be undone (deleting): "the newest version" is a moving target, so it is never implied.
    """
    parsed = catalog_handle(handle)
    if parsed.version is None and parsed.alias is None:
        raise HandleError(f"{action} needs a version: {parsed}/N or {parsed}@alias ({parsed} alone would mean "
                          f"whichever version is newest, which is never implied for {action})")
    return parsed


_IMAGE_SIZE_RE = re.compile(r"^\s*(\d{1,6})\s*(?:[xX,]\s*(\d{1,6}))?\s*$")


def parse_image_size(text: str | None, what: str = "image size") -> tuple[int, int] | None:
    """``"224x224"``, ``"224,224"`` or ``"224"`` (a square) as ``(height, width)``; None for none given.

    The one grammar of a search's image size, for the CLI's ``--image-size`` and the API's ``image_size``;
    ``what`` names the option in the ``QueryError`` for anything else.
    """
    if text is None or not str(text).strip():
        return None
    match = _IMAGE_SIZE_RE.match(str(text))
    if not match:
        raise QueryError(f"{what} takes HEIGHTxWIDTH such as 224x224 (or one number for a square), not "
                          f"{shown(str(text))}")
    height = int(match.group(1))
    return height, int(match.group(2) or height)
