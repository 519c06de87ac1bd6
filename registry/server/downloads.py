"""Serving a version's archive: the exact stored bytes, with a correct Content-Length — or a hand-over to
whatever sends bytes faster than Python.

Clients check what they receive against the version's sha256, so the server
never re-packs. Access is checked (the route's dependency) and the download
counted before any of the three ways out:

* **redirect** — where the storage can sign URLs (a bucket read with a
  service-account key: ``ArtifactStorage.signed_url``), a GET is answered
  ``302`` to a URL valid for ``SIGNED_URL_LIFETIME_S`` seconds, and the bucket
  sends the bytes, as tfhub.dev did. ``MODEL_REGISTRY_DOWNLOADS=proxy`` turns
  it off; ``=redirect`` makes a storage that cannot sign a start-up error.
* **front proxy** — with ``MODEL_REGISTRY_ACCEL_REDIRECT=/prefix/``, an archive
  in a local storage folder is answered with ``X-Accel-Redirect: /prefix/<path
  under the folder>``: nginx, configured with an ``internal`` location aliasing
  the folder (README, "Serving downloads"), sends the file itself.
* **the server itself** — a local file with ``FileResponse`` (``sendfile`` on the
  socket, ``registry.server.sendfile``), a bucket's object streamed through in
  1 MiB reads on a worker thread.

A pinned version's bytes never change, so its archive may be cached forever; an
alias or the newest version may move, so those are revalidated; a redirect is
never cached (its signature expires).
"""

from __future__ import annotations

import functools
import os
from stat import S_ISREG
from typing import Any, Callable, Iterator
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from registry.config import ACCEL_REDIRECT_ENV, DOWNLOADS_ENV, invalid
from registry.errors import HandleError
from registry.server.sendfile import PATHSEND

CHUNK = 1 << 20
ARCHIVE_TYPE = "application/x-tar+gzip"
#: Seconds a signed URL stays valid: long enough for a client to follow the redirect (a bucket checks the signature
#: when a download starts, not while it runs), short enough that a leaked URL is soon worthless.
SIGNED_URL_LIFETIME_S = 300


class _BigChunkFileResponse(FileResponse):
    """A local archive: in one ``pathsend`` message where the server offers it (``registry.server.sendfile``),
    else in 1 MiB chunks. Its background task (the download counter) runs only once the whole file went out."""

    chunk_size = CHUNK

    async def __call__(self, scope, receive, send) -> None:
        background, self.background = self.background, None
        await super().__call__(scope, receive, send)  # a client gone mid-chunks cancels this: no count
        if background is not None and not scope.get("extensions", {}).get(PATHSEND, {}).get("incomplete"):
            await background()


def wants_archive(hub_format: str | None) -> bool:
    """Whether a model URL's ``?tf-hub-format=`` asks for the archive (``compressed``) rather than the page (none);
    ``uncompressed`` and anything else are a ``HandleError`` saying what this server serves."""
    if hub_format is None:
        return False
    if hub_format == "uncompressed":
        raise HandleError("this registry serves models as compressed archives only: unset TFHUB_MODEL_LOAD_FORMAT "
                          "(or set it to COMPRESSED), or use ?tf-hub-format=compressed")
    if hub_format != "compressed":
        raise HandleError(f"tf-hub-format must be 'compressed', not {hub_format!r}")
    return True


async def send_archive(request, registry, settings, handle, *, pinned: bool) -> Response:
    """The archive of the version ``handle`` names (a ``CatalogHandle``), sent the way ``settings`` chooses and
    counted once sent: what every model URL answers, whatever spelling of it (catalog or legacy) was asked."""
    # On an SQLite catalog (WAL: a reader never waits for a writer) the one indexed read takes ~15 µs on a kept
    # connection (registry.catalog.sqlite_reader), and a local file needs one stat: cheaper on the event loop than
    # the two hops to a worker thread they replace (~0.3 ms a download, measured). A server database or a bucket
    # may wait on the network, so those run on a worker thread.
    catalog_inline = registry.catalog.is_local
    location = (registry.catalog.locate(handle) if catalog_inline
                else await run_in_threadpool(registry.catalog.locate, handle))  # a deleted version: VersionNotFound
    counter = getattr(request.app.state, "downloads", None)  # registry.server.background: counted once sent
    answer = functools.partial(archive_response, location, store=registry.store, pinned=pinned,
                               method=request.method, on_sent=counter.count if counter is not None else None,
                               settings=settings)
    if catalog_inline and registry.store.local_file(location.artifact_uri) is not None:
        return answer()
    return await run_in_threadpool(answer)


