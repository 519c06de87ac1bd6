"""Model archives: ``.tar.gz`` files whose root is the model directory, as tfhub.dev served them.

Published artifacts are always gzip; a model read from a URL or a path may also be an
uncompressed, bz2 or xz tar, told apart by its first bytes as ``tarfile``'s ``r|*`` does
(what tensorflow_hub accepted from a URL).

Packing is deterministic (sorted members, zeroed times and owners, one pinned
compressor) so the same directory always gives the same sha256. Extraction
reads the compressed stream exactly once, hashing the archive, hashing each
file and writing it in the same pass, so memory stays bounded whatever the
model's size. It is strict (``registry.storage.tarstream``): anything but a
well-formed archive of regular files and directories inside the target is a
typed error, and the caller removes what was written. A regular file that appears
twice (an archive appended to with ``tar -r``) is extracted as its later copy, as
tar and tensorflow_hub do; any other duplicate name is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from registry.config import DEFAULT_STALL_TIMEOUT_S, ArchiveLimits
from registry.errors import (
    ArchiveTooLarge,
    ArtifactError,
    CorruptArchive,
    IntegrityError,
    NotARegularFile,
    UnsafeArchive,
)

CHUNK = 1 << 20
#: isal's level 1: on float weights it compresses as well as zlib's level 9 (within 0.5 %) at ten times the speed.
COMPRESS_LEVEL = 1
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


class _GzipWriter(io.RawIOBase):
    """A gzip stream (mtime 0, one member) compressed by the pinned compressor into ``sink``."""

    def __init__(self, sink: io.RawIOBase):
        from registry.storage.tarstream import inflater_module

        module, _ = inflater_module()
        self.sink = sink
        self._compressor = module.compressobj(COMPRESS_LEVEL, module.DEFLATED, 31)
        self._position = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def write(self, data) -> int:
        self._position += len(data)
        out = self._compressor.compress(data)
        if out:
            self.sink.write(out)
        return len(data)

    def finish(self) -> None:
        self.sink.write(self._compressor.flush())


def pack_directory(src: Path, dest: BinaryIO) -> tuple[str, int]:
    """Write ``src`` as a deterministic tar.gz to ``dest``; return (sha256, size) of the bytes written."""
    src = Path(src)
    if not src.is_dir():
        raise ArtifactError(f"{src} is not a directory")
    entries = list(walk_model_directory(src, allow_symlinks=False))
    sink = HashingWriter(dest)
    gz = _GzipWriter(sink)
    with tarfile.TarFile(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK) as tar:
        for rel, path, is_dir in entries:
            info = tarfile.TarInfo(rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                with open(path, "rb") as f:
                    info.size = os.fstat(f.fileno()).st_size
                    info.mode = 0o644
                    tar.addfile(info, f)
    gz.finish()
    return sink.hash.hexdigest(), sink.size


def walk_model_directory(root: Path, *, allow_symlinks: bool = True) -> Iterator[tuple[str, Path, bool]]:
    """(relative path, path, is a directory) of everything below ``root``, sorted; refuses what is no file.

    A FIFO (opening it would block), a device, a socket or a dangling symbolic link is a
    ``NotARegularFile``; with ``allow_symlinks=False`` (publishing) any link is refused.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        for name in dirnames + sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                if not allow_symlinks:
                    raise NotARegularFile(f"{path} is a symbolic link; model directories must hold plain files: "
                                          f"replace the link with a copy of its target")
                try:
                    mode = os.stat(path).st_mode
                except OSError:
                    raise NotARegularFile(f"{path} is a symbolic link to {os.readlink(path)!r}, which does not "
                                          f"exist: remove the link or restore its target") from None
            if stat.S_ISDIR(mode):
                yield rel, path, True
            elif stat.S_ISREG(mode):
                yield rel, path, False
            else:
                raise NotARegularFile(f"{path} is {_kind(mode)}, not a regular file; a model directory holds only "
                                      f"files and directories: remove it from {root}")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def member_path(member: tarfile.TarInfo) -> str | None:
    """The safe relative path of a member, None for the root entry; raise ``UnsafeArchive`` otherwise."""
    if member.issym() or member.islnk():
        raise UnsafeArchive(f"archive member {member.name!r} is a link (to {member.linkname!r}); links are refused")
    if not (member.isreg() or member.isdir()):
        raise UnsafeArchive(f"archive member {member.name!r} is a device, FIFO or other special file; refused")
    return safe_relative_path(member.name)


