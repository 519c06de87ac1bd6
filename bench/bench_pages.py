"""Web catalog page latency for a model with 1,000 versions: p50 and p99 per page, target under 100 ms.

Builds a throwaway SQLite catalog through ``Catalog.create_version`` (the
store's own write path, with small fake records: no TensorFlow, no archives),
one model of ``--versions`` versions with signatures, tasks, aliases, a few
deleted versions and parents, beside 200 other models for the index and
search. Then requests each page through the whole ASGI application (routing,
the read check, catalog reads, Jinja rendering) in this process, and prints
p50/p99 in milliseconds with the page size. Not a test: speed claims live here.

A page's p99 is where CPython's full (generation 2) garbage collections land, as in
``bench_search.py``: by default the application's start-up heap is taken out of the
collector's reach the way ``model-registry serve`` does it in each worker
(``registry.server.app.settle_start_up_heap``), and the table counts the samples
that included a full collection (``--no-gc-freeze`` times an application that did not).

    python bench/bench_pages.py [--versions 1000] [--repeats 50] [--no-gc-freeze]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 100.0


def fake_signatures(fmt: str, dim: int):
    from registry.adapter import SignatureInfo, TensorInfo

    images = {"images": TensorInfo("float32", (None, 224, 224, 3))}
    features = {"default": TensorInfo("float32", (None, dim))}
    if fmt == "tf1_hub":
        return [SignatureInfo("default", images, features), SignatureInfo("image_feature_vector", images, features),
                SignatureInfo("default", images, features, tags=frozenset({"train"}))]
    return [SignatureInfo("__call__", images, features),
            SignatureInfo("serving_default", images, {"output_0": TensorInfo("float32", (None, dim))})]


def fake_tasks(fmt: str, dim: int) -> list[dict]:
    signature = "image_feature_vector" if fmt == "tf1_hub" else "__call__"
    evidence = {"signature": signature, "output_dim": dim, "image_size": [224, 224], "image_size_from": "input shape"}
    return [{"task": "image_feature_vector", "signature": signature, "output_dim": dim, "image_height": 224,
             "image_width": 224, "evidence": evidence}]


def build_catalog(url: str, n_versions: int) -> None:
    from registry.catalog.store import Catalog

    catalog = Catalog(url)
    for i in range(200):
        fmt = "tf1_hub" if i % 2 else "tf2_saved_model"
        add(catalog, f"pub{i % 10}", f"other-{i:03d}", fmt, 1024, f"model {i}: image features", None)
    for number in range(1, n_versions + 1):
        fmt = "tf1_hub" if number % 3 == 0 else "tf2_saved_model"
        # Every tenth version is fine-tuned from the one before: lineage and children have something to show.
        parent = f"vision/big/{number - 1}" if number % 10 == 0 else None
        add(catalog, "vision", "big", fmt, 512 + number % 7 * 128, f"version {number} of a busy model", parent)
    for alias, number in (("prod", n_versions - 5), ("staging", n_versions - 1), ("v1", 1)):
        catalog.set_alias(publisher="vision", name="big", alias=alias, version=number)
    for number in range(7, n_versions, 97):
        catalog.delete_version(publisher="vision", name="big", version=number)
    catalog.close()


def add(catalog, publisher: str, name: str, fmt: str, dim: int, description: str, parent: str | None) -> None:
    from registry.catalog.models import VersionCreate

    digest = os.urandom(32).hex()
    catalog.create_version(VersionCreate(
        publisher=publisher, name=name, format=fmt, artifact_uri=f"file:///artifacts/{digest}", sha256=digest,
        size=1 << 24, tag_sets=[[], ["train"]] if fmt == "tf1_hub" else [[]], signatures=fake_signatures(fmt, dim),
        description=description, parent=parent, tasks=fake_tasks(fmt, dim)))


def timed(fn) -> float:
    begin = time.perf_counter()
    fn()
    return (time.perf_counter() - begin) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def start_up_heap(app, freeze: bool):
    """The server's start-up heap discipline (``settle_start_up_heap``), then a counter of full collections."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_search import FullCollections

    from registry.server.app import settle_start_up_heap
    from registry.server.heap import SettleHeap

    if freeze:
        settle_start_up_heap(app)
        app.add_middleware(SettleHeap)
    return FullCollections()


