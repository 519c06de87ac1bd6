"""Search latency on a catalog of 100,000 versions: indexed ``version_task`` columns against a JSON scan.

Builds a throwaway SQLite catalog (schema from the Alembic migrations), fills
it by bulk insert through SQLAlchemy Core — 100,000 versions of 20,000 models
by 50 publishers, both formats, with signatures and the task rows the
publish-time check would have recorded — then times ``search_catalog`` (SQL
and building the returned records) for several queries, p50 and p99. The
naive reference answers one of the queries the way a catalog without task
columns would: read every live version's signatures (JSON), run the
conformance check in Python, keep the newest per model. The ratio is printed.

It also times ``list_versions`` of a model with 100 versions (the catalog
holds one, ``pub00/hundred-versions``), and, side by side, MLflow's SQLAlchemy
model-registry store (SQLite) holding the same 100,000 versions: its
``search_model_versions`` by name for the list, and by tags (task, image size,
output dimension, format) for the searches — MLflow has no "newest matching
version per model", so its search rows are the nearest question it can answer.
MLflow runs in its own virtual environment, the one ``bench_server.py`` uses
(``tests/refstack.py::ensure_mlflow``, built on first use), never in the
project's; ``--no-mlflow`` skips it. The two sides are timed in interleaved
rounds (``--rounds``), p50 and p99 over all rounds' samples, and the ratio of
the two p99s (registry / MLflow: below 1, the registry is faster).

A p99 over a few hundred samples is where CPython's full (generation 2)
garbage collections land: building 100 records allocates enough that one in
every few dozen searches pays for a collection of the whole heap. The table
counts the registry samples that included one and gives the p99 of the others,
so a tail can be told apart from the query. By default everything alive after
start-up is moved out of the collector's reach (``gc.freeze()``) before timing,
as ``model-registry serve`` does in each worker (``settle_start_up_heap``);
``--no-gc-freeze`` measures a process that does not, such as a script calling
``registry.search``.

    python bench/bench_search.py [--versions 100000] [--repeats 200] [--rounds 4] [--naive-repeats 3] [--no-mlflow]
                                 [--no-gc-freeze]
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMAGE_SIZES = [(224, 224), (299, 299), (192, 192), (160, 160), (128, 128), (96, 96), (331, 331), (32, 32)]
FEATURE_DIMS = [512, 768, 1024, 1280, 1536, 2048]
#: The model ``list_versions`` is timed on, and its number of versions.
BIG_MODEL, BIG_MODEL_VERSIONS = ("pub00", "hundred-versions"), 100
#: MLflow's tag searches take up to seconds each: per round, an operation stops sampling after this long (>= 5 samples).
MLFLOW_SECONDS_PER_OPERATION = 10.0


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


def catalog_rows(n_versions: int, seed: int) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """(models, versions, signatures, tasks): ``n_versions`` versions, 100 of them of ``BIG_MODEL``.

    Standard library only: the MLflow side (another virtual environment) builds its store from the same rows.
    """
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    n_random = max(1, n_versions - BIG_MODEL_VERSIONS)
    n_models = max(1, n_random // 5)
    models, versions, signatures, tasks = [], [], [], []
    per_model: dict[int, int] = {}
    for model_id in range(1, n_models + 1):
        models.append({"id": model_id, "publisher": f"pub{model_id % 50:02d}", "name": f"model-{model_id:06d}",
                       "description": rng.choice(["image features", "text encoder", "classifier", "detector", ""]),
                       "created_at": now, "last_version": 0})
    big_id = n_models + 1
    models.append({"id": big_id, "publisher": BIG_MODEL[0], "name": BIG_MODEL[1], "description": "image features",
                   "created_at": now, "last_version": 0})
    for version_id in range(1, n_random + BIG_MODEL_VERSIONS + 1):
        big = version_id > n_random
        model_id = big_id if big else rng.randint(1, n_models) if version_id > n_models else version_id
        per_model[model_id] = per_model.get(model_id, 0) + 1
        version, sig_rows, task_rows = make_version(rng, version_id)
        deleted = not big and rng.random() < 0.02
        versions.append({**version, "model_id": model_id, "version": per_model[model_id],
                         "artifact_uri": f"file:///artifacts/{version_id:064x}.tar.gz", "sha256": f"{version_id:064x}",
                         "size": 1 << 20, "tag_sets": [[]], "details": {}, "description": "", "created_at": now,
                         # The big model's versions form a lineage chain, as fine-tuned versions do.
                         "parent_id": version_id - 1 if big and per_model[model_id] > 1 else None,
                         "deleted_at": now if deleted else None})
        signatures += [{"version_id": version_id, "tags": "", **row} for row in sig_rows]
        tasks += [{"version_id": version_id, "tags": "", "output_dim": None, "image_height": None,
                   "image_width": None, "evidence": {}, **row} for row in task_rows]
    for model in models:
        model["last_version"] = per_model.get(model["id"], 0)
    return models, versions, signatures, tasks


def build_catalog(url: str, n_versions: int, seed: int) -> None:
    from sqlalchemy import insert

    from registry.catalog.models import Alias, ModelVersion, RegisteredModel, Signature, VersionTask
    from registry.catalog.store import Catalog

    catalog = Catalog(url)  # a new SQLite file is created at the migrations' head
    models, versions, signatures, tasks = catalog_rows(n_versions, seed)
    # The list fields of a version (migration 0009) are never NULL: empty, as a version without a card has them.
    versions = [{"tags": [], "datasets": [], "language": [], "files": [], **row} for row in versions]
    big_id = models[-1]["id"]
    big_versions = [row["id"] for row in versions if row["model_id"] == big_id]
    now = models[-1]["created_at"]
    aliases = [{"model_id": big_id, "name": "prod", "version_id": big_versions[-10], "updated_at": now},
               {"model_id": big_id, "name": "staging", "version_id": big_versions[-1], "updated_at": now}]
    with catalog.engine.begin() as connection:
        for table, rows in ((RegisteredModel, models), (ModelVersion, versions), (Signature, signatures),
                            (VersionTask, tasks), (Alias, aliases)):
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


class FullCollections:
    """Counts CPython's full (generation 2) garbage collections and how long each took."""

    def __init__(self):
        self.pauses: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                self._started = time.perf_counter()
            else:
                self.pauses.append(time.perf_counter() - self._started)

    def timed(self, fn, repeats: int) -> tuple[list[float], list[bool], object]:
        """``timed``, plus whether each sample included a full collection."""
        times, collected, result = [], [], None
        for _ in range(repeats):
            before = len(self.pauses)
            (took,), result = timed(fn, 1)
            times.append(took)
            collected.append(len(self.pauses) > before)
        return times, collected, result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def naive_search(catalog, *, task: str, image_size: tuple[int, int]) -> list[str]:
    """Without task columns: scan every live version's JSON signatures and check them in Python."""
    from sqlmodel import Session, col, select

    from registry.adapter import SignatureInfo, TensorInfo
    from registry.catalog.models import ModelVersion, RegisteredModel, Signature
    from registry.plugin_manager import make_plugin_manager
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


