"""The catalog server under 32 concurrent clients, against nginx serving the same archives; and client mode's cost.

Three measurements, side by side in one run, printed as ratios:

1. Model downloads: ``GET /{publisher}/{model}/{version}?tf-hub-format=compressed``
   from ``model-registry serve`` against nginx (Debian's package, installed by
   this script when missing) serving the very same ``.tar.gz`` files from disk,
   both with as many worker processes as the machine has cores. Requests/s and
   p50/p99 latency from ``wrk`` (Debian's package) with 32 connections.
2. Catalog reads: ``GET /api/v1/models/{p}/{m}/versions/{n}`` (a version's JSON
   with signatures and its format's matrix row), against nginx serving that
   same JSON as a static file — the ceiling for a response of that size.
3. Client mode: a fresh process loading a cached pinned handle through the
   server (``MODEL_REGISTRY_URL``) against the same load on the local SQLite
   catalog, medians of interleaved pairs.
4. Download counting: the same download ``wrk`` run against a second server over the
   same catalog started with ``MODEL_REGISTRY_COUNT_DOWNLOADS=0`` (throughput with and
   without counting, in one run), and an exact check: ``--connections`` client
   threads each download version 2 ``--exact`` times to the end, and after the
   servers stop, the catalog's count for version 2 must equal those completed
   downloads (wrk's own runs cut requests off at their end, so only this phase is
   compared exactly).

    python bench/bench_server.py [--duration 10] [--connections 32] [--size-mb 20] [--pairs 5]

Machine load skews absolute numbers; the ratios come from runs interleaved in
one session. Run it on a quiet machine for numbers to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_load import generated_model  # noqa: E402  (the same generated model as the load benchmark)
CLI = str(Path(sys.executable).with_name("model-registry"))


def ensure_debian_packages(*packages: str) -> None:
    missing = [p for p in packages if shutil.which(p) is None and not Path(f"/usr/sbin/{p}").exists()]
    if missing:
        print(f"installing {' '.join(missing)} from Debian's packages ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


def wrk(url: str, *, duration: int, connections: int) -> dict:
    """Requests/s and p50/p99 (ms) of ``url`` under ``connections`` concurrent keep-alive clients."""
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "errors": int(errors.group(1)) if errors else 0}


def nginx_config(root: Path, port: int, workdir: Path, workers: int) -> Path:
    config = workdir / "nginx.conf"
    config.write_text(f"""
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ application/json json; application/x-tar+gzip gz; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
""")
    return config


def fresh_load_seconds(env: dict, handle: str) -> float:
    code = f"import registry; registry.load({handle!r}, mode='tf2')"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def exact_downloads(url: str, *, clients: int, each: int) -> int:
    """``clients`` threads each download ``url`` ``each`` times to its last byte; how many completed."""
    from concurrent.futures import ThreadPoolExecutor

    def one_client(_: int) -> int:
        done = 0
        for _ in range(each):
            with urllib.request.urlopen(url, timeout=300) as response:
                while response.read(1 << 20):
                    pass
            done += 1
        return done

    with ThreadPoolExecutor(clients) as pool:
        return sum(pool.map(one_client, range(clients)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--size-mb", type=int, default=20, help="size of the downloaded model")
    parser.add_argument("--pairs", type=int, default=5, help="interleaved fresh-process pairs for client mode")
    parser.add_argument("--exact", type=int, default=4, help="complete downloads per client in the counting check")
    args = parser.parse_args()
    ensure_debian_packages("nginx", "wrk")
    workers = os.cpu_count() or 2

    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_REGISTRY_")}
        env.update(MODEL_REGISTRY_DATABASE_URL=f"sqlite:///{tmp / 'catalog.db'}",
                   MODEL_REGISTRY_STORAGE_URL=str(tmp / "artifacts"), MODEL_REGISTRY_CACHE_DIR=str(tmp / "cache"))
        subprocess.run([CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
        model = generated_model(tmp / "model", layers=args.size_mb)  # each 512 x 512 float32 layer is 1 MiB
        for _ in range(2):  # version 2 (the same bytes) is downloaded only by the exact counting check
            subprocess.run([CLI, "publish", str(model), "--name", "bench/model"], env=env, check=True,
                           capture_output=True)
        record = json.loads(subprocess.run([CLI, "show", "bench/model/1", "--json"], env=env, check=True,
                                           capture_output=True, text=True).stdout)
        artifact = Path(record["artifact_uri"])
        size_mb = artifact.stat().st_size / (1 << 20)

        port, nginx_port = free_port(), free_port()
        server = subprocess.Popen([CLI, "serve", "--port", str(port), "--workers", str(workers),
                                   "--log-level", "warning"], env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        uncounted_port = free_port()
        uncounted = subprocess.Popen([CLI, "serve", "--port", str(uncounted_port), "--workers", str(workers),
                                      "--log-level", "warning"], env={**env, "MODEL_REGISTRY_COUNT_DOWNLOADS": "0"},
                                     start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # nginx serves the same bytes at the same paths: the archive and the version's JSON
        site = tmp / "site"
        (site / "bench" / "model").mkdir(parents=True)
        os.link(artifact, site / "bench" / "model" / "1.tar.gz")
        try:
            wait_for(f"http://127.0.0.1:{port}/healthz")
            wait_for(f"http://127.0.0.1:{uncounted_port}/healthz")
            version_path = "/api/v1/models/bench/model/versions/1"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{version_path}") as response:
                (site / "version.json").write_bytes(response.read())
            # nginx's workers run as an unprivileged user: they must be able to read the site
            for path in [tmp, *tmp.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else path.stat().st_mode | 0o644)
            nginx = subprocess.Popen(["nginx", "-c", str(nginx_config(site, nginx_port, tmp, workers)), "-g",
                                      "daemon off;"], start_new_session=True)
            try:
                wait_for(f"http://127.0.0.1:{nginx_port}/version.json")
                rows = []
                for label, ours, theirs in [
                    (f"download {size_mb:.0f} MB archive", f"http://127.0.0.1:{port}/bench/model/1?tf-hub-format=compressed",
                     f"http://127.0.0.1:{nginx_port}/bench/model/1.tar.gz"),
                    ("catalog read (version JSON)", f"http://127.0.0.1:{port}{version_path}",
                     f"http://127.0.0.1:{nginx_port}/version.json"),
                ]:
                    a = wrk(ours, duration=args.duration, connections=args.connections)
                    b = wrk(theirs, duration=args.duration, connections=args.connections)
                    rows.append((label, a, b))
                download = "/bench/model/1?tf-hub-format=compressed"
                counting_rows = []
                for _ in range(2):  # interleaved: counted, not counted, counted, not counted
                    counting_rows.append((wrk(f"http://127.0.0.1:{port}{download}", duration=args.duration,
                                              connections=args.connections),
                                          wrk(f"http://127.0.0.1:{uncounted_port}{download}",
                                              duration=args.duration, connections=args.connections)))
                completed = exact_downloads(f"http://127.0.0.1:{port}/bench/model/2?tf-hub-format=compressed",
                                            clients=args.connections, each=args.exact)
            finally:
                nginx.send_signal(signal.SIGQUIT)
                nginx.wait(timeout=30)

            # client mode vs local catalog: a fresh process loading a cached pinned handle
            client_env = {k: v for k, v in env.items() if k != "MODEL_REGISTRY_DATABASE_URL"}
            client_env.update(MODEL_REGISTRY_URL=f"http://127.0.0.1:{port}", MODEL_REGISTRY_CACHE_DIR=str(tmp / "client-cache"),
                              MODEL_REGISTRY_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/nowhere")
            fresh_load_seconds(client_env, "bench/model/1")  # fills the client's cache
            fresh_load_seconds(env, "bench/model/1")
            client, local = [], []
            for i in range(args.pairs):
                order = [(client, client_env), (local, env)]
                for samples, e in (order if i % 2 == 0 else order[::-1]):
                    samples.append(fresh_load_seconds(e, "bench/model/1"))
        finally:
            for process in (server, uncounted):
                os.killpg(process.pid, signal.SIGTERM)  # each worker writes its counts as it stops
                process.wait(timeout=60)
        from registry.catalog.database import DatabaseCatalog

        counted = DatabaseCatalog(env["MODEL_REGISTRY_DATABASE_URL"]).download_counts(publisher="bench",
                                                                                      name="model")

    print(f"\n{args.connections} concurrent clients, {args.duration} s each, {workers} worker processes each side")
    print(f"{'':34} {'registry req/s':>15} {'nginx req/s':>12} {'ratio':>6}   {'p50 ms':>15} {'p99 ms':>17}")
    for label, a, b in rows:
        print(f"{label:34} {a['rps']:15.0f} {b['rps']:12.0f} {a['rps'] / b['rps']:6.2f}   "
              f"{a['p50']:7.1f} / {b['p50']:<7.1f} {a['p99']:8.1f} / {b['p99']:<8.1f}"
              + (f"  ({a['errors']} errors)" if a["errors"] else ""))
    print(f"\ndownload counting ({args.connections} clients, {args.duration} s runs, interleaved):")
    for n, (a, b) in enumerate(counting_rows, start=1):
        print(f"  run {n}: counted {a['rps']:.0f} req/s, not counted {b['rps']:.0f} req/s: ratio "
              f"{a['rps'] / b['rps']:.2f}")
    print(f"  exact check: {completed} downloads of version 2 completed, {counted.get(2, 0)} counted: "
          f"{'equal' if counted.get(2, 0) == completed else 'DIFFERENT'}")
    c, l = statistics.median(client), statistics.median(local)
    print(f"\nfresh-process load of a cached pinned handle, median of {args.pairs} interleaved pairs:")
    print(f"  client mode {c:.2f} s, local catalog {l:.2f} s: ratio {c / l:.2f}")


if __name__ == "__main__":
    main()
