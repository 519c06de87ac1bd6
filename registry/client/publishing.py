"""Publishing in client mode: the model is made ready here and checked by the server.

A directory is packed here (deterministically, as a local publish would) and
an in-memory model is created here under the matrix gate; then the archive is
streamed to the server with its sha256, after a JSON manifest of what is said
about the version (``registry.server.uploads`` describes the body). The server
runs every check a local publish runs — metadata, safe archive, known format,
claimed tasks, size limit — before it writes anything, so a client cannot put
into the catalog what a local publish would refuse.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable

from registry.client.connection import ServerConnection, connection_lost, quoted
from registry.errors import ServerError
from registry.handles import parse_model_name
from registry.publishing import materialize, parse_parent
from registry.resolver import ProgressFactory, no_progress
from registry.storage.archive import file_digest, pack_directory

if TYPE_CHECKING:
    from registry.catalog.models import VersionMetadata


#: Seconds before the one retry of a publish whose connection was lost (a restarting server gets a moment).
RETRY_AFTER_S = 2.0


class UploadingPublisher:
    def __init__(self, *, connection: ServerConnection, catalog, cache, resolver, adapters,
                 progress: ProgressFactory = no_progress):
        self.connection = connection
        self.catalog = catalog
        self.cache = cache
        self.resolver = resolver
        self.adapters = adapters
        self.progress = progress

    def publish(self, source: Any, *, name: str, metadata: "VersionMetadata | None" = None, parent=None,
                tasks: Iterable[str] = (), mode: str | None = None, idempotency_key: str | None = None,
                legacy_handles: Iterable[str] = (), **create_options: Any):
        """Upload ``source`` as the next version of ``name``; retried once, with the same idempotency key, when the
        connection is lost (the server may have committed it: a retry then gets that version, never a second)."""
        from registry.catalog.models import PublishManifest, VersionMetadata, VersionPublic

        publisher, model = parse_model_name(name)
        parent_handle = parse_parent(parent)
        manifest = PublishManifest.model_construct(
            **(metadata if metadata is not None else VersionMetadata()).metadata_values(),
            parent=str(parent_handle) if parent_handle else None, tasks=list(dict.fromkeys(tasks)),
            idempotency_key=idempotency_key or secrets.token_hex(16), legacy_handles=list(legacy_handles))
        with self.cache.workdir() as work:
            model_dir, archive = materialize(source, work, resolver=self.resolver, adapters=self.adapters, mode=mode,
                                             create_options=create_options)
            if archive is None:
                assert model_dir is not None  # materialize returns a model directory or an archive
                self.adapters.detect(model_dir)  # a directory in no known format is refused before uploading it
                archive = work / "artifact.tar.gz"
                with open(archive, "wb") as out:
                    sha256, size = pack_directory(model_dir, out)
            else:
                digest = file_digest(archive)
                sha256, size = digest["sha256"], digest["size"]
            path = quoted("api", "v1", "models", publisher, model, "versions")
            for attempt in range(2):
                try:
                    with open(archive, "rb") as stream, \
                            self.progress(f"Uploading {publisher}/{model}", size) as update:
                        body = MultipartUpload(manifest.model_dump(mode="json"), stream, size, progress=update)
                        answer = self.connection.upload(path, body, size=body.length, sha256=sha256,
                                                        content_type=body.content_type)
                    break
                except ServerError as error:
                    if attempt or not connection_lost(error):
                        raise
                    time.sleep(RETRY_AFTER_S)
            record = VersionPublic.from_json(answer)
            if model_dir is not None:
                # What was just published need not be downloaded again to load it here.
                self.cache.add_directory(model_dir, sha256=record.sha256, size=record.size,
                                         source=f"{self.connection.url}/{record.handle}")
            return record


class MultipartUpload:
    """A publish body read as a stream: the ``manifest`` part, then the archive streamed from ``archive``.

    Its length is known before sending (the parts' framing plus the archive's
    size), so it goes out with a ``Content-Length`` and without being held in memory.
    """

    def __init__(self, manifest: dict, archive: BinaryIO, archive_size: int, *,
                 progress: Callable[[int], None] | None = None):
        boundary = f"registry-{secrets.token_hex(16)}"
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self._head = (f"--{boundary}\r\n"
                      'Content-Disposition: form-data; name="manifest"\r\n'
                      "Content-Type: application/json\r\n\r\n").encode() + json.dumps(manifest).encode() + (
                     f"\r\n--{boundary}\r\n"
                     'Content-Disposition: form-data; name="archive"; filename="model.tar.gz"\r\n'
                     "Content-Type: application/gzip\r\n\r\n").encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self.length = len(self._head) + archive_size + len(self._tail)
        self._archive, self._left = archive, archive_size
        self._progress = progress
        self._state = "head"

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the body (``b""`` at its end), at most ``size`` of the archive at a time."""
        if self._state == "head":
            self._state = "archive"
            return self._head
        if self._state == "archive":
            if self._left == 0:
                self._state = "done"
                return self._tail
            data = self._archive.read(min(size, self._left) if size > 0 else self._left)
            if not data:
                from registry.errors import ArtifactError

                raise ArtifactError(f"the archive being uploaded shrank while it was read ({self._left:,} bytes "
                                    f"missing); publish again")
            self._left -= len(data)
            if self._progress is not None:
                self._progress(len(data))
            return data
        return b""