def safe_relative_path(name: str) -> str | None:
    """``name`` normalised inside the archive root, None for the root itself; ``UnsafeArchive`` if it escapes."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"archive member {name!r} has an absolute path; refused")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"archive member {name!r} points outside the archive root ('..'); refused")
    if not parts:
        return None
    return posixpath.join(*parts)


def extract_stream(
    stream: BinaryIO,
    dest: Path,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    progress: Progress | None = None,
    source: str = "archive",
    limits: ArchiveLimits | None = None,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
    compressions: tuple[str, ...] | None = None,
) -> ExtractResult:
    """Extract the tar ``stream`` into the empty directory ``dest`` in one pass, and verify it.

    The compression — gzip, bz2, xz or none — is sniffed from the first bytes (``tarstream.sniff``);
    ``compressions`` narrows what is accepted (publishing passes ``("gzip",)``: artifacts stay
    ``.tar.gz``); anything else is a ``CorruptArchive``.

    Raises ``UnsafeArchive`` for a member that could escape ``dest`` or is no plain file or
    directory, ``ArchiveTooLarge`` past ``limits``, ``CorruptArchive`` when the bytes are not a
    well-formed archive, ``IntegrityError`` when they do not hash to ``expected_sha256``,
    ``TransferStalled`` when the stream delivers nothing for ``stall_timeout`` seconds and
    ``ArtifactError`` when it is interrupted. The caller owns ``dest`` and removes it on error.
    """
    from registry.storage.tarstream import COMPRESSIONS, ByteReader, ChunkSource, open_decoder

    limits = limits or ArchiveLimits()
    chunks = ChunkSource(stream, source=source, progress=progress,
                         stall_timeout=stall_timeout)
    try:
        try:
            decoder = open_decoder(chunks, limits, compressions or COMPRESSIONS)
            files = _extract_members(ByteReader(decoder), Path(dest), limits, source)
            chunks.drain()  # the compressed stream's last bytes (zero padding after its end)
        except (CorruptArchive, UnsafeArchive) as error:
            if expected_sha256:
                _explain_with_record(chunks, error, expected_sha256, expected_size, source)
            raise
    finally:
        chunks.close()
    _check_size(chunks.size, expected_size, source)
    sha = chunks.hash.hexdigest()
    if expected_sha256 and sha != expected_sha256:
        raise IntegrityError(
            f"{source}: content hash {sha[:12]}… does not match the recorded sha256 {expected_sha256[:12]}…; "
            f"the stored artifact is corrupt or was replaced")
    if not files:
        raise ArtifactError(f"{source}: the archive holds no files")
    return ExtractResult(sha256=sha, size=chunks.size, files=files)


def _extract_members(reader, dest: Path, limits: ArchiveLimits, source: str) -> dict[str, dict]:
    """Walk the tar headers of ``reader``, writing each member under ``dest``; the files' record."""
    from registry.storage.tarstream import (
        BLOCK,
        FILE_TYPES,
        MAX_META_BYTES,
        POSIX_MAGIC,
        ZERO_BLOCK,
        check_header,
        member_name,
        nul_terminated,
        parse_number,
        parse_pax,
    )

    files: dict[str, dict] = {}
    kinds: dict[str, str] = {}
    made: set[str] = set()
    pax: dict[str, bytes] = {}
    long_name: bytes | None = None
    headers = 0
    while True:
        offset = reader.offset
        first = reader.take(BLOCK)
        if not first:  # the stream ended cleanly between members, but with no end-of-archive marker
            raise CorruptArchive(f"{source}: the archive ends without its end-of-archive marker (truncated)")
        header = bytes(first) + (reader.exact(BLOCK - len(first), "a header") if len(first) < BLOCK else b"")
        if header == ZERO_BLOCK:
            if reader.exact(BLOCK, "the end-of-archive marker") != ZERO_BLOCK:
                raise CorruptArchive(f"{source}: a zero block followed by data at offset {offset}: a damaged "
                                     f"archive, or one concatenated with another")
            while piece := reader.take(CHUNK):
                if bytes(piece).count(0) != len(piece):
                    raise CorruptArchive(f"{source}: data after the end-of-archive marker (trailing garbage at "
                                         f"offset {reader.offset - len(piece)})")
            return files
        check_header(header, source, offset)
        headers += 1
        if headers > limits.max_members:
            raise ArchiveTooLarge(f"{source}: more than {limits.max_members} archive members; refused (raise "
                                  f"MODEL_REGISTRY_MAX_MEMBERS if the model really has that many files)")
        kind = header[156:157]
        size = parse_number(header[124:136], "size", source)
        if kind in (b"x", b"g", b"L", b"K"):
            if size > MAX_META_BYTES:
                raise ArchiveTooLarge(f"{source}: a {size}-byte extended header; refused")
            data = _read_data(reader, size, "an extended header")
            if kind == b"x":
                pax = parse_pax(data, source)
            elif kind == b"L":
                long_name = nul_terminated(data, "a long member name", source)
            continue
        if long_name is not None:
            raw_name = long_name
        elif "path" in pax:
            raw_name = pax["path"]
        else:
            raw_name = nul_terminated(header[:100], "member name", source)
            if header[257:265] == POSIX_MAGIC and header[345] != 0:
                raw_name = nul_terminated(header[345:500], "member name prefix", source) + b"/" + raw_name
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise CorruptArchive(f"{source}: a PAX size that is not a number ({pax['size'][:40]!r})") from None
        sparse = kind == b"S" or any(key.startswith("GNU.sparse") for key in pax)
        pax, long_name = {}, None
        name = member_name(raw_name, limits, source)
        if kind in (b"1", b"2"):
            raise UnsafeArchive(f"archive member {name!r} is a link; links are refused")
        if sparse:
            raise UnsafeArchive(f"archive member {name!r} is a sparse file; refused (it could claim any size)")
        if kind not in FILE_TYPES and kind != b"5":
            raise UnsafeArchive(f"archive member {name!r} is a device, FIFO or other special file "
                                f"(type {kind!r}); refused")
        rel = safe_relative_path(name)
        if kind == b"5":
            if size:
                raise CorruptArchive(f"{source}: directory member {name!r} declares {size} bytes of data")
            if rel is not None:
                _claim(kinds, rel, "dir", source)
                _make_dirs(dest, rel, made)
            continue
        if rel is None:
            raise UnsafeArchive(f"{source}: a file member named {name!r}, the archive root; refused")
        again = _claim(kinds, rel, "file", source)
        if size > limits.max_bytes:
            raise ArchiveTooLarge(f"{source}: member {rel!r} declares {size} bytes, over the limit of "
                                  f"{limits.max_bytes}; refused (MODEL_REGISTRY_MAX_EXTRACTED_BYTES)")
        parent = posixpath.dirname(rel)
        if parent:
            _make_dirs(dest, parent, made)
        if again:
            os.unlink(dest / rel)  # the later copy wins, as tar and tensorflow_hub extract it
        files[rel] = _write_member(reader, size, dest / rel, rel, source)
    # the loop only ends by returning at the end-of-archive marker


