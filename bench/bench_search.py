"""Search latency on a catalog of 100,000 versions: indexed ``version_task`` columns against a JSON scan.

Builds a throwaway SQLite catalog (schema from the Alembic migrations), fills
it by bulk insert through SQLAlchemy Core — 100,000 versions of 20,000 models
by 50 publishers, both formats, with signatures and the task rows the
publish-time check would have recorded — then times ``search_catalog`` (SQL
and building the returned records) for several queries, p50 and p99. The
naive reference answers one of the queries the way a catalog without task
columns would: read every live version's signatures (JSON), run the
conformance check in Python, keep the newest per model. The ratio is printed.

    python bench/bench_search.py [--versions 100000] [--repeats 200] [--naive-repeats 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMAGE_SIZES = [(224, 224), (299, 299), (192, 192), (160, 160), (128, 128), (96, 96), (331, 331), (32, 32)]
FEATURE_DIMS = [512, 768, 1024, 1280, 1536, 2048]


def tensor(dtype, shape):
    return {"dtype": dtype, "shape": list(shape), "kind": "dense"}


def make_version(rng: random.Random, version_id: int) -> tuple[dict, list[dict], list[dict]]:
    """(model_version row, signature rows, version_task rows) of one synthetic version."""
    kind = rng.choices(["ifv", "cls", "text", "other"], weights=[40, 10, 20, 30])[0]
    fmt = rng.choice(["tf1_hub", "tf2_saved_model"])
    size, dim = rng.choice(IMAGE_SIZES), rng.choice(FEATURE_DIMS)
    images = {"images": tensor("float32", (None, *size, 3))}
    if kind in ("ifv", "cls"):
        name = "image_feature_vector" if kind == "ifv" else "image_classification"
        # A TF2 classifier says so with a logits output; a plain [batch, N] call would count as a feature vector.
        key = "logits" if kind == "cls" and fmt == "tf2_saved_model" else "default"
        out = {key: tensor("float32", (None, dim if kind == "ifv" else 1001))}
        sig_name = name if fmt == "tf1_hub" else "__call__"
        signatures = [{"name": sig_name, "inputs": images, "outputs": out}]
        tasks = [{"task": name, "signature": sig_name, "output_dim": out[key]["shape"][1],
                  "image_height": size[0], "image_width": size[1]}]
    elif kind == "text":
        sig_name = "default" if fmt == "tf1_hub" else "__call__"
        signatures = [{"name": sig_name, "inputs": {"default": tensor("string", (None,))},
                       "outputs": {"default": tensor("float32", (None, dim))}}]
        tasks = [{"task": "text_embedding", "signature": sig_name, "output_dim": dim}]
    else:
        signatures = [{"name": "default" if fmt == "tf1_hub" else "__call__",
                       "inputs": {"default": tensor("float32", (None, 50))},
                       "outputs": {"default": tensor("float32", (None, 10))}}]
        tasks = []
    if fmt == "tf2_saved_model":
        signatures.append({"name": "serving_default", "inputs": signatures[0]["inputs"],
                           "outputs": {"output_0": next(iter(signatures[0]["outputs"].values()))}})
        tasks.append({"task": "reusable_saved_model", "signature": "__call__"})
    version = {"id": version_id, "format": fmt}
    return version, signatures, tasks


def build_catalog(url: str, n_versions: int, seed: int) -> None:
    from sqlalchemy import insert

    from registry.catalog.models import ModelVersion, RegisteredModel, Signature, VersionTask
    from registry.catalog.store import Catalog

    catalog = Catalog(url)  # a new SQLite file is created at the migrations' head
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    n_models = max(1, n_versions // 5)
    models, versions, signatures, tasks = [], [], [], []
    per_model: dict[int, int] = {}
    for model_id in range(1, n_models + 1):
        models.append({"id": model_id, "publisher": f"pub{model_id % 50:02d}", "name": f"model-{model_id:06d}",
                       "description": rng.choice(["image features", "text encoder", "classifier", "detector", ""]),
                       "created_at": now, "last_version": 0})
    for version_id in range(1, n_versions + 1):
        model_id = rng.randint(1, n_models) if version_id > n_models else version_id
        per_model[model_id] = per_model.get(model_id, 0) + 1
        version, sig_rows, task_rows = make_version(rng, version_id)
        versions.append({**version, "model_id": model_id, "version": per_model[model_id],
                         "artifact_uri": f"file:///artifacts/{version_id:064x}.tar.gz", "sha256": f"{version_id:064x}",
                         "size": 1 << 20, "tag_sets": [[]], "details": {}, "description": "", "created_at": now,
                         "parent_id": None, "deleted_at": now if rng.random() < 0.02 else None})
        signatures += [{"version_id": version_id, "tags": "", **row} for row in sig_rows]
        tasks += [{"version_id": version_id, "tags": "", "output_dim": None, "image_height": None,
                   "image_width": None, "evidence": {}, **row} for row in task_rows]
    for model in models:
        model["last_version"] = per_model.get(model["id"], 0)
    with catalog.engine.begin() as connection:
        for table, rows in ((RegisteredModel, models), (ModelVersion, versions), (Signature, signatures),
                            (VersionTask, tasks)):
            for start in range(0, len(rows), 20_000):
                connection.execute(insert(table.__table__), rows[start:start + 20_000])
        connection.exec_driver_sql("ANALYZE")
    catalog.close()


def timed(fn, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def naive_search(catalog, *, task: str, image_size: tuple[int, int]) -> list[str]:
    """Without task columns: scan every live version's JSON signatures and check them in Python."""
    from sqlmodel import Session, col, select

    from registry.adapter import SignatureInfo, TensorInfo
    from registry.catalog.models import ModelVersion, RegisteredModel, Signature
    from registry.plugins import make_plugin_manager
    from registry.tasks.conformance import DefinitionSet
    from registry.tasks.definitions import ModelFacts

    definition = DefinitionSet(make_plugin_manager(load_entry_points=False)).get(task)
    newest: dict[str, tuple[int, str]] = {}
    with Session(catalog.engine) as session:
        rows = session.exec(
            select(ModelVersion.id, ModelVersion.format, ModelVersion.version, RegisteredModel.publisher,
                   RegisteredModel.name, Signature.name, Signature.inputs, Signature.outputs)
            .join(RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id))
            .join(Signature, col(Signature.version_id) == col(ModelVersion.id))
            .where(col(ModelVersion.deleted_at).is_(None)).order_by(ModelVersion.id))
        by_version: dict[int, list] = {}
        meta = {}
        for vid, fmt, number, publisher, name, sig_name, inputs, outputs in rows:
            meta[vid] = (fmt, number, f"{publisher}/{name}")
            by_version.setdefault(vid, []).append(SignatureInfo(
                name=sig_name, inputs={k: TensorInfo.from_json(v) for k, v in inputs.items()},
                outputs={k: TensorInfo.from_json(v) for k, v in outputs.items()}))
    for vid, sigs in by_version.items():
        fmt, number, model = meta[vid]
        verdict = definition.check(ModelFacts(format=fmt, signatures=tuple(sigs)), claimed=False)
        if any(i.image_size == image_size for i in verdict.implementations):
            if number > newest.get(model, (0, ""))[0]:
                newest[model] = (number, f"{model}/{number}")
    return sorted(handle for _, handle in newest.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--naive-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from registry.catalog.store import Catalog
    from registry.catalog.search import search_catalog

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/catalog.db"
        started = time.perf_counter()
        build_catalog(url, args.versions, args.seed)
        print(f"built a catalog of {args.versions:,} versions in {time.perf_counter() - started:.1f} s")
        catalog = Catalog(url)
        queries = {
            "task": dict(task="image_feature_vector"),
            "task + image_size": dict(task="image_feature_vector", image_size=(224, 224)),
            "task + image_size + format": dict(task="image_feature_vector", image_size=(299, 299), format="tf1_hub"),
            "task + publisher": dict(task="text_embedding", publisher="pub07"),
            "task + output_dim": dict(task="text_embedding", output_dim=768),
            "task + text": dict(task="image_classification", text="detector"),
            "format only": dict(format="tf2_saved_model"),
        }
        print(f"\n{'query':<28}{'p50 ms':>10}{'p99 ms':>10}{'results':>9}   (limit 100, records built)")
        p50s = {}
        for label, criteria in queries.items():
            search_catalog(catalog.engine, **criteria)  # warm the page cache
            times, result = timed(lambda: search_catalog(catalog.engine, **criteria), args.repeats)
            p50s[label] = percentile(times, 50)
            print(f"{label:<28}{p50s[label] * 1e3:>10.2f}{percentile(times, 99) * 1e3:>10.2f}{len(result):>9}")

        # The same question, unlimited, against the naive scan: same answer, and how much slower.
        criteria = dict(task="image_feature_vector", image_size=(224, 224))
        indexed_times, indexed = timed(lambda: search_catalog(catalog.engine, limit=None, handles_only=True, **criteria), 20)
        records_times, _ = timed(lambda: search_catalog(catalog.engine, limit=None, **criteria), 3)
        naive_times, naive = timed(lambda: naive_search(catalog, **criteria), args.naive_repeats)
        assert sorted(indexed) == naive, "the indexed search and the naive scan disagree"
        ratio = statistics.median(naive_times) / statistics.median(indexed_times)
        print(f"\nall {len(naive):,} matches of task + image_size (no limit):")
        print(f"  indexed search, handles    p50 {statistics.median(indexed_times) * 1e3:9.1f} ms")
        print(f"  naive JSON scan, handles   p50 {statistics.median(naive_times) * 1e3:9.1f} ms")
        print(f"  naive / indexed                {ratio:9.1f}x")
        print(f"  (indexed search building all {len(naive):,} full records: "
              f"{statistics.median(records_times) * 1e3:.0f} ms)")
        with catalog.engine.connect() as connection:
            plan = connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT version_id FROM version_task WHERE task = 'image_feature_vector' "
                "AND image_height = 224 AND image_width = 224").fetchall()
        print("  plan of the task lookup: " + "; ".join(row[-1] for row in plan))
        catalog.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
