"""Downloads and catalog reads of ``model-registry serve`` against nginx and MLflow's tracking server, interleaved.

Every contender runs once per round, in an order rotated each round, and each row
is the median of its rounds (``wrk``, Debian's package, ``--connections``
keep-alive clients; as many worker processes each side as the machine has cores):

1. Downloads, for each ``--sizes`` archive (MB): ``GET /{p}/{m}/{n}?tf-hub-format=compressed``
   from the registry alone ("direct": the server sends the file itself); from the
   registry behind nginx configured as README.md says ("accel": the registry checks
   access, counts, and answers ``X-Accel-Redirect``, and nginx sends the file); and
   plain nginx serving the very same file from disk (the anchor); archives of 100 MB and
   more with at most 4 clients, in runs 3 x as long. Targets: accel >= 0.95 x
   nginx, direct >= 0.8 x nginx. ``--chunked`` adds the app under plain uvicorn, without
   ``registry.server.sendfile`` (Starlette's 1 MiB chunks through Python).
2. Catalog reads: a pinned version's JSON (``/api/v1/models/{p}/{m}/versions/{n}``)
   against MLflow's tracking server (its own venv, ``tests/refstack.py ensure_mlflow``,
   on an SQLite store holding the same number of versions) answering
   ``GET /api/2.0/mlflow/model-versions/get``; and the registry's read revalidated
   with ``If-None-Match`` (a ``304`` where the server gives pinned JSON an ETag).
   Targets: reads >= 3 x MLflow's req/s with p99 <= MLflow's; revalidated >= 10 x uncached.
3. Client mode: a fresh process loading a cached pinned handle through the
   server (``MODEL_REGISTRY_URL``) against the same load on the local SQLite
   catalog, medians of interleaved pairs.
4. Download counting: the same download against a second server over the same
   catalog started with ``MODEL_REGISTRY_COUNT_DOWNLOADS=0``, interleaved, and an
   exact check: ``--connections`` client threads each download version 2
   ``--exact`` times to the end, and after the servers stop, the catalog's count
   for version 2 must equal those completed downloads.

    python bench/bench_server.py [--duration 10] [--rounds 3] [--connections 32] [--sizes 18,500]
                                 [--versions 100] [--pairs 5] [--no-mlflow]

Every row also gives the servers' CPU milliseconds per request (all server
processes, read from /proc over the run, when only that contender is busy): what an
answer costs, which load from other programs skews far less than req/s. Machine load
skews absolute numbers; the ratios come from runs interleaved in one session. Run
it on a quiet machine for numbers to quote.
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

from tests.front_proxy import Nginx, readme_nginx_site  # noqa: E402  (the README's nginx configuration)
from tests.refstack import ensure_mlflow  # noqa: E402

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


def wrk(url: str, *, duration: int, connections: int, headers: dict | None = None) -> dict:
    """Requests/s and p50/p99 (ms) of ``url`` under ``connections`` concurrent keep-alive clients."""
    extra = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--timeout", "60s",
                          "--latency", *extra, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "errors": int(errors.group(1)) if errors else 0}


def median_run(runs: list[dict]) -> dict:
    """Per field, the median over rounds (errors: the sum)."""
    return {"rps": statistics.median(r["rps"] for r in runs), "p50": statistics.median(r["p50"] for r in runs),
            "p99": statistics.median(r["p99"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "cpu_ms": statistics.median(r["cpu_ms"] for r in runs), "rounds": len(runs)}


#: Archives from this size (MB) are downloaded by at most ``LARGE_CONNECTIONS`` clients, in runs 3 x as long.
LARGE_MB = 100
LARGE_CONNECTIONS = 4
#: Process groups of every server in the run (each started in a session of its own): their CPU time is sampled.
SERVER_GROUPS: list[int] = []


def servers_cpu_seconds() -> float:
    """User + system CPU seconds of every process in ``SERVER_GROUPS`` (from /proc; clock ticks)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in SERVER_GROUPS:  # pgrp; utime and stime follow at 11, 12
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measured(url: str, *, duration: int, connections: int, headers: dict | None = None) -> dict:
    """``wrk``, plus the servers' CPU milliseconds per request over the run: only the contender under test is
    busy then, so this is what its answers cost, whatever else loads the machine."""
    before = servers_cpu_seconds()
    run = wrk(url, duration=duration, connections=connections, headers=headers)
    requests = run["rps"] * duration
    run["cpu_ms"] = (servers_cpu_seconds() - before) * 1000 / requests if requests else float("nan")
    return run


