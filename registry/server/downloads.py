"""Serving a version's archive: the exact stored bytes, streamed, with a correct Content-Length.

Clients check what they receive against the version's sha256, so the server
never re-packs. The bytes come from the registry's artifact store (the one
object that writes and reads them): one it holds in a local file goes out with
``sendfile`` (FileResponse), a bucket's is streamed through in 1 MiB reads on
a worker thread. A pinned
version's bytes never change, so its response may be cached forever; an alias
or the newest version may move, so those are revalidated.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response, StreamingResponse

CHUNK = 1 << 20
ARCHIVE_TYPE = "application/x-tar+gzip"


class _BigChunkFileResponse(FileResponse):
    chunk_size = CHUNK


def archive_response(location, *, store, pinned: bool, method: str = "GET",
                     on_sent: Callable[[Any], None] | None = None) -> Response:
    """The response carrying ``location``'s archive (a ``VersionLocation``), read from ``store``.

    ``on_sent(location)`` is called once the whole archive went out (a GET's; not a HEAD's, nor a download
    the client abandoned): the download counter's hook.
    """
    task = BackgroundTask(on_sent, location) if on_sent is not None and method == "GET" else None
    filename = f"{location.publisher}_{location.model}_{location.version}.tar.gz"
    headers = {
        "ETag": f'"{location.sha256}"',
        "Cache-Control": "public, max-age=31536000, immutable" if pinned else "no-cache",
        "X-Model-Handle": location.handle,
        "X-Model-Sha256": location.sha256,
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    path = store.local_file(location.artifact_uri)
    if path is not None:
        if not os.path.isfile(path):
            from registry.errors import ArtifactNotFound

            raise ArtifactNotFound(f"the artifact of {location.handle} is missing from storage ({path}); "
                                   "the catalog and the bucket disagree — tell the registry's operators")
        return _BigChunkFileResponse(path, media_type=ARCHIVE_TYPE, headers=headers, background=task)
    headers["Content-Length"] = str(location.size)
    if method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=ARCHIVE_TYPE)
    stream_cm = store.open(location.artifact_uri)
    stream = stream_cm.__enter__()  # opened now, so a missing object is a typed error before the 200 goes out
    return StreamingResponse(_chunks(stream_cm, stream), media_type=ARCHIVE_TYPE, headers=headers, background=task)


def _chunks(stream_cm, stream) -> Iterator[bytes]:
    try:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        stream_cm.__exit__(None, None, None)
