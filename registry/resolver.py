"""Turning any handle into a local model directory, through the cache.

Catalog handles are looked up in the catalog and their archives read through
the artifact store (``registry.storage.artifacts``: the storage URL's, or in
client mode the server's, with the client's token), checked by their recorded
sha256; URLs and archives are fetched once and remembered by a ref. The
resolver is given what it uses — a catalog, an artifact store, a cache, the
offline setting and a progress factory — never the whole ``Registry``; and a
handle already parsed where it entered (``registry.handles.parse``).

Offline (``MODEL_REGISTRY_OFFLINE=1``) is one rule: nothing touches the
network; whatever's bytes are already local loads, pinned or not. Local means
the cache, a local storage folder, or a path; an SQLite catalog is local too,
so every handle it can answer from local bytes works. With a catalog on the
network, a handle resolves to what it last resolved to on this machine (a
pinned handle can never change; ``@alias`` and the newest version are as of
that last time), and anything never resolved here is an ``OfflineError``.
"""

from __future__ import annotations

import contextlib
import stat as stat_module
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, NamedTuple

from registry.errors import ArtifactNotFound, HandleError, IntegrityError, NotARegularFile, OfflineError
from registry.handles import CatalogHandle, Handle, PathHandle, UrlHandle, catalog_handle, is_local_url, local_path

if TYPE_CHECKING:
    from registry.catalog.interface import CatalogBackend, VersionLocation
    from registry.storage.artifacts import ArtifactStorage
    from registry.storage.cache import ModelCache

#: ``factory(label, total_bytes)``: a context manager yielding ``update(n_bytes)`` or None.
ProgressFactory = Callable[[str, "int | None"], ContextManager["Callable[[int], None] | None"]]
#: Called with a version's format once it is known and before its bytes are fetched; raises to refuse.
BeforeFetch = Callable[[str], None]

OFFLINE_HINT = "unset MODEL_REGISTRY_OFFLINE to download it, or load it once while online"


def _offline_hint(url: str) -> str:
    """What to do about a URL offline mode cannot fetch: for a legacy handle, bring the team's caches in."""
    from registry.legacy.handles import looks_legacy

    if looks_legacy(url):
        return ("import your tensorflow_hub cache into the catalog (model-registry import tfhub-cache DIR), record "
                "the handle on a catalog version (model-registry handles add PUBLISHER/MODEL/N URL), or set "
                "TFHUB_CACHE_DIR to a cache holding it (model-registry export tfhub-cache writes one)")
    return OFFLINE_HINT


def remote():
    """``registry.storage.remote`` (fsspec), imported only when a URL handle's bytes must be fetched."""
    from registry.storage import remote as module

    return module


def no_progress(label: str, total: int | None):
    return contextlib.nullcontext(None)


class Resolved(NamedTuple):
    """A handle's local directory; its format when the catalog knows it, and whether ``before_fetch`` ran."""

    path: Path
    format: str | None = None
    sha256: str | None = None
    gated: bool = False


