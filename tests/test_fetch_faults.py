"""Faults of the fetch path: stalled servers, lock holders that hang or die, dead processes' leftovers,
files that are not files. Real processes and a real HTTP server on 127.0.0.1 that misbehaves on request.

``FaultyServer`` (also used by ``test_cache_processes.py``) serves one archive at
every path: throttled, with seeded random pauses, or stalling after some bytes.
"""

from __future__ import annotations

import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from registry.errors import CacheBusy, NotARegularFile, RegistryError, TransferStalled
from registry.handles import parse
from registry.resolver import Resolver
from registry.storage.archive import file_digest, pack_directory
from registry.storage.cache import ModelCache
from registry.storage.remote import open_stream

MB = 1 << 20
REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- the server


class FaultyServer:
    """An HTTP server on 127.0.0.1 answering every GET with ``payload``, misbehaving as configured.

    ``rate``: bytes per second (None: as fast as it can); ``delay``: seconds before every answer's
    headers (downloads then finish together); ``pauses``: seeded random sleeps before the headers
    (unless ``delay``) and between chunks; ``stall_after``: send that many body bytes, then
    nothing until ``stop``; ``silent``: accept, never answer.
    """

    def __init__(self, payload: bytes, *, seed: int = 0):
        self.payload = payload
        self.chunk = 64 * 1024
        self.rate: float | None = None
        self.pauses = False
        self.delay: float | None = None
        self.stall_after: int | None = None
        self.silent = False
        self.requests = 0
        self.released = threading.Event()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    owner._serve(self)
                except (ConnectionError, TimeoutError):
                    pass  # a client killed or gone: what these tests do to it

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/models/faulty/1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FaultyServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _serve(self, handler) -> None:
        with self._lock:
            self.requests += 1
            rng = random.Random(self._random.random())
        if self.silent:
            self.released.wait(120)
            return
        if self.delay is not None:
            time.sleep(self.delay)
        elif self.pauses:
            time.sleep(rng.uniform(0, 0.3))
        handler.send_response(200)
        handler.send_header("Content-Type", "application/x-tar")
        handler.send_header("Content-Length", str(len(self.payload)))
        handler.end_headers()
        position = 0
        while position < len(self.payload):
            if self.stall_after is not None and position >= self.stall_after:
                handler.wfile.flush()
                self.released.wait(120)
                return
            piece = self.payload[position:position + self.chunk]
            handler.wfile.write(piece)
            position += len(piece)
            if self.rate:
                time.sleep(len(piece) / self.rate)
            if self.pauses and rng.random() < 0.05:
                time.sleep(rng.uniform(0, 0.3))


# --------------------------------------------------------------------------- a model and child processes


def make_model(root: Path, seed: int = 0, size: int = 3 * MB) -> Path:
    rng = random.Random(seed)
    (root / "variables").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "saved_model.pb").write_bytes(rng.randbytes(2000))
    (root / "variables" / "variables.index").write_bytes(rng.randbytes(300))
    (root / "variables" / "variables.data-00000-of-00001").write_bytes(rng.randbytes(size))
    for i in range(20):
        (root / "assets" / f"vocab-{i:02d}.txt").write_text(f"token{i}\n" * 50)
    return root


def expected_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): file_digest(p)["sha256"] for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[bytes, str, dict[str, str]]:
    """(archive bytes, sha256, {file: sha256}) of a 3 MB model."""
    root = make_model(tmp_path_factory.mktemp("faulty") / "model")
    out = root.parent / "model.tar.gz"
    with open(out, "wb") as fh:
        sha, _ = pack_directory(root, fh)
    return out.read_bytes(), sha, expected_tree(root)


#: A child process: resolve ``url`` (as a URL handle, or by its known sha256 like a catalog handle), then
#: report the directory it got and every file's hash in it, read back from disk.
RESOLVE = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from registry.config import Settings
    from registry.handles import parse
    from registry.resolver import Resolver
    from registry.storage.archive import file_digest
    from registry.storage.cache import ModelCache
    from registry.storage.remote import open_stream
    how, cache_dir, url, sha, size = sys.argv[1:6]
    settings = Settings.from_env()._replace(cache_dir=Path(cache_dir))
    cache = ModelCache.from_settings(settings)
    print("start", flush=True)
    while os.environ.get("GO_FILE") and not os.path.exists(os.environ["GO_FILE"]):  # a starting line for crowds
        time.sleep(0.005)
    try:
        if how == "url":
            path = Resolver(catalog=None, store=None, cache=cache).resolve(parse(url)).path
        else:
            _, path = cache.fetch(lambda: open_stream(url, stall_timeout=settings.stall_timeout), source=url,
                                  sha256=sha, size=int(size))
    except Exception as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}), flush=True)
        sys.exit(3)
    files = {p.relative_to(path).as_posix(): file_digest(p)["sha256"] for p in sorted(path.rglob("*")) if p.is_file()}
    print(json.dumps({"path": str(path), "files": files}), flush=True)
