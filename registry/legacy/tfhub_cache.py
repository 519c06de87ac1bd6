"""tensorflow_hub's ``TFHUB_CACHE_DIR`` layout, declared once: reading an entry, checking it, writing one.

The truth is tensorflow_hub 0.15's ``resolver.py`` and ``compressed_module_resolver.py`` (0.16.1's are the
same): a handle's entry is the directory ``<cache>/<sha1 hex of the handle, exactly as given, UTF-8>``,
used when it exists and is not empty; beside it ``<sha1>.descriptor.txt`` says which handle it is
(``Module: <handle>`` on its first line, then the download time and host, which nothing reads). While
downloading, tensorflow_hub holds ``<sha1>.lock`` (``host.pid.uuid``) and writes into ``<sha1>.<uuid>.tmp``,
renaming that to ``<sha1>`` when complete and removing the lock: a leftover lock or ``.tmp`` is an
interrupted download. ``TFHUB_CACHE_DIR`` may be a path or a ``file://`` URL (its e2e test uses one).

Used by the resolver (an existing cache used in place, ``registry.config.Settings.tfhub_cache_dir``), by
``model-registry export tfhub-cache`` and by ``model-registry import tfhub-cache``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from registry.errors import CacheEntryRefused, ConfigError

DESCRIPTOR_SUFFIX = ".descriptor.txt"
LOCK_SUFFIX = ".lock"
TMP_SUFFIX = ".tmp"
DESCRIPTOR_PREFIX = "Module: "
ENTRY_NAME = re.compile(r"[0-9a-f]{40}")

#: Why an entry is refused (``CacheEntryRefused.reason``), each with what it means.
EMPTY = "empty"
LEFTOVER_LOCK = "leftover-lock"
LEFTOVER_TMP = "leftover-tmp"
MISSING_DESCRIPTOR = "missing-descriptor"
GARBLED_DESCRIPTOR = "garbled-descriptor"
NOT_A_DIRECTORY = "not-a-directory"
REFUSALS = {
    EMPTY: "the entry's directory is empty (tensorflow_hub would download it again)",
    LEFTOVER_LOCK: "a download of it was interrupted (a .lock file is left beside it)",
    LEFTOVER_TMP: "a download of it was interrupted (a .tmp directory is left beside it)",
    MISSING_DESCRIPTOR: "it has no .descriptor.txt naming its handle",
    GARBLED_DESCRIPTOR: "its .descriptor.txt does not name the handle whose sha1 the entry is named by",
    NOT_A_DIRECTORY: "the entry is not a directory",
}


def cache_root(value: str | os.PathLike) -> Path:
    """A ``TFHUB_CACHE_DIR`` value as a local directory: a path, or a ``file://`` URL (as tensorflow_hub's own
    e2e test sets it). Another scheme (``gs://``) is a ``ConfigError``: this registry reads local caches."""
    text = os.fspath(value)
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme.lower() != "file":
            raise ConfigError(f"TFHUB_CACHE_DIR={text!r}: this registry reads a tensorflow_hub cache on a local "
                              f"disk (a path or file:// URL), not {scheme}://")
        text = rest
    return Path(text).expanduser()


def entry_name(handle: str) -> str:
    """The directory tensorflow_hub caches ``handle`` in: the sha1 of the handle exactly as the code gave it."""
    return hashlib.sha1(handle.encode("utf8")).hexdigest()


def descriptor_path(entry: Path) -> Path:
    return entry.with_name(entry.name + DESCRIPTOR_SUFFIX)


def descriptor_text(handle: str) -> str:
    """What tensorflow_hub writes (``_write_module_descriptor_file``)."""
    return (f"{DESCRIPTOR_PREFIX}{handle}\nDownload Time: {datetime.datetime.today()}\n"
            f"Downloader Hostname: {socket.gethostname()} (PID:{os.getpid()})")


class CacheEntry(NamedTuple):
    """A complete entry: the handle its descriptor names, and its model directory."""

    handle: str
    path: Path


def refused(entry: Path, reason: str) -> CacheEntryRefused:
    return CacheEntryRefused(f"{entry.name}: {REFUSALS[reason]}", reason=reason)


def leftovers(entry: Path) -> str | None:
    """The refusal reason for an interrupted download of ``entry`` (a lock or tmp beside it), or None."""
    if entry.with_name(entry.name + LOCK_SUFFIX).exists():
        return LEFTOVER_LOCK
    if any(entry.parent.glob(f"{entry.name}.*{TMP_SUFFIX}")):
        return LEFTOVER_TMP
    return None


def read_entry(cache_dir: str | os.PathLike, name: str) -> CacheEntry:
    """The complete entry ``name`` (a sha1 hex) of ``cache_dir``; ``CacheEntryRefused`` with its reason if
    it is empty, interrupted, or its descriptor is missing or names another handle."""
    entry = cache_root(cache_dir) / name
    reason = leftovers(entry)
    if reason is not None:
        raise refused(entry, reason)
    if not entry.is_dir():
        raise refused(entry, NOT_A_DIRECTORY)
    if not any(entry.iterdir()):
        raise refused(entry, EMPTY)
    descriptor = descriptor_path(entry)
    if not descriptor.is_file():
        raise refused(entry, MISSING_DESCRIPTOR)
    try:
        first = descriptor.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        raise refused(entry, GARBLED_DESCRIPTOR) from None
    handle = first.removeprefix(DESCRIPTOR_PREFIX)
    if not first.startswith(DESCRIPTOR_PREFIX) or entry_name(handle) != name:
        raise refused(entry, GARBLED_DESCRIPTOR)
    return CacheEntry(handle, entry)


def entry_names(cache_dir: str | os.PathLike) -> list[str]:
    """Every entry ``cache_dir`` holds or was writing, sorted: the sha1 names of its directories, descriptors,
    locks and ``.tmp`` directories (so an interrupted download with nothing else left is listed too)."""
    root = cache_root(cache_dir)
    names = set()
    for child in root.iterdir() if root.is_dir() else ():
        head = child.name[:40]
        if ENTRY_NAME.fullmatch(head) and (len(child.name) == 40 or child.name[40] == "."):
            names.add(head)
    return sorted(names)


def entries(cache_dir: str | os.PathLike) -> Iterator[CacheEntry | CacheEntryRefused]:
    """Each entry of ``cache_dir``: a ``CacheEntry`` or the ``CacheEntryRefused`` saying why it cannot be used."""
    for name in entry_names(cache_dir):
        try:
            yield read_entry(cache_dir, name)
        except CacheEntryRefused as error:
            yield error


def find(cache_dir: str | os.PathLike, handle: str) -> Path | None:
    """The entry tensorflow_hub would use for ``handle`` as given: the directory, when it exists and is not
    empty (tensorflow_hub's own test), else None."""
    entry = cache_root(cache_dir) / entry_name(handle)
    try:
        return entry if entry.is_dir() and any(entry.iterdir()) else None
    except OSError:
        return None


def write_entry(cache_dir: str | os.PathLike, handle: str, source: Path, *, link_to: Path | None = None) -> Path:
    """Write ``handle``'s entry and descriptor into ``cache_dir``, as tensorflow_hub does (into a ``.tmp``,
    renamed when complete), and return it.

    ``source`` is a model directory, copied; or with ``link_to`` (an entry already written in the same cache),
    the entry is a relative symbolic link to it, so a model named by many spellings is stored once
    (tensorflow_hub 0.15 and 0.16 test the entry with ``gfile.Exists`` and ``ListDirectory``, which follow it).
    An entry already complete is left as it is.
    """
    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    entry = root / entry_name(handle)
    if find(root, handle) is None:
        if entry.is_symlink() or entry.exists():
            _remove(entry)  # an empty directory or a dangling link: tensorflow_hub would replace it too
        if link_to is not None:
            temporary = root / f"{entry.name}.{uuid.uuid4().hex}{TMP_SUFFIX}"
            os.symlink(os.path.relpath(link_to, root), temporary)
        else:
            temporary = root / f"{entry.name}.{uuid.uuid4().hex}{TMP_SUFFIX}"
            shutil.copytree(source, temporary, symlinks=False)
        try:
            os.replace(temporary, entry)
        except OSError:
            _remove(temporary)
            raise
    descriptor = descriptor_path(entry)
    partial = descriptor.with_name(descriptor.name + f".{uuid.uuid4().hex}{TMP_SUFFIX}")
    partial.write_text(descriptor_text(handle), encoding="utf-8")
    os.replace(partial, descriptor)
    return entry


def fill_entry(cache_dir: str | os.PathLike, handle: str, fill: Callable[[Path], None], *,
               lock_timeout: float) -> Path:
    """``handle``'s entry, made by ``fill(directory)`` unless it is there, with tensorflow_hub's protocol
    (``resolver.atomic_download``): hold ``<sha1>.lock``, fill ``<sha1>.<uuid>.tmp``, write the descriptor,
    rename the directory into place, release the lock. So this registry and tensorflow_hub can share one
    cache: each waits while the other holds an entry's lock. A lock whose download shows no progress (the
    same lock, the same bytes in its ``.tmp``) for ``lock_timeout`` seconds was left by a dead process and
    is taken over, as tensorflow_hub does (and its ``.tmp`` removed); a download that keeps progressing is
    waited for.
    """
    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    entry = root / entry_name(handle)
    lock = entry.with_name(entry.name + LOCK_SUFFIX)
    task = uuid.uuid4().hex
    mine = f"{socket.gethostname()}.{os.getpid()}.{task}"
    if find(root, handle) is not None:
        return entry
    _acquire(lock, mine, entry, lock_timeout)
    temporary = root / f"{entry.name}.{task}{TMP_SUFFIX}"
    try:
        if find(root, handle) is not None:  # made while this process waited for the lock
            return entry
        if entry.is_symlink() or entry.exists():
            _remove(entry)
        temporary.mkdir()
        fill(temporary)
        descriptor = descriptor_path(entry)
        descriptor.write_text(descriptor_text(handle), encoding="utf-8")
        os.replace(temporary, entry)
        return entry
    finally:
        if temporary.exists():
            _remove(temporary)
        try:
            if lock.read_text() == mine:
                lock.unlink()
        except OSError:
            pass


def _acquire(lock: Path, mine: str, entry: Path, lock_timeout: float) -> None:
    seen: tuple[str, int] | None = None
    since = time.monotonic()
    while True:
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as out:
                out.write(mine)
            return
        try:
            holder = lock.read_text()
        except OSError:
            continue  # released just now: try again
        progress = (holder, _tmp_size(entry, holder.rsplit(".", 1)[-1]))
        if progress != seen:
            seen, since = progress, time.monotonic()
        elif time.monotonic() - since > lock_timeout:
            # No progress for lock_timeout: its holder is gone. tensorflow_hub takes the lock over too; what the
            # dead download left in its .tmp is removed as well, so no leftover marks the entry as interrupted.
            for leftover in (lock, entry.with_name(f"{entry.name}.{holder.rsplit('.', 1)[-1]}{TMP_SUFFIX}")):
                if leftover.is_symlink() or leftover.exists():
                    _remove(leftover)
            continue
        time.sleep(0.2)


def _tmp_size(entry: Path, task: str) -> int:
    temporary = entry.with_name(f"{entry.name}.{task}{TMP_SUFFIX}")
    try:
        return sum(path.stat().st_size for path in temporary.rglob("*") if path.is_file())
    except OSError:
        return 0


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
