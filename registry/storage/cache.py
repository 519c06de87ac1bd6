"""The local cache of extracted models, keyed by content hash.

Layout under the cache root::

    models/<sha256>/         an extracted, verified model directory (never changed once there)
    models/<sha256>.json     its completion record (archive sha256 and size, source, every file's hash)
    refs/<key>.json          source (URL, archive path, pinned catalog handle) -> sha256
    tmp/w-<pid>-<id>/        one process's work directory, held by an flock on tmp/w-<pid>-<id>.lock
    locks/<name>.lock        "I am fetching this": an flock naming its holder (pid, host, source)

An entry is complete when its record and its directory both exist. Installing
writes the record first, then renames the verified work directory into place in
one atomic step, so a directory in ``models/`` appears whole or not at all, and
nothing ever renames onto, or removes, a directory another process may hold:
when two processes finish the same content, the second simply discards its copy.
Only ``remove``/``prune`` (an explicit request) take an entry away.

Locks only stop two processes downloading the same thing at once; correctness
comes from writing under a private name, verifying, then renaming. So a lock
is waited for only while its holder makes progress: a holder that stops (a
SIGSTOPped or hung process) is passed after ``MODEL_REGISTRY_STALL_TIMEOUT``
seconds and a dead one at once (the kernel drops its flock). Work directories
of dead processes are removed by the next fetch.

Nothing cached is used unchecked (``checked``): every use compares each file's
size and modification and change times with those the record took at install
(a few ``stat`` calls) and looks for files the record does not name; a file
whose times moved but whose size did not is re-hashed, and kept (its times
re-recorded) only if its sha256 is still the recorded one. With
``MODEL_REGISTRY_CACHE_CHECK=hash`` every file is re-hashed on every use.
Anything that does not match is an ``IntegrityError`` (the resolver fetches the
entry again where its bytes can be fetched again). A record that cannot be read
makes its entry corrupt: never served, shown by ``corrupt()`` and removed by
every ``prune``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, ContextManager, Iterator, NamedTuple

from registry.config import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_STALL_TIMEOUT_S, ArchiveLimits, Settings
from registry.errors import CacheBusy, IntegrityError, StorageFull, is_disk_full

if TYPE_CHECKING:
    from registry.storage.archive import ExtractResult, Progress

# A process that finds its model cached, or waits while another fetches it, imports no more than it needs:
# ``archive`` (and with it tarfile), ``shutil`` and ``hashlib`` are imported where bytes are extracted, copied,
# removed or hashed. What sixteen processes resolving one handle at once add to its download is their start-up.

RECORD_SUFFIX = ".json"
WORK_PREFIX = "w-"
LOCK_SUFFIX = ".lock"
HEARTBEAT_S = 0.5
#: A waiter woken by nothing still looks this often (``_FetchLock.acquire``).
LOOK_AGAIN_S = 0.25


class CacheEntry(NamedTuple):
    """A complete entry: its sha256, its directory and its completion record."""

    sha256: str
    path: Path
    record: dict

    @property
    def size(self) -> int:
        return sum(f["size"] for f in self.record.get("files", {}).values())


class ModelCache:
    """Content-addressed store of extracted model directories, safe for any number of processes."""

    def __init__(self, root: Path, *, stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S, limits: ArchiveLimits | None = None,
                 check: str = "stat"):
        """``Registry.cache`` passes the ``Settings`` values (``MODEL_REGISTRY_STALL_TIMEOUT``, ``..._LOCK_TIMEOUT``,
        the archive limits); a bare ``ModelCache`` has the defaults."""
        self.root = Path(root)
        self.models = self.root / "models"
        self.refs = self.root / "refs"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"
        self.stall_timeout = stall_timeout
        self.lock_timeout = lock_timeout
        self.limits = limits or ArchiveLimits()
        #: ``MODEL_REGISTRY_CACHE_CHECK``: "stat" or "hash" (see ``checked``).
        self.check = check
        self._work_locks: dict[Path, int] = {}
        self._held = threading.local()

    @classmethod
    def from_settings(cls, settings: "Settings") -> "ModelCache":
        """The cache ``settings`` describe: its folder, timeouts and archive limits."""
        return cls(settings.cache_dir, stall_timeout=settings.stall_timeout, lock_timeout=settings.lock_timeout,
                   limits=settings.archive_limits, check=settings.cache_check)

    # -- lookups ---------------------------------------------------------------------------

    def get(self, sha256: str) -> Path | None:
        """The extracted directory for ``sha256`` if it is complete (its record readable), else None.

        Not checked against its record: what is about to be used goes through ``checked``.
        """
        path = self.models / sha256
        if path.is_dir() and self.record(sha256) is not None:
            return path
        return None

    def record(self, sha256: str) -> dict | None:
        """The completion record of ``sha256``; None when there is none or it cannot be read (a corrupt entry)."""
        try:
            record = json.loads((self.models / (sha256 + RECORD_SUFFIX)).read_bytes())
        except (OSError, ValueError):
            return None
        if not (isinstance(record, dict) and record.get("sha256") == sha256 and isinstance(record.get("files"), dict)):
            return None
        return record

    def checked(self, sha256: str, *, full: bool | None = None) -> Path | None:
        """The entry for ``sha256``, checked against its record before it is used; None if there is none.

        Raises ``IntegrityError`` naming what changed. ``full`` (default: ``self.check == "hash"``)
        re-hashes every file; otherwise only the files whose stat changed are.
        """
        path = self.models / sha256
        record = self.record(sha256)
        if record is None or not path.is_dir():
            return None
        if full if full is not None else self.check == "hash":
            problems = self._problems(path, record, rehash=set(record["files"]))
        else:
            changed, problems = self._stat_changes(path, record)
            if changed and not problems:
                problems = self._problems(path, record, rehash=changed)
                if not problems:  # the same bytes with new times (a copied or restored cache): keep, re-recorded
                    self._restamp(sha256, record)
        if problems:
            raise IntegrityError(
                f"the cached model {path} no longer matches what was cached ({'; '.join(problems[:5])}"
                f"{'; ...' if len(problems) > 5 else ''}); see `model-registry cache verify`, and remove it with "
                f"`model-registry cache prune --corrupt` (it is downloaded again when next used)")
        return path

    def _stat_changes(self, path: Path, record: dict) -> tuple[set[str], list[str]]:
        """(files whose times moved, problems no hash can clear: a missing, resized, extra or unrecorded file)."""
        stats = record.get("stats") or {}
        on_disk = _tree_stats(path)
        problems = [f"{rel}: missing" for rel in sorted(set(record["files"]) - set(on_disk))]
        problems += [f"{rel}: not in the record" for rel in sorted(set(on_disk) - set(record["files"]))]
        changed = set()
        for rel, (size, mtime_ns, ctime_ns) in on_disk.items():
            expected = record["files"].get(rel)
            if expected is None:
                continue
            if size != expected.get("size"):
                problems.append(f"{rel}: size changed")
            elif stats.get(rel) != [size, mtime_ns, ctime_ns]:
                changed.add(rel)
        return changed, problems

    def _problems(self, path: Path, record: dict, *, rehash: set[str]) -> list[str]:
        """Everything that differs from the record, re-hashing the files in ``rehash``."""
        from registry.storage.archive import file_digest

        on_disk = _tree_stats(path)
        problems = [f"{rel}: missing" for rel in sorted(set(record["files"]) - set(on_disk))]
        problems += [f"{rel}: not in the record" for rel in sorted(set(on_disk) - set(record["files"]))]
        for rel in sorted(rehash & set(on_disk)):
            try:
                if file_digest(path / rel) != record["files"][rel]:
                    problems.append(f"{rel}: content changed")
            except OSError as error:
                problems.append(f"{rel}: unreadable ({error.strerror})")
        return problems

    def _restamp(self, sha256: str, record: dict) -> None:
        """Record the current times of an entry whose bytes were just found unchanged."""
        stats = {rel: list(value) for rel, value in _tree_stats(self.models / sha256).items()}
        with contextlib.suppress(OSError):
            self._write_json(self.models / (sha256 + RECORD_SUFFIX), {**record, "stats": stats})

    def corrupt(self) -> list[str]:
        """The sha256 of every entry whose completion record exists but cannot be read: never served."""
        if not self.models.is_dir():
            return []
        return sorted(p.name[: -len(RECORD_SUFFIX)] for p in self.models.glob("*" + RECORD_SUFFIX)
                      if self.record(p.name[: -len(RECORD_SUFFIX)]) is None)

    def lookup_ref(self, key: str) -> dict | None:
        """The ref saved for ``key`` (a URL or pinned handle) if its entry is still complete."""
        try:
            ref = json.loads((self.refs / _ref_name(key)).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return ref if ref.get("key") == key and self.get(ref["sha256"]) is not None else None

    def write_ref(self, key: str, sha256: str, **extra) -> None:
        self.refs.mkdir(parents=True, exist_ok=True)
        self._write_json(self.refs / _ref_name(key), {"key": key, "sha256": sha256, **extra})

    def _write_json(self, path: Path, data: dict) -> None:
        """Write ``path`` whole or not at all: a temporary file in a (held) work directory, renamed."""
        with self.workdir() as work:
            tmp = work / path.name
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, path)

    # -- filling ---------------------------------------------------------------------------

    def fetch(self, open_stream: Callable[[], ContextManager[BinaryIO]], *, source: str, sha256: str | None = None,
              size: int | None = None, progress: Progress | None = None) -> tuple[str, Path]:
        """Stream an archive into the cache (once per content hash) and return (sha256, directory)."""
        if sha256:
            hit = self.get(sha256)
            if hit is not None:
                return sha256, hit
            with self.lock(sha256, source=source, ready=lambda: self.get(sha256) is not None):
                hit = self.get(sha256)
                if hit is not None:
                    return sha256, hit
                return self._fetch_unlocked(open_stream, source=source, sha256=sha256, size=size, progress=progress)
        return self._fetch_unlocked(open_stream, source=source, sha256=None, size=size, progress=progress)

    def _fetch_unlocked(self, open_stream, *, source, sha256, size, progress) -> tuple[str, Path]:
        from registry.storage.archive import extract_stream

        self.clean_leftovers()
        with self.workdir() as work:
            target = work / "model"
            target.mkdir()
            with open_stream() as stream:
                result = extract_stream(stream, target, expected_sha256=sha256, expected_size=size,
                                        progress=self._beating(progress), source=source,
                                        limits=self.limits, stall_timeout=self.stall_timeout)
            return result.sha256, self._install(target, result, source)

    def add_extracted(self, work: Path, result: ExtractResult, *, source: str) -> Path:
        """Move a directory extracted elsewhere (by ``extract_stream`` into a ``new_workdir()``) into the cache."""
        try:
            return self._install(Path(work), result, source)
        finally:
            self.discard(work)

    def add_directory(self, src: Path, *, sha256: str, size: int, source: str) -> Path:
        """Copy a model directory whose archive hashes to ``sha256`` into the cache (after a publish)."""
        import shutil

        from registry.storage.archive import ExtractResult, file_digest, walk_model_directory

        hit = self.get(sha256)
        if hit is not None:
            return hit
        with self.workdir() as work:
            target = work / "model"
            files = {}
            for rel, path, is_dir in walk_model_directory(Path(src)):
                if is_dir:
                    (target / rel).mkdir(parents=True, exist_ok=True)
                else:
                    (target / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target / rel)
                    files[rel] = file_digest(target / rel)
            return self._install(target, ExtractResult(sha256=sha256, size=size, files=files), source)

    # -- work directories ------------------------------------------------------------------

    def new_workdir(self) -> Path:
        """A fresh, private work directory inside the cache (same filesystem, so renames are atomic).

        It is held (an flock on its ``.lock`` sibling) until ``discard`` or the process ends, so
        no other process's cleanup removes it; once the process is gone, the next fetch does.
        """
        with self.disk_full_is_typed():
            self.tmp.mkdir(parents=True, exist_ok=True)
            while True:
                stem = self.tmp / f"{WORK_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"
                lock_path = stem.with_name(stem.name + LOCK_SUFFIX)
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
                _flock(fd, blocking=True)
                if _same_file(fd, lock_path):  # not unlinked by a cleaner between create and lock
                    break
                os.close(fd)
            try:
                stem.mkdir()
            except OSError:
                lock_path.unlink(missing_ok=True)
                os.close(fd)
                raise
        self._work_locks[stem] = fd
        return stem

    def discard(self, work: Path) -> None:
        """Remove a work directory from ``new_workdir`` and release it."""
        work = Path(work)
        if not work.is_relative_to(self.tmp):  # e.g. ``work/model`` handed to add_extracted: its workdir
            return
        stem = self.tmp / work.relative_to(self.tmp).parts[0]
        _remove(stem)
        fd = self._work_locks.pop(stem, None)
        stem.with_name(stem.name + LOCK_SUFFIX).unlink(missing_ok=True)
        if fd is not None:
            os.close(fd)

    @contextlib.contextmanager
    def workdir(self) -> Iterator[Path]:
        """A ``new_workdir`` removed when the block ends; a full disk inside the block is ``StorageFull``."""
        work = self.new_workdir()
        try:
            with self.disk_full_is_typed():
                yield work
        finally:
            self.discard(work)

    @contextlib.contextmanager
    def disk_full_is_typed(self) -> Iterator[None]:
        """Turn a full disk (``ENOSPC``/``EDQUOT``) while writing into the cache into ``StorageFull``."""
        try:
            yield
        except OSError as error:
            if not is_disk_full(error):
                raise
            raise StorageFull(f"no space left in the model cache {self.root} ({error.strerror}); nothing was kept: "
                              f"free space (`model-registry cache prune` removes cached models) and try "
                              f"again") from error

    def clean_leftovers(self) -> list[Path]:
        """Remove what dead processes left in ``tmp/`` (their flock is gone); return what went."""
        if not self.tmp.is_dir():
            return []
        removed = []
        names = set(os.listdir(self.tmp))
        for name in sorted(names):
            path = self.tmp / name
            if name.endswith(LOCK_SUFFIX):
                stem = path.with_name(name[: -len(LOCK_SUFFIX)])
                if stem in self._work_locks:
                    continue
                try:
                    fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
                except FileNotFoundError:
                    continue
                try:
                    if _flock(fd, blocking=False) and _same_file(fd, path):
                        _remove(stem)
                        path.unlink(missing_ok=True)
                        removed.append(stem)
                finally:
                    os.close(fd)
            elif name + LOCK_SUFFIX not in names and _orphaned(path):
                if (self.tmp / (name + LOCK_SUFFIX)).exists():
                    continue  # its owner just started
                _remove(path)
                removed.append(path)
        return removed

    # -- installing ------------------------------------------------------------------------

    def _install(self, work: Path, result: ExtractResult, source: str) -> Path:
        """Make a verified work directory the entry for its sha256; never touches a complete entry."""
        self.models.mkdir(parents=True, exist_ok=True)
        final = self.models / result.sha256
        if self.get(result.sha256) is not None:
            return final  # another process finished first; ours is discarded by the caller
        with self.lock(result.sha256, source=source, reentrant=True):
            if self.get(result.sha256) is not None:
                return final
            if final.exists():
                # No record: left by an older version or a removal that was cut short; nobody trusts it.
                self._move_to_trash(final)
            self._write_json(self.models / (result.sha256 + RECORD_SUFFIX), {
                "sha256": result.sha256,
                "archive_size": result.size,
                "source": source,
                "completed_at": time.time(),
                "files": result.files,
                # What ``checked`` compares on every use: renaming the directory below changes none of it.
                "stats": {rel: list(value) for rel, value in _tree_stats(work).items()},
            })
            try:
                os.rename(work, final)  # the directory appears whole, or not at all
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or self.get(result.sha256) is None:
                    raise
        return final

    def _move_to_trash(self, path: Path) -> None:
        with self.workdir() as trash:
            try:
                os.rename(path, trash / "old")
            except FileNotFoundError:
                pass

    # -- locks -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str, *, source: str = "", reentrant: bool = False,
             ready: Callable[[], bool] | None = None) -> Iterator[bool]:
        """Hold the fetch lock ``name`` while the holder before us makes progress; yields whether it is held.

        A holder that stops making progress for ``stall_timeout`` seconds is passed (this
        process fetches too: the atomic install keeps that correct), and waiting longer than
        ``lock_timeout`` seconds for a working holder raises ``CacheBusy`` naming it. While
        waiting, ``ready()`` is asked between tries: once what the holder was fetching is
        complete, a waiter has nothing to wait for, and a crowd of them leaves at once
        instead of taking the lock one by one.
        """
        held = self._held_locks()
        if reentrant and name in held:
            yield True
            return
        lock = _FetchLock(self.locks / (_lock_name(name) + LOCK_SUFFIX), source=source)
        got = lock.acquire(stall_timeout=self.stall_timeout, lock_timeout=self.lock_timeout, ready=ready)
        held[name] = lock  # passed (a stalled holder) or held: either way, not waited for again below
        try:
            yield got
        finally:
            held.pop(name, None)
            lock.release()

    def _held_locks(self) -> dict:
        if not hasattr(self._held, "locks"):
            self._held.locks = {}
        return self._held.locks

    def _beating(self, progress: Progress | None) -> Progress:
        """``progress`` that also tells waiters this process still works on the locks it holds."""
        held = self._held_locks()

        def update(n: int) -> None:
            for lock in list(held.values()):
                lock.beat()
            if progress:
                progress(n)

        return update

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
        """Work directories, model directories without a record and records without a directory."""
        leftovers = [p for p in self.tmp.iterdir() if p not in self._work_locks
                     and p.with_name(p.name.removesuffix(LOCK_SUFFIX)) not in self._work_locks] \
            if self.tmp.is_dir() else []
        if self.models.is_dir():
            for path in self.models.iterdir():
                if path.is_dir() and not (self.models / (path.name + RECORD_SUFFIX)).is_file():
                    leftovers.append(path)
                elif (path.name.endswith(RECORD_SUFFIX)
                      and not (self.models / path.name[: -len(RECORD_SUFFIX)]).is_dir()):
                    leftovers.append(path)
        return sorted(leftovers)

    def verify(self, sha256: str | None = None) -> dict[str, list[str]]:
        """Re-hash every file of every entry (or one); return {sha256: [problems]} for the bad ones."""
        from registry.storage.archive import file_digest

        entries = [e for e in self.entries() if sha256 is None or e.sha256 == sha256]
        problems: dict[str, list[str]] = {
            sha: ["completion record unreadable"] for sha in self.corrupt() if sha256 is None or sha == sha256}
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
        """Take an entry away: its directory leaves ``models/`` in one rename, then its record goes."""
        final = self.models / sha256
        with self.lock(sha256, source="remove"):
            if final.exists():
                self._move_to_trash(final)
            (self.models / (sha256 + RECORD_SUFFIX)).unlink(missing_ok=True)

    def prune(self, *, keep: set[str] | None = None, older_than_s: float | None = None) -> list[str]:
        """Remove leftovers and the entries not in ``keep`` (and older than ``older_than_s``); return what went."""
        removed = [str(p) for p in self.clean_leftovers()]
        for sha in self.corrupt():  # never trusted, so never kept
            self.remove(sha)
            removed.append(sha)
        for path in self.incomplete():
            if path.parent == self.tmp:
                continue  # a live process's work: clean_leftovers took every dead one
            _remove(path)
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


class _FetchLock:
    """An flock on ``locks/<name>.lock`` whose file names its holder and whose mtime is its heartbeat."""

    def __init__(self, path: Path, *, source: str):
        self.path = path
        self.source = source
        self.fd: int | None = None
        self.held = False
        self._last_beat = 0.0

    def acquire(self, *, stall_timeout: float, lock_timeout: float,
                ready: Callable[[], bool] | None = None) -> bool:
        """True once held; False when not needed (``ready()``) or passed (a holder that stopped working).

        A waiter sleeps until the holder lets go (``_ReleaseWatch``), not in a polling loop: a crowd
        waiting for one download then costs it no CPU and leaves the moment it ends. It still looks
        every ``LOOK_AGAIN_S`` for what a release does not announce: an entry another process
        completed, a holder that stopped beating, its own timeout.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        started = time.monotonic()
        backoff = 0.02
        watch = None
        while True:
            if _flock(self.fd, blocking=False):
                self.held = True
                os.ftruncate(self.fd, 0)
                os.pwrite(self.fd, json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                               "source": self.source, "since": time.time()}).encode(), 0)
                self.beat(force=True)
                return True
            if ready is not None and ready():
                return False
            idle = time.time() - os.fstat(self.fd).st_mtime
            if idle > stall_timeout:
                return False  # the holder stopped working (stopped or hung): fetch without waiting for it
            if time.monotonic() - started > lock_timeout:
                raise CacheBusy(f"{self.holder()} has been fetching the same artifact for over {lock_timeout:g} s "
                                f"(lock {self.path}); wait for it, stop it, or raise MODEL_REGISTRY_LOCK_TIMEOUT")
            if watch is not None and watch.released.is_set():
                # The holder let go, yet the lock is taken (another waiter won it, or held a watcher's
                # shared lock for a moment): back off before watching again, so a crowd never spins.
                watch = None
                time.sleep(backoff)
                backoff = min(backoff * 2, LOOK_AGAIN_S)
                continue
            if watch is None:
                watch = _ReleaseWatch(self.path)
            watch.released.wait(LOOK_AGAIN_S)

    def holder(self) -> str:
        assert self.fd is not None  # asked only while acquire() waits, with the lock file open
        try:
            info = json.loads(os.pread(self.fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            info = {}
        if not info.get("pid"):
            return "another process"
        return f"process {info['pid']} on {info.get('host', '?')} (fetching {info.get('source') or '?'})"

    def beat(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.held and self.fd is not None and (force or now - self._last_beat >= HEARTBEAT_S):
            self._last_beat = now
            os.utime(self.fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None
            self.held = False


class _ReleaseWatch:
    """``released`` is set when the holder of a lock file lets go.

    A daemon thread blocks in a *shared* flock on its own descriptor of the file (its own open
    file description, so it never merges with the waiter's exclusive try) and closes it the moment
    it is granted, so it holds off the next fetcher for microseconds only. A watch on a holder
    that never lets go (a stopped process the waiter passes) stays blocked until that process
    ends; if no thread or descriptor can be had, ``released`` is never set and the waiter simply
    looks every ``LOOK_AGAIN_S``.
    """

    def __init__(self, path: Path):
        self.released = threading.Event()
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        try:
            threading.Thread(target=self._watch, args=(fd,), name=f"release-watch {path.name}", daemon=True).start()
        except RuntimeError:  # no thread to be had
            os.close(fd)

    def _watch(self, fd: int) -> None:
        try:
            _flock(fd, blocking=True, shared=True)
        finally:
            os.close(fd)
            self.released.set()


def _flock(fd: int, *, blocking: bool, shared: bool = False) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _orphaned(path: Path) -> bool:
    """A leftover without a lock file: ours (``w-PID-…``) whose lock went, or an older version's (``PID-…``)."""
    name = path.name
    if name.startswith(WORK_PREFIX):
        return True
    pid = name.split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _tree_stats(root: Path) -> dict[str, tuple[int, int, int]]:
    """(size, mtime_ns, ctime_ns) of every file under ``root``, by relative POSIX path (``os.scandir``: no hashing)."""
    found: dict[str, tuple[int, int, int]] = {}
    stack = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as it:
            for item in it:
                rel = prefix + item.name
                if item.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", item.path))
                else:
                    st = item.stat(follow_symlinks=False)
                    found[rel] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return found


def _remove(path: Path) -> None:
    """Remove a directory tree or a file, whichever ``path`` is, if it is there."""
    import shutil

    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _ref_name(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest() + ".json"


def _lock_name(name: str) -> str:
    """A file name for a lock: a sha256 as it is, anything else (a URL, a path) hashed."""
    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
        return name
    import hashlib

    return "key-" + hashlib.sha256(name.encode()).hexdigest()

