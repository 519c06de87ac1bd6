"""The local cache of extracted models, keyed by content hash.

Layout under the cache root::

    models/<sha256>/         an extracted model directory
    models/<sha256>.json     its completion record (archive sha256 and size, source, every file's hash)
    refs/<key>.json          source (URL, archive path, pinned catalog handle) -> sha256
    tmp/                     per-process work directories, renamed into models/ when verified

A directory without its completion record is never trusted: it is what an
interrupted process left behind, and the next fetch replaces it. Locks only stop
two processes downloading the same thing at once; correctness comes from
writing under a temporary name, verifying, then renaming.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from registry.storage.archive import ExtractResult, Progress, extract_stream, file_digest

RECORD_SUFFIX = ".json"


@dataclass(frozen=True)
class CacheEntry:
    sha256: str
    path: Path
    record: dict

    @property
    def size(self) -> int:
        return sum(f["size"] for f in self.record.get("files", {}).values())


class ModelCache:
    """Content-addressed store of extracted model directories."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.models = self.root / "models"
        self.refs = self.root / "refs"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"

    # -- lookups ---------------------------------------------------------------------------

    def get(self, sha256: str) -> Path | None:
        """The extracted directory for ``sha256`` if it is complete, else None."""
        path = self.models / sha256
        if (self.models / (sha256 + RECORD_SUFFIX)).is_file() and path.is_dir():
            return path
        return None

    def record(self, sha256: str) -> dict | None:
        try:
            return json.loads((self.models / (sha256 + RECORD_SUFFIX)).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def lookup_ref(self, key: str) -> dict | None:
        """The ref saved for ``key`` (a URL or pinned handle) if its entry is still complete."""
        try:
            ref = json.loads((self.refs / _ref_name(key)).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return ref if ref.get("key") == key and self.get(ref["sha256"]) is not None else None

    def write_ref(self, key: str, sha256: str, **extra) -> None:
        self.refs.mkdir(parents=True, exist_ok=True)
        _atomic_write_json(self.refs / _ref_name(key), {"key": key, "sha256": sha256, **extra})

    # -- filling ---------------------------------------------------------------------------

    def fetch(self, open_stream: Callable[[], BinaryIO], *, source: str, sha256: str | None = None,
              size: int | None = None, progress: Progress | None = None) -> tuple[str, Path]:
        """Stream an archive into the cache (once per content hash) and return (sha256, directory)."""
        if sha256:
            hit = self.get(sha256)
            if hit is not None:
                return sha256, hit
            with self._lock(sha256):
                hit = self.get(sha256)
                if hit is not None:
                    return sha256, hit
                return self._fetch_unlocked(open_stream, source=source, sha256=sha256, size=size, progress=progress)
        return self._fetch_unlocked(open_stream, source=source, sha256=None, size=size, progress=progress)

    def _fetch_unlocked(self, open_stream, *, source, sha256, size, progress) -> tuple[str, Path]:
        work = self.new_workdir()
        try:
            with open_stream() as stream:
                result = extract_stream(stream, work, expected_sha256=sha256, expected_size=size,
                                        progress=progress, source=source)
            return result.sha256, self._install(work, result, source)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def add_extracted(self, work: Path, result: ExtractResult, *, source: str) -> Path:
        """Move a directory extracted elsewhere (by ``extract_stream`` into ``new_workdir()``) into the cache."""
        try:
            return self._install(work, result, source)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def add_directory(self, src: Path, *, sha256: str, size: int, source: str) -> Path:
        """Copy a model directory whose archive hashes to ``sha256`` into the cache (after a publish)."""
        hit = self.get(sha256)
        if hit is not None:
            return hit
        work = self.new_workdir()
        try:
            shutil.copytree(src, work, dirs_exist_ok=True)
            files = {p.relative_to(work).as_posix(): file_digest(p) for p in sorted(work.rglob("*")) if p.is_file()}
            return self._install(work, ExtractResult(sha256=sha256, size=size, files=files), source)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def new_workdir(self) -> Path:
        """A fresh, private work directory inside the cache (same filesystem, so renames are atomic)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=self.tmp))

    def _install(self, work: Path, result: ExtractResult, source: str) -> Path:
        """Rename a verified work directory into place, then write its completion record."""
        self.models.mkdir(parents=True, exist_ok=True)
        final = self.models / result.sha256
        record_path = self.models / (result.sha256 + RECORD_SUFFIX)
        if self.get(result.sha256) is not None:
            return final  # another process finished first; ours is discarded by the caller
        if final.exists():  # left by an interrupted process: no record, so not trusted
            shutil.rmtree(final)
        os.replace(work, final)
        _atomic_write_json(record_path, {
            "sha256": result.sha256,
            "archive_size": result.size,
            "source": source,
            "completed_at": time.time(),
            "files": result.files,
        })
        return final

    def _lock(self, sha256: str):
        from filelock import FileLock  # only when something must be fetched

        self.locks.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.locks / f"{sha256}.lock"))

    # -- maintenance -----------------------------------------------------------------------

    def entries(self) -> list[CacheEntry]:
        """Complete entries, oldest first."""
        if not self.models.is_dir():
            return []
        found = []
        for record_path in self.models.glob("*" + RECORD_SUFFIX):
            sha = record_path.name[: -len(RECORD_SUFFIX)]
            record = self.record(sha)
            if record is not None and (self.models / sha).is_dir():
                found.append(CacheEntry(sha, self.models / sha, record))
        return sorted(found, key=lambda e: e.record.get("completed_at", 0))

    def incomplete(self) -> list[Path]:
        """Work directories and model directories without a completion record."""
        leftovers = [p for p in self.tmp.iterdir()] if self.tmp.is_dir() else []
        if self.models.is_dir():
            leftovers += [p for p in self.models.iterdir()
                          if p.is_dir() and not (self.models / (p.name + RECORD_SUFFIX)).is_file()]
        return sorted(leftovers)

    def verify(self, sha256: str | None = None) -> dict[str, list[str]]:
        """Re-hash every file of every entry (or one); return {sha256: [problems]} for the bad ones."""
        entries = [e for e in self.entries() if sha256 is None or e.sha256 == sha256]
        problems: dict[str, list[str]] = {}
        for entry in entries:
            found = []
            on_disk = {p.relative_to(entry.path).as_posix() for p in entry.path.rglob("*") if p.is_file()}
            for rel, expected in entry.record.get("files", {}).items():
                path = entry.path / rel
                if not path.is_file():
                    found.append(f"{rel}: missing")
                elif file_digest(path) != expected:
                    found.append(f"{rel}: content changed")
            found += [f"{rel}: not in the record" for rel in sorted(on_disk - set(entry.record.get("files", {})))]
            if found:
                problems[entry.sha256] = found
        return problems

    def remove(self, sha256: str) -> None:
        (self.models / (sha256 + RECORD_SUFFIX)).unlink(missing_ok=True)
        shutil.rmtree(self.models / sha256, ignore_errors=True)

    def prune(self, *, keep: set[str] | None = None, older_than_s: float | None = None) -> list[str]:
        """Remove leftovers and the entries not in ``keep`` (and older than ``older_than_s``); return what went."""
        removed = []
        for path in self.incomplete():
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(str(path))
        now = time.time()
        for entry in self.entries():
            if keep is not None and entry.sha256 in keep:
                continue
            if older_than_s is not None and now - entry.record.get("completed_at", now) < older_than_s:
                continue
            self.remove(entry.sha256)
            removed.append(entry.sha256)
        return removed


def _ref_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest() + ".json"


def _atomic_write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)
