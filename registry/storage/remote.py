"""Moving bytes to and from any fsspec URL (a local folder, ``gs://``, ``memory://``, ``http(s)://``...).

``ArtifactStore`` (``registry.storage.artifacts``) keeps published archives through
these functions; the resolver reads URL handles with them.

Artifacts are content-addressed — ``<storage>/sha256/<ab>/<sha256>.tar.gz`` — so
publishing the same bytes twice stores them once, and concurrent publishers never
overwrite each other. Reads are streams, so memory stays bounded.

fsspec lets whatever its backend raises pass through: ``socket.gaierror`` for an
unknown host, ``ConnectionRefusedError``, aiohttp's and requests' errors,
google-auth's, a bare ``ValueError`` for a URL it cannot use. Every fsspec call
here runs inside ``translated_errors``, so callers see only the registry's typed
errors, each naming the URL.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from registry.config import DEFAULT_STALL_TIMEOUT_S, GcsReadEnvironment, gcs_read_environment, prepare_gcs_environment
from registry.errors import (
    ArtifactError,
    ArtifactNotFound,
    HandleError,
    RegistryError,
    StorageFull,
    TransferStalled,
    is_disk_full,
)
from registry.handles import SCHEME_RE, check_scheme, local_path, shown  # noqa: F401  (local_path: re-exported)
from registry.handles import is_local_url as is_local

Progress = Callable[[int], None]
#: A publish copies an artifact into local storage under ``<final name>.<uuid>.tmp``, then renames it.
TMP_SUFFIX = ".tmp"


def filesystem_for(url: str):
    """The fsspec filesystem and path for ``url`` (fsspec's own config and env vars apply).

    Some backends connect while the filesystem is made (FTP, GitHub), so this too can
    fail for an unreachable host; and some need options a URL cannot carry (``dir://``,
    ``reference://``), which fsspec reports as a ``TypeError`` or ``AttributeError``.
    """
    url = _lower_scheme(url)
    check_scheme(url)
    if url.startswith(("gs://", "gcs://")):
        prepare_gcs_environment()
    with translated_errors(url, "open"):
        import fsspec  # here, not at the top: an HTTP read never needs it (~0.1 s of a start)

        try:
            return fsspec.core.url_to_fs(url)
        except (TypeError, AttributeError) as error:
            raise HandleError(
                f"fsspec cannot open {shown(url)} from a URL alone ({_describe(error)}); use a scheme that needs "
                f"no options, such as file://, gs://, http(s):// or memory://") from error


def _lower_scheme(url: str) -> str:
    """``url`` with its scheme in lower case: schemes are case-insensitive, fsspec's registry is not."""
    match = SCHEME_RE.match(url)
    return url if match is None else match.group(1).lower() + url[match.end(1):]


def _describe(error: BaseException) -> str:
    """``Type: message`` — some of these errors (a bare ``TimeoutError()``) have no message at all."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _network_errors() -> tuple[type[BaseException], ...]:
    """A host that cannot be reached: no such name, refused, reset, timed out — in any library's words.

    aiohttp's and requests' errors are looked up in ``sys.modules``: a library that was never
    imported raised nothing, and importing one just to name its errors would slow every start.
    """
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror, socket.herror]
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None:
        errors.append(aiohttp.ClientConnectionError)  # ServerDisconnectedError is one, and no OSError
    requests = sys.modules.get("requests.exceptions")
    if requests is not None:
        errors += [requests.ConnectionError, requests.Timeout]
    return tuple(errors)


def _library_errors() -> tuple[type[BaseException], ...]:
    """Other failures of the libraries under fsspec that are no ``OSError``: HTTP statuses, credentials."""
    errors: list[type[BaseException]] = []
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None:
        errors.append(aiohttp.ClientError)  # ClientResponseError (a 500), ClientPayloadError...
    google_auth = sys.modules.get("google.auth.exceptions")
    if google_auth is not None:
        errors.append(google_auth.GoogleAuthError)
    return tuple(errors)


def _failure_behind(error: BaseException) -> BaseException | None:
    """The network failure or HTTP error status a ``FileNotFoundError`` was raised from, if any.

    fsspec's HTTP backend reports *every* failure to stat a URL — a refused connection,
    an unknown host, a 500 — as ``FileNotFoundError(url)`` raised from the real one; a
    caller told "not found" would publish again instead of checking the server.
    """
    network, library = _network_errors(), _library_errors()
    seen = 0
    cause = error.__cause__ or error.__context__
    while cause is not None and seen < 16:
        if isinstance(cause, network):
            return cause
        if isinstance(cause, library) and getattr(cause, "status", None) not in (None, 404, 410):
            return cause
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def _unreachable(url: str, doing: str, error: BaseException) -> ArtifactError:
    return ArtifactError(f"cannot {doing} {shown(url, 200)}: the host cannot be reached ({_describe(error)}); "
                         f"check the host, the port and the network, or set MODEL_REGISTRY_OFFLINE=1 to use "
                         f"only the local cache")


@contextlib.contextmanager
def translated_errors(url: str, doing: str) -> Iterator[None]:
    """Turn what fsspec and its backends raise while ``doing`` something to ``url`` into typed errors.

    Nothing at the URL is ``ArtifactNotFound``; a URL fsspec cannot use (its ``ValueError``)
    is a ``HandleError``; a missing backend, an unreachable or refusing host, a timeout,
    an HTTP error status or failed credentials is an ``ArtifactError``. The original is
    chained. Anything else — a bug — passes through untouched.
    """
    try:
        yield
    except RegistryError:
        raise
    except (FileNotFoundError, NotADirectoryError) as error:
        behind = _failure_behind(error)
        if behind is None:
            raise ArtifactNotFound(f"cannot {doing} {shown(url, 200)}: nothing there ({_describe(error)}); "
                                   f"check the URL") from error
        if isinstance(behind, _network_errors()):
            raise _unreachable(url, doing, behind) from error
        raise ArtifactError(f"cannot {doing} {shown(url, 200)}: {_describe(behind)}") from error
    except ImportError as error:
        raise ArtifactError(f"no fsspec backend for {shown(url, 200)}: {error}") from error
    except ValueError as error:  # aiohttp's InvalidURL is one too, so this comes before _library_errors()
        raise HandleError(f"fsspec cannot {doing} {shown(url, 200)}: {_describe(error)}; check the URL") from error
    except _network_errors() as error:
        raise _unreachable(url, doing, error) from error
    except OSError as error:  # permissions, a full disk, an HTTP status from requests...
        if is_disk_full(error):
            raise StorageFull(f"cannot {doing} {shown(url, 200)}: no space left there ({_describe(error)}); "
                              f"free space in the storage and try again (nothing was kept)") from error
        raise ArtifactError(f"cannot {doing} {shown(url, 200)}: {_describe(error)}") from error
    except _library_errors() as error:
        raise ArtifactError(f"cannot {doing} {shown(url, 200)}: {_describe(error)}; check the URL, the server "
                            f"and your credentials") from error


def _progress_callback(progress: Progress | None):
    """An fsspec ``Callback`` reporting each new byte count to ``progress`` (fsspec imported when a put needs it)."""
    from fsspec.callbacks import Callback

    class ProgressCallback(Callback):
        def __init__(self):
            super().__init__()
            self._last = 0

        def call(self, *args, **kwargs):
            if progress and self.value > self._last:
                progress(self.value - self._last)
                self._last = self.value

    return ProgressCallback()


def put_file(local_file: Path, uri: str, *, progress: Progress | None = None) -> str:
    """Upload ``local_file`` to ``uri`` unless an object of its size is already there; return ``uri``.

    ``ArtifactStore.put``'s transfer: artifacts are content-addressed, so one already there is the same bytes.
    """
    fs, path = filesystem_for(uri)
    size = os.path.getsize(local_file)
    with translated_errors(uri, "publish to"):
        if fs.exists(path) and fs.size(path) == size:
            if progress:
                progress(size)
            return uri
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        if is_local(uri):
            _sweep_dead_temporaries(parent.rsplit("/", 1)[0])
            _put_local(local_file, path, progress)
        else:
            # object stores make an object visible only once its upload completed
            try:
                fs.put_file(str(local_file), path, callback=_progress_callback(progress))
            except FileNotFoundError as error:
                bucket = path.split("/", 1)[0]
                if _failure_behind(error) is None and not fs.exists(bucket):
                    scheme = uri.split("://", 1)[0]
                    raise ArtifactNotFound(
                        f"cannot publish to {shown(uri, 200)}: the bucket {scheme}://{bucket} does not exist; create "
                        f"it (for GCS: gcloud storage buckets create {scheme}://{bucket}), or point "
                        f"MODEL_REGISTRY_STORAGE_URL at an existing one") from error
                raise
    return uri


def _put_local(local_file: Path, path: str, progress: Progress | None) -> None:
    """Copy ``local_file`` to ``path`` through a temporary file renamed into place, held by an flock while written.

    The rename makes a half-written file impossible to see under the final name. A failed copy (a full disk)
    removes its temporary file; one whose writer was killed is unlocked, and the next publish removes it
    (``_sweep_dead_temporaries``).
    """
    import fcntl

    while True:
        tmp = f"{path}.{uuid.uuid4().hex}{TMP_SUFFIX}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                break  # not swept away between its creation and the lock
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        with open(local_file, "rb") as source:
            while chunk := source.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                if progress:
                    progress(len(chunk))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def _sweep_dead_temporaries(root: str) -> None:
    """Remove the temporary files under ``root``'s ``<ab>/`` folders whose writer is gone (their flock is free)."""
    import fcntl
    import glob

    for tmp in glob.glob(os.path.join(glob.escape(root), "*", "*" + TMP_SUFFIX)):
        try:
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(tmp)
        except OSError:
            pass  # held: a publish in progress
        finally:
            os.close(fd)


def exists(uri: str) -> bool:
    fs, path = filesystem_for(uri)
    with translated_errors(uri, "look for"):
        return fs.exists(path)


#: Options of a backend's ``sign`` beyond the path and lifetime, by fsspec protocol: google-cloud-storage (under
#: gcsfs) signs V2 unless told otherwise, and V4 is the scheme GCS documents for new code.
_SIGN_OPTIONS: dict[str, dict[str, str]] = {"gs": {"version": "v4"}, "gcs": {"version": "v4"}}


def signed_url(uri: str, *, expires_in: int) -> str | None:
    """A URL that GETs ``uri`` without credentials for ``expires_in`` seconds (fsspec's ``sign``), or None where the
    backend cannot sign: fsspec's default ``sign`` raises ``NotImplementedError``, and google-cloud-storage an
    ``AttributeError`` for credentials that hold no private key (anonymous, a user's OAuth token). Signing is local
    cryptography with a service-account key; nothing is sent anywhere.
    """
    fs, path = filesystem_for(uri)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    with translated_errors(uri, "sign a URL for"):
        try:
            return fs.sign(path, expiration=int(expires_in), **_SIGN_OPTIONS.get(protocol, {}))
        except (NotImplementedError, AttributeError):
            return None


@contextlib.contextmanager
def open_stream(url: str, *, headers: dict[str, str] | None = None,
                stall_timeout: float = DEFAULT_STALL_TIMEOUT_S) -> Iterator[BinaryIO]:
    """Open ``url`` for one sequential read. HTTP is streamed (no range requests, no whole-body buffering).

    HTTP(S) goes through the standard library, not fsspec: its file object hands every read to
    an event-loop thread, which caps a download at ~140 MB/s in the 8 KiB reads gzip makes,
    while a plain socket read delivers ~1 GB/s. Each socket read waits at most
    ``stall_timeout`` seconds (``Settings.stall_timeout``: ``MODEL_REGISTRY_STALL_TIMEOUT``), so a
    stalled server is a ``TransferStalled`` error rather than a hang. ``headers`` go with the request (a token).
    """
    scheme_url = _lower_scheme(url)
    if scheme_url.startswith(("http://", "https://")):
        stream = _open_http(url, headers or {}, stall_timeout)
    elif scheme_url.startswith(("gs://", "gcs://")):
        stream = _open_gcs(url, stall_timeout)
    else:
        fs, path = filesystem_for(url)
        with translated_errors(url, "open"):  # only the open: errors while reading are extract_stream's to explain
            stream = fs.open(path, "rb")
    try:
        yield stream
    finally:
        stream.close()


def _open_gcs(url: str, timeout: float):
    """A GCS object as one streamed GET of its media link, read like any HTTP body.

    gcsfs reads a file as ranged requests, each handed to fsspec's event-loop thread,
    and fsspec's default cache prefetches several blocks ahead: a 480 MB object took
    2.6 s and 175 MB of memory to read that way against the emulator, 0.8 s and 80 MB
    as one GET (``bench/bench_fetch.py``). gcsfs still does what it is good at — the
    endpoint (``STORAGE_EMULATOR_HOST`` included) and the credentials' headers.
    Requester-pays buckets need a billing parameter on every request: they are read
    through gcsfs itself.
    """
    anonymous = _anonymous_gcs_media_url(url)
    if anonymous is not None:
        return _open_http(anonymous, {}, timeout, shown_as=url)
    fs, path = filesystem_for(url)
    with translated_errors(url, "open"):
        if getattr(fs, "requester_pays", False):
            return fs.open(path, "rb")
        media_url = fs.url(path)
        headers: dict[str, str] = {}
        fs.credentials.apply(headers)  # a bearer token, refreshed when due; nothing for anonymous access
    return _open_http(media_url, headers, timeout, shown_as=url)


#: The gcsfs options (fsspec's config, ``FSSPEC_GCS_*``) ``_anonymous_gcs_media_url`` understands; any other
#: (requester pays, a universe, a session...) is gcsfs's to apply.
_PLAIN_GCS_OPTIONS = frozenset({"token", "endpoint_url", "project"})


def _gcs_options(environment: GcsReadEnvironment) -> dict:
    """fsspec's configuration of ``gs``/``gcs`` (what gcsfs would be given), read without importing fsspec when
    it can be: fsspec reads it from its config folder's files and from ``FSSPEC_<PROTOCOL>[_<OPTION>]``
    variables (``fsspec.config``); with no file there, the variables are all of it
    (``registry.config.gcs_read_environment`` reads them the same way). Once fsspec is imported its ``conf``
    is the truth (it may have been changed in the process)."""
    folder = environment.fsspec_config_dir
    if "fsspec" in sys.modules or (folder.is_dir() and (any(folder.glob("*.ini")) or any(folder.glob("*.json")))):
        import fsspec.config

        return {**fsspec.config.conf.get("gs", {}), **fsspec.config.conf.get("gcs", {})}
    return dict(environment.fsspec_options)


def _anonymous_gcs_media_url(url: str) -> str | None:
    """The media link of a ``gs://`` object that is read without credentials, made without importing gcsfs; None
    when gcsfs must decide (credentials, or any option beyond the endpoint).

    Importing gcsfs (aiohttp, google-auth, the storage client's gRPC types) took ~0.6 s of a fresh process,
    more than downloading a 50 MB model from the emulator (``bench/bench_fetch.py``): a crowd of processes
    resolving one handle paid it each. Without credentials there is nothing for gcsfs to do: the link is
    the JSON API's ``/download/storage/v1/b/BUCKET/o/OBJECT?alt=media`` at the endpoint gcsfs would use —
    ``endpoint_url``, else the emulator (``STORAGE_EMULATOR_HOST``), else the public endpoint. Anonymous
    means ``token="anon"`` (``FSSPEC_GCS_TOKEN=anon``), or an emulator with no token given: gcsfs falls
    back to anonymous there too, and an emulator checks none.
    """
    environment = gcs_read_environment()
    options, emulator = _gcs_options(environment), environment.emulator
    token = options.get("token")
    if set(options) - _PLAIN_GCS_OPTIONS or not (token == "anon" or (not token and emulator)):
        return None
    if environment.other_endpoint:
        return None
    bucket, _, key = url.split("://", 1)[1].partition("/")
    if not bucket or not key or "#" in key or "?" in key:
        return None
    endpoint = str(options.get("endpoint_url") or emulator or "https://storage.googleapis.com").rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        endpoint = f"http://{endpoint}"
    from urllib.parse import quote

    return f"{endpoint}/download/storage/v1/b/{bucket}/o/{quote(key, safe='')}?alt=media"


def _open_http(url: str, headers: dict[str, str], timeout: float, *, shown_as: str | None = None):
    """A streamed GET; errors name ``shown_as`` (what the user asked for) when the URL is derived from it."""
    import urllib.error
    import urllib.request

    url = _lower_scheme(url)
    check_scheme(url)
    request = urllib.request.Request(url, headers={"User-Agent": "model-registry", "Accept-Encoding": "identity",
                                                   **headers})
    name = shown_as or url
    with translated_errors(name, "download"):
        try:
            return _HttpBody(urllib.request.urlopen(request, timeout=timeout), name)  # scheme checked (bandit's S310)
        except urllib.error.HTTPError as error:
            error.close()
            if error.code in (404, 410):
                raise ArtifactNotFound(f"cannot download {shown(name, 200)}: nothing there (HTTP {error.code}); "
                                       f"check the URL") from error
            raise ArtifactError(f"cannot download {shown(name, 200)}: HTTP {error.code} {error.reason}; check the "
                                f"URL, the server and your credentials") from error
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, BaseException):
                if isinstance(reason, TimeoutError):
                    raise TransferStalled(f"cannot download {shown(name, 200)}: no answer within {timeout:g} s; "
                                          f"check the server, or raise MODEL_REGISTRY_STALL_TIMEOUT") from error
                raise reason from error  # a refused connection, an unknown host...: translated below
            raise ArtifactError(f"cannot download {shown(name, 200)}: {reason}") from error
        except TimeoutError as error:
            raise TransferStalled(f"cannot download {shown(name, 200)}: no answer within {timeout:g} s; check the "
                                  f"server, or raise MODEL_REGISTRY_STALL_TIMEOUT") from error
        except http_client().HTTPException as error:
            raise ArtifactError(f"cannot download {shown(name, 200)}: a broken HTTP answer "
                                f"({_describe(error)})") from error


class _HttpBody(io.RawIOBase):
    """An HTTP response body that is an error, not an early end, when the connection drops part-way.

    (``http.client``'s ``read1`` returns ``b""`` when a body stops short of its Content-Length.)
    """

    def __init__(self, response, url: str):
        self.response = response
        self.url = url

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self.response.read(n if n is not None and n >= 0 else None)

    def read1(self, n: int = -1) -> bytes:
        data = self.response.read1(n if n is not None and n > 0 else 1 << 20)
        if not data and (self.response.length or 0) > 0:
            raise http_client().IncompleteRead(b"", self.response.length)
        return data

    def readinto(self, buffer) -> int:
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.response.close()
        super().close()


def http_client():
    import http.client

    return http.client


def list_directory(url: str) -> list[tuple[str, str]]:
    """(relative path, full fsspec path) of every file below a model directory URL."""
    fs, root = filesystem_for(url)
    root = root.rstrip("/")
    with translated_errors(url, "list"):
        # fs.info, not fs.isdir: isdir answers False for an unreachable host as for a missing directory
        if fs.info(root)["type"] != "directory":
            raise ArtifactNotFound(f"{shown(url, 200)} is a file, not a model directory; pass a directory "
                                   f"or a .tar.gz archive")
        found = sorted(fs.find(root))
    return [(full[len(root):].lstrip("/"), full) for full in found]


def copy_file(fs, full_path: str, target: str, *, url: str) -> None:
    """Copy one file of a model directory (a path from ``list_directory(url)``) to the local ``target``."""
    with translated_errors(url, "copy a file of"):
        fs.get_file(full_path, target)
