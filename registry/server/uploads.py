"""Receiving a publish: a ``multipart/form-data`` body parsed as it streams, bounded and hashed.

The body has two parts, in this order: ``manifest``, a JSON object of what the
publisher says about the version (``registry.catalog.models.PublishManifest``:
the ``VersionMetadata`` fields, ``parent``, ``tasks``), then ``archive``, the
model's ``.tar.gz``. Metadata is JSON rather than query parameters so that text
of any reasonable size (a long description, a model card) travels. The manifest
is validated as soon as its part ends, before the archive's bytes are written.
The archive goes straight into the work file with bounded memory, limited to
``MODEL_REGISTRY_MAX_UPLOAD_BYTES`` and hashed as it arrives; the manifest to
``MANIFEST_LIMIT`` bytes; the framing around them to ``FRAMING_LIMIT``.

Nothing about the archive is checked here beyond its size and the sha256 the
client declared: the publisher then checks it exactly as a local publish does
(safe members, known format, claimed tasks) before anything reaches storage or
the catalog. A refused or broken upload leaves only the work file, which is removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from registry.catalog.models import PublishManifest
from registry.config import DEFAULT_UPLOAD_IDLE_TIMEOUT_S, DEFAULT_UPLOAD_MIN_RATE
from registry.errors import (
    ArtifactError,
    IntegrityError,
    MetadataError,
    StorageFull,
    UploadStalled,
    UploadTooLarge,
    is_disk_full,
)

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # declared for type checkers only

#: Bytes gathered before one write to disk (fewer, larger writes off the event loop).
WRITE_BATCH = 1 << 20
#: The most bytes a manifest may have: far more than any description or model card needs.
MANIFEST_LIMIT = 1 << 20
#: The most bytes a body may carry besides its two parts' contents (boundaries and part headers).
FRAMING_LIMIT = 64 << 10
#: The parts of a publish, in the order they must come.
PARTS = ("manifest", "archive")
SHAPE = ("a publish is a multipart/form-data body with a 'manifest' part (a JSON object: description, parent, "
         "tasks...) and then an 'archive' part (the model's .tar.gz)")


@dataclass(frozen=True)
class Upload:
    """What a publish request carried: its manifest, and the size of the archive written to the target file."""

    manifest: PublishManifest
    size: int


async def receive_upload(request: Request, target: Path, *, limit: int, declared_sha256: str | None,
                         idle_timeout: float = DEFAULT_UPLOAD_IDLE_TIMEOUT_S,
                         min_rate: float = DEFAULT_UPLOAD_MIN_RATE) -> Upload:
    """Parse the request body, writing its archive to ``target``. Raises typed errors for every fault.

    A full disk is ``StorageFull`` (507); a body that sends nothing for ``idle_timeout`` seconds, or that
    averages under ``min_rate`` bytes a second once it has run that long, is ``UploadStalled`` (408): a
    token holder trickling bytes cannot hold a work directory and a worker for ever. The caller removes
    ``target``'s work directory whatever happens.
    """
    try:
        return await _receive(request, target, limit=limit, declared_sha256=declared_sha256,
                              idle_timeout=idle_timeout, min_rate=min_rate)
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise StorageFull("the server has no space left to receive this upload; nothing was kept: try again later, "
                          "or ask the server's operator to free space") from error


async def _receive(request: Request, target: Path, *, limit: int, declared_sha256: str | None,
                   idle_timeout: float, min_rate: float) -> Upload:
    from starlette.concurrency import run_in_threadpool

    boundary = _boundary(request.headers.get("content-type"))
    declared_length = _content_length(request)
    if declared_length is not None and declared_length > limit + MANIFEST_LIMIT + FRAMING_LIMIT:
        raise UploadTooLarge(f"the upload is {declared_length:,} bytes; this server accepts archives of at most "
                             f"{limit:,} (MODEL_REGISTRY_MAX_UPLOAD_BYTES)")
    with open(target, "wb") as out:
        body = _Body(limit=limit)
        try:
            parser = MultipartParser(boundary, body.callbacks())
        except FormParserError as error:
            raise ArtifactError(f"the upload's multipart boundary is unusable ({error}); {SHAPE}") from None
        received = 0
        try:
            async for chunk in _paced(request.stream(), idle_timeout=idle_timeout, min_rate=min_rate):
                if not chunk:
                    continue
                received += len(chunk)
                if received > limit + MANIFEST_LIMIT + FRAMING_LIMIT:
                    raise UploadTooLarge(f"the upload passed this server's limit of {limit:,} bytes "
                                         f"(MODEL_REGISTRY_MAX_UPLOAD_BYTES)")
                try:
                    parser.write(chunk)
                except FormParserError as error:
                    raise ArtifactError(f"the upload is not well-formed multipart/form-data ({error}); "
                                        f"{SHAPE}") from None
                if body.pending_size >= WRITE_BATCH:
                    await run_in_threadpool(out.write, body.take_pending())
        except ClientDisconnect:
            raise ArtifactError(f"the upload ended after {received:,} bytes"
                                + (f" of {declared_length:,}" if declared_length is not None else "")
                                + ": the connection closed early; publish again") from None
        if body.pending_size:
            await run_in_threadpool(out.write, body.take_pending())
    if declared_length is not None and received != declared_length:
        raise ArtifactError(f"the upload is {received:,} bytes but declared {declared_length:,}; publish again")
    manifest = body.finish()
    if declared_sha256 and body.digest.hexdigest() != declared_sha256.lower():
        raise IntegrityError(f"the upload's sha256 is {body.digest.hexdigest()}, not the {declared_sha256} the client "
                             "declared: it was changed or cut in transit; publish again")
    return Upload(manifest=manifest, size=body.size)


async def _paced(chunks: AsyncIterator[bytes], *, idle_timeout: float, min_rate: float) -> AsyncIterator[bytes]:
    """``chunks``, refused with ``UploadStalled`` when one takes ``idle_timeout`` seconds to come, or when the
    average rate falls under ``min_rate`` bytes a second after the first ``idle_timeout`` seconds."""
    started = time.monotonic()
    received = 0
    iterator = chunks.__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(iterator.__anext__(), timeout=idle_timeout)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise UploadStalled(f"the upload sent nothing for {idle_timeout:g} s after {received:,} bytes, so the "
                                f"server dropped it (MODEL_REGISTRY_UPLOAD_IDLE_TIMEOUT); publish again") from None
        received += len(chunk)
        elapsed = time.monotonic() - started
        if elapsed > idle_timeout and received < min_rate * elapsed:
            raise UploadStalled(f"the upload came at {received / elapsed:,.0f} bytes/s, under this server's minimum "
                                f"of {min_rate:,.0f} (MODEL_REGISTRY_UPLOAD_MIN_RATE), so it was dropped; publish "
                                f"again over a faster link")
        yield chunk


class _Body:
    """The parser's callbacks: which part is being read, the manifest's bytes, the archive's size, hash and
    the bytes waiting to be written. Each part's bound is checked as its bytes arrive."""

    def __init__(self, *, limit: int):
        self.limit = limit
        self.digest = hashlib.sha256()
        self.size = 0
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.seen: list[str] = []
        self.part: str | None = None
        self.manifest_bytes = bytearray()
        self.manifest: PublishManifest | None = None
        self.archive_done = False
        self.ended = False
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._part_end, "on_end": self._end}

    def take_pending(self) -> bytes:
        data = b"".join(self.pending)
        self.pending, self.pending_size = [], 0
        return data

    def finish(self) -> PublishManifest:
        """The manifest, once the whole body has arrived; or the error saying what it lacked."""
        if self.manifest is None:
            raise MetadataError(f"the upload has no 'manifest' part; {SHAPE}")
        if not self.archive_done or not self.ended:
            if "archive" not in self.seen:
                raise ArtifactError(f"the upload has no 'archive' part; {SHAPE}")
            raise ArtifactError("the upload ended before its closing boundary: it was cut in transit; publish again")
        if self.size == 0:
            raise ArtifactError("the upload's archive part is empty: send the model's .tar.gz in it")
        return self.manifest

    # -- callbacks ------------------------------------------------------------------------------------------

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").strip().lower()] = self._value.decode("latin-1").strip()
        self._field, self._value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("latin-1")
        expected = PARTS[len(self.seen)] if len(self.seen) < len(PARTS) else None
        if name != expected:
            what = f"a part named {name!r}" if name else "a part without a name"
            where = f"where the {expected!r} part belongs" if expected else "after the archive"
            error = MetadataError if expected == "manifest" else ArtifactError
            raise error(f"the upload has {what} {where}; {SHAPE}")
        self.seen.append(name)
        self.part = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        if start == end:
            return
        if self.part == "manifest":
            self.manifest_bytes += data[start:end]
            if len(self.manifest_bytes) > MANIFEST_LIMIT:
                raise UploadTooLarge(f"the upload's manifest passed {MANIFEST_LIMIT:,} bytes; it holds what is said "
                                     f"about the version (description, licence...), not files")
            return
        piece = data[start:end]
        self.size += len(piece)
        if self.size > self.limit:
            raise UploadTooLarge(f"the upload passed this server's limit of {self.limit:,} bytes "
                                 f"(MODEL_REGISTRY_MAX_UPLOAD_BYTES)")
        self.digest.update(piece)
        self.pending.append(piece)
        self.pending_size += len(piece)

    def _part_end(self) -> None:
        if self.part == "manifest":
            self.manifest = _manifest(bytes(self.manifest_bytes))
            self.manifest_bytes = bytearray()
        elif self.part == "archive":
            self.archive_done = True
        self.part = None

    def _end(self) -> None:
        self.ended = True


def _manifest(raw: bytes) -> PublishManifest:
    try:
        values = json.loads(raw)
    except ValueError as error:
        raise MetadataError(f"the upload's manifest is not JSON ({error}); {SHAPE}") from None
    if not isinstance(values, dict):
        raise MetadataError(f"the upload's manifest is a JSON {type(values).__name__}, not an object; {SHAPE}")
    return PublishManifest.checked(values)


def _boundary(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        got = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        raise ArtifactError(f"the upload has {got}; {SHAPE} (clients of this registry send it so: upgrade an "
                            f"older client)")
    return boundary


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ArtifactError(f"Content-Length {raw!r} is not a number") from None
    if value < 0:
        raise ArtifactError(f"Content-Length {raw!r} is negative")
    return value