""")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_REGISTRY_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def start_resolver(how: str, cache_dir: Path, url: str, sha: str, size: int, *, started: bool = True,
                   **env: str) -> subprocess.Popen:
    """A child resolving ``url``; with ``started``, returned once it is about to fetch."""
    process = subprocess.Popen([sys.executable, "-c", RESOLVE, how, str(cache_dir), url, sha, str(size)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(**env))
    if started:
        assert process.stdout.readline().strip() == "start", process.stderr.read()
    return process


def result_of(process: subprocess.Popen, timeout: float = 120) -> dict:
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"exit {process.returncode}: {err[-3000:]}"
    return json.loads(lines[-1])


def leftover_bytes(cache: ModelCache) -> int:
    """Bytes in the cache's work area: what an interrupted fetch left."""
    return sum(p.stat().st_size for p in cache.tmp.rglob("*") if p.is_file()) if cache.tmp.is_dir() else 0


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def blocked_on(lock_file: Path) -> int:
    """How many flock requests the kernel keeps blocked on ``lock_file``: the fetchers waiting for its holder.

    A waiter sleeps in a shared flock on the lock file until the holder lets go (``_ReleaseWatch``),
    so each waiting fetcher is one request in /proc/locks, listed under the lock that blocks it
    and marked ``->`` (``N: -> FLOCK ADVISORY READ <pid> <major>:<minor>:<inode> 0 EOF``).
    """
    inode = lock_file.stat().st_ino
    blocked = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 7 and fields[1:3] == ["->", "FLOCK"] and int(fields[6].rsplit(":", 1)[1]) == inode:
            blocked += 1
    return blocked


# --------------------------------------------------------------------------- stalled transfers


def test_a_server_that_stops_sending_is_transfer_stalled_naming_the_url(archive, tmp_path, monkeypatch):
    data, sha, _ = archive
    cache = ModelCache(tmp_path / "cache", stall_timeout=1)
    with FaultyServer(data) as server:
        server.stall_after = len(data) // 3
        with pytest.raises(TransferStalled, match="127.0.0.1") as info:
            Resolver(catalog=None, store=None, cache=cache).resolve(parse(server.url))
    assert "MODEL_REGISTRY_STALL_TIMEOUT" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    assert cache.entries() == [] and cache.incomplete() == [] and leftover_bytes(cache) == 0


def test_a_server_that_never_answers_is_transfer_stalled(archive, tmp_path, monkeypatch):
    data, sha, _ = archive
    cache = ModelCache(tmp_path / "cache", stall_timeout=1)
    with FaultyServer(data) as server:
        server.silent = True
        with pytest.raises(TransferStalled, match="127.0.0.1"):
            cache.fetch(lambda: open_stream(server.url, stall_timeout=1), source=server.url, sha256=sha,
                        size=len(data))
    assert cache.entries() == [] and cache.incomplete() == []


def test_a_slow_but_moving_transfer_is_not_stalled(tmp_path, monkeypatch):
    # 8 KiB every ~0.4 s: never a whole second without a byte, though the read-ahead's 1 MiB takes far longer.
    root = make_model(tmp_path / "small", size=40_000)
    with open(tmp_path / "small.tar.gz", "wb") as out:
        sha, _ = pack_directory(root, out)
    cache = ModelCache(tmp_path / "cache", stall_timeout=1)
    with FaultyServer((tmp_path / "small.tar.gz").read_bytes()) as server:
        server.chunk, server.rate = 8 * 1024, 20 * 1024
        got, path = cache.fetch(lambda: open_stream(server.url, stall_timeout=1), source=server.url)
    assert got == sha and expected_tree(path) == expected_tree(root)


# --------------------------------------------------------------------------- lock holders


