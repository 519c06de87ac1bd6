"""Publishing in client mode: the model is made ready here and checked by the server.

A directory is packed here (deterministically, as a local publish would) and
an in-memory model is created here under the matrix gate; then the archive is
streamed to the server with its sha256. The server runs every check a local
publish runs — safe archive, known format, claimed tasks, size limit — before
it writes anything, so a client cannot put into the catalog what a local
publish would refuse.
"""

from __future__ import annotations

from typing import Any, Iterable

from registry.client.connection import ServerConnection, quoted
from registry.handles import parse_model_name
from registry.publishing import materialize, parse_parent
from registry.resolver import ProgressFactory, no_progress
from registry.storage.archive import file_digest, pack_directory


class UploadingPublisher:
    def __init__(self, *, connection: ServerConnection, catalog, cache, resolver, adapters,
                 progress: ProgressFactory = no_progress):
        self.connection = connection
        self.catalog = catalog
        self.cache = cache
        self.resolver = resolver
        self.adapters = adapters
        self.progress = progress

    def publish(self, source: Any, *, name: str, description: str = "", parent=None, tasks: Iterable[str] = (),
                mode: str | None = None, **create_options: Any):
        from registry.catalog.models import VersionPublic

        publisher, model = parse_model_name(name)
        parent_handle = parse_parent(parent)
        with self.cache.workdir() as work:
            model_dir, archive = materialize(source, work, resolver=self.resolver, adapters=self.adapters, mode=mode,
                                             create_options=create_options)
            if archive is None:
                self.adapters.detect(model_dir)  # a directory in no known format is refused before uploading it
                archive = work / "artifact.tar.gz"
                with open(archive, "wb") as out:
                    sha256, size = pack_directory(model_dir, out)
            else:
                digest = file_digest(archive)
                sha256, size = digest["sha256"], digest["size"]
            params = {"description": description or None, "parent": str(parent_handle) if parent_handle else None,
                      "task": list(dict.fromkeys(tasks))}
            with open(archive, "rb") as stream, self.progress(f"Uploading {publisher}/{model}", size) as update:
                body = self.connection.upload(quoted("api", "v1", "models", publisher, model, "versions"), stream,
                                              size=size, sha256=sha256, params=params, progress=update)
            record = VersionPublic.model_validate(body)
            if model_dir is not None:
                # What was just published need not be downloaded again to load it here.
                self.cache.add_directory(model_dir, sha256=record.sha256, size=record.size,
                                         source=f"{self.connection.url}/{record.handle}")
            return record
