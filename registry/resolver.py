"""Turning any handle into a local model directory, through the cache.

Catalog handles are looked up in the catalog and fetched from storage by their
recorded sha256; URLs and archives are fetched once and remembered by a ref.
Pinned handles (``publisher/model/N``) and URLs that are already cached load
without touching storage, and in offline mode without touching the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import ArtifactNotFound, HandleError, OfflineError
from registry.handles import CatalogHandle, PathHandle, UrlHandle, parse
from registry.storage.archive import ExtractResult, file_digest, tree_digest
from registry.storage.remote import is_local, list_directory, local_path, open_stream, filesystem_for

if TYPE_CHECKING:
    from registry.api import Registry

@dataclass(frozen=True)
class Resolved:
    """A handle's local directory, and its format when the catalog already knows it."""

    path: Path
    format: str | None = None
    sha256: str | None = None


class Resolver:
    def __init__(self, registry: "Registry"):
        self.registry = registry

    @property
    def cache(self):
        return self.registry.cache

    def resolve(self, handle) -> Resolved:
        parsed = parse(handle)
        if isinstance(parsed, CatalogHandle):
            return self._resolve_catalog(parsed)
        if isinstance(parsed, UrlHandle):
            return self._resolve_url(parsed)
        return self._resolve_path(parsed)

    # -- catalog handles ---------------------------------------------------------------------

    def _pinned_key(self, handle: CatalogHandle) -> str:
        return f"catalog:{self.registry.catalog_identity}:{handle}"

    def _resolve_catalog(self, handle: CatalogHandle) -> Resolved:
        if handle.pinned and self.registry.settings.offline:
            # versions are immutable: a pinned handle seen before needs neither catalog nor storage
            ref = self.cache.lookup_ref(self._pinned_key(handle))
            if ref is None:
                raise OfflineError(f"{handle} is not in the local cache and MODEL_REGISTRY_OFFLINE is set; "
                                   f"load it once online, or unset MODEL_REGISTRY_OFFLINE")
            return Resolved(self.cache.get(ref["sha256"]), ref.get("format"), ref["sha256"])
        return self.resolve_version(self.registry.catalog.locate(handle))

    def resolve_version(self, record) -> Resolved:
        """The local directory of a catalog version (a ``VersionLocation``), fetched by its sha256 unless cached."""
        path = self.cache.get(record.sha256)
        if path is None:
            if self.registry.settings.offline and not is_local(record.artifact_uri):
                raise OfflineError(f"{record.handle} is not in the local cache and MODEL_REGISTRY_OFFLINE is set")
            with self.registry.progress(f"Downloading {record.handle}", record.size) as update:
                _, path = self.cache.fetch(
                    lambda: open_stream(record.artifact_uri), source=record.artifact_uri,
                    sha256=record.sha256, size=record.size, progress=update)
        key = self._pinned_key(CatalogHandle(record.publisher, record.model, record.version))
        if self.cache.lookup_ref(key) is None:
            self.cache.write_ref(key, record.sha256, format=record.format)
        return Resolved(path, record.format, record.sha256)

    # -- URLs ----------------------------------------------------------------------------------

    def _resolve_url(self, handle: UrlHandle) -> Resolved:
        if handle.protocol == "file" and not handle.is_archive:
            return self._resolve_path(PathHandle(local_path(handle.url)))
        key = f"url:{handle.url}"
        ref = self.cache.lookup_ref(key)
        if ref is not None:
            return Resolved(self.cache.get(ref["sha256"]), None, ref["sha256"])
        if self.registry.settings.offline:
            raise OfflineError(f"{handle.url} is not in the local cache and MODEL_REGISTRY_OFFLINE is set")
        if handle.is_archive or handle.protocol in ("http", "https"):
            url = handle.download_url()
            with self.registry.progress(f"Downloading {handle.url}", None) as update:
                sha, path = self.cache.fetch(lambda: open_stream(url), source=handle.url, progress=update)
        else:
            sha, path = self._copy_directory(handle.url)
        self.cache.write_ref(key, sha)
        return Resolved(path, None, sha)

    def _copy_directory(self, url: str) -> tuple[str, Path]:
        """Copy a model directory from an fsspec URL into the cache, keyed by the hash of its files."""
        fs, _ = filesystem_for(url)
        files = list_directory(url)
        if not files:
            raise ArtifactNotFound(f"no files under {url}")
        work = self.cache.new_workdir()
        digests = {}
        for rel, full in files:
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(full, str(target))
            digests[rel] = file_digest(target)
        result = ExtractResult(sha256=tree_digest(digests), size=sum(d["size"] for d in digests.values()),
                               files=digests)
        return result.sha256, self.cache.add_extracted(work, result, source=url)

    # -- local paths -------------------------------------------------------------------------

    def _resolve_path(self, handle: PathHandle) -> Resolved:
        path = Path(handle.expanded)
        if path.is_dir():
            return Resolved(path)
        if not path.exists():
            raise ArtifactNotFound(f"no model directory or archive at {path}")
        if not handle.is_archive:
            raise HandleError(f"{path} is a file but not a .tar.gz archive; pass a model directory or an archive")
        stat = path.stat()
        key = f"path:{path}:{stat.st_size}:{stat.st_mtime_ns}"
        ref = self.cache.lookup_ref(key)
        if ref is not None:
            return Resolved(self.cache.get(ref["sha256"]), None, ref["sha256"])
        sha, cached = self.cache.fetch(lambda: open(path, "rb"), source=str(path))
        self.cache.write_ref(key, sha)
        return Resolved(cached, None, sha)