def interleaved(contenders: dict[str, tuple[str, dict]], *, rounds: int, duration: int, connections: int) -> dict:
    """``{label: median run}``: every contender once per round, the order rotated each round."""
    labels = list(contenders)
    runs: dict[str, list[dict]] = {label: [] for label in labels}
    for n in range(rounds):
        order = labels[n % len(labels):] + labels[:n % len(labels)]
        for label in order:
            url, headers = contenders[label]
            runs[label].append(measured(url, duration=duration, connections=connections, headers=headers))
        print(f"  round {n + 1}/{rounds}: " + ", ".join(f"{label} {runs[label][-1]['rps']:.0f}/s"
                                                      for label in labels), flush=True)
    return {label: median_run(r) for label, r in runs.items()}


def static_site(root: Path, port: int) -> str:
    """Plain nginx serving files from ``root``: the anchor."""
    return f"""
server {{
    listen 127.0.0.1:{port};
    root {root};
    sendfile on;
    tcp_nopush on;
    types {{ application/json json; application/x-tar+gzip gz; }}
}}
"""


MLFLOW_POPULATE = r"""
import sys
from mlflow.tracking import MlflowClient

uri, count = sys.argv[1], int(sys.argv[2])
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
client.create_registered_model("bench-reads", description="the benchmark's model")
for n in range(count):
    client.create_model_version("bench-reads", source=f"file:///bench/artifacts/{n}", description=f"version {n + 1}",
                                tags={"task": "text_embedding", "format": "tf2_saved_model"})
print(client.get_model_version("bench-reads", str(count)).version)
"""


