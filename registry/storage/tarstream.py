"""A strict, streaming reader of tar archives (gzip, bz2, xz or uncompressed), fed in large reads.

``tarfile`` is forgiving where a model cache must not be: a corrupt header after
the first member reads as the end of the archive (a smaller model, silently),
data after the end-of-archive marker is ignored, and it asks its source for
10 KiB at a time. This module reads the compressed bytes in 1 MiB chunks (in a
thread, so the network, the archive hash and the inflater overlap), inflates
them with ``isal`` when installed (about twice zlib's speed) and parses the tar
headers itself, refusing with a typed error anything but: verified headers,
regular files and directories with safe names, zero padding, the two-block
end-of-archive marker followed only by zeros, and a gzip stream whose trailer
(CRC and length) checks. Expansion, member count and name length are bounded
(``registry.config.ArchiveLimits``).

As ``tarfile.open(mode="r|*")`` (what tensorflow_hub read URLs with), the
compression is told from the first bytes, never from a name or a Content-Type
(``sniff``): gzip, bz2 and xz streams are decompressed (``Inflater``,
``StreamDecoder``) with the same bounds and end-of-stream checks — the
decompressor must reach its end-of-stream marker, and only further streams of
the same kind or zero padding may follow — and an uncompressed tar is read as
it is (``PlainReader``). The bytes hashed are always the bytes received.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import queue
import struct
import threading
import time
import zlib
from typing import BinaryIO, Callable

from registry.config import ArchiveLimits
from registry.errors import ArchiveTooLarge, ArtifactError, CorruptArchive, TransferStalled, UnsafeArchive

BLOCK = 512
IN_CHUNK = 1 << 20
OUT_CHUNK = 1 << 20
PREFETCH_CHUNKS = 8
MAX_META_BYTES = 1 << 20
ZERO_BLOCK = bytes(BLOCK)
GZIP_MAGIC = b"\x1f\x8b"
BZ2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
#: What ``sniff`` needs to see of the stream: one tar header block.
SNIFF_BYTES = 512
#: Every compression ``open_decoder`` reads, as ``sniff`` names them.
COMPRESSIONS = ("gzip", "bz2", "xz", "none")
COMPRESSION_NAMES = {"gzip": "gzip-compressed", "bz2": "bzip2-compressed", "xz": "xz-compressed",
                     "none": "uncompressed"}
NOT_A_TAR = "not a tar archive (gzip, bz2, xz or uncompressed)"
#: An xz stream may ask for any dictionary size; more memory than this to decode one is refused (xz -9 needs 65 MiB).
XZ_MEMLIMIT = 1 << 30
#: Compressed bytes handed to a bz2 or xz decompressor at a time: it keeps what it is given, so this bounds how
#: far the count of consumed bytes (the expansion ratio's denominator) runs ahead of the output.
FEED_CHUNK = 64 << 10
POSIX_MAGIC = b"ustar\x0000"
GNU_MAGIC = b"ustar  \x00"
FILE_TYPES = (b"0", b"\x00", b"7")
Progress = Callable[[int], None]


def inflater_module():
    """``isal.isal_zlib`` when installed (same API, about twice as fast), else the standard library's ``zlib``."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a pinned dependency
        return zlib, (zlib.error,)
    return isal_zlib, (isal_zlib.error, zlib.error)