class Resolver:
    def __init__(self, *, catalog: "CatalogBackend", store: "ArtifactStorage", cache: "ModelCache",
                 offline: bool = False, progress: ProgressFactory = no_progress,
                 claims_file: Callable[[Path], bool] | None = None,
                 check_directory: Callable[[Path], object] | None = None, tfhub_cache_dir: str | None = None):
        self.catalog = catalog
        self.store = store
        self.cache = cache
        self.offline = offline
        self.progress = progress
        #: True for a file some format adapter reads as a whole model: a path to it resolves to the file itself.
        self.claims_file = claims_file
        #: Raises ``FormatError`` for a directory no format adapter claims (``AdapterSet.detect``): run before a
        #: directory is walked or copied, so what is not a model costs nothing.
        self.check_directory = check_directory
        #: ``TFHUB_CACHE_DIR`` when set: URLs are cached there in tensorflow_hub's layout, and found there in place.
        self.tfhub_cache_dir = tfhub_cache_dir

    def resolve(self, handle: Handle, *, before_fetch: BeforeFetch | None = None) -> Resolved:
        """The local directory of a parsed handle (``registry.handles.parse``: done once, where it entered)."""
        if isinstance(handle, CatalogHandle):
            return self._resolve_catalog(handle, before_fetch)
        if isinstance(handle, UrlHandle):
            catalogued = self._resolve_legacy(handle, before_fetch)
            return catalogued if catalogued is not None else self._resolve_url(handle)
        if isinstance(handle, PathHandle):
            return self._resolve_path(handle)
        raise HandleError(f"the resolver takes a parsed handle (registry.handles.parse), not {type(handle).__name__}")

    # -- catalog handles ---------------------------------------------------------------------

    def _ref_key(self, handle: CatalogHandle) -> str:
        return f"catalog:{self.catalog.identity}:{handle}"

    def _resolve_catalog(self, handle: CatalogHandle, before_fetch: BeforeFetch | None) -> Resolved:
        # Offline: a catalog on the network cannot be asked; a pinned handle seen before needs neither catalog
        # nor storage (a version never changes). Otherwise the local catalog may still point at local bytes.
        if self.offline and (not self.catalog.is_local
                             or (handle.pinned and self.cache.lookup_ref(self._ref_key(handle)) is not None)):
            return self._last_resolution(handle, before_fetch)
        if handle.pinned and not self.catalog.is_local:
            # A version never changes: one fetched from a catalog on the network before loads without asking it.
            ref = self.cache.lookup_ref(self._ref_key(handle))
            if ref is not None and ref.get("format") and self._cached(ref["sha256"], refetchable=True) is not None:
                return self._last_resolution(handle, before_fetch)
        location = self.catalog.locate(handle)
        if before_fetch is not None:
            before_fetch(location.format)
        resolved = self.fetch_version(location)
        if not handle.pinned:
            # What this handle meant this time: offline with a catalog on the network, it means that again.
            self.cache.write_ref(self._ref_key(handle), location.sha256, format=location.format,
                                 version=location.version)
        return Resolved(resolved.path, resolved.format, resolved.sha256, gated=before_fetch is not None)

    def _last_resolution(self, handle: CatalogHandle, before_fetch: BeforeFetch | None) -> Resolved:
        ref = self.cache.lookup_ref(self._ref_key(handle))
        if ref is None:
            raise OfflineError(
                f"{handle} has never been resolved on this machine and MODEL_REGISTRY_OFFLINE is set, so the catalog "
                f"({self.catalog.identity}) cannot be asked; {OFFLINE_HINT}")
        path = self._cached(ref["sha256"], refetchable=False)
        if path is None:
            raise OfflineError(f"{handle} was resolved on this machine before, but its files were removed from the "
                               f"cache since; {OFFLINE_HINT}")
        if before_fetch is not None and ref.get("format"):
            before_fetch(ref["format"])
        return Resolved(path, ref.get("format"), ref["sha256"],
                        gated=before_fetch is not None and bool(ref.get("format")))

    def _cached(self, sha256: str, *, refetchable: bool) -> Path | None:
        """The cached entry for ``sha256``, checked before it is used (``ModelCache.checked``); None if absent.

        An entry that no longer matches its record is removed and None returned when its bytes can be
        fetched again (``refetchable``), so the caller fetches it afresh; otherwise its ``IntegrityError``
        stands: nothing changed on disk is ever loaded.
        """
        try:
            return self.cache.checked(sha256)
        except IntegrityError:
            if not refetchable:
                raise
            self.cache.remove(sha256)
            return None

    def fetch_version(self, location: "VersionLocation") -> Resolved:
        """The local directory of a catalog version, fetched by its sha256 unless cached."""
        path = self._cached(location.sha256,
                            refetchable=not self.offline or is_local_url(location.artifact_uri))
        if path is None:
            if self.offline and not is_local_url(location.artifact_uri):
                raise OfflineError(f"{location.handle} is not in the local cache and its artifact "
                                   f"({location.artifact_uri}) is not local; {OFFLINE_HINT}")
            with self.progress(f"Downloading {location.handle}", location.size) as update:
                _, path = self.cache.fetch(
                    lambda: self.store.open(location.artifact_uri), source=location.artifact_uri,
                    sha256=location.sha256, size=location.size, progress=update)
        if not self.catalog.is_local:
            # Remembered so that a pinned handle loads later without asking the catalog (offline, or to save
            # the round trip). A catalog on this machine can always be asked, so a hit then writes and hashes
            # nothing.
            key = self._ref_key(CatalogHandle(location.publisher, location.model, location.version))
            if self.cache.lookup_ref(key) is None:
                self.cache.write_ref(key, location.sha256, format=location.format)
        return Resolved(path, location.format, location.sha256)

    # -- legacy handles (tfhub.dev, Kaggle: registry.legacy.handles) -------------------------

    def _resolve_legacy(self, handle: UrlHandle, before_fetch: BeforeFetch | None) -> Resolved | None:
        """The catalog's version for a legacy handle the catalog records (any spelling), without touching the
        legacy host; None for any other URL, or a legacy handle the catalog does not know (its URL is then
        fetched as today, or found in ``TFHUB_CACHE_DIR``)."""
        from registry.legacy.handles import KAGGLE, looks_legacy, parse_legacy_handle

        if not looks_legacy(handle.url):
            return None
        legacy = parse_legacy_handle(handle.url)  # a malformed one is a LegacyHandleError, not a fetch
        pinned = self._catalogued(str(legacy))
        if pinned is not None:
            return self._resolve_catalog(pinned, before_fetch)
        if legacy.family == KAGGLE:
            from registry.errors import VersionNotFound

            raise VersionNotFound(
                f"no version in the catalog ({self.catalog.identity}) is named by {legacy}, and Kaggle's model URLs "
                f"are pages, not archives: import your kagglehub cache (model-registry import kagglehub-cache DIR) "
                f"or record the handle on a version (model-registry handles add PUBLISHER/MODEL/N {legacy})")
        return None

    def _catalogued(self, legacy: str) -> CatalogHandle | None:
        """The pinned handle of the version ``legacy`` (canonical) names; offline with a catalog on the network,
        the one it named when last asked on this machine (a version never changes)."""
        key = f"legacy:{self.catalog.identity}:{legacy}"
        if self.offline and not self.catalog.is_local:
            ref = self.cache.lookup_ref(key)
            return catalog_handle(ref["handle"]) if ref is not None and ref.get("handle") else None
        found = self.catalog.find_legacy_handle(legacy)  # part of CatalogBackend: every catalog answers it
        if found is None:
            return None
        if not self.catalog.is_local:
            self.cache.write_ref(key, found.sha256, handle=found.handle)
        return CatalogHandle(found.publisher, found.model, found.version)

    # -- URLs ----------------------------------------------------------------------------------

    def _resolve_url(self, handle: UrlHandle) -> Resolved:
        if is_local_url(handle.url) and not handle.is_archive:  # file:// and local://: used in place, never copied
            return self._resolve_path(PathHandle(local_path(handle.url)))
        if self.tfhub_cache_dir and (handle.protocol in ("http", "https")
                                     or (handle.protocol == "gs" and handle.is_archive)):
            return self._resolve_tfhub_cached(handle)
        key = f"url:{handle.url}"
        ref = self.cache.lookup_ref(key)
        if ref is not None:
            path = self._cached(ref["sha256"], refetchable=not self.offline or is_local_url(handle.url))
            if path is not None:
                return Resolved(path, None, ref["sha256"])
        if self.offline and not is_local_url(handle.url):
            raise OfflineError(f"{handle.url} is not in the local cache and MODEL_REGISTRY_OFFLINE is set; "
                               f"{_offline_hint(handle.url)}")
        if handle.is_archive or handle.protocol in ("http", "https"):
            url = handle.download_url()
            # Not an artifact of this registry: read with this process's own access, never through the server
            # (which must not be sent the token for another host); the cache's stall timeout bounds it.
            sha, path = self._fetch_once(
                key, lambda: remote().open_stream(url, stall_timeout=self.cache.stall_timeout), source=handle.url,
                label=f"Downloading {handle.url}")
        else:
            sha, path = self._copy_directory(handle.url)
            self.cache.write_ref(key, sha)
        return Resolved(path, None, sha)

    def _resolve_tfhub_cached(self, handle: UrlHandle) -> Resolved:
        """A URL the way tensorflow_hub 0.15 resolves it with ``TFHUB_CACHE_DIR`` set: its entry there (the sha1
        of the URL as given) used in place, or downloaded into that layout first (``registry.legacy.tfhub_cache``),
        so a cache tensorflow_hub filled serves this registry and the other way round."""
        from registry.legacy import tfhub_cache
        from registry.storage.archive import extract_stream

        entry = tfhub_cache.find(self.tfhub_cache_dir or "", handle.url)
        if entry is None:
            if self.offline:
                raise OfflineError(f"{handle.url} is not in TFHUB_CACHE_DIR ({self.tfhub_cache_dir}) and "
                                   f"MODEL_REGISTRY_OFFLINE is set; {_offline_hint(handle.url)}")
            url = handle.download_url()

            def fill(directory: Path) -> None:
                with self.progress(f"Downloading {handle.url}", None) as update, \
                        remote().open_stream(url, stall_timeout=self.cache.stall_timeout) as stream:
                    extract_stream(stream, directory, source=handle.url, limits=self.cache.limits,
                                   stall_timeout=self.cache.stall_timeout, progress=update)

            entry = tfhub_cache.fill_entry(self.tfhub_cache_dir or "", handle.url, fill,
                                           lock_timeout=self.cache.lock_timeout)
        return self._resolve_path(PathHandle(str(entry)))

    def _fetch_once(self, key: str, open_stream, *, source: str, label: str | None) -> tuple[str, Path]:
        """Fetch an archive whose hash is not known in advance, once however many processes ask for ``key``."""
        with self.cache.lock(key, source=source, ready=lambda: self.cache.lookup_ref(key) is not None):
            ref = self.cache.lookup_ref(key)
            if ref is not None:  # another process fetched it while this one waited
                cached = self._cached(ref["sha256"], refetchable=True)
                if cached is not None:  # else removed since (pruned, or failed its check): fetched again below
                    return ref["sha256"], cached
            with (self.progress(label, None) if label else no_progress("", None)) as update:
                sha, path = self.cache.fetch(open_stream, source=source, progress=update)
            self.cache.write_ref(key, sha)
            return sha, path

    def _copy_directory(self, url: str) -> tuple[str, Path]:
        """Copy a model directory from an fsspec URL into the cache, keyed by the hash of its files.

        Its top-level files come first and are checked (``check_directory``: formats are recognised by them)
        before anything below is copied, so a directory that is no model is refused having cost a few files.
        """
        from registry.storage.archive import ExtractResult, file_digest, tree_digest

        fs, _ = remote().filesystem_for(url)
        files = sorted(remote().list_directory(url), key=lambda item: ("/" in item[0], item[0]))
        if not files:
            raise ArtifactNotFound(f"no files under {url}")
        with self.cache.workdir() as work:
            target_root = work / "model"
            target_root.mkdir()
            digests = {}
            check = self.check_directory
            for rel, full in files:
                if check is not None and "/" in rel:
                    check(target_root)
                    check = None
                target = target_root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                remote().copy_file(fs, full, str(target), url=url)
                digests[rel] = file_digest(target)
            if check is not None:
                check(target_root)
            result = ExtractResult(sha256=tree_digest(digests), size=sum(d["size"] for d in digests.values()),
                                   files=digests)
            return result.sha256, self.cache.add_extracted(target_root, result, source=url)

    # -- local paths -------------------------------------------------------------------------

    def _resolve_path(self, handle: PathHandle) -> Resolved:
        path = Path(handle.expanded)
        if path.is_dir():
            from registry.storage.archive import walk_model_directory

            if self.check_directory is not None:
                self.check_directory(path)  # "/" or a home folder: FormatError now, not a walk of every file

            for _ in walk_model_directory(path):  # a FIFO, a device or a dangling link: NotARegularFile, now
                pass
            return Resolved(path)
        if not path.exists():
            raise ArtifactNotFound(f"no model directory or archive at {path}")
        if self.claims_file is not None and path.is_file() and self.claims_file(path):
            return Resolved(path)  # a single-file model, claimed before it could be taken for an archive
        if not handle.is_archive:
            raise HandleError(f"{path} is a file but not a .tar.gz archive (nor .tgz, .tar, .tar.bz2, .tar.xz); pass a "
                              f"model directory or an archive")
        stat = path.stat()
        key = f"path:{path}:{stat.st_size}:{stat.st_mtime_ns}"
        ref = self.cache.lookup_ref(key)
        if ref is not None:
            cached = self._cached(ref["sha256"], refetchable=True)
            if cached is not None:
                return Resolved(cached, None, ref["sha256"])
        if not stat_module.S_ISREG(stat.st_mode):
            raise NotARegularFile(f"{path} is not a regular file (a FIFO, a device or a socket); pass a model "
                                  f"directory or a .tar.gz archive")
        sha, cached = self._fetch_once(key, lambda: open(path, "rb"), source=str(path), label=None)
        return Resolved(cached, None, sha)
