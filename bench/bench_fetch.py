"""Cold fetch and publish of a ~500 MB TF2 SavedModel, side by side with the tools people would use instead.

Fetch contenders, each a fresh process with an empty destination or cache, all
downloading the same ``.tar.gz`` from one HTTP server on 127.0.0.1:

- ``curl -s URL | tar xz``                        the floor any downloader is judged against;
- ``hub.resolve(URL)``                            tensorflow_hub 0.16.1 in the hub client stack the tests use
                                                  (TF 2.21 + tf-keras, ``.hubclient/``, built once by
                                                  ``tests/refstack.py``);
- ``registry.resolve(URL)``                       a URL handle, fetched the tfhub way;
- ``registry.resolve("bench/big/1")``             a catalog handle whose artifact is served over HTTP;
- ``16 x registry.resolve("bench/big/1")``        sixteen processes started at once on one empty cache:
                                                  one download, the rest wait for it and share the entry;
- ``1 resolve + 15 x python [-S] -c pass``        the same crowd's floor on this machine: one resolve beside
                                                  fifteen interpreters that only start (with the
                                                  environment's site-packages, and without: ``-S``);
- from GCS (the storage emulator the tests use, through gcsfs): ``curl | tar xz`` of the object's
  media URL against ``registry.resolve`` of a catalog handle whose artifact is ``gs://…``.

Publish contenders: ``registry.publish(DIR)`` (inspect, pack, store, catalog,
cache) against ``tar czf`` of the directory followed by ``cp`` into a folder.

Rounds are interleaved (the order rotates each round) so a slow spell of the
machine hits every contender; medians of ``--rounds`` (>= 3) are reported with
each process tree's peak RSS (GNU time's ``%M``: the largest process of the
tree). The project's bytecode is compiled first, as installing a wheel does. Targets: fetch <= 0.8 x curl | tar (over HTTP and from GCS) and
>= 1.8 x faster than hub.resolve, peak RSS <= 200 MB; 16 processes <= 1.3 x one
resolve with one download; publish <= 1.0 x tar czf + cp, <= 300 MB.

    python bench/bench_fetch.py [--rounds 3] [--size-mb 500] [--crowd 16]
                                [--skip-hub] [--skip-publish] [--skip-gcs]
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench" / "fetch"  # ignored by git: the model, its archive, scratch space
PYTHON = sys.executable
TIME = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"  # GNU time: apt-get install -y time
MODEL_NAME = "bench/big"
RESOLVE_CATALOG_HANDLE = [PYTHON, "-c", f"import registry; print(registry.resolve('{MODEL_NAME}/1'))"]


# --------------------------------------------------------------------------------------------- set-up

def compile_project_bytecode(env: dict[str, str]) -> None:
    """Make every measured process start as an installed one would: from compiled bytecode (pip compiles a wheel's
    modules as it installs them). A checkout under ``PYTHONDONTWRITEBYTECODE=1`` (this machine sets it) would compile
    each changed module again in every process: crowds of start-ups, and fresh loads, would measure the compiler.
    Removes the variable from ``env`` (the children's) and compiles the project's packages now."""
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    *(str(ROOT / p) for p in ("registry", "adapters", "plugins"))],
                   check=True, stdout=subprocess.DEVNULL)


def make_model(directory: Path, size_mb: int) -> Path:
    """A TF2 SavedModel of float32 weights totalling about ``size_mb`` MB, made once in a child process."""
    if (directory / "saved_model.pb").is_file():
        return directory
    code = f"""
import tensorflow as tf
width, layers = 2048, max(1, round({size_mb} * 2**20 / (2048 * 2048 * 4)))
class Big(tf.Module):
    def __init__(self):
        super().__init__()
        self.kernels = [tf.Variable(tf.random.normal([width, width], stddev=0.02), name=f"kernel_{{i}}")
                        for i in range(layers)]
    @tf.function(input_signature=[tf.TensorSpec([None, width], tf.float32)])
    def __call__(self, x):
        for kernel in self.kernels:
            x = tf.nn.relu(tf.matmul(x, kernel))
        return x
tf.saved_model.save(Big(), {str(directory)!r})
"""
    subprocess.run([PYTHON, "-c", code], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return directory


def make_archive(model: Path, archive: Path) -> tuple[str, int]:
    from registry.storage.archive import pack_directory

    tmp = archive.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        sha, size = pack_directory(model, out)
    tmp.rename(archive)
    return sha, size


def hub_python() -> Path:
    """The unmodified tensorflow_hub 0.16.1 client's interpreter: the tests' hub client stack, not a stack of its own.

    One environment, built once by ``tests/refstack.py`` with ``tensorflow`` (not ``tensorflow-cpu``: tf-keras
    requires ``tensorflow``, and both would be two distributions over one ``tensorflow/`` directory).
    """
    from tests.refstack import ensure_hub_client  # ROOT is on sys.path (main)

    return ensure_hub_client()


class ArchiveServer:
    """Serves one file at every path (any query), with sendfile, on 127.0.0.1."""

    def __init__(self, archive: Path):
        served = archive
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests += 1
                size = served.stat().st_size
                self.send_response(200)
                self.send_header("Content-Type", "application/x-tar")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                with open(served, "rb") as fh:
                    try:
                        self.connection.sendfile(fh)
                    except (ConnectionError, TimeoutError):
                        pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def make_catalog(directory: Path, archive_url: str, sha: str, size: int) -> str:
    """An SQLite catalog with ``bench/big/1`` whose artifact is ``archive_url`` (storage over HTTP)."""
    url = f"sqlite:///{directory / 'catalog.db'}"
    if (directory / "catalog.db").exists():
        (directory / "catalog.db").unlink()
    directory.mkdir(parents=True, exist_ok=True)
    from registry.catalog.database import DatabaseCatalog
    from registry.catalog.models import VersionCreate

    catalog = DatabaseCatalog(url)
    catalog.create_version(VersionCreate(
        publisher="bench", name="big", format="tf2_saved_model", artifact_uri=archive_url, sha256=sha, size=size,
        tag_sets=[[]], signatures=[]))
    catalog.close()
    with sqlite3.connect(directory / "catalog.db") as connection:  # what the catalog now says
        assert connection.execute("SELECT artifact_uri FROM model_version").fetchone()[0] == archive_url
    return url


def start_gcs(archive: Path, sha: str):
    """The GCS emulator the tests use, holding the archive at the registry's content address.

    Returns (emulator, media URL for curl, ``gs://`` URI for the catalog, variables for child processes).
    """
    from tests.services import GcsEmulator

    emulator = GcsEmulator().start()
    emulator.configure_fsspec()
    bucket = emulator.create_bucket("bench")
    import fsspec

    key = f"sha256/{sha[:2]}/{sha}.tar.gz"
    fsspec.filesystem("gs").put(str(archive), f"{bucket}/{key}")
    media = f"{emulator.endpoint}/download/storage/v1/b/{bucket}/o/{key.replace('/', '%2F')}?alt=media"
    return emulator, media, f"gs://{bucket}/{key}", emulator.environ()


# --------------------------------------------------------------------------------------------- running

def run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one fresh process tree.

    The peak comes from GNU time (``%M``: the largest process of the tree), not from this
    process's ``wait4``: Linux carries a forked child's pre-exec high-water mark (this whole
    Python process) into its ru_maxrss.
    """
    rss_file = WORK / "rss.txt"
    started = time.perf_counter()
    result = subprocess.run([TIME, "-f", "%M", "-o", str(rss_file), *command], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{command[:3]}... exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    return wall, int(rss_file.read_text().split()[-1]) / 1024


def run_crowd(commands: list[list[str]], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds until the last of ``commands``, started at once, exits, the largest peak RSS MB)."""
    n = len(commands)
    rss_dir = fresh(WORK / "crowd-rss")
    rss_files = [rss_dir / f"{i}.txt" for i in range(n)]
    started = time.perf_counter()
    processes = [subprocess.Popen([TIME, "-f", "%M", "-o", str(f), *command], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for f, command in zip(rss_files, commands)]
    errors = [p.communicate()[1].decode()[-2000:] for p in processes]  # stderr drained: none blocks on a pipe
    wall = time.perf_counter() - started
    failed = [error for p, error in zip(processes, errors) if p.returncode]
    if failed:
        raise RuntimeError(f"{len(failed)} of {n} processes exited non-zero; the first said: {failed[0]}")
    return wall, max(int(f.read_text().split()[-1]) for f in rss_files) / 1024


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--skip-hub", action="store_true", help="leave out hub.resolve (no venv to create)")
    parser.add_argument("--skip-publish", action="store_true")
    parser.add_argument("--skip-gcs", action="store_true", help="leave out the GCS emulator contenders")
    parser.add_argument("--crowd", type=int, default=16, help="processes resolving one handle at once (0: none)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    WORK.mkdir(parents=True, exist_ok=True)
    scratch = WORK / "scratch"

    model = make_model(WORK / f"model-{args.size_mb}mb", args.size_mb)
    archive = WORK / f"model-{args.size_mb}mb.tar.gz"
    if not archive.exists():
        make_archive(model, archive)
    from registry.storage.archive import file_digest

    digest = file_digest(archive)
    server = ArchiveServer(archive)
    model_url = f"{server.base}/models/big/1"
    catalog_url = make_catalog(WORK / "catalog", f"{server.base}/store/sha256/{digest['sha256']}.tar.gz",
                               digest["sha256"], digest["size"])
    if not args.skip_gcs:
        emulator, gcs_media_url, gcs_uri, gcs_env = start_gcs(archive, digest["sha256"])
        gcs_catalog_url = make_catalog(WORK / "catalog-gcs", gcs_uri, digest["sha256"], digest["size"])
    model_bytes = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
    print(f"model: {model_bytes / 1e6:.0f} MB in {model}; archive {digest['size'] / 1e6:.0f} MB; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_REGISTRY_", "TFHUB_"))}
    base_env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    compile_project_bytecode(base_env)
    registry_env = {**base_env, "PYTHONPATH": str(ROOT), "MODEL_REGISTRY_DATABASE_URL": catalog_url,
                    "MODEL_REGISTRY_STORAGE_URL": str(scratch / "storage")}

    def curl_tar():
        dest = fresh(scratch / "curl")
        return run(["bash", "-c", f"set -o pipefail; curl -sf '{model_url}?tf-hub-format=compressed' | "
                                  f"tar xz -C '{dest}'"], base_env)

    def hub_resolve(python=None if args.skip_hub else hub_python()):
        cache = fresh(scratch / "hub-cache")
        return run([str(python), "-c", f"import tensorflow_hub as hub; print(hub.resolve({model_url!r}))"],
                   {**base_env, "TFHUB_CACHE_DIR": str(cache)})

    def registry_url():
        cache = fresh(scratch / "registry-cache")
        return run([PYTHON, "-c", f"import registry; print(registry.resolve({model_url!r}))"],
                   {**registry_env, "MODEL_REGISTRY_CACHE_DIR": str(cache)})

    def registry_catalog():
        cache = fresh(scratch / "registry-cache")
        return run(RESOLVE_CATALOG_HANDLE,
                   {**registry_env, "MODEL_REGISTRY_CACHE_DIR": str(cache)})

    def registry_crowd():
        cache = fresh(scratch / "registry-cache")
        before = server.requests
        result = run_crowd([RESOLVE_CATALOG_HANDLE] * args.crowd,
                           {**registry_env, "MODEL_REGISTRY_CACHE_DIR": str(cache)})
        downloads.append(server.requests - before)
        return result

    def start_up_floor(interpreter: list[str]):
        """One resolve beside ``args.crowd - 1`` interpreters that do nothing at all: what the crowd would
        cost on this machine if its waiting processes cost only the start of an interpreter."""
        def floor():
            cache = fresh(scratch / "registry-cache")
            return run_crowd([RESOLVE_CATALOG_HANDLE] + [[PYTHON, *interpreter, "-c", "pass"]] * (args.crowd - 1),
                             {**registry_env, "MODEL_REGISTRY_CACHE_DIR": str(cache)})
        return floor

    def curl_tar_gcs():
        dest = fresh(scratch / "curl")
        return run(["bash", "-c", f"set -o pipefail; curl -sf '{gcs_media_url}' | tar xz -C '{dest}'"], base_env)

    def registry_catalog_gcs():
        cache = fresh(scratch / "registry-cache")
        return run(RESOLVE_CATALOG_HANDLE,
                   {**registry_env, **gcs_env, "MODEL_REGISTRY_DATABASE_URL": gcs_catalog_url,
                    "MODEL_REGISTRY_CACHE_DIR": str(cache)})

    downloads: list[int] = []

    def tar_czf_cp():
        out, store = fresh(scratch / "tar-out"), fresh(scratch / "tar-store")
        return run(["bash", "-c", f"tar czf '{out}/model.tar.gz' -C '{model}' . && cp '{out}/model.tar.gz' '{store}/'"],
                   base_env)

    def registry_publish():
        where = fresh(scratch / "publish")
        env = {**registry_env, "MODEL_REGISTRY_DATABASE_URL": f"sqlite:///{where / 'catalog.db'}",
               "MODEL_REGISTRY_STORAGE_URL": str(where / "storage"), "MODEL_REGISTRY_CACHE_DIR": str(where / "cache")}
        return run([PYTHON, "-c", f"import registry; registry.publish({str(model)!r}, name='bench/published')"], env)

    contenders = {"curl | tar xz": curl_tar, "registry.resolve(URL)": registry_url,
                  "registry.resolve(catalog handle)": registry_catalog}
    crowd = f"{args.crowd} x registry.resolve(catalog)"
    floors = {f"1 resolve + {args.crowd - 1} x python -c pass": start_up_floor([]),
              f"1 resolve + {args.crowd - 1} x python -S -c pass": start_up_floor(["-S"])}
    if args.crowd:
        contenders[crowd] = registry_crowd
        contenders.update(floors)
    if not args.skip_gcs:
        contenders["curl | tar xz (GCS)"] = curl_tar_gcs
        contenders["registry.resolve(catalog, GCS)"] = registry_catalog_gcs
    if not args.skip_hub:
        contenders["hub.resolve(URL)"] = hub_resolve
    if not args.skip_publish:
        contenders["tar czf + cp"] = tar_czf_cp
        contenders["registry.publish(dir)"] = registry_publish
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(args.rounds):
        order = names[round_ % len(names):] + names[: round_ % len(names)]
        for name in order:
            samples[name].append(contenders[name]())
            print(f"  round {round_ + 1} {name:34s} {samples[name][-1][0]:6.2f} s  {samples[name][-1][1]:6.0f} MB",
                  flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    if not args.skip_gcs:
        emulator.stop()

    wall = {name: statistics.median(s[0] for s in values) for name, values in samples.items()}
    rss = {name: max(s[1] for s in values) for name, values in samples.items()}
    print(f"\nmedians of {args.rounds} interleaved rounds (load average now {os.getloadavg()[0]:.2f}):")
    for name in names:
        print(f"  {name:34s} {wall[name]:6.2f} s   peak RSS {rss[name]:6.0f} MB")
    curl = wall["curl | tar xz"]
    print("\nratios:")
    for name in ("registry.resolve(URL)", "registry.resolve(catalog handle)"):
        line = f"  {name:34s} {wall[name] / curl:.2f} x curl | tar xz (target <= 0.80)"
        if "hub.resolve(URL)" in wall:
            line += f";  hub.resolve / it = {wall['hub.resolve(URL)'] / wall[name]:.2f} (target >= 1.8)"
        print(line + f";  peak RSS {rss[name]:.0f} MB (target <= 200)")
    if "registry.resolve(catalog, GCS)" in wall:
        name = "registry.resolve(catalog, GCS)"
        print(f"  {name:34s} {wall[name] / wall['curl | tar xz (GCS)']:.2f} x curl | tar xz from the same bucket"
              f" (target <= 0.80);  peak RSS {rss[name]:.0f} MB (target <= 200)")
    if crowd in wall:
        one = "registry.resolve(catalog handle)"
        per_round = ", ".join(f"{c[0] / o[0]:.2f}" for c, o in zip(samples[crowd], samples[one]))
        print(f"  {crowd:34s} {wall[crowd] / wall[one]:.2f} x one resolve"
              f" (target <= 1.30; round by round {per_round});  downloads per round {downloads} (target: 1 each);"
              f"  largest peak RSS {rss[crowd]:.0f} MB")
        for name in floors:  # the same crowd, its waiting processes doing nothing: the machine's floor
            print(f"  {name:34s} {wall[name] / wall[one]:.2f} x one resolve (the floor: interpreters that "
                  f"only start)")
    if "registry.publish(dir)" in wall:
        print(f"  {'registry.publish(dir)':34s} {wall['registry.publish(dir)'] / wall['tar czf + cp']:.2f} x tar czf + cp"
              f" (target <= 1.00);  peak RSS {rss['registry.publish(dir)']:.0f} MB (target <= 300)")


if __name__ == "__main__":
    main()
