"""Receiving a published artifact: streamed to a work file with bounded memory, size-limited and hashed.

The body is the model's ``.tar.gz``. Nothing is checked here beyond size and
the sha256 the client declared: the publisher then checks the archive exactly
as a local publish does (safe members, known format, claimed tasks) before
anything reaches storage or the catalog. A refused or broken upload leaves
only the work file, which is removed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.requests import ClientDisconnect, Request

from registry.errors import ArtifactError, IntegrityError, UploadTooLarge

#: Bytes gathered before one write to disk (fewer, larger writes off the event loop).
WRITE_BATCH = 1 << 20


async def receive_upload(request: Request, target: Path, *, limit: int, declared_sha256: str | None) -> int:
    """Write the request body to ``target``; return its size. Raises typed errors for every fault."""
    from starlette.concurrency import run_in_threadpool

    declared_length = _content_length(request)
    if declared_length is not None and declared_length > limit:
        raise UploadTooLarge(f"the upload is {declared_length:,} bytes; this server accepts at most {limit:,} "
                             f"(MODEL_REGISTRY_MAX_UPLOAD_BYTES)")
    digest = hashlib.sha256()
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    with open(target, "wb") as out:
        try:
            async for chunk in request.stream():
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(f"the upload passed this server's limit of {limit:,} bytes "
                                         f"(MODEL_REGISTRY_MAX_UPLOAD_BYTES)")
                digest.update(chunk)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_BATCH:
                    await run_in_threadpool(out.write, b"".join(pending))
                    pending, pending_size = [], 0
        except ClientDisconnect:
            raise ArtifactError(f"the upload ended after {size:,} bytes"
                                + (f" of {declared_length:,}" if declared_length is not None else "")
                                + ": the connection closed early; publish again") from None
        if pending:
            await run_in_threadpool(out.write, b"".join(pending))
    if declared_length is not None and size != declared_length:
        raise ArtifactError(f"the upload is {size:,} bytes but declared {declared_length:,}; publish again")
    if size == 0:
        raise ArtifactError("the upload is empty: send the model's .tar.gz as the request body")
    if declared_sha256 and digest.hexdigest() != declared_sha256.lower():
        raise IntegrityError(f"the upload's sha256 is {digest.hexdigest()}, not the {declared_sha256} the client "
                             "declared: it was changed or cut in transit; publish again")
    return size


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
