"""Web catalog page latency for a model with 1,000 versions: p50 and p99 per page, target under 100 ms.

Builds a throwaway SQLite catalog through ``Catalog.create_version`` (the
store's own write path, with small fake records: no TensorFlow, no archives),
one model of ``--versions`` versions with signatures, tasks, aliases, a few
deleted versions and parents, a 50 KB model card (``--card-kb``: headings,
prose, lists, a table, code, links; each version's a little different) and a
file list, beside 200 other models for the index and search. The card is
rendered once per card text and kept (``registry.cards.render``): the pages
below are timed as served again, and the first, uncached render of a card is
timed on its own. Then requests each page through the whole ASGI application (routing,
the read check, catalog reads, Jinja rendering) in this process, and prints
p50/p99 in milliseconds with the page size. Not a test: speed claims live here.

    python bench/bench_pages.py [--versions 1000] [--repeats 50]
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


def fake_card(kb: int, number: int) -> str:
    """A model card of about ``kb`` KB in Hugging Face's shape: front matter, then sections of Markdown."""
    head = (f"---\nlicense: apache-2.0\ntags: [image-feature-vector, mobilenet]\ndatasets: [imagenet-1k]\n"
            f"language: en\nbase_model: vision/base/1\n---\n# vision/big, version {number}\n\n")
    section = (
        "## Intended use\n\nFeature vectors of **224x224** images for transfer learning; see "
        "[the paper](https://arxiv.org/abs/1801.04381) and `registry.KerasLayer`.\n\n"
        "- trained on ImageNet-1k\n- input in [0, 1]\n- output: 1280 floats\n\n"
        "| split | top-1 | top-5 |\n|---|--:|--:|\n" + "".join(f"| s{i} | 0.{70 + i} | 0.{90 + i % 9} |\n"
                                                             for i in range(8)) +
        "\n```python\nimport registry\nlayer = registry.KerasLayer(\"vision/big/1\")\n```\n\n"
        "> Limitations: trained on photographs; drawings and medical images were not evaluated.\n\n")
    body = head
    while len(body) < kb * 1024:
        body += section
    return body


def fake_files(count: int = 24) -> list[dict]:
    return [{"path": "saved_model.pb", "size": 3_100_000}, {"path": "fingerprint.pb", "size": 56}] + [
        {"path": f"variables/variables.data-{i:05d}-of-{count:05d}", "size": 700_000} for i in range(count - 2)]


def build_catalog(url: str, n_versions: int, card_kb: int = 50) -> None:
    from registry.catalog.store import Catalog

    catalog = Catalog(url)
    for i in range(200):
        fmt = "tf1_hub" if i % 2 else "tf2_saved_model"
        add(catalog, f"pub{i % 10}", f"other-{i:03d}", fmt, 1024, f"model {i}: image features", None)
    for number in range(1, n_versions + 1):
        fmt = "tf1_hub" if number % 3 == 0 else "tf2_saved_model"
        # Every tenth version is fine-tuned from the one before: lineage and children have something to show.
        parent = f"vision/big/{number - 1}" if number % 10 == 0 else None
        add(catalog, "vision", "big", fmt, 512 + number % 7 * 128, f"version {number} of a busy model", parent,
            card=fake_card(card_kb, number) if card_kb else None)
    for alias, number in (("prod", n_versions - 5), ("staging", n_versions - 1), ("v1", 1)):
        catalog.set_alias(publisher="vision", name="big", alias=alias, version=number)
    for number in range(7, n_versions, 97):
        catalog.delete_version(publisher="vision", name="big", version=number)
    catalog.close()


def add(catalog, publisher: str, name: str, fmt: str, dim: int, description: str, parent: str | None,
        card: str | None = None) -> None:
    from registry.catalog.models import VersionCreate

    digest = os.urandom(32).hex()
    catalog.create_version(VersionCreate.checked(dict(
        publisher=publisher, name=name, format=fmt, artifact_uri=f"file:///artifacts/{digest}", sha256=digest,
        size=1 << 24, tag_sets=[[], ["train"]] if fmt == "tf1_hub" else [[]], signatures=fake_signatures(fmt, dim),
        description=description, parent=parent, tasks=fake_tasks(fmt, dim), card=card, files=fake_files(),
        file_count=24)))


def timed(fn) -> float:
    begin = time.perf_counter()
    fn()
    return (time.perf_counter() - begin) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--card-kb", type=int, default=50, help="size of each version's model card (0: none)")
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    from registry.api import Registry
    from registry.server.app import create_app
    from registry.server.settings import ServerSettings

    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'catalog.db'}"
        started = time.perf_counter()
        build_catalog(url, args.versions, args.card_kb)
        print(f"catalog: model vision/big with {args.versions} versions ({args.card_kb} KB card each), "
              f"200 other models "
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
            ("publisher page", "/vision"),
        ]
        worst = 0.0
        with TestClient(app) as client:
            print(f"{'page':28} {'p50 ms':>8} {'p99 ms':>8} {'KB':>7}")
            for label, path in pages:
                for _ in range(3):  # warm: templates compiled, connections open
                    client.get(path)
                times, size = [], 0
                for _ in range(args.repeats):
                    begin = time.perf_counter()
                    response = client.get(path, headers={"accept": "text/html"})
                    times.append((time.perf_counter() - begin) * 1000)
                    if response.status_code != 200:
                        raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
                    size = len(response.content)
                p50, p99 = statistics.median(times), percentile(times, 99)
                worst = max(worst, p99)
                print(f"{label:28} {p50:8.1f} {p99:8.1f} {size / 1024:7.0f}")
        if args.card_kb:
            from registry.cards.render import _render, render_card

            cards = [registry.get_version(f"vision/big/{n}", include_deleted=True).card or "" for n in range(1, 12)]
            _render.cache_clear()
            times = [timed(lambda text=text: render_card(text)) for text in cards]
            print(f"{'card render, first (uncached)':28} {statistics.median(times):8.1f} {max(times):8.1f} "
                  f"{len(cards[0]) / 1024:7.0f}  (median, max of {len(cards)}; the page adds this once per card)")
        verdict = "under" if worst < TARGET_MS else "OVER"
        print(f"worst p99 {worst:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
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