def report_collections(collections, frozen: bool) -> None:
    import gc

    pauses = collections.pauses
    print(f"full (generation 2) garbage collections while pages were timed: {len(pauses)}"
          + (f", each {percentile(pauses, 50) * 1e3:.1f} ms (median), {max(pauses) * 1e3:.1f} ms at most" if pauses
             else "")
          + f"; {len(gc.get_objects()):,} objects tracked"
          + ("; start-up heap frozen (gc.freeze(), as each server worker does)" if frozen else "; nothing frozen")
          + "; 'p99 w/o': the p99 of the samples without a full collection")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                        help="time without the server's gc.freeze() after start-up")
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    from registry.api import Registry
    from registry.server.app import create_app
    from registry.server.settings import ServerSettings

    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'catalog.db'}"
        started = time.perf_counter()
        build_catalog(url, args.versions)
        print(f"catalog: model vision/big with {args.versions} versions, 200 other models "
              f"(built in {time.perf_counter() - started:.1f} s)")
        registry = Registry(database_url=url, storage_url=str(Path(tmp) / "artifacts"), cache_dir=Path(tmp) / "cache")
        app = create_app(registry, settings=ServerSettings())
        middle = args.versions // 2
        pages = [
            ("model page (newest)", "/vision/big"),
            (f"version page (/{middle})", f"/vision/big/{middle}"),
            ("alias page (@prod)", "/vision/big@prod"),
            ("index", "/"),
            ("index, searched", "/?q=image&task=image_feature_vector&format=tf1_hub"),
            ("compare", f"/compare?a=vision/big/{middle}&b=vision/big"),
        ]
        worst = 0.0
        collections = start_up_heap(app, args.gc_freeze)  # what ``model-registry serve`` does in each worker
        with TestClient(app) as client:
            for _, path in pages:
                for _ in range(3):  # warm: templates compiled, connections open
                    client.get(path)
            collections.pauses.clear()
            print(f"{'page':28} {'p50 ms':>8} {'p99 ms':>8} {'KB':>7} {'full GC':>8} {'p99 w/o':>8}")
            for label, path in pages:
                times, collected, size = [], [], 0
                for _ in range(args.repeats):
                    before = len(collections.pauses)
                    begin = time.perf_counter()
                    response = client.get(path, headers={"accept": "text/html"})
                    times.append((time.perf_counter() - begin) * 1000)
                    collected.append(len(collections.pauses) > before)
                    if response.status_code != 200:
                        raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
                    size = len(response.content)
                p50, p99 = statistics.median(times), percentile(times, 99)
                clean = [t for t, hit in zip(times, collected) if not hit]
                worst = max(worst, p99)
                print(f"{label:28} {p50:8.1f} {p99:8.1f} {size / 1024:7.0f} {sum(collected):8d} "
                      f"{percentile(clean, 99) if clean else float('nan'):8.1f}")
        verdict = "under" if worst < TARGET_MS else "OVER"
        print(f"worst p99 {worst:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
        report_collections(collections, args.gc_freeze)
        print("the model page's catalog reads, p50 ms:")
        handle = f"vision/big/{middle}"
        for label, read in (("get_version", lambda: registry.get_version(handle, include_deleted=True)),
                            ("version_summaries (all, deleted too)",
                             lambda: registry.version_summaries("vision/big", include_deleted=True)),
                            ("get_model", lambda: registry.catalog.get_model(publisher="vision", name="big")),
                            ("lineage", lambda: registry.lineage(handle)),
                            ("children", lambda: registry.children(handle))):
            times = [timed(read) for _ in range(max(5, args.repeats // 10))]
            print(f"  {label:32} {statistics.median(times):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
