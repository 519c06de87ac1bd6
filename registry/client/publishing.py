"""Publishing in client mode: the model is made ready here and checked by the server.

A directory is packed here (deterministically, as a local publish would) and
an in-memory model is created here under the matrix gate; then the archive is
streamed to the server with its sha256. The server runs every check a local
publish runs — safe archive, known format, claimed tasks, size limit — before
it writes anything, so a client cannot put into the catalog what a local
publish would refuse.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterable

from registry.client.connection import ServerConnection, quoted
from registry.errors import ArtifactNotFound, HandleError
from registry.handles import SCHEME_RE, parse_model_name
from registry.modes import resolve_mode
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
        if hasattr(parent, "handle"):
            parent = parent.handle
        if parent is not None and not isinstance(parent, str):
            raise HandleError(f"parent must be a catalog handle like 'publisher/model/3', not {parent!r}")
        work = self.cache.new_workdir()
        try:
            model_dir, archive = self._materialize(source, work, mode, create_options)
            if archive is None:
                archive = work / "artifact.tar.gz"
                with open(archive, "wb") as out:
                    sha256, size = pack_directory(model_dir, out)
            else:
                digest = file_digest(archive)
                sha256, size = digest["sha256"], digest["size"]
            params = {"description": description or None, "parent": parent, "task": list(dict.fromkeys(tasks))}
            with open(archive, "rb") as stream, self.progress(f"Uploading {publisher}/{model}", size) as update:
                body = self.connection.upload(quoted("api", "v1", "models", publisher, model, "versions"), stream,
                                              size=size, sha256=sha256, params=params, progress=update)
            record = VersionPublic.model_validate(body)
            if model_dir is not None:
                # What was just published need not be downloaded again to load it here.
                self.cache.add_directory(model_dir, sha256=record.sha256, size=record.size,
                                         source=f"{self.connection.url}/{record.handle}")
            return record
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _materialize(self, source, work: Path, mode, create_options) -> tuple[Path | None, Path | None]:
        """(model directory or None, archive file or None) for any publishable source."""
        if isinstance(source, (str, os.PathLike)):
            text = os.fspath(source)
            if SCHEME_RE.match(text) and not text.startswith("file://"):
                return self.resolver.resolve(text).path, None
            path = Path(os.path.expanduser(text[7:] if text.startswith("file://") else text)).absolute()
            if path.is_dir():
                self.adapters.detect(path)  # a directory in no known format is refused before uploading it
                return path, None
            if path.is_file():
                return None, path
            raise ArtifactNotFound(f"nothing to publish at {path}: expected a model directory or a .tar.gz archive")
        mode = resolve_mode(mode)
        adapter = self.adapters.for_object(source)
        mode = adapter.creation_mode(source, mode)
        self.adapters.matrix.check(adapter.format, "create", mode)
        target = work / "model"
        adapter.create(source, target, mode=mode, **create_options)
        return target, None