def _claim(kinds: dict[str, str], rel: str, kind: str, source: str) -> bool:
    """Record ``rel`` as a file or directory; True if it is a regular file seen before.

    A regular file that appears again replaces the earlier copy, as ``tar -x`` and
    tensorflow_hub 0.15 (``tarfile.extractall``) do: archives made by appending
    (``tar -r``) hold such duplicates. Any other duplicate (a file and a directory of
    one name) or a path below a file is refused; links never get this far.
    """
    previous = kinds.get(rel)
    if previous == kind == "file":
        return True
    if previous is not None and not (previous == kind == "dir"):
        raise UnsafeArchive(f"{source}: archive member {rel!r} appears twice (a {previous}, then a {kind}); refused")
    parts = rel.split("/")
    for i in range(1, len(parts)):
        above = "/".join(parts[:i])
        if kinds.get(above) == "file":
            raise UnsafeArchive(f"{source}: archive member {rel!r} is inside {above!r}, which is a file; refused")
        kinds.setdefault(above, "dir")
    kinds[rel] = kind
    return False


def _make_dirs(dest: Path, rel: str, made: set[str]) -> None:
    if rel not in made:
        (dest / rel).mkdir(parents=True, exist_ok=True)
        made.add(rel)


def _read_data(reader, size: int, what: str) -> bytes:
    data = reader.exact(size, what)
    _skip_padding(reader, size, what)
    return data


def _skip_padding(reader, size: int, what: str) -> None:
    pad = -size % 512
    if pad and reader.exact(pad, what).count(0) != pad:
        raise CorruptArchive(f"{reader.inflater.chunks.source}: data in the padding after {what}: its declared "
                             f"size is smaller than its content (a size lie)")


def _write_member(reader, size: int, target: Path, rel: str, source: str) -> dict:
    digest = hashlib.sha256()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    with open(os.open(target, flags, 0o644), "wb") as out:
        remaining = size
        while remaining:
            piece = reader.take(min(remaining, CHUNK))
            if not piece:
                raise CorruptArchive(f"{source}: the archive ends inside member {rel!r} ({size - remaining} of its "
                                     f"{size} bytes): truncated, or its declared size is larger than its data")
            digest.update(piece)
            out.write(piece)
            remaining -= len(piece)
    _skip_padding(reader, size, f"member {rel!r}")
    os.chmod(target, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    return {"size": size, "sha256": digest.hexdigest()}


def _check_size(size: int, expected_size: int | None, source: str) -> None:
    if expected_size is not None and size != expected_size:
        what = "truncated" if size < expected_size else "longer than recorded"
        raise ArtifactError(f"{source}: archive {what}: {size} bytes where {expected_size} were recorded; "
                            f"the download was interrupted or the stored artifact is damaged")


def _explain_with_record(chunks, error: BaseException, expected_sha256: str, expected_size: int | None,
                         source: str) -> None:
    """A malformed archive whose sha256 is recorded: tell corrupt bytes (``IntegrityError``) from a bad upload.

    Reads the rest of the compressed stream (never more than the recorded size, plus one
    chunk); an interruption meanwhile is an ``ArtifactError`` of its own.
    """
    chunks.drain(limit=expected_size)
    if expected_size is not None and chunks.size > expected_size:
        raise IntegrityError(f"{source}: more bytes than the recorded {expected_size}; the stored artifact is "
                             f"corrupt or was replaced ({error})") from error
    _check_size(chunks.size, expected_size, source)
    if chunks.hash.hexdigest() != expected_sha256:
        raise IntegrityError(
            f"{source}: the bytes do not match the recorded sha256 ({chunks.size} bytes read; "
            f"{type(error).__name__}: {error}); the stored artifact is corrupt") from error


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