def test_a_hung_lock_holder_is_passed_after_the_stall_timeout(archive, tmp_path):
    data, sha, files = archive
    cache_dir = tmp_path / "cache"
    with FaultyServer(data) as server:
        server.rate = 1 * MB  # ~3 s: time to stop it part-way
        holder = start_resolver("sha", cache_dir, server.url, sha, len(data))
        wait_for(lambda: leftover_bytes(ModelCache(cache_dir)) > 0, "the holder to start writing")
        os.kill(holder.pid, signal.SIGSTOP)
        try:
            waiter = start_resolver("sha", cache_dir, server.url, sha, len(data), MODEL_REGISTRY_STALL_TIMEOUT="2")
            got = result_of(waiter)
        finally:
            os.kill(holder.pid, signal.SIGCONT)
        held = result_of(holder)
    assert got["files"] == files, got
    assert held["files"] == files and held["path"] == got["path"]  # the holder, resumed, found the entry done
    cache = ModelCache(cache_dir)
    assert cache.verify() == {} and cache.incomplete() == [] and leftover_bytes(cache) == 0


def test_waiting_for_a_working_holder_is_bounded_and_names_it(archive, tmp_path, monkeypatch):
    data, sha, _ = archive
    cache_dir = tmp_path / "cache"
    with FaultyServer(data) as server:
        server.rate = 1 * MB
        holder = start_resolver("sha", cache_dir, server.url, sha, len(data))
        wait_for(lambda: leftover_bytes(ModelCache(cache_dir)) > 0, "the holder to start writing")
        with pytest.raises(CacheBusy, match=f"process {holder.pid} ") as info:
            ModelCache(cache_dir, lock_timeout=1).fetch(lambda: open_stream(server.url), source=server.url,
                                                        sha256=sha, size=len(data))
        assert "MODEL_REGISTRY_LOCK_TIMEOUT" in str(info.value)
        assert "files" in result_of(holder)


def test_waiters_leave_as_soon_as_the_entry_is_complete_without_queueing_for_the_lock(archive, tmp_path):
    """A holder still holding its lock after installing (releasing, exiting) keeps no waiter: the entry is enough.

    The holder never lets go while the waiter runs, and both timeouts are a minute: a waiter that
    waited for the lock would end in CacheBusy, or pass the holder and download a second time.
    """
    data, sha, files = archive
    holder = ModelCache(tmp_path / "cache", stall_timeout=60, lock_timeout=60)
    waiter = ModelCache(tmp_path / "cache", stall_timeout=60, lock_timeout=60)
    lock_file = tmp_path / "cache" / "locks" / f"{sha}.lock"
    holding, let_go = threading.Event(), threading.Event()
    unseen: list[AssertionError] = []

    def hold_fetch_and_keep_holding():
        with holder.lock(sha, source="holder"):
            holding.set()
            try:
                wait_for(lambda: blocked_on(lock_file) == 1, "the waiter to wait for the lock")
            except AssertionError as error:  # fetch anyway, so the waiter ends; the test fails below
                unseen.append(error)
            holder._fetch_unlocked(lambda: open_stream(server.url), source=server.url, sha256=sha,
                                   size=len(data), progress=None)
            let_go.wait(120)

    with FaultyServer(data) as server:
        thread = threading.Thread(target=hold_fetch_and_keep_holding)
        thread.start()
        try:
            assert holding.wait(10)
            _, path = waiter.fetch(lambda: open_stream(server.url), source=server.url, sha256=sha, size=len(data))
            assert not let_go.is_set()  # the lock is still held: the waiter left on the entry, not on the lock
        finally:
            let_go.set()
            thread.join()
        assert not unseen, unseen
        assert server.requests == 1
    assert expected_tree(path) == files