class ChunkSource:
    """The compressed bytes in large chunks, read (and hashed) ahead in a thread; bounded memory.

    A read that delivers nothing for ``stall_timeout`` seconds raises ``TransferStalled``;
    what the stream raises is handed over and raised in the caller's thread.
    """

    def __init__(self, raw: BinaryIO, *, source: str, stall_timeout: float, progress: Progress | None = None):
        self.raw = raw
        self.source = source
        self.stall_timeout = stall_timeout
        self.progress = progress
        self.hash = hashlib.sha256()
        self.size = 0
        self.ended = False
        self.last_activity = time.monotonic()
        self._queue: queue.Queue = queue.Queue(maxsize=PREFETCH_CHUNKS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # read1 returns what has arrived (one socket read), so a slow link still shows activity;
        # pieces are gathered into large chunks to keep the per-chunk work off the hot path.
        read = getattr(self.raw, "read1", None) or self.raw.read
        try:
            while not self._stop.is_set():
                data = read(IN_CHUNK)
                if data and len(data) < IN_CHUNK:
                    parts, size = [data], len(data)
                    while size < IN_CHUNK:
                        self.last_activity = time.monotonic()
                        more = read(IN_CHUNK - size)
                        if not more:
                            break
                        parts.append(more)
                        size += len(more)
                    data = b"".join(parts)
                if data:
                    self.last_activity = time.monotonic()
                    self.hash.update(data)
                if not self._put(data or b"") or not data:
                    return
                self.last_activity = time.monotonic()  # waiting for room in the queue is no stall
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises or translates it
            self._put(error)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> bytes:
        """The next chunk; ``b""`` once the stream has ended."""
        if self.ended:
            return b""
        while True:
            try:
                item = self._queue.get(timeout=min(self.stall_timeout, 0.5))
                break
            except queue.Empty:
                if time.monotonic() - self.last_activity > self.stall_timeout:
                    self.close()
                    raise TransferStalled(
                        f"{self.source}: no data for {self.stall_timeout:g} s after {self.size} bytes; the server "
                        f"or network stalled. Try again, or raise MODEL_REGISTRY_STALL_TIMEOUT for a slow link") \
                        from None
        if isinstance(item, BaseException):
            self.ended = True
            raise _interrupted(item, self)
        if not item:
            self.ended = True
            return b""
        self.size += len(item)
        if self.progress:
            self.progress(len(item))
        return item

    def drain(self, limit: int | None = None) -> None:
        """Read (and hash) the rest, or stop once more than ``limit`` bytes came."""
        while self.next():
            if limit is not None and self.size > limit:
                return

    def close(self) -> None:
        self._stop.set()


def _interrupted(error: BaseException, chunks: ChunkSource) -> BaseException:
    if isinstance(error, (ArtifactError, TransferStalled)):
        return error
    if isinstance(error, TimeoutError):
        stalled = TransferStalled(
            f"{chunks.source}: no data for {chunks.stall_timeout:g} s after {chunks.size} bytes; the server or "
            f"network stalled. Try again, or raise MODEL_REGISTRY_STALL_TIMEOUT for a slow link")
        stalled.__cause__ = error
        return stalled
    if isinstance(error, (OSError, EOFError, *_transfer_errors())):
        failed = ArtifactError(f"{chunks.source}: download interrupted after {chunks.size} bytes "
                               f"({type(error).__name__}: {error}); try again")
        failed.__cause__ = error
        return failed
    return error  # not a transfer failure: a bug, raised as it is


def _transfer_errors() -> tuple[type[BaseException], ...]:
    import http.client
    import sys

    errors: list[type[BaseException]] = [http.client.HTTPException]
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None:
        errors.append(aiohttp.ClientError)
    return tuple(errors)


def sniff(head: bytes) -> str | None:
    """The compression of a stream starting with ``head`` (``COMPRESSIONS``), None when it is no tar archive.

    As ``tarfile``'s ``r|*``: gzip ``1f 8b``, bz2 ``BZh`` and a block size digit, xz ``fd 37 7a 58 5a 00``;
    an uncompressed tar has ``ustar`` at byte 257, or (a pre-POSIX tar) a first header whose checksum checks.
    """
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head[:3] == BZ2_MAGIC and len(head) > 3 and head[3] in b"123456789":
        return "bz2"
    if head[:6] == XZ_MAGIC:
        return "xz"
    if len(head) >= BLOCK and (head[257:262] == b"ustar" or _is_v7_header(head[:BLOCK])):
        return "none"
    return None


def _is_v7_header(block: bytes) -> bool:
    if block == ZERO_BLOCK or block[257:263] != bytes(6):
        return False
    try:
        stored = int(block[148:156].split(b"\x00", 1)[0].strip(b" ") or b"x", 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 8 * 32 + sum(block[156:])


def open_decoder(chunks: ChunkSource, limits: ArchiveLimits, compressions=COMPRESSIONS):
    """The decoder of ``chunks``' tar stream, chosen from its first bytes; ``CorruptArchive`` when none fits.

    ``compressions`` narrows what is accepted (publishing keeps artifacts gzip: ``("gzip",)``).
    """
    head = chunks.next()
    while head and len(head) < SNIFF_BYTES:
        more = chunks.next()
        if not more:
            break
        head += more
    if not head:
        raise CorruptArchive(f"{chunks.source}: the archive is empty (no bytes)")
    kind = sniff(head)
    if kind is None:
        raise CorruptArchive(f"{chunks.source}: not a readable model archive: {NOT_A_TAR}; it starts with "
                             f"{head[:16]!r}")
    if kind not in compressions:
        wanted = " or ".join(COMPRESSION_NAMES[c] for c in compressions)
        raise CorruptArchive(f"{chunks.source}: not a readable .tar.gz model archive: a {COMPRESSION_NAMES[kind]} "
                             f"tar archive where only {wanted} ones are accepted (recompress it: tar -czf)")
    if kind == "gzip":
        return Inflater(chunks, limits, head)
    if kind == "none":
        return PlainReader(chunks, limits, head)
    return StreamDecoder(chunks, limits, head, kind)


class Decoder:
    """The tar bytes of a compressed stream (``read``), counted against ``limits``; ``chunks`` are the raw bytes."""

    kind = ""

    def __init__(self, chunks: ChunkSource, limits: ArchiveLimits, head: bytes = b""):
        self.chunks = chunks
        self.limits = limits
        self.total = 0
        self._pending = head

    def consumed(self) -> int:
        return self.chunks.size - len(self._pending)

    def read(self) -> bytes:  # pragma: no cover - every decoder defines it
        raise NotImplementedError

    def _count(self, n: int) -> None:
        self.total += n
        limits = self.limits
        if self.total > limits.max_bytes:
            raise ArchiveTooLarge(f"{self.chunks.source}: expands past {limits.max_bytes} bytes; refused as a "
                                  f"decompression bomb (raise MODEL_REGISTRY_MAX_EXTRACTED_BYTES if it is real)")
        if self.total > limits.ratio_grace_bytes and self.total > limits.max_ratio * max(self.consumed(), 1):
            raise ArchiveTooLarge(
                f"{self.chunks.source}: {self.consumed()} compressed bytes expanded to {self.total}, more than "
                f"{limits.max_ratio:g} times; refused as a decompression bomb (raise "
                f"MODEL_REGISTRY_MAX_EXPANSION_RATIO if it is real)")


class PlainReader(Decoder):
    """An uncompressed tar: the bytes as they come, counted (``max_bytes`` holds; the ratio is 1)."""

    kind = "none"

    def read(self) -> bytes:
        out, self._pending = (self._pending or self.chunks.next()), b""
        if out:
            self._count(len(out))
        return out


class Inflater(Decoder):
    """Decompressed bytes of a gzip stream (any number of members), trailers checked and expansion bounded."""

    kind = "gzip"

    def __init__(self, chunks: ChunkSource, limits: ArchiveLimits, head: bytes = b""):
        super().__init__(chunks, limits, head)
        self.module, self.errors = inflater_module()
        self._member = self.module.decompressobj(31)
        self._started = False

    def read(self) -> bytes:
        """Up to ``OUT_CHUNK`` inflated bytes; ``b""`` at the verified end of the last gzip member."""
        while True:
            if self._member.eof:
                if not self._next_member():
                    return b""
            if not self._pending:
                self._pending = self.chunks.next()
                if not self._pending:
                    what = "is empty" if not self._started else "ends before its trailer (truncated)"
                    raise CorruptArchive(f"{self.chunks.source}: the gzip stream {what}")
            self._started = True
            try:
                out = self._member.decompress(self._pending, OUT_CHUNK)
            except self.errors as error:
                raise CorruptArchive(f"{self.chunks.source}: not a readable .tar.gz model archive: the gzip stream "
                                     f"is invalid ({error})") from error
            self._pending = self._member.unused_data if self._member.eof else self._member.unconsumed_tail
            if out:
                self._count(len(out))
                return out

    def _next_member(self) -> bool:
        """After a member's trailer: another member follows, or only zero padding until the end."""
        while not self._pending:
            self._pending = self.chunks.next()
            if not self._pending:
                return False
        if self._pending[:1] == GZIP_MAGIC[:1] and (len(self._pending) < 2 or self._pending[:2] == GZIP_MAGIC):
            self._member = self.module.decompressobj(31)
            return True
        while self._pending:
            if self._pending.count(0) != len(self._pending):
                raise CorruptArchive(f"{self.chunks.source}: bytes that are not gzip after the end of the "
                                     f"compressed stream (trailing garbage)")
            self._pending = self.chunks.next()
        return False


class StreamDecoder(Decoder):
    """Decompressed bytes of a bz2 or xz stream (any number of streams, as ``bz2.open`` and ``lzma.open`` read them).

    The decompressor must reach its end-of-stream marker (bz2 checks each block's CRC, xz its
    index and check field); after it only another stream of the same kind or zero bytes (xz's
    stream padding) may follow. Input goes in ``FEED_CHUNK`` at a time, output comes out
    ``OUT_CHUNK`` at most, so the expansion bounds hold as for gzip. The current raw chunk is
    ``_buf``, fed up to ``_pos``; nothing is copied but a stream's unused tail.
    """

    def __init__(self, chunks: ChunkSource, limits: ArchiveLimits, head: bytes, kind: str):
        super().__init__(chunks, limits)
        self.kind = kind
        self.magic = BZ2_MAGIC if kind == "bz2" else XZ_MAGIC
        self.errors = (OSError, EOFError, ValueError) if kind == "bz2" else (lzma.LZMAError, EOFError, ValueError)
        self._buf = memoryview(head)
        self._pos = 0
        self._decoder = self._new()

    def _new(self):
        if self.kind == "bz2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMLIMIT)

    def consumed(self) -> int:
        return self.chunks.size - (len(self._buf) - self._pos)

    def _refill(self) -> bool:
        """The next raw chunk into ``_buf``; False at the end of the stream."""
        self._buf, self._pos = memoryview(self.chunks.next()), 0
        return bool(self._buf)

    def read(self) -> bytes:
        """Up to ``OUT_CHUNK`` decompressed bytes; ``b""`` at the verified end of the last stream."""
        while True:
            if self._decoder.eof and not self._next_stream():
                return b""
            decoder = self._decoder
            data: bytes | memoryview = b""
            if decoder.needs_input:
                if self._pos == len(self._buf) and not self._refill():
                    raise CorruptArchive(f"{self.chunks.source}: the {self.kind} stream ends before its "
                                         f"end-of-stream marker (truncated)")
                data = self._buf[self._pos:self._pos + FEED_CHUNK]
                self._pos += len(data)
            try:
                out = decoder.decompress(data, OUT_CHUNK)
            except self.errors as error:
                if self.kind == "xz" and "memory" in str(error).lower():
                    raise ArchiveTooLarge(f"{self.chunks.source}: the xz stream needs more than "
                                          f"{XZ_MEMLIMIT >> 20} MiB of memory to decompress; refused") from error
                raise CorruptArchive(f"{self.chunks.source}: not a readable model archive: the {self.kind} stream "
                                     f"is invalid ({error})") from error
            if decoder.eof:
                # Input is only fed once the decompressor has used all it had, so what it did not use is the
                # end of the last slice fed, which ends at _pos in the current chunk.
                self._pos -= len(decoder.unused_data)
            if out:
                self._count(len(out))
                return out

    def _next_stream(self) -> bool:
        """After a stream's end: another stream of the same kind follows (after zero padding), or zeros to the end."""
        while True:
            while self._pos < len(self._buf):
                window = bytes(self._buf[self._pos:self._pos + 4096])
                rest = window.lstrip(b"\x00")
                self._pos += len(window) - len(rest)
                if rest:
                    head = bytes(self._buf[self._pos:self._pos + len(self.magic)])
                    if head != self.magic[:len(head)]:
                        raise CorruptArchive(f"{self.chunks.source}: bytes that are not {self.kind} after the end "
                                             f"of the compressed stream (trailing garbage)")
                    self._decoder = self._new()
                    return True
            if not self._refill():
                return False


class ByteReader:
    """Exact-size and bounded reads over the decompressed stream, without copying large chunks."""

    def __init__(self, inflater: Decoder):
        self.inflater = inflater
        self._buf = memoryview(b"")
        self.offset = 0

    def take(self, n: int) -> memoryview:
        """Between 1 and ``n`` bytes, or an empty view at the end of the stream."""
        if not self._buf:
            self._buf = memoryview(self.inflater.read())
        piece, self._buf = self._buf[:n], self._buf[n:]
        self.offset += len(piece)
        return piece

    def exact(self, n: int, what: str) -> bytes:
        parts, need = [], n
        while need:
            piece = self.take(need)
            if not piece:
                raise CorruptArchive(f"{self.inflater.chunks.source}: the archive ends inside {what} "
                                     f"(truncated, or a member's declared size is larger than its data)")
            parts.append(bytes(piece))
            need -= len(piece)
        return b"".join(parts)


# ------------------------------------------------------------------------------------------------- headers

def parse_number(field: bytes, what: str, source: str) -> int:
    """An octal (or GNU base-256) numeric header field."""
    if field[:1] in (b"\x80", b"\xff"):
        if field[0] == 0xFF:
            raise CorruptArchive(f"{source}: a negative {what} in a tar header")
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise CorruptArchive(f"{source}: a tar header's {what} is not a number ({bytes(field)!r})") from None


def check_header(header: bytes, source: str, offset: int) -> None:
    stored = parse_number(header[148:156], "checksum", source)
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    signed = sum(struct.unpack("148b", header[:148])) + 8 * 32 + sum(struct.unpack("356b", header[156:]))
    if stored not in (unsigned, signed):
        raise CorruptArchive(f"{source}: bad tar header at offset {offset} (checksum mismatch): the archive is "
                             f"corrupt, or a member's declared size does not match its data")
    if header[257:265] not in (POSIX_MAGIC, GNU_MAGIC) and header[257:263] != bytes(6):
        raise CorruptArchive(f"{source}: bad tar header at offset {offset} (unknown magic {header[257:265]!r})")


def nul_terminated(field: bytes, what: str, source: str) -> bytes:
    """``field`` up to its NUL terminator; a NUL followed by more name bytes is refused."""
    head, nul, tail = field.partition(b"\x00")
    if nul and tail.strip(b"\x00"):
        raise UnsafeArchive(f"{source}: {what} {head!r} has a NUL byte inside it; refused")
    return head


def parse_pax(data: bytes, source: str) -> dict[str, bytes]:
    """The ``key=value`` records of a PAX extended header."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if not data[pos:].strip(b"\x00"):
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        record = data[pos:pos + length]
        if length <= 0 or len(record) != length or not record.endswith(b"\n") or b"=" not in record:
            raise CorruptArchive(f"{source}: a malformed PAX extended header record at byte {pos}")
        key, _, value = record[space - pos + 1:-1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value
        pos += length
    return records


def member_name(raw: bytes, limits: ArchiveLimits, source: str) -> str:
    """A member's name as text; refused when it has a NUL, a control character, or is over-long."""
    if b"\x00" in raw:
        raise UnsafeArchive(f"{source}: member name {raw[:80]!r} has a NUL byte inside it; refused")
    if len(raw) > limits.max_name_bytes:
        raise UnsafeArchive(f"{source}: a member name of {len(raw)} bytes (over {limits.max_name_bytes}); refused")
    if any(len(part) > limits.max_component_bytes for part in raw.split(b"/")):
        raise UnsafeArchive(f"{source}: member name {raw[:80]!r}… has a component over "
                            f"{limits.max_component_bytes} bytes; refused")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeArchive(f"{source}: member name {raw[:80]!r} is not UTF-8; refused") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UnsafeArchive(f"{source}: member name {name[:80]!r} has a control character; refused")
    return name