#: label: (registry search criteria, the nearest MLflow ``search_model_versions`` filter, or None).
QUERIES = {
    "task": (dict(task="image_feature_vector"), "tags.task = 'image_feature_vector'"),
    "task + image_size": (dict(task="image_feature_vector", image_size=(224, 224)),
                          "tags.task = 'image_feature_vector' AND tags.image_size = '224x224'"),
    "task + image_size + format": (
        dict(task="image_feature_vector", image_size=(299, 299), format="tf1_hub"),
        "tags.task = 'image_feature_vector' AND tags.image_size = '299x299' AND tags.format = 'tf1_hub'"),
    "task + publisher": (dict(task="text_embedding", publisher="pub07"),
                         "tags.task = 'text_embedding' AND name LIKE 'pub07/%'"),
    "task + output_dim": (dict(task="text_embedding", output_dim=768),
                          "tags.task = 'text_embedding' AND tags.output_dim = '768'"),
    "task + text": (dict(task="image_classification", text="detector"), None),
    # Text alone: a model description 1 model in 5 has; a name 1 model in 200 has (the walk passes every model).
    "text": (dict(text="detector"), None),
    "text, rare (name)": (dict(text="model-0123"), "name ILIKE '%model-0123%'"),
    "format only": (dict(format="tf2_saved_model"), "tags.format = 'tf2_saved_model'"),
    "task, page 50 (after=)": (dict(task="image_feature_vector", after="pub49/model-010000"), None),
}
LIST_LABEL = f"list_versions ({BIG_MODEL_VERSIONS} versions)"


