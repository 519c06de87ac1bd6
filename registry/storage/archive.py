"""Model archives: ``.tar.gz`` files whose root is the model directory, as tfhub.dev served them.

Packing is deterministic (sorted members, zeroed times and owners) so the same
directory always gives the same sha256. Extraction reads the compressed stream
exactly once, hashing the archive, hashing each file and writing it in the same
pass, so memory stays bounded whatever the model's size; it refuses any member
that could write outside the target directory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import stat
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from registry.errors import ArtifactError, IntegrityError, UnsafeArchive

CHUNK = 1 << 20
Progress = Callable[[int], None]


@dataclass
class ExtractResult:
    """The archive's sha256 and size, and every extracted file's size and sha256 (the cache's record)."""

    sha256: str
    size: int
    files: dict[str, dict] = field(default_factory=dict)


class HashingReader(io.RawIOBase):
    """Wraps a binary stream; hashes and counts every byte read through it."""

    def __init__(self, raw: BinaryIO, progress: Progress | None = None):
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0
        self.progress = progress

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else CHUNK)
        if data:
            self.hash.update(data)
            self.size += len(data)
            if self.progress:
                self.progress(len(data))
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class HashingWriter(io.RawIOBase):
    """Wraps a binary sink; hashes and counts every byte written through it."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)


def pack_directory(src: Path, dest: BinaryIO) -> tuple[str, int]:
    """Write ``src`` as a deterministic tar.gz to ``dest``; return (sha256, size) of the bytes written."""
    src = Path(src)
    if not src.is_dir():
        raise ArtifactError(f"{src} is not a directory")
    sink = HashingWriter(dest)
    with gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel in _walk_sorted(src):
                path = src / rel
                info = tarfile.TarInfo(rel.as_posix())
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if path.is_dir():
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                else:
                    info.size = path.stat().st_size
                    info.mode = 0o644
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
    return sink.hash.hexdigest(), sink.size


def _walk_sorted(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        for name in dirnames + sorted(filenames):
            path = here / name
            if path.is_symlink():
                raise ArtifactError(f"{path} is a symbolic link; model directories must hold plain files")
            yield path.relative_to(root)


def member_path(member: tarfile.TarInfo) -> str | None:
    """The safe relative path of a member, None for the root entry; raise ``UnsafeArchive`` otherwise."""
    name = member.name
    if member.issym() or member.islnk():
        raise UnsafeArchive(f"archive member {name!r} is a link (to {member.linkname!r}); links are refused")
    if not (member.isreg() or member.isdir()):
        raise UnsafeArchive(f"archive member {name!r} is a device, FIFO or other special file; refused")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"archive member {name!r} has an absolute path; refused")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"archive member {name!r} points outside the archive root ('..'); refused")
    if not parts:
        return None
    return posixpath.join(*parts)


def _network_errors() -> tuple[type[BaseException], ...]:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp is a dependency
        return ()
    return (aiohttp.ClientError,)


def extract_stream(
    stream: BinaryIO,
    dest: Path,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    progress: Progress | None = None,
    source: str = "archive",
) -> ExtractResult:
    """Extract the tar.gz ``stream`` into the empty directory ``dest`` in one pass, and verify it.

    Raises ``UnsafeArchive`` for a member that could escape ``dest``,
    ``IntegrityError`` when the bytes do not hash to ``expected_sha256`` and
    ``ArtifactError`` when they are not a readable archive (corrupt, truncated,
    interrupted). The caller owns ``dest`` and removes it on error.
    """
    reader = HashingReader(stream, progress)
    files: dict[str, dict] = {}
    dest = Path(dest)
    read_errors = (tarfile.TarError, EOFError, zlib.error, OSError, *_network_errors())
    try:
        gz = gzip.GzipFile(fileobj=reader, mode="rb")
        with tarfile.open(fileobj=gz, mode="r|") as tar:
            for member in tar:
                rel = member_path(member)
                if rel is None:
                    continue
                target = dest / rel
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                files[rel] = _write_member(tar, member, target)
        while gz.read(CHUNK):  # reading to the end of the gzip stream checks its CRC and length
            pass
        reader.drain()
    except UnsafeArchive:
        raise
    except read_errors as error:
        _raise_unreadable(reader, error, expected_sha256, expected_size, source, read_errors)
    _check_size(reader, expected_size, source)
    sha = reader.hash.hexdigest()
    if expected_sha256 and sha != expected_sha256:
        raise IntegrityError(
            f"{source}: content hash {sha[:12]}… does not match the recorded sha256 {expected_sha256[:12]}…; "
            f"the stored artifact is corrupt or was replaced")
    if not files:
        raise ArtifactError(f"{source}: the archive holds no files")
    return ExtractResult(sha256=sha, size=reader.size, files=files)


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> dict:
    src = tar.extractfile(member)
    digest = hashlib.sha256()
    written = 0
    with open(target, "wb") as out:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            written += len(chunk)
            out.write(chunk)
    os.chmod(target, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    return {"size": written, "sha256": digest.hexdigest()}


def _check_size(reader: HashingReader, expected_size: int | None, source: str) -> None:
    if expected_size is not None and reader.size != expected_size:
        what = "truncated" if reader.size < expected_size else "longer than recorded"
        raise ArtifactError(f"{source}: archive {what}: {reader.size} bytes where {expected_size} were recorded; "
                            f"the download was interrupted or the stored artifact is damaged")


def _raise_unreadable(reader: HashingReader, error: BaseException, expected_sha256, expected_size, source,
                      read_errors):
    """Tell a corrupt artifact (bytes differ from the record) from an interrupted read or a broken upload."""
    if expected_sha256:
        try:
            reader.drain()
        except read_errors:
            raise ArtifactError(f"{source}: download interrupted or archive truncated "
                                f"after {reader.size} bytes ({error})") from error
        _check_size(reader, expected_size, source)
        if reader.hash.hexdigest() != expected_sha256:
            raise IntegrityError(
                f"{source}: the bytes do not match the recorded sha256 ({reader.size} bytes read; "
                f"{type(error).__name__}: {error}); the stored artifact is corrupt") from error
    raise ArtifactError(f"{source}: not a readable .tar.gz model archive "
                        f"({type(error).__name__}: {error})") from error


def file_digest(path: Path) -> dict:
    """Size and sha256 of one file, in the form the cache records."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def tree_digest(files: dict[str, dict]) -> str:
    """One sha256 for a directory's files (used when a model arrives as a directory, not an archive)."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(f"{rel}\0{files[rel]['size']}\0{files[rel]['sha256']}\n".encode())
    return digest.hexdigest()