def check_settings(store, settings) -> None:
    """Refuse, at start-up, a delivery setting the storage cannot honour (``ConfigError`` naming the variable).

    ``MODEL_REGISTRY_DOWNLOADS=redirect`` needs a storage that signs (it is tried once: signing is local
    cryptography); ``MODEL_REGISTRY_ACCEL_REDIRECT`` needs a local storage folder for nginx to alias.
    """
    if settings.downloads == "redirect" and store.signed_url(f"{store.url}/.signing-check",
                                                            expires_in=SIGNED_URL_LIFETIME_S) is None:
        raise invalid(DOWNLOADS_ENV, "redirect", f"the storage {store.url} cannot sign URLs (a local folder, or "
                                                 f"credentials without a private key: give a bucket a service-"
                                                 f"account key), so use proxy or leave it unset")
    if settings.accel_redirect and store.local_file(f"{store.url}/.accel-check") is None:
        raise invalid(ACCEL_REDIRECT_ENV, settings.accel_redirect,
                      f"it hands local files to a front proxy, and the storage {store.url} is no local folder; "
                      f"leave it unset (bucket storage redirects instead: {DOWNLOADS_ENV})")


def archive_response(location, *, store, pinned: bool, method: str = "GET",
                     on_sent: Callable[[Any], None] | None = None, settings=None) -> Response:
    """The response carrying (or handing over) ``location``'s archive (a ``VersionLocation``), read from ``store``.

    ``on_sent(location)`` is the download counter's hook, called once per GET (never for a HEAD): after the
    whole archive went out (not for a download the client abandoned) when the server sends it, after the
    redirect or the ``X-Accel-Redirect`` went out otherwise — the registry does not see those bytes. It runs on
    the event loop, so it must be quick (the counter increments a dictionary).
    ``settings`` (a ``ServerSettings``) chooses the way out; None: redirect where the storage signs, else send.
    """
    downloads = getattr(settings, "downloads", None)
    accel_prefix = getattr(settings, "accel_redirect", None)
    task = BackgroundTask(_on_the_loop, on_sent, location) if on_sent is not None and method == "GET" else None
    identity = {"X-Model-Handle": location.handle, "X-Model-Sha256": location.sha256}
    if method == "GET" and downloads != "proxy":
        url = store.signed_url(location.artifact_uri, expires_in=SIGNED_URL_LIFETIME_S)
        if url is not None:
            return RedirectResponse(url, status_code=302, headers={**identity, "Cache-Control": "no-store"},
                                    background=task)
    filename = f"{location.publisher}_{location.model}_{location.version}.tar.gz"
    headers = {
        "ETag": f'"{location.sha256}"',
        "Cache-Control": "public, max-age=31536000, immutable" if pinned else "no-cache",
        **identity,
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    path = store.local_file(location.artifact_uri)
    if path is not None:
        try:
            stat_result = os.stat(path)  # here, on this worker thread, rather than on another by FileResponse
        except FileNotFoundError:
            stat_result = None
        if stat_result is None or not S_ISREG(stat_result.st_mode):
            from registry.errors import ArtifactNotFound

            raise ArtifactNotFound(f"the artifact of {location.handle} is missing from storage ({path}); "
                                   "the catalog and the bucket disagree — tell the registry's operators")
        internal = _accel_target(path, store, accel_prefix) if accel_prefix and method == "GET" else None
        if internal is not None:
            # No body: nginx sends the file named here, with this response's headers (README, "Serving downloads").
            return Response(status_code=200, headers={**headers, "X-Accel-Redirect": internal},
                            media_type=ARCHIVE_TYPE, background=task)
        return _BigChunkFileResponse(path, media_type=ARCHIVE_TYPE, headers=headers, background=task,
                                     stat_result=stat_result)
    headers["Content-Length"] = str(location.size)
    if method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=ARCHIVE_TYPE)
    stream_cm = store.open(location.artifact_uri)
    stream = stream_cm.__enter__()  # opened now, so a missing object is a typed error before the 200 goes out
    return StreamingResponse(_chunks(stream_cm, stream), media_type=ARCHIVE_TYPE, headers=headers, background=task)


async def _on_the_loop(hook: Callable[[Any], None], location) -> None:
    """Call ``hook(location)`` where the response ran: Starlette would send a plain function to a worker thread,
    a hop that cost more than the dictionary increment it carries."""
    hook(location)


def _accel_target(path: str, store, prefix: str) -> str | None:
    """``prefix`` + ``path`` relative to the storage folder, percent-encoded; None for a file outside the folder
    (a catalog that outlived a move of its storage), which the server then sends itself."""
    root = store.local_file(store.url)
    if root is None:
        return None
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))  # paths as nginx sees them: no lookups
    if relative.startswith(os.pardir) or os.path.isabs(relative):
        return None
    return prefix + quote(relative.replace(os.sep, "/"))


def _chunks(stream_cm, stream) -> Iterator[bytes]:
    try:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        stream_cm.__exit__(None, None, None)