def test_waiters_are_woken_by_the_release_itself_and_leave_no_shared_lock_behind(archive, tmp_path, monkeypatch):
    """Waiters sleep until the holder lets go, rather than looking again and again (``_ReleaseWatch``).

    Here they never look again on their own (``LOOK_AGAIN_S`` is an hour), so only the release can
    wake them. The holder lets go without fetching: one waiter takes the lock and downloads, the
    others are woken again by its release and find the entry. Afterwards nothing holds the lock
    file, not even the shared locks the watches took for a moment.
    """
    import fcntl

    from registry.storage import cache as cache_module

    monkeypatch.setattr(cache_module, "LOOK_AGAIN_S", 3600.0)
    data, sha, files = archive
    cache_dir = tmp_path / "cache"
    holder = ModelCache(cache_dir, stall_timeout=600, lock_timeout=600)
    holding, let_go = threading.Event(), threading.Event()
    outcomes: list = []

    def hold_without_fetching():
        with holder.lock(sha, source="holder"):
            holding.set()
            let_go.wait(60)

    def wait_then_fetch():
        try:
            outcomes.append(ModelCache(cache_dir, stall_timeout=600, lock_timeout=600).fetch(
                lambda: open_stream(server.url), source=server.url, sha256=sha, size=len(data))[1])
        except Exception as error:  # noqa: BLE001  (reported below, with the others)
            outcomes.append(error)

    with FaultyServer(data) as server:
        holding_thread = threading.Thread(target=hold_without_fetching)
        holding_thread.start()
        assert holding.wait(10)
        waiters = [threading.Thread(target=wait_then_fetch, daemon=True) for _ in range(4)]
        for waiter in waiters:
            waiter.start()
        lock_file = cache_dir / "locks" / f"{sha}.lock"
        try:
            wait_for(lambda: blocked_on(lock_file) == 4, "all four waiters to wait for the lock")
        finally:
            let_go.set()
        for waiter in waiters:
            waiter.join(60)
        holding_thread.join(10)
        assert not any(waiter.is_alive() for waiter in waiters), "a waiter was not woken by the release"
        assert server.requests == 1
    assert len(outcomes) == 4 and all(isinstance(path, Path) for path in outcomes), outcomes
    assert len(set(outcomes)) == 1 and expected_tree(outcomes[0]) == files
    lock_file = next((cache_dir / "locks").glob(f"{sha}.lock"))
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError while anything holds it
    finally:
        os.close(fd)


def test_the_lock_of_a_killed_holder_is_taken_over_at_once(archive, tmp_path, monkeypatch):
    # A 60 s stall timeout and a 5 s lock timeout: the waiter can only succeed because the kernel drops a
    # dead process's lock, well within 5 s.
    data, sha, files = archive
    cache_dir = tmp_path / "cache"
    with FaultyServer(data) as server:
        server.rate = 1 * MB
        holder = start_resolver("sha", cache_dir, server.url, sha, len(data))
        wait_for(lambda: leftover_bytes(ModelCache(cache_dir)) > 0, "the holder to start writing")
        outcome: dict = {}

        def wait_then_fetch():
            try:
                outcome["path"] = ModelCache(cache_dir, stall_timeout=60, lock_timeout=5).fetch(
                    lambda: open_stream(server.url, stall_timeout=60), source=server.url, sha256=sha,
                    size=len(data))[1]
            except RegistryError as error:
                outcome["error"] = error

        waiter = threading.Thread(target=wait_then_fetch)
        waiter.start()
        lock_file = cache_dir / "locks" / f"{sha}.lock"
        try:
            wait_for(lambda: blocked_on(lock_file) == 1, "the waiter to wait for the holder's lock")
        finally:
            holder.kill()
        holder.wait()
        server.rate = None
        waiter.join(60)
    assert "error" not in outcome, outcome
    assert expected_tree(outcome["path"]) == files
    assert leftover_bytes(ModelCache(cache_dir)) == 0  # the killed holder's half download went too


# --------------------------------------------------------------------------- leftovers


LEAVE_WORK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from registry.storage.cache import ModelCache
    work = ModelCache(Path(sys.argv[1])).new_workdir()
    (work / "half-written").write_bytes(b"x" * 100000)
    print(work, flush=True)
    if sys.argv[2] == "live":
        time.sleep(60)
    if sys.argv[2] == "dead-mid-discard":  # killed between removing its directory and its lock file
        import shutil
        shutil.rmtree(work)
