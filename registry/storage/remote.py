"""Where published artifacts live: any fsspec URL (a local folder, ``gs://``, ``memory://``...).

Artifacts are content-addressed — ``<storage>/sha256/<ab>/<sha256>.tar.gz`` — so
publishing the same bytes twice stores them once, and concurrent publishers never
overwrite each other. Reads are streams, so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import fsspec
from fsspec.callbacks import Callback

from registry.errors import ArtifactError, ArtifactNotFound, OfflineError
from registry.handles import SCHEME_RE

Progress = Callable[[int], None]


def is_local(url: str) -> bool:
    match = SCHEME_RE.match(url)
    return match is None or match.group(1).lower() == "file"


def local_path(url: str) -> str:
    return url[len("file://"):] if url.startswith("file://") else url


def prepare_gcs() -> None:
    """gcsfs asks GCS for a bucket's type over gRPC first; an emulator never answers, so turn that off for one."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def filesystem_for(url: str):
    """The fsspec filesystem and path for ``url`` (fsspec's own config and env vars apply)."""
    if url.startswith(("gs://", "gcs://")):
        prepare_gcs()
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as error:
        raise ArtifactError(f"no fsspec backend for {url!r}: {error}") from error


class _ProgressCallback(Callback):
    def __init__(self, progress: Progress | None):
        super().__init__()
        self.progress = progress
        self._last = 0

    def call(self, *args, **kwargs):
        if self.progress and self.value > self._last:
            self.progress(self.value - self._last)
            self._last = self.value


class ArtifactStore:
    """Puts and opens model archives under one storage URL."""

    def __init__(self, storage_url: str, *, offline: bool = False):
        if is_local(storage_url):
            storage_url = os.path.abspath(os.path.expanduser(local_path(storage_url)))
        self.url = storage_url.rstrip("/")
        self.offline = offline
        self._fs = None

    @property
    def fs(self):
        if self._fs is None:
            self._fs, _ = filesystem_for(self.url)
        return self._fs

    def uri_for(self, sha256: str) -> str:
        return f"{self.url}/sha256/{sha256[:2]}/{sha256}.tar.gz"

    def put(self, local_file: Path, sha256: str, *, progress: Progress | None = None) -> str:
        """Upload ``local_file`` as the artifact for ``sha256`` unless it is already there; return its URI."""
        self._require_online("publish to " + self.url)
        uri = self.uri_for(sha256)
        fs, path = filesystem_for(uri)
        size = os.path.getsize(local_file)
        if fs.exists(path) and fs.size(path) == size:
            if progress:
                progress(size)
            return uri
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        if is_local(uri):
            # a rename makes a half-written file impossible to see under the final name
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            fs.put_file(str(local_file), tmp, callback=_ProgressCallback(progress))
            os.replace(tmp, path)
        else:
            # object stores make an object visible only once its upload completed
            fs.put_file(str(local_file), path, callback=_ProgressCallback(progress))
        return uri

    def exists(self, uri: str) -> bool:
        fs, path = filesystem_for(uri)
        return fs.exists(path)

    @contextlib.contextmanager
    def open(self, uri: str) -> Iterator[BinaryIO]:
        """A streaming binary reader of an artifact; ``ArtifactNotFound`` when there is none."""
        self._require_online(f"download {uri}")
        with open_stream(uri) as stream:
            yield stream

    def _require_online(self, what: str) -> None:
        if self.offline and not is_local(self.url):
            raise OfflineError(f"cannot {what}: MODEL_REGISTRY_OFFLINE is set")


@contextlib.contextmanager
def open_stream(url: str) -> Iterator[BinaryIO]:
    """Open ``url`` for one sequential read. HTTP is streamed (no range requests, no whole-body buffering)."""
    fs, path = filesystem_for(url)
    kwargs = {"block_size": 0} if url.startswith(("http://", "https://")) else {}
    try:
        stream = fs.open(path, "rb", **kwargs)
    except FileNotFoundError as error:
        raise ArtifactNotFound(f"no artifact at {url}") from error
    except OSError as error:
        raise ArtifactError(f"cannot open {url}: {error}") from error
    try:
        yield stream
    finally:
        stream.close()


def list_directory(url: str) -> list[tuple[str, str]]:
    """(relative path, full fsspec path) of every file below a model directory URL."""
    fs, root = filesystem_for(url)
    root = root.rstrip("/")
    if not fs.isdir(root):
        raise ArtifactNotFound(f"no model directory at {url}")
    files = []
    for full in sorted(fs.find(root)):
        rel = full[len(root):].lstrip("/")
        files.append((rel, full))
    return files
