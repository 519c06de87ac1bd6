"""One registry server's HTTP API, spoken with the standard library.

``http.client`` rather than a third-party HTTP stack: client mode sits on the
load path, where every import counts, and it needs only JSON calls, one
streamed upload and streamed downloads. Each thread keeps one keep-alive
connection. Every failure becomes a ``registry.errors`` type: the server's
JSON errors map back to the class a local call would raise
(``registry.error_codes``), and an unreachable server is ``ServerError``
naming ``MODEL_REGISTRY_URL``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator
from urllib.parse import quote, urlencode, urljoin, urlsplit

from registry.config import DEFAULT_STALL_TIMEOUT_S, SERVER_URL_ENV, TOKEN_ENV
from registry.error_codes import error_from_body
from registry.errors import ArtifactError, HandleError, OfflineError, RegistryError, ServerError

if TYPE_CHECKING:
    from _typeshed import SupportsRead

#: The statuses that send a download elsewhere (a server redirects to its bucket's signed URL with 302).
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Bytes per socket write of an upload (http.client's default is 8 KiB).
UPLOAD_BLOCK = 1 << 20
USER_AGENT = "tf-model-registry-client"


class ServerConnection:
    """Calls to one server: ``call`` for JSON, ``upload`` for an archive, ``download`` for a model URL."""

    def __init__(self, url: str, *, token: str | None = None, offline: bool = False,
                 timeout: float = DEFAULT_STALL_TIMEOUT_S):
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HandleError(f"{SERVER_URL_ENV}={url!r} is not an http(s) URL of a registry server "
                              f"(e.g. http://registry.internal:8000)")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path.rstrip("/")
        self.token = token
        self.offline = offline
        self.timeout = timeout
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ServerConnection({self.url!r})"

    # -- JSON ---------------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, params: dict | None = None, body: Any = None) -> Any:
        """``method path`` with an optional JSON body; the decoded JSON answer (None for 204)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        with self._exchange(method, self.path_for(path, params), body=data, headers=headers) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def upload(self, path: str, stream: "SupportsRead[bytes]", *, size: int, sha256: str, params: dict | None = None,
               progress: Callable[[int], None] | None = None, content_type: str = "application/gzip") -> Any:
        """POST ``stream`` (``size`` bytes) as the body, in 1 MiB writes; the decoded JSON answer."""
        headers = {"Content-Type": content_type, "Content-Length": str(size), "X-Content-SHA256": sha256}
        body = _CountingReader(stream, progress) if progress else stream
        with self._exchange("POST", self.path_for(path, params), body=body, headers=headers) as response:
            return json.loads(response.read() or b"null")

    @contextlib.contextmanager
    def download(self, url: str, *, method: str = "GET") -> Iterator[BinaryIO]:
        """A streaming reader of one of this server's model URLs (sent with the token, when there is one).

        ``method="HEAD"`` asks only whether it is there (a missing one raises as a ``GET`` would).
        A redirect (a server whose bucket sends the bytes, ``MODEL_REGISTRY_DOWNLOADS``) is followed without
        the token: the URL it names carries its own signature. The caller checks the bytes' sha256 as ever.
        """
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != f"{self._scheme}://{self._netloc}":
            raise ServerError(f"the server pointed a download at {url}, outside {self.url}; refusing to send it the "
                              f"token")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        with self._exchange(method, target, fresh=True) as response:
            location = response.getheader("Location") if response.status in _REDIRECTS else None
            if location is None:
                yield response
            else:
                with self._redirected(method, urljoin(url, location)) as redirected:
                    yield redirected

    @contextlib.contextmanager
    def _redirected(self, method: str, url: str, hops: int = 5) -> Iterator[http.client.HTTPResponse]:
        """``method url`` on a connection of its own, with no token, following up to ``hops`` more redirects."""
        parts = urlsplit(url)
        host = parts.netloc or "?"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerError(f"the registry server {self.url} redirected a download to {shown_url(url)}, which is "
                              f"no http(s) URL")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = cls(parts.netloc, timeout=self.timeout, blocksize=UPLOAD_BLOCK)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            try:
                connection.request(method, target, headers={"User-Agent": USER_AGENT})
                response = connection.getresponse()
            except (ConnectionError, http.client.HTTPException, socket.timeout, ssl.SSLError, OSError) as error:
                raise ArtifactError(f"the registry server {self.url} sent the download to {host}, which cannot be "
                                    f"reached ({_describe(error)}); check that this machine may reach it") from error
            location = response.getheader("Location") if response.status in _REDIRECTS else None
            if location is not None and hops > 0:
                with self._redirected(method, urljoin(url, location), hops - 1) as redirected:
                    yield redirected
                return
            if response.status >= 300:
                raise ArtifactError(f"the registry server {self.url} sent the download to {host}, which answered "
                                    f"{response.status} {response.reason}: {response.read(300)!r}")
            try:
                yield response
            except (socket.timeout, http.client.IncompleteRead, ConnectionError) as error:
                raise ArtifactError(f"the download from {host} (where the registry server {self.url} sent it) "
                                    f"stopped ({_describe(error)})") from error
        finally:
            connection.close()

    def path_for(self, path: str, params: dict | None = None) -> str:
        query = urlencode([(k, v) for k, v in (params or {}).items() if v is not None], doseq=True)
        return self._prefix + path + (f"?{query}" if query else "")

    # -- plumbing -----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exchange(self, method: str, target: str, *, body=None, headers: dict | None = None,
                  fresh: bool = False) -> Iterator[http.client.HTTPResponse]:
        if self.offline:
            raise OfflineError(f"MODEL_REGISTRY_OFFLINE is set, so the registry server {self.url} cannot be asked; "
                               f"unset it (models fetched before still load offline by pinned handle)")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        # A kept-alive connection the server closed in between fails on first use: retry once on a fresh one,
        # unless a body stream was already consumed.
        attempts = 1 if (fresh or hasattr(body, "read")) else 2
        for attempt in range(attempts):
            connection = self._new_connection() if fresh else self._connection()
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
            except (ConnectionError, http.client.HTTPException, socket.timeout, ssl.SSLError, OSError) as error:
                connection.close()
                if not fresh:
                    self._local.connection = None
                if attempt + 1 < attempts and isinstance(error, (ConnectionError, http.client.RemoteDisconnected,
                                                                 http.client.BadStatusLine)):
                    continue
                raise ServerError(f"the registry server {self.url} cannot be reached ({_describe(error)}); check "
                                  f"{SERVER_URL_ENV} and that the server is running") from error
            break
        try:
            if response.status >= 400:
                raise self._error(response, method, target)
            yield response
        except RegistryError:
            raise  # the server's own answer (CatalogUnavailable is a ConnectionError too): kept as its class
        except (socket.timeout, http.client.IncompleteRead, ConnectionError) as error:
            connection.close()
            if not fresh:
                self._local.connection = None
            raise ServerError(f"the registry server {self.url} stopped answering {method} {target} "
                              f"({_describe(error)})") from error
        finally:
            if fresh or response.will_close:
                response.close()
                connection.close()
                if not fresh:
                    self._local.connection = None
            else:
                response.read()  # drain, so the connection can carry the next request

    def _error(self, response: http.client.HTTPResponse, method: str, target: str):
        raw = response.read(1 << 20)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        fallback = f"the registry server answered {response.status} {response.reason} to {method} {target}"
        if response.status == 401 and not self.token:
            fallback += f"; set {TOKEN_ENV}"
        error = error_from_body(response.status, body, fallback=fallback)
        if response.status == 401 and not self.token and isinstance(body, dict):
            message = str(body.get("message", fallback))
            # said once: the server's own message may already name the variable
            error.args = (message if TOKEN_ENV in message else f"{message} (no token was sent: set {TOKEN_ENV})",)
        return error

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._new_connection()
        return connection

    def _new_connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._netloc, timeout=self.timeout, blocksize=UPLOAD_BLOCK)


class _CountingReader:
    """A file wrapper that reports each block read (upload progress)."""

    def __init__(self, stream: "SupportsRead[bytes]", progress: Callable[[int], None]):
        self.stream, self.progress = stream, progress

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if data:
            self.progress(len(data))
        return data


def connection_lost(error: BaseException) -> bool:
    """Whether ``error`` is a ``ServerError`` for a connection that failed or broke (not an answer the server gave)."""
    return isinstance(error, ServerError) and isinstance(
        error.__cause__, (ConnectionError, http.client.HTTPException, socket.timeout, ssl.SSLError, OSError))


def quoted(*parts: str) -> str:
    """A URL path from parts, each percent-encoded."""
    return "/" + "/".join(quote(str(part), safe="@") for part in parts)


def shown_url(url: str) -> str:
    """``url`` without its query: a signed URL's query is a credential while it lasts."""
    return url.split("?", 1)[0]


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