""")


def test_the_next_fetch_removes_dead_processes_work_but_not_live_ones(archive, tmp_path):
    data, sha, _ = archive
    cache_dir = tmp_path / "cache"
    dead = subprocess.run([sys.executable, "-c", LEAVE_WORK, str(cache_dir), "dead"], capture_output=True,
                          text=True, env=child_env(), check=True).stdout.strip()
    live_process = subprocess.Popen([sys.executable, "-c", LEAVE_WORK, str(cache_dir), "live"],
                                    stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        live = live_process.stdout.readline().strip()
        assert Path(dead).is_dir() and Path(live).is_dir()
        with FaultyServer(data) as server:
            ModelCache(cache_dir).fetch(lambda: open_stream(server.url), source=server.url, sha256=sha)
        assert not Path(dead).exists()
        assert (Path(live) / "half-written").stat().st_size == 100000
    finally:
        live_process.kill()
        live_process.wait()
    ModelCache(cache_dir).clean_leftovers()
    assert leftover_bytes(ModelCache(cache_dir)) == 0 and list(ModelCache(cache_dir).tmp.iterdir()) == []


def test_a_lock_file_whose_work_directory_is_gone_is_swept_by_the_next_miss(archive, tmp_path):
    data, sha, _ = archive
    cache_dir = tmp_path / "cache"
    work = Path(subprocess.run([sys.executable, "-c", LEAVE_WORK, str(cache_dir), "dead-mid-discard"],
                               capture_output=True, text=True, env=child_env(), check=True).stdout.strip())
    lock_only = work.with_name(work.name + ".lock")
    assert lock_only.is_file() and not work.exists()
    cache = ModelCache(cache_dir)
    with FaultyServer(data) as server:
        cache.fetch(lambda: open_stream(server.url), source=server.url, sha256=sha)
    assert not lock_only.exists()
    assert cache.incomplete() == [] and list(cache.tmp.iterdir()) == []


def test_a_legacy_directory_without_record_is_replaced_and_a_complete_entry_never_is(archive, tmp_path):
    data, sha, files = archive
    cache = ModelCache(tmp_path / "cache")
    stale = cache.models / sha
    (stale / "variables").mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"half")
    with FaultyServer(data) as server:
        _, path = cache.fetch(lambda: open_stream(server.url), source=server.url, sha256=sha)
        assert expected_tree(path) == files
        inode = path.stat().st_ino
        # A second install of the same content (a URL fetch, its hash unknown) leaves the entry alone.
        Resolver(catalog=None, store=None, cache=cache).resolve(parse(server.url))
    assert path.stat().st_ino == inode and expected_tree(path) == files
    assert cache.incomplete() == [] and leftover_bytes(cache) == 0


# --------------------------------------------------------------------------- things that are not files


def _special(root: Path, kind: str) -> Path:
    target = root / "variables" / kind
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(target))
        sock.close()
    else:
        target.symlink_to(root / "nowhere")
    return target


@pytest.mark.parametrize("kind", ["fifo", "socket", "dangling-symlink"])
def test_a_path_handle_holding_a_non_regular_file_is_a_typed_error(tmp_path, kind):
    root = make_model(tmp_path / "model", size=1000)
    special = _special(root, kind)
    cache = ModelCache(tmp_path / "cache")
    with pytest.raises(NotARegularFile, match=special.name) as info:
        Resolver(catalog=None, store=None, cache=cache).resolve(parse(str(root)))
    assert "remove" in str(info.value)  # says what to do
    assert isinstance(info.value, RegistryError)


@pytest.mark.parametrize("kind", ["fifo", "socket", "dangling-symlink"])
def test_packing_a_directory_holding_a_non_regular_file_is_a_typed_error_not_a_hang(tmp_path, kind):
    root = make_model(tmp_path / "model", size=1000)
    _special(root, kind)
    with open(tmp_path / "out.tar.gz", "wb") as out, pytest.raises(NotARegularFile):
        pack_directory(root, out)


def test_a_fifo_named_like_an_archive_is_a_typed_error(tmp_path):
    fifo = tmp_path / "model.tar.gz"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFile, match="FIFO"):
        Resolver(catalog=None, store=None, cache=ModelCache(tmp_path / "cache")).resolve(parse(str(fifo)))


def test_publishing_a_directory_holding_a_fifo_is_refused_before_anything_is_written(registry_env, reference_dir,
                                                                                      tmp_path):
    import shutil

    import registry

    model = tmp_path / "model"
    shutil.copytree(reference_dir / "tf2_image_feature_vector", model)
    os.mkfifo(model / "variables" / "pipe")
    with pytest.raises(NotARegularFile, match="FIFO"):
        registry.publish(model, name="pub/fifo")
    assert registry.list_models() == []
    assert not any(p.is_file() for p in registry_env.storage_dir.rglob("*"))