def start_mlflow(tmp: Path, port: int, workers: int, versions: int) -> subprocess.Popen:
    """MLflow's tracking server on an SQLite store holding ``versions`` versions of one registered model."""
    python = ensure_mlflow()
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MLFLOW_"))}
    done = subprocess.run([str(python), "-c", MLFLOW_POPULATE, uri, str(versions)], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0 or done.stdout.split()[-1:] != [str(versions)]:
        raise RuntimeError(f"populating MLflow's store failed:\n{done.stderr[-3000:]}")
    return subprocess.Popen([str(python), "-m", "mlflow", "server", "--backend-store-uri", uri,
                             "--default-artifact-root", str(tmp / "mlflow-artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(workers)],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "mlflow.log", "wb"))


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


def serve(env: dict, port: int, workers: int, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([CLI, "serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
                            env={**env, **extra}, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def publish_reads_model(env: dict, versions: int) -> None:
    """``bench/reads`` with ``versions`` versions of a small model (the catalog reads' subject), in one process."""
    code = ("import sys, registry\nfrom registry.demo import REFERENCE_DIR\n"
            "for _ in range(int(sys.argv[1])):\n"
            "    registry.publish(REFERENCE_DIR / 'tf2_text_embedding', name='bench/reads')\n")
    subprocess.run([sys.executable, "-c", code, str(versions)], env=env, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; rows are their medians")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sizes", default="18,500", help="archive sizes to download, MB (comma-separated)")
    parser.add_argument("--versions", type=int, default=100, help="versions of the model whose JSON is read")
    parser.add_argument("--pairs", type=int, default=5, help="interleaved fresh-process pairs for client mode")
    parser.add_argument("--exact", type=int, default=4, help="complete downloads per client in the counting check")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow's server out")
    parser.add_argument("--parts", default="downloads,reads,counting,client",
                        help="which measurements to run (comma-separated; all by default)")
    parser.add_argument("--chunked", action="store_true",
                        help="add a contender: the app under plain uvicorn, without registry.server.sendfile "
                             "(Starlette's 1 MiB chunks), to show what sendfile gains")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    ensure_debian_packages("nginx", "wrk")
    workers = os.cpu_count() or 2
    sizes = [int(size) for size in args.sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_REGISTRY_")}
        env.update(MODEL_REGISTRY_DATABASE_URL=f"sqlite:///{tmp / 'catalog.db'}",
                   MODEL_REGISTRY_STORAGE_URL=str(tmp / "artifacts"), MODEL_REGISTRY_CACHE_DIR=str(tmp / "cache"))
        subprocess.run([CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
        archives: dict[int, Path] = {}
        for size in sizes:  # each 512 x 512 float32 layer is 1 MiB, ~0.9 MB gzipped
            model = generated_model(tmp / f"model-{size}", layers=max(1, round(size * 1.1)))
            name = f"bench/model-{size}mb"
            for _ in range(2 if size == sizes[0] else 1):  # version 2 is downloaded only by the counting check
                subprocess.run([CLI, "publish", str(model), "--name", name], env=env, check=True, capture_output=True)
            shutil.rmtree(model)
            record = json.loads(subprocess.run([CLI, "show", f"{name}/1", "--json"], env=env, check=True,
                                               capture_output=True, text=True).stdout)
            archives[size] = Path(record["artifact_uri"])
        if "reads" in parts:
            publish_reads_model(env, args.versions)

        port, accel_port, uncounted_port = free_port(), free_port(), free_port()
        nginx_port, front_port, mlflow_port = free_port(), free_port(), free_port()
        servers = [serve(env, port, workers), serve(env, uncounted_port, workers, MODEL_REGISTRY_COUNT_DOWNLOADS="0"),
                   serve(env, accel_port, workers, MODEL_REGISTRY_ACCEL_REDIRECT="/internal-archives/")]
        chunked_port = free_port()
        if args.chunked:
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "registry.server.app:create_app", "--port",
                 str(chunked_port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
                env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        mlflow = None if args.no_mlflow or "reads" not in parts else start_mlflow(tmp, mlflow_port, workers,
                                                                                  args.versions)
        # plain nginx serves the same bytes (hard links) and the same version JSON from disk
        site = tmp / "site"
        site.mkdir()
        for size, artifact in archives.items():
            os.link(artifact, site / f"{size}.tar.gz")
        nginx = Nginx(tmp / "nginx", static_site(site, nginx_port) + readme_nginx_site(
            upstream=f"127.0.0.1:{accel_port}", listen=f"127.0.0.1:{front_port}", storage=tmp / "artifacts"),
            nginx_port, workers=workers, access_log=False)
        try:
            for p in (port, uncounted_port, accel_port, *([chunked_port] if args.chunked else [])):
                wait_for(f"http://127.0.0.1:{p}/healthz")
            nginx.start()
            assert nginx.process is not None
            SERVER_GROUPS.extend([*(server.pid for server in servers), nginx.process.pid,
                                  *([mlflow.pid] if mlflow else [])])
            if mlflow is not None:
                wait_for(f"http://127.0.0.1:{mlflow_port}/health")
            base, front, anchor = (f"http://127.0.0.1:{p}" for p in (port, front_port, nginx_port))
            download_rows = {}
            for size in sizes if "downloads" in parts else []:
                path = f"/bench/model-{size}mb/1?tf-hub-format=compressed"
                mb = archives[size].stat().st_size / 1e6
                print(f"downloads, {mb:.0f} MB archive:", flush=True)
                contenders = {"registry direct": (base + path, {}),
                              "registry + nginx (accel)": (front + path, {}),
                              "plain nginx": (f"{anchor}/{size}.tar.gz", {})}
                if args.chunked:
                    contenders["registry, 1 MiB chunks"] = (f"http://127.0.0.1:{chunked_port}{path}", {})
                for url, headers in contenders.values():  # warm-up: page cache, connections, first requests
                    wrk(url, duration=1, connections=2, headers=headers)
                # An archive of hundreds of MB takes seconds per request: fewer clients, longer runs, so that
                # each run completes enough requests to be timed.
                large = mb >= LARGE_MB
                download_rows[mb] = interleaved(
                    contenders, rounds=args.rounds, duration=args.duration * (3 if large else 1),
                    connections=min(args.connections, LARGE_CONNECTIONS) if large else args.connections)

            read_rows = {}
            if "reads" in parts:
                version_path = f"/api/v1/models/bench/reads/versions/{args.versions}"
                with urllib.request.urlopen(base + version_path) as response:
                    etag = response.headers.get("ETag")
                reads = {"registry version JSON": (base + version_path, {})}
                if etag:
                    reads["registry, If-None-Match"] = (base + version_path, {"If-None-Match": etag})
                if mlflow is not None:
                    reads["MLflow model-versions/get"] = (
                        f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow/model-versions/get?name=bench-reads"
                        f"&version={args.versions}", {})
                print("catalog reads:", flush=True)
                for url, headers in reads.values():  # warm-up: every worker's first requests, MLflow's lazy imports
                    wrk(url, duration=2, connections=args.connections, headers=headers)
                read_rows = interleaved(reads, rounds=args.rounds, duration=args.duration,
                                        connections=args.connections)

            download = f"/bench/model-{sizes[0]}mb/1?tf-hub-format=compressed"
            counting_rows, completed = [], None
            for _ in range(2 if "counting" in parts else 0):  # interleaved: counted, not, counted, not
                counting_rows.append((wrk(base + download, duration=args.duration, connections=args.connections),
                                      wrk(f"http://127.0.0.1:{uncounted_port}{download}", duration=args.duration,
                                          connections=args.connections)))
            if "counting" in parts:
                completed = exact_downloads(f"{base}/bench/model-{sizes[0]}mb/2?tf-hub-format=compressed",
                                            clients=args.connections, each=args.exact)
            nginx.stop()

            # client mode vs local catalog: a fresh process loading a cached pinned handle
            handle = f"bench/model-{sizes[0]}mb/1"
            client_env = {k: v for k, v in env.items() if k != "MODEL_REGISTRY_DATABASE_URL"}
            client_env.update(MODEL_REGISTRY_URL=base, MODEL_REGISTRY_CACHE_DIR=str(tmp / "client-cache"),
                              MODEL_REGISTRY_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/nowhere")
            client, local = [], []
            if "client" in parts:
                fresh_load_seconds(client_env, handle)  # fills the client's cache
                fresh_load_seconds(env, handle)
            for i in range(args.pairs if "client" in parts else 0):
                order = [(client, client_env), (local, env)]
                for samples, e in (order if i % 2 == 0 else order[::-1]):
                    samples.append(fresh_load_seconds(e, handle))
        finally:
            nginx.stop()
            for process in [*servers, *([mlflow] if mlflow else [])]:
                os.killpg(process.pid, signal.SIGTERM)  # each registry worker writes its counts as it stops
                process.wait(timeout=60)
        from registry.catalog.database import DatabaseCatalog

        counted = DatabaseCatalog(env["MODEL_REGISTRY_DATABASE_URL"]).download_counts(
            publisher="bench", name=f"model-{sizes[0]}mb")

    print(f"\n{args.connections} concurrent clients, {args.duration} s per run, medians of {args.rounds} interleaved "
          f"rounds, {workers} worker processes each side")
    head = f"{'':30} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'ratio':>7} {'server CPU ms/req':>18}"
    for mb, rows in download_rows.items():
        anchor_rps = rows["plain nginx"]["rps"]
        clients = min(args.connections, LARGE_CONNECTIONS) if mb >= LARGE_MB else args.connections
        print(f"\ndownloads, {mb:.0f} MB archive, {clients} clients (ratio: req/s against plain nginx)\n{head}")
        for label, r in rows.items():
            print(f"{label:30} {r['rps']:9.1f} {r['p50']:9.1f} {r['p99']:9.1f} {r['rps'] / anchor_rps:7.2f} "
                  f"{r['cpu_ms']:18.2f}" + (f"  ({r['errors']} errors)" if r["errors"] else ""))
    if read_rows:
        report_reads(read_rows, args.versions)
    if counting_rows:
        print(f"\ndownload counting ({args.connections} clients, {args.duration} s runs, interleaved):")
        for n, (a, b) in enumerate(counting_rows, start=1):
            print(f"  run {n}: counted {a['rps']:.0f} req/s, not counted {b['rps']:.0f} req/s: ratio "
                  f"{a['rps'] / b['rps']:.2f}")
        print(f"  exact check: {completed} downloads of version 2 completed, {counted.get(2, 0)} counted: "
              f"{'equal' if counted.get(2, 0) == completed else 'DIFFERENT'}")
    if client:
        c, loc = statistics.median(client), statistics.median(local)
        print(f"\nfresh-process load of a cached pinned handle, median of {args.pairs} interleaved pairs:")
        print(f"  client mode {c:.2f} s, local catalog {loc:.2f} s: ratio {c / loc:.2f}")


def report_reads(rows: dict, versions: int) -> None:
    head = f"{'':30} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'ratio':>7} {'server CPU ms/req':>18}"
    mlflow = rows.get("MLflow model-versions/get")
    print(f"\ncatalog reads, version {versions} of {versions} (ratio: req/s against "
          f"{'MLflow' if mlflow else 'the uncached read'})\n{head}")
    peer = (mlflow or rows["registry version JSON"])["rps"]
    for label, r in rows.items():
        ratio = f"{r['rps'] / peer:7.2f}" if peer else "      -"
        print(f"{label:30} {r['rps']:9.1f} {r['p50']:9.1f} {r['p99']:9.1f} {ratio} {r['cpu_ms']:18.2f}"
              + (f"  ({r['errors']} errors)" if r["errors"] else ""))
    uncached = rows["registry version JSON"]
    if mlflow:
        print(f"  registry / MLflow: {uncached['rps'] / mlflow['rps']:.2f} x req/s; p99 {uncached['p99']:.1f} ms "
              f"against {mlflow['p99']:.1f} ms")
    if "registry, If-None-Match" in rows:
        print(f"  revalidated / uncached: {rows['registry, If-None-Match']['rps'] / uncached['rps']:.2f} x req/s")
    else:
        print("  (no ETag on the version JSON: the If-None-Match row needs a server that sends one)")


if __name__ == "__main__":
    main()
