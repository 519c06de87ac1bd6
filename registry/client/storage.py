"""``ServerArtifactStore``: the artifact storage seam (``registry.storage.artifacts``) in client mode.

A client reads a version's archive from the registry server's model URL (the
``artifact_uri`` ``HttpCatalog.locate`` returns), sending the client's token,
so it needs no credentials for the bucket behind the server. It writes none
by itself: a server takes an archive only together with its version, by
upload (``registry.client.publishing``), where it checks both.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from registry.client.connection import ServerConnection
from registry.errors import ArtifactError, ArtifactNotFound, ModelNotFound, VersionNotFound


class ServerArtifactStore:
    """The archives of the registry server at ``connection.url``, read with the client's token."""

    def __init__(self, connection: ServerConnection):
        self.connection = connection
        self.url = connection.url

    def __repr__(self) -> str:
        return f"ServerArtifactStore({self.url!r})"

    def put(self, local_file: Path, sha256: str, *, progress: Callable[[int], None] | None = None) -> str:
        raise ArtifactError(f"the registry server {self.url} takes an archive only with its version, by upload "
                            f"(registry.publish in client mode), not into its storage by itself")

    def exists(self, uri: str) -> bool:
        try:
            with self.connection.download(uri, method="HEAD"):
                return True
        except (ArtifactNotFound, VersionNotFound, ModelNotFound):
            return False

    @contextlib.contextmanager
    def open(self, uri: str) -> Iterator[BinaryIO]:
        """A streaming reader of one of the server's model URLs; a URL elsewhere is refused (``ServerError``)."""
        with self.connection.download(uri) as stream:
            yield stream

    def local_file(self, uri: str) -> str | None:
        return None

    def signed_url(self, uri: str, *, expires_in: int) -> str | None:
        return None  # the server's model URLs need the client's token; the server itself may redirect a download
