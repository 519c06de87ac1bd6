"""Real services for the test suite, started on 127.0.0.1 only and stopped afterwards.

Tests exercise the registry against the components it meets in production rather
than stand-ins: a PostgreSQL cluster (initdb'd in a temporary directory), the GCS
emulator that gcsfs talks to, and an HTTP server that follows tfhub.dev's
``?tf-hub-format=compressed`` convention. ``tests/conftest.py`` wraps each one in
a fixture; this module holds the machinery so that fixtures stay short.

Nothing here skips: a missing binary raises ``ServiceUnavailable`` with the
command that installs it, because a test suite that quietly runs less than it
claims is worse than one that fails.
"""

from __future__ import annotations

import glob
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

LOCALHOST = "127.0.0.1"


class ServiceUnavailable(RuntimeError):
    """A service the tests need cannot be started; the message says how to install or fix it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceUnavailable(f"the process serving port {port} exited with code {process.returncode}")
        try:
            with socket.create_connection((LOCALHOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServiceUnavailable(f"nothing listened on {LOCALHOST}:{port} after {timeout:.0f} s")


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- PostgreSQL

def find_postgres_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/N/bin`` (Debian's layout), else the directory of ``pg_ctl`` on PATH."""
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if (Path(p) / "pg_ctl").exists()]
    if candidates:
        return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise ServiceUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed; install them with "
        "`apt-get install -y postgresql` (`.ci/run` and `make test` do this)")


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free port, trust auth, listening on 127.0.0.1 only.

    PostgreSQL refuses to run as root, so when the tests run as root the cluster
    belongs to the ``postgres`` OS user that Debian's package creates.
    """

    superuser = "postgres"

    def __init__(self, *, bindir: Path | None = None):
        self.bindir = bindir or find_postgres_bindir()
        # Not under pytest's tmp_path: those directories are 0700 root and the postgres user could not enter them.
        self.root = Path(tempfile.mkdtemp(prefix="registry-pg-"))
        self.datadir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.logfile = self.root / "postgres.log"
        self.port = free_port()
        self._run_as: dict = {}
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceUnavailable(
                    "running as root, but there is no `postgres` OS user to own the test cluster; "
                    "`apt-get install -y postgresql` creates it") from None
            self._run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.socket_dir.mkdir()
        if self._run_as:
            os.chown(self.socket_dir, self._run_as["user"], self._run_as["group"])

    def _pg(self, tool: str, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bindir / tool), *args]
        result = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "LC_ALL": "C"}, **self._run_as)
        if result.returncode != 0:
            raise ServiceUnavailable(
                f"`{' '.join(cmd)}` failed with code {result.returncode}:\n{result.stdout}\n{result.stderr}\n"
                f"server log:\n{_tail(self.logfile)}")

    def start(self) -> "PostgresServer":
        self._pg("initdb", "-D", str(self.datadir), "-U", self.superuser, "--auth=trust",
                 "--encoding=UTF8", "--no-sync")
        self.resume()
        return self

    def resume(self) -> None:
        """Start the cluster (again, after ``halt``) on the same port and data."""
        # fsync off: the cluster is thrown away, durability would only slow the tests.
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses={LOCALHOST} "
                   f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._pg("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir), "-l", str(self.logfile),
                 "-o", options)

    def halt(self) -> None:
        """Stop the cluster, keeping its data for ``resume`` (``-m fast``: with fsync and synchronous commit off,
        an immediate stop would lose the last commits)."""
        self._pg("pg_ctl", "stop", "-w", "-t", "30", "-m", "fast", "-D", str(self.datadir))

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            try:
                self._pg("pg_ctl", "stop", "-w", "-t", "30", "-m", "immediate", "-D", str(self.datadir))
            except ServiceUnavailable:
                pass  # already gone; removing the directory below is all that is left
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", *, driver: str = "psycopg") -> str:
        """SQLAlchemy URL of ``database`` on this server (``postgresql+psycopg://``)."""
        return f"postgresql+{driver}://{self.superuser}@{LOCALHOST}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """libpq connection string, for psycopg used directly."""
        return f"host={LOCALHOST} port={self.port} user={self.superuser} dbname={database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its name."""
        import psycopg

        name = name or f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whatever a test left connected to it."""
        import psycopg

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- GCS emulator

GCS_PROJECT = "registry-tests"


class GcsEmulator:
    """``gcp-storage-emulator`` in memory, as a subprocess on a free port.

    gcsfs reaches it through fsspec's configuration: ``configure_fsspec`` sets
    ``fsspec.config.conf["gcs"]`` for this process and the ``FSSPEC_GCS_*``
    variables for child processes (fsspec reads them when it is imported), so a
    plain ``gs://bucket/path`` URL works everywhere with no extra arguments.
    """

    def __init__(self, *, project: str = GCS_PROJECT):
        self.project = project
        self.port = free_port()
        self.endpoint = f"http://{LOCALHOST}:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="registry-gcs-"))
        self.logfile = self.root / "emulator.log"
        self.process: subprocess.Popen | None = None

    @staticmethod
    def executable() -> str:
        beside_python = Path(sys.executable).parent / "gcp-storage-emulator"
        found = str(beside_python) if beside_python.exists() else shutil.which("gcp-storage-emulator")
        if not found:
            raise ServiceUnavailable(
                "gcp-storage-emulator is not installed; `pip install -e '.[test]'` installs it")
        return found

    def start(self, *, timeout: float = 60) -> "GcsEmulator":
        with open(self.logfile, "wb") as log:
            self.process = subprocess.Popen(
                [self.executable(), "start", f"--host={LOCALHOST}", f"--port={self.port}", "--in-memory"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True)
        try:
            wait_for_port(self.port, timeout=timeout, process=self.process)
            self._wait_for_api(timeout=timeout)
        except ServiceUnavailable as exc:
            self.stop()
            raise ServiceUnavailable(f"the GCS emulator did not start: {exc}\n{_tail(self.logfile)}") from None
        return self

    def _wait_for_api(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.endpoint}/storage/v1/b?project={self.project}"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"{url} did not answer within {timeout:.0f} s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def fsspec_options(self) -> dict[str, str]:
        return {"endpoint_url": self.endpoint, "token": "anon", "project": self.project}

    def environ(self) -> dict[str, str]:
        """Variables that point gcsfs in a child process at the emulator."""
        return {
            "FSSPEC_GCS_ENDPOINT_URL": self.endpoint,
            "FSSPEC_GCS_TOKEN": "anon",
            "FSSPEC_GCS_PROJECT": self.project,
            "STORAGE_EMULATOR_HOST": self.endpoint,
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }

    def configure_fsspec(self) -> None:
        """Point gcsfs in this process at the emulator and forget cached filesystem instances."""
        import fsspec.config

        fsspec.config.conf.setdefault("gcs", {}).update(self.fsspec_options)
        os.environ.update(self.environ())
        clear_gcsfs_cache()

    def create_bucket(self, name: str | None = None) -> str:
        """Create an empty bucket and return its name."""
        name = name or f"bucket-{uuid.uuid4().hex[:12]}"
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(f"{self.endpoint}/storage/v1/b?project={self.project}", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise ServiceUnavailable(f"the GCS emulator refused to create bucket {name}: {response.status}")
        return name


def clear_gcsfs_cache() -> None:
    """Drop gcsfs's cached instances, so that listings cached by one test never leak into the next."""
    if "gcsfs" not in sys.modules:
        return
    import gcsfs

    gcsfs.GCSFileSystem.clear_instance_cache()


# --------------------------------------------------------------------------- HTTP server

@dataclass(frozen=True)
class RequestRecord:
    """One request the HTTP server answered."""

    method: str
    path: str
    query: str
    status: int
    range: str | None = None


@dataclass
class Fault:
    """How to misserve one path: an HTTP status, a body cut short, or one byte flipped."""

    status: int | None = None
    truncate_at: int | None = None
    flip_offset: int | None = None


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "_ThreadingServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass  # the request log below is the record; stderr noise helps nobody

    def do_HEAD(self):
        self._serve(send_body=False)

    def do_GET(self):
        self._serve(send_body=True)

    def _serve(self, *, send_body: bool) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        query = urllib.parse.parse_qs(parsed.query)
        model = self.server.owner
        status = self._respond(model, path, query, send_body=send_body)
        model._log(RequestRecord(self.command, path, parsed.query, status, self.headers.get("Range")))

    def _respond(self, model: "HttpModelServer", path: str, query: dict, *, send_body: bool) -> int:
        compressed = "compressed" in ",".join(query.get("tf-hub-format", [])).split(",")
        file = model.file_for(path, compressed=compressed)
        fault = model.fault_for(path, file)
        if fault is not None and fault.status is not None:
            return self._send_status(fault.status)
        if file is None:
            if model.is_model_page(path):
                return self._send_page(path, send_body=send_body)
            return self._send_status(404)
        return self._send_file(file, fault, send_body=send_body)

    def _send_status(self, status: int) -> int:
        body = f"{status} {http.HTTPStatus(status).phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _send_page(self, path: str, *, send_body: bool) -> int:
        # tfhub.dev answered the bare model URL with its documentation page.
        body = f"<html><body><h1>{path}</h1><p>Model page.</p></body></html>\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)
        return 200

    def _send_file(self, file: Path, fault: Fault | None, *, send_body: bool) -> int:
        size = file.stat().st_size
        start, end, status = 0, size, 200
        byte_range = self.headers.get("Range")
        if byte_range and byte_range.startswith("bytes="):
            first, _, last = byte_range[len("bytes="):].split(",")[0].partition("-")
            if first:
                start, end = int(first), (int(last) + 1 if last else size)
            else:  # a suffix range: the last N bytes
                start, end = max(size - int(last), 0), size
            end = min(end, size)
            if start >= size or start >= end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return 416
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/x-tar" if file.name.endswith((".tar.gz", ".tgz"))
                         else "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        truncated = fault is not None and fault.truncate_at is not None and fault.truncate_at < end
        if truncated:
            # The headers promise the full body; the connection dies part-way, as an interrupted download does.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not send_body:
            return status
        stop = min(end, fault.truncate_at) if truncated else end
        self._copy(file, start, stop, fault.flip_offset if fault else None)
        if truncated:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        return status

    def _copy(self, file: Path, start: int, stop: int, flip_offset: int | None) -> None:
        chunk_size = 1 << 16
        with open(file, "rb") as fh:
            fh.seek(start)
            position = start
            while position < stop:
                chunk = fh.read(min(chunk_size, stop - position))
                if not chunk:
                    break
                if flip_offset is not None and position <= flip_offset < position + len(chunk):
                    data = bytearray(chunk)
                    data[flip_offset - position] ^= 0xFF
                    chunk = bytes(data)
                self.wfile.write(chunk)
                position += len(chunk)


class _ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: "HttpModelServer"

    def handle_error(self, request, client_address):
        # A client hanging up mid-body is what fault tests provoke; only other errors deserve a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class HttpModelServer:
    """An HTTP server on 127.0.0.1 serving ``root`` the way tfhub.dev served models.

    - ``GET /a/model?tf-hub-format=compressed`` answers with the bytes of ``root/a/model.tar.gz``;
    - ``GET /a/model.tar.gz`` (or any other file) answers with that file; ``Range`` requests work;
    - ``GET /a/model`` with no query answers with an HTML page, as tfhub.dev did.

    Faults make one path misbehave (``fail``, ``truncate``, ``corrupt``); a fault
    matches either the URL path as requested or the file it resolves to, relative
    to ``root`` (``"a/model.tar.gz"`` also catches ``/a/model?tf-hub-format=compressed``).
    Every answered request is appended to ``requests``.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.requests: list[RequestRecord] = []
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()
        self._httpd = _ThreadingServer((LOCALHOST, 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://{LOCALHOST}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="http-model-server", daemon=True)

    def start(self) -> "HttpModelServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    # -- content

    def url(self, relpath: str = "", *, compressed: bool = False) -> str:
        """The URL of ``relpath`` under ``root``; ``compressed`` appends ``?tf-hub-format=compressed``."""
        url = f"{self.base_url}/{urllib.parse.quote(relpath.lstrip('/'))}"
        return f"{url}?tf-hub-format=compressed" if compressed else url

    def add_file(self, relpath: str, source: Path | bytes) -> str:
        """Place ``source`` (a file or bytes) at ``relpath`` and return its URL."""
        target = self.root / relpath.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, (bytes, bytearray)):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
        return self.url(relpath)

    def add_model(self, relpath: str, source: Path | bytes) -> str:
        """Serve a ``.tar.gz`` (or a model directory, archived here) as the model ``relpath``.

        Returns the model URL without a query, as a user would write it.
        """
        target = relpath.strip("/") + ".tar.gz"
        if isinstance(source, Path) and source.is_dir():
            path = self.root / target
            path.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(path, "w:gz") as tar:  # the root of the archive is the model directory
                tar.add(source, arcname=".")
        else:
            self.add_file(target, source)
        return self.url(relpath.strip("/"))

    def file_for(self, path: str, *, compressed: bool) -> Path | None:
        relpath = path.lstrip("/")
        if compressed and not relpath.endswith(".tar.gz"):
            relpath += ".tar.gz"
        candidate = (self.root / relpath).resolve()
        if not candidate.is_relative_to(self.root.resolve()) or not candidate.is_file():
            return None
        return candidate

    def is_model_page(self, path: str) -> bool:
        return bool(path.strip("/")) and (self.root / (path.strip("/") + ".tar.gz")).is_file()

    # -- faults

    def fail(self, relpath: str, status: int) -> None:
        """Answer requests for ``relpath`` with HTTP ``status`` (404, 500...)."""
        self._set_fault(relpath, Fault(status=status))

    def truncate(self, relpath: str, at: int | None = None) -> None:
        """Announce the full Content-Length but close the connection after ``at`` bytes (default: half)."""
        if at is None:
            file = self.file_for(relpath, compressed=False) or self.file_for(relpath, compressed=True)
            at = file.stat().st_size // 2 if file else 0
        self._set_fault(relpath, Fault(truncate_at=at))

    def corrupt(self, relpath: str, offset: int | None = None) -> None:
        """Serve ``relpath`` with the byte at ``offset`` (default: the middle one) inverted."""
        if offset is None:
            file = self.file_for(relpath, compressed=False) or self.file_for(relpath, compressed=True)
            offset = file.stat().st_size // 2 if file else 0
        self._set_fault(relpath, Fault(flip_offset=offset))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _set_fault(self, relpath: str, fault: Fault) -> None:
        with self._lock:
            self._faults[relpath.strip("/")] = fault

    def fault_for(self, path: str, file: Path | None) -> Fault | None:
        with self._lock:
            fault = self._faults.get(path.strip("/"))
            if fault is None and file is not None:
                fault = self._faults.get(file.relative_to(self.root.resolve()).as_posix())
            return fault

    # -- request log

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def count(self, relpath: str | None = None, *, method: str | None = None) -> int:
        """How many requests were answered, optionally only for one path (as requested) or method."""
        with self._lock:
            return sum(1 for r in self.requests
                       if (relpath is None or r.path.strip("/") == relpath.strip("/"))
                       and (method is None or r.method == method))

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()


# --------------------------------------------------------------------------- reference artifacts

@dataclass
class ReferenceArtifacts:
    """The models the reference stack (TF 2.15 + tensorflow_hub 0.15) made, with its inputs and outputs.

    ``expected(name)`` splits ``NAME.expected.npz`` (keys ``in:SIGNATURE:INPUT`` and
    ``out:SIGNATURE:OUTPUT``) into ``(inputs, outputs)``, each ``{signature: {tensor: array}}``.
    """

    root: Path
    manifest: dict = field(init=False)

    def __post_init__(self):
        self.manifest = json.loads((self.root / "MANIFEST.json").read_text())

    @property
    def names(self) -> list[str]:
        return sorted(self.manifest)

    def names_of_format(self, format: str) -> list[str]:
        return [n for n in self.names if self.manifest[n]["format"] == format]

    def model_dir(self, name: str) -> Path:
        return self.root / name

    def archive(self, name: str) -> Path:
        return self.root / f"{name}.tar.gz"

    def expected(self, name: str) -> tuple[dict[str, dict], dict[str, dict]]:
        import numpy as np

        inputs: dict[str, dict] = {}
        outputs: dict[str, dict] = {}
        with np.load(self.root / f"{name}.expected.npz") as data:
            for key in data.files:
                kind, signature, tensor = key.split(":", 2)
                (inputs if kind == "in" else outputs).setdefault(signature, {})[tensor] = data[key]
        return inputs, outputs