# --- MLflow, in its own virtual environment -----------------------------------------------------------------------

def mlflow_python() -> Path:
    """The MLflow stack's interpreter (built the first time; pinned by ``tests.refstack.MLFLOW_PINS``). Imported
    here, not at the top: this file also runs as the MLflow child, in a venv without the project's test tools."""
    from tests.refstack import ensure_mlflow

    return ensure_mlflow()


def run_mlflow(*args: str) -> dict:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONPATH": ""}
    result = subprocess.run([str(mlflow_python()), __file__, "--mlflow-child", *args], env=env, check=True,
                            stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def mlflow_child(argv: list[str]) -> int:
    """Runs inside the MLflow venv: ``build DB VERSIONS SEED`` or ``time DB REPEATS``; prints one JSON line."""
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    command, db = argv[0], argv[1]
    store = SqlAlchemyStore(f"sqlite:///{db}")
    if command == "build":
        from sqlalchemy import insert
        from mlflow.store.model_registry.dbmodels.models import (
            SqlModelVersion, SqlModelVersionTag, SqlRegisteredModel, SqlRegisteredModelAlias)

        started = time.perf_counter()
        models, versions, _, tasks = catalog_rows(int(argv[2]), int(argv[3]))
        names = {model["id"]: f"{model['publisher']}/{model['name']}" for model in models}
        first_task = {}
        for row in tasks:  # the version's own task (a TF2 model's reusable_saved_model row comes second)
            first_task.setdefault(row["version_id"], row)
        millis = 1_700_000_000_000
        rm_rows = [{"name": names[m["id"]], "creation_time": millis, "last_updated_time": millis,
                    "description": m["description"]} for m in models]
        mv_rows, tag_rows, number = [], [], {}
        for v in versions:
            name = names[v["model_id"]]
            number[v["id"]] = (name, v["version"])
            mv_rows.append({"name": name, "version": v["version"], "creation_time": millis + v["id"],
                            "last_updated_time": millis + v["id"], "description": v["description"], "user_id": None,
                            "current_stage": "Deleted_Internal" if v["deleted_at"] else "None",
                            "source": v["artifact_uri"], "storage_location": v["artifact_uri"], "run_id": None,
                            "run_link": None, "status": "READY", "status_message": None})
            tags = {"format": v["format"]}
            task = first_task.get(v["id"])
            if task is not None:
                tags["task"] = task["task"]
                if task["image_height"] is not None:
                    tags["image_size"] = f"{task['image_height']}x{task['image_width']}"
                if task["output_dim"] is not None:
                    tags["output_dim"] = str(task["output_dim"])
            tag_rows += [{"name": name, "version": v["version"], "key": key, "value": value}
                         for key, value in tags.items()]
        big = [v for v in versions if v["model_id"] == models[-1]["id"]]
        alias_rows = [{"name": names[models[-1]["id"]], "alias": alias, "version": v["version"]}
                      for alias, v in (("prod", big[-10]), ("staging", big[-1]))]
        with store.engine.begin() as connection:
            for table, rows in ((SqlRegisteredModel, rm_rows), (SqlModelVersion, mv_rows),
                                (SqlModelVersionTag, tag_rows), (SqlRegisteredModelAlias, alias_rows)):
                for start in range(0, len(rows), 20_000):
                    connection.execute(insert(table.__table__), rows[start:start + 20_000])
            connection.exec_driver_sql("ANALYZE")
        print(json.dumps({"seconds": time.perf_counter() - started, "version": importlib.metadata.version("mlflow")}))
        return 0
    if command == "time-get":
        print(json.dumps(mlflow_time_get_version(store, argv[2:])))
        return 0
    repeats = int(argv[2])
    big_name = "/".join(BIG_MODEL)
    operations = {LIST_LABEL: f"name = '{big_name}'"}
    operations.update({label: flt for label, (_, flt) in QUERIES.items() if flt is not None})
    out = {}
    for label, flt in operations.items():
        max_results = 1000 if label == LIST_LABEL else 100
        call = lambda: store.search_model_versions(filter_string=flt, max_results=max_results)  # noqa: E731
        call()
        times, result, deadline = [], None, time.perf_counter() + MLFLOW_SECONDS_PER_OPERATION
        while len(times) < repeats and (len(times) < 5 or time.perf_counter() < deadline):
            started = time.perf_counter()
            result = call()
            times.append(time.perf_counter() - started)
        out[label] = {"times": times, "results": len(result)}
    print(json.dumps(out))
    return 0


# --- get_version: one version's full record, pinned, by alias and newest ----------------------------------------

#: Distinct handles of each kind the reads rotate over (the same ones on both sides).
GET_VERSION_HANDLES = 50
#: What ``get_version`` must reach against MLflow's store, for each kind of handle (p50 ratio, MLflow / registry).
GET_VERSION_TARGET = 3.0


def get_version_handles(n_versions: int, seed: int) -> dict[str, list[tuple[str, str, str | int | None]]]:
    """{kind: [(publisher, model, number | alias | None), ...]}: live versions of random models, the big model's
    two aliases, random models' newest. Standard library only (the MLflow side reads the same list)."""
    models, versions, _, _ = catalog_rows(n_versions, seed)
    names = {model["id"]: (model["publisher"], model["name"]) for model in models}
    live = [row for row in versions if row["deleted_at"] is None]
    rng = random.Random(seed + 1)
    pinned = [(*names[row["model_id"]], row["version"]) for row in rng.sample(live, GET_VERSION_HANDLES)]
    newest = [(*names[row["model_id"]], None) for row in rng.sample(live, GET_VERSION_HANDLES)]
    aliases = [(*BIG_MODEL, alias) for alias in ("prod", "staging")]
    return {"pinned (/N)": pinned, "alias (@prod)": aliases, "newest": newest}


def registry_get_version(catalog, kind: str, handles: list):
    """A call reading the next handle of ``kind`` through ``Catalog.get_version`` (full record)."""
    texts = [f"{p}/{m}/{ref}" if kind.startswith("pinned") else f"{p}/{m}@{ref}" if kind.startswith("alias")
             else f"{p}/{m}" for p, m, ref in handles]
    position = [0]

    def call():
        position[0] = (position[0] + 1) % len(texts)
        return catalog.get_version(texts[position[0]])
    return call


def mlflow_get_version(store, kind: str, handles: list):
    """The same reads through MLflow's store: ``get_model_version``, ``get_model_version_by_alias``,
    ``get_latest_versions`` (its "newest" of a model)."""
    position = [0]

    def call():
        position[0] = (position[0] + 1) % len(handles)
        publisher, model, ref = handles[position[0]]
        name = f"{publisher}/{model}"
        if kind.startswith("pinned"):
            return store.get_model_version(name, str(ref))
        if kind.startswith("alias"):
            return store.get_model_version_by_alias(name, ref)
        return store.get_latest_versions(name)[0]
    return call


def mlflow_time_get_version(store, argv: list[str]) -> dict:
    """``time-get DB REPEATS VERSIONS SEED`` in the MLflow venv: samples of each kind of read.

    The store holds this bench's names (``publisher/model``), which MLflow's name check refuses since 2.x: the
    check is switched off here (it is a string test; without it MLflow's reads are, if anything, faster)."""
    from mlflow.store.model_registry import sqlalchemy_store

    sqlalchemy_store._validate_model_name = lambda name: None
    repeats, handles = int(argv[0]), get_version_handles(int(argv[1]), int(argv[2]))
    out = {}
    for kind, chosen in handles.items():
        call = mlflow_get_version(store, kind, chosen)
        for _ in range(len(chosen)):
            call()
        times, _ = timed(call, repeats)
        out[kind] = times
    return out


def bench_get_version(url: str, mlflow_db: str | None, args) -> None:
    """``get_version`` against MLflow's store, interleaved rounds; the registry cold (record cache off: every read
    queries the database) and warm (the same handles again: the record cache answers after the revision query)."""
    from registry.catalog.store import Catalog

    handles = get_version_handles(args.versions, args.seed)
    cold_catalog, warm_catalog = Catalog(url, record_cache_size=0), Catalog(url)
    sides = {"cold": {}, "warm": {}, "MLflow": {}}
    collections = FullCollections()
    collected: dict[str, list[bool]] = {kind: [] for kind in handles}
    per_round = max(len(h) for h in handles.values()) * max(1, args.get_version_repeats // (50 * args.rounds))
    for kind, chosen in handles.items():  # first calls compile the statements; fill the warm cache
        for catalog in (cold_catalog, warm_catalog):
            call = registry_get_version(catalog, kind, chosen)
            for _ in range(len(chosen)):
                call()
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    for _ in range(args.rounds):
        for kind, chosen in handles.items():
            times, hits, _ = collections.timed(registry_get_version(cold_catalog, kind, chosen), per_round)
            sides["cold"].setdefault(kind, []).extend(times)
            collected[kind] += hits
            times, _ = timed(registry_get_version(warm_catalog, kind, chosen), per_round)
            sides["warm"].setdefault(kind, []).extend(times)
        if mlflow_db is not None:
            for kind, times in run_mlflow("time-get", mlflow_db, str(per_round), str(args.versions),
                                          str(args.seed)).items():
                sides["MLflow"].setdefault(kind, []).extend(times)
    print(f"\nget_version (full record) at {args.versions:,} versions, {GET_VERSION_HANDLES} handles of each kind "
          f"(2 aliases), {per_round * args.rounds} samples per cell over {args.rounds} interleaved rounds; ms")
    print("  cold: record cache off, every read queries the database; warm: the same handles read again (the "
          "record cache answers after one revision query)")
    print(f"{'handle':<16}{'cold p50':>10}{'cold p99':>10}{'warm p50':>10}{'MLflow p50':>12}{'MLflow p99':>12}"
          f"{'MLf/cold':>10}{'MLf/warm':>10}{'full GC':>9}")
    for kind in handles:
        cold, warm, other = sides["cold"][kind], sides["warm"][kind], sides["MLflow"].get(kind, [])
        row = f"{kind:<16}{percentile(cold, 50) * 1e3:10.3f}{percentile(cold, 99) * 1e3:10.3f}" \
              f"{percentile(warm, 50) * 1e3:10.3f}"
        if other:
            row += (f"{percentile(other, 50) * 1e3:12.3f}{percentile(other, 99) * 1e3:12.3f}"
                    f"{percentile(other, 50) / percentile(cold, 50):9.2f}x"
                    f"{percentile(other, 50) / percentile(warm, 50):9.2f}x")
        else:
            row += f"{'-':>12}{'-':>12}{'-':>10}{'-':>10}"
        print(row + f"{sum(collected[kind]):>9}")
    if sides["MLflow"]:
        worst = min(percentile(sides["MLflow"][k], 50) / percentile(sides["cold"][k], 50) for k in handles)
        print(f"get_version, cold, against MLflow's store: at least {worst:.2f}x (target {GET_VERSION_TARGET:.0f}x: "
              f"{'met' if worst >= GET_VERSION_TARGET else 'NOT met'})")
    cold_catalog.close()
    warm_catalog.close()


# --- the bench ----------------------------------------------------------------------------------------------------

# -- search by need (issue 20): words over a word index, every filter, a sort, a count and numbered pages ---------
#
# ``--need`` times ``registry.catalog.search.find`` — what the catalog page, the API and ``model-registry search``
# run — on the same catalog with model cards on a tenth of the versions and the word index
# (``search_word``) filled by the same ``version_words`` publishing uses. The anchor is the plain way to
# answer the same words without an index: every word a case-insensitive LIKE over the text columns (model
# name, publisher and description, version description and card), the newest matching version per model,
# counted and paged the same.

#: Words a card is written with (a card has ~300 of them, a few rare): enough distinct words to be realistic.
CARD_WORDS = ("image feature vector classification detection segmentation mobile efficient residual network "
              "trained dataset imagenet coco accuracy latency quantized pruned distilled transformer encoder "
              "embedding sentence multilingual fine tuned base model input output layer batch normalization "
              "license apache citation paper authors limitations intended use bias evaluation benchmark").split()
NEED_QUERIES = {
    "words: image feature vector 224": {"q": "image feature vector 224"},
    "filters: ifv, 224x224": {"task": "image_feature_vector", "image_size": "224x224"},
    "home: no words, by name": {},
    "words + filters + downloads": {"q": "image", "format": "tf2_saved_model", "sort": "downloads"},
    "newest, page 40": {"q": "feature", "sort": "newest", "page": 40},
    "a rare card word": {"q": "zyzzyva"},
    "a word matching nothing": {"q": "qqqqqq"},
}
#: The anchor answers these (word queries) the plain way.
NEED_ANCHORED = ("words: image feature vector 224", "a rare card word", "a word matching nothing")


def card_text(rng: random.Random, version_id: int) -> str:
    words = [rng.choice(CARD_WORDS) for _ in range(280)] + [f"w{rng.randrange(200_000):06d}" for _ in range(20)]
    if version_id % 997 == 0:
        words.append("zyzzyva")
    return "# Model card\n\n" + " ".join(words) + "\n"


def add_cards_and_words(url: str, n_versions: int, seed: int) -> int:
    """Give a tenth of the versions a card, and fill ``search_word`` as publishing would; the number of words."""
    from sqlalchemy import bindparam, insert, update

    from registry.catalog.models import ModelVersion, SearchWord
    from registry.catalog.search import index_model_names, version_words
    from registry.catalog.store import Catalog

    catalog = Catalog(url)
    models, versions, _, tasks = catalog_rows(n_versions, seed)
    by_model = {row["id"]: row for row in models}
    tasks_of: dict[int, list] = {}
    for row in tasks:
        tasks_of.setdefault(row["version_id"], []).append(row)
    rng = random.Random(seed + 1)
    cards = {row["id"]: card_text(rng, row["id"]) for row in versions if row["id"] % 10 == 0}
    words = 0
    with catalog.engine.begin() as connection:
        table = ModelVersion.__table__
        connection.execute(update(table).where(table.c.id == bindparam("vid")).values(card=bindparam("card")),
                           [{"vid": vid, "card": card} for vid, card in cards.items()])
        batch: list[dict] = []
        for row in versions:
            model = by_model[row["model_id"]]
            metadata = {"description": row["description"], "card": cards.get(row["id"])}
            for word in version_words(publisher=model["publisher"], name=model["name"],
                                      model_description=model["description"], metadata=metadata,
                                      format=row["format"], tasks=tasks_of.get(row["id"], [])):
                batch.append({"word": word, "version_id": row["id"]})
            if len(batch) > 50_000:
                connection.execute(insert(SearchWord.__table__), batch)
                words += len(batch)
                batch = []
        if batch:
            connection.execute(insert(SearchWord.__table__), batch)
            words += len(batch)
        index_model_names(connection)
        connection.exec_driver_sql("ANALYZE")
    catalog.close()
    return words


def naive_words(engine, query) -> tuple[int, list]:
    """The anchor: each word a LIKE over the text columns; newest matching live version per model; count + page."""
    from sqlalchemy import func, or_, select

    from registry.catalog import records
    from registry.catalog.models import ModelVersion, RegisteredModel

    mv, rm = records.table_of(ModelVersion), records.table_of(RegisteredModel)
    where: list = [mv.c.deleted_at.is_(None)]
    for word in query.words():
        pattern = f"%{word}%"
        where.append(or_(rm.c.name.like(pattern), rm.c.publisher.like(pattern), rm.c.description.like(pattern),
                         mv.c.description.like(pattern), func.coalesce(mv.c.card, "").like(pattern)))
    newest = (select(mv.c.model_id, func.max(mv.c.version).label("version")).select_from(mv.join(rm, rm.c.id ==
              mv.c.model_id)).where(*where).group_by(mv.c.model_id).subquery())
    with engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(newest)).scalar_one()
        page = connection.execute(select(rm.c.publisher, rm.c.name, newest.c.version)
                                  .join(newest, newest.c.model_id == rm.c.id)
                                  .order_by(rm.c.publisher, rm.c.name).limit(query.limit)).all()
    return total, page


def need_main(args) -> int:
    """``--need``: ``find`` on 100,000 versions with cards on a tenth, against the LIKE anchor."""
    from registry.catalog.search import COUNT_CAP, SearchQuery, find
    from registry.catalog.store import Catalog

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/catalog.db"
        started = time.perf_counter()
        build_catalog(url, args.versions, args.seed)
        words = add_cards_and_words(url, args.versions, args.seed)
        print(f"built a catalog of {args.versions:,} versions, {args.versions // 10:,} with a card, "
              f"{words:,} indexed words, in {time.perf_counter() - started:.1f} s")
        catalog = Catalog(url)
        queries = {label: SearchQuery.from_params(params) for label, params in NEED_QUERIES.items()}
        for query in queries.values():
            find(catalog.engine, query)
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        print(f"\n{args.repeats} samples each; ms; one page of 25 full records and the count of matching models "
              f"(exact up to {COUNT_CAP:,}, then {COUNT_CAP:,}+)")
        print(f"{'query':<34}{'p50':>8}{'p99':>8}{'anchor p50':>12}{'anchor p99':>12}{'p99 ratio':>11}   matches")
        for label, query in queries.items():
            times, result = timed(lambda query=query: find(catalog.engine, query), args.repeats)
            line = f"{label:<34}{percentile(times, 50) * 1e3:8.2f}{percentile(times, 99) * 1e3:8.2f}"
            if label in NEED_ANCHORED:
                anchor, (total, _) = timed(lambda query=query: naive_words(catalog.engine, query),
                                           max(3, args.naive_repeats))
                line += (f"{percentile(anchor, 50) * 1e3:12.2f}{percentile(anchor, 99) * 1e3:12.2f}"
                         f"{percentile(times, 99) / percentile(anchor, 99):10.3f}x")
                line += f"   {result.total_shown} (anchor: {total}, substrings of the text columns only)"
                print(line)
                continue
            else:
                line += f"{'-':>12}{'-':>12}{'-':>11}"
            print(f"{line}   {result.total_shown}")
        catalog.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=200, help="samples per operation and side, over all rounds")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (registry, then MLflow)")
    parser.add_argument("--naive-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow side")
    parser.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                        help="time without gc.freeze() after start-up (the server freezes its start-up heap)")
    parser.add_argument("--get-version-repeats", type=int, default=400,
                        help="get_version samples per kind of handle and side, over all rounds")
    parser.add_argument("--get-version-only", action="store_true", help="time get_version only, not search")
    parser.add_argument("--need", action="store_true", help="time the search by need (find: words, filters, sort, "
                        "count, pages) with cards on a tenth of the versions, against a LIKE scan")
    args = parser.parse_args()
    if args.need:
        return need_main(args)

    from registry.catalog.store import Catalog
    from registry.catalog.search import search_catalog

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/catalog.db"
        started = time.perf_counter()
        build_catalog(url, args.versions, args.seed)
        print(f"built a catalog of {args.versions:,} versions in {time.perf_counter() - started:.1f} s")
        if not args.no_mlflow:
            built = run_mlflow("build", f"{tmp}/mlflow.db", str(args.versions), str(args.seed))
            print(f"built MLflow {built['version']}'s SQLAlchemy store (SQLite) with the same versions in "
                  f"{built['seconds']:.1f} s")
        if args.get_version_only:
            bench_get_version(url, None if args.no_mlflow else f"{tmp}/mlflow.db", args)
            return 0
        catalog = Catalog(url)
        operations = {LIST_LABEL: lambda: catalog.list_versions(publisher=BIG_MODEL[0], name=BIG_MODEL[1])}
        for label, (criteria, _) in QUERIES.items():
            operations[label] = lambda criteria=criteria: search_catalog(catalog.engine, **criteria)
        ours: dict[str, list[float]] = {label: [] for label in operations}
        collected: dict[str, list[bool]] = {label: [] for label in operations}
        theirs: dict[str, list[float]] = {}
        counts: dict[str, list] = {}
        per_round = max(1, args.repeats // args.rounds)
        for call in operations.values():
            call()  # the first call of each imports and compiles what it needs
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        collections = FullCollections()
        for _ in range(args.rounds):
            for label, call in operations.items():
                call()  # warm the page cache
                times, with_collection, result = collections.timed(call, per_round)
                ours[label] += times
                collected[label] += with_collection
                counts[label] = [len(result), None]
            if not args.no_mlflow:
                for label, row in run_mlflow("time", f"{tmp}/mlflow.db", str(per_round)).items():
                    theirs.setdefault(label, []).extend(row["times"])
                    counts[label][1] = row["results"]

        def ms(values, q):
            return f"{percentile(values, q) * 1e3:8.2f}" if values else f"{'-':>8}"

        def ratio(mine, other):
            return f"{percentile(mine, 99) / percentile(other, 99):7.3f}x" if other else f"{'-':>8}"

        print(f"\n{per_round * args.rounds} samples per cell, {args.rounds} interleaved rounds; ms; "
              f"search: limit 100, full records built{'; gc.freeze() after start-up' if args.gc_freeze else ''}")
        print(f"{'':<30}{'registry':>16}{'MLflow':>16}{'p99 ratio':>10}{'registry: full GC':>24}")
        print(f"{'operation':<30}{'p50':>8}{'p99':>8}{'p50':>8}{'p99':>8}{'reg/MLf':>10}{'samples':>9}"
              f"{'p99 w/o':>9}   results (registry/MLflow)")
        for label in operations:
            mine, other = ours[label], theirs.get(label, [])
            clean = [t for t, hit in zip(mine, collected[label]) if not hit]
            short = f" ({len(other)} MLflow samples)" if other and len(other) < len(mine) else ""
            print(f"{label:<30}{ms(mine, 50)}{ms(mine, 99)}{ms(other, 50)}{ms(other, 99)}{ratio(mine, other):>10}"
                  f"{sum(collected[label]):>9}{ms(clean, 99):>9}   "
                  f"{counts[label][0]}/{'-' if counts[label][1] is None else counts[label][1]}{short}")
        pauses = collections.pauses
        print(f"\nfull (generation 2) garbage collections while the registry was timed: {len(pauses)}"
              + (f", each {percentile(pauses, 50) * 1e3:.1f} ms (median), {max(pauses) * 1e3:.1f} ms at most "
                 f"({len(gc.get_objects()):,} objects tracked); 'p99 w/o': the p99 of the samples without one"
                 if pauses else ""))
        search_p99 = {label: percentile(ours[label], 99) for label in QUERIES}
        worst = max(search_p99, key=search_p99.get)
        print(f"worst search p99: {search_p99[worst] * 1e3:.1f} ms, {worst} (target <= 50 ms: "
              f"{'met' if search_p99[worst] <= 0.050 else 'NOT met'})")
        if theirs:
            print(f"list_versions p99: registry {percentile(ours[LIST_LABEL], 99) * 1e3:.1f} ms, MLflow "
                  f"{percentile(theirs[LIST_LABEL], 99) * 1e3:.1f} ms (target: registry <= MLflow)")
        print("(MLflow's search rows answer the nearest question its filter language can ask: the first 100 "
              "versions whose tags match, not each model's newest matching version; '-': no equivalent)")

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
        bench_get_version(url, None if args.no_mlflow else f"{tmp}/mlflow.db", args)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--mlflow-child"]:
        sys.path.remove(str(ROOT))  # the MLflow venv imports its own alembic, not this repository's folder
        sys.exit(mlflow_child(sys.argv[2:]))
    sys.exit(main())
