"""The artifact storage seam: one object that both writes and reads a registry's model archives.

``ArtifactStorage`` is what the publisher, the resolver and the server's
downloads use; ``Registry.store`` builds the one that fits the configuration:

* ``ArtifactStore`` (here): archives under a storage URL (a local folder,
  ``gs://``, ``memory://``...), read and written with this process's own
  credentials, through ``registry.storage.remote``;
* ``ServerArtifactStore`` (``registry.client.storage``): client mode, where
  archives are read from a registry server with the client's token, and
  written only with their version, by upload.

This module imports nothing heavy: the resolver holds a store on the path of
a cached load, which must import neither fsspec nor a socket library (see
``tests/test_one_path.py``); ``registry.storage.remote`` is imported when bytes
move.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, ContextManager, Iterator, Protocol, runtime_checkable

from registry.config import DEFAULT_STALL_TIMEOUT_S
from registry.errors import OfflineError
from registry.handles import is_local_url, local_path

if TYPE_CHECKING:
    from types import ModuleType

Progress = Callable[[int], None]


@runtime_checkable
class ArtifactStorage(Protocol):
    """Writes and reads model archives. Raises only ``registry.errors`` types."""

    #: Where the archives live (a storage URL, or the server a client reads through), for messages.
    url: str

    def put(self, local_file: Path, sha256: str, *, progress: Progress | None = None) -> str:
        """Store ``local_file`` as the archive for ``sha256`` (once); return the URI the catalog records."""
        ...

    def exists(self, uri: str) -> bool: ...

    def open(self, uri: str) -> ContextManager[BinaryIO]:
        """A streaming binary reader of the archive at ``uri`` (a catalog version's ``artifact_uri``)."""
        ...

    def local_file(self, uri: str) -> str | None:
        """The file on this machine holding ``uri``'s bytes, when there is one (the server sends it with sendfile)."""
        ...

    def signed_url(self, uri: str, *, expires_in: int) -> str | None:
        """A URL that GETs ``uri``'s bytes without credentials for ``expires_in`` seconds, or None where this storage
        cannot sign one (a local folder, a bucket read with credentials that hold no private key).

        The server redirects downloads there (``MODEL_REGISTRY_DOWNLOADS``), so the bucket sends the bytes.
        """
        ...


def remote() -> "ModuleType":
    """``registry.storage.remote`` (fsspec), imported only when bytes move."""
    from registry.storage import remote as module

    return module


class ArtifactStore:
    """Puts and opens model archives under one storage URL, content-addressed by sha256."""

    def __init__(self, storage_url: str, *, offline: bool = False, stall_timeout: float = DEFAULT_STALL_TIMEOUT_S):
        if is_local_url(storage_url):
            storage_url = os.path.abspath(os.path.expanduser(local_path(storage_url)))
        self.url = storage_url.rstrip("/")
        self.offline = offline
        #: Seconds a read may receive nothing (``MODEL_REGISTRY_STALL_TIMEOUT``) before ``TransferStalled``.
        self.stall_timeout = stall_timeout
        self._fs = None
        #: Set once signing failed for want of a key: the credentials do not change while the process runs.
        self._cannot_sign = False

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    @property
    def fs(self):
        if self._fs is None:
            self._fs, _ = remote().filesystem_for(self.url)
        return self._fs

    def uri_for(self, sha256: str) -> str:
        return f"{self.url}/sha256/{sha256[:2]}/{sha256}.tar.gz"

    def put(self, local_file: Path, sha256: str, *, progress: Progress | None = None) -> str:
        """Upload ``local_file`` as the artifact for ``sha256`` unless it is already there; return its URI."""
        self._require_online(self.url, "publish to " + self.url)
        return remote().put_file(local_file, self.uri_for(sha256), progress=progress)

    def exists(self, uri: str) -> bool:
        self._require_online(uri, f"look for {uri}")
        return remote().exists(uri)

    @contextlib.contextmanager
    def open(self, uri: str) -> Iterator[BinaryIO]:
        """A streaming binary reader of an artifact; ``ArtifactNotFound`` when there is none.

        Any URL the catalog recorded is readable, not only those under this store's URL: a catalog
        may outlive a move of its storage. Offline, only bytes on this machine can be read.
        """
        self._require_online(uri, f"download {uri}")
        with remote().open_stream(uri, stall_timeout=self.stall_timeout) as stream:
            yield stream

    def local_file(self, uri: str) -> str | None:
        return local_path(uri) if is_local_url(uri) else None

    def signed_url(self, uri: str, *, expires_in: int) -> str | None:
        if self._cannot_sign or is_local_url(uri) or self.offline:
            return None
        url = remote().signed_url(uri, expires_in=expires_in)
        if url is None:
            self._cannot_sign = True
        return url

    def _require_online(self, uri: str, what: str) -> None:
        if self.offline and not is_local_url(uri):
            raise OfflineError(f"cannot {what}: MODEL_REGISTRY_OFFLINE is set")
