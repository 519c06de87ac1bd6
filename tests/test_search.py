"""Search by task and swapping handles: ``registry.search``, ``registry.interchangeable``, ``list --task``.

A real registry (SQLite catalog, local storage) with the reference models and
small TF2 models made here, published through the full pipeline so the tasks
searched for are the ones the publish-time check recorded.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from registry.errors import FormatError, SignatureError
from registry.plugin_manager import make_plugin_manager


@pytest.fixture
def reg(registry_env):
    from registry.api import Registry

    return Registry(database_url=registry_env.database_url, storage_url=registry_env.storage_url,
                    cache_dir=registry_env.cache_dir, plugin_manager=make_plugin_manager(load_entry_points=False))


def _feature_vector_module(size: int, dim: int):
    """A TF2 image feature vector: mean colour per channel through a dense layer, for ``size``x``size`` images."""
    import tensorflow as tf

    class Features(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(tf.random.stateless_normal([3, dim], seed=[1, dim]))

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def __call__(self, images):
            return tf.matmul(tf.reduce_mean(images, axis=[1, 2]), self.kernel)

    return Features()


@pytest.fixture
def catalog(reg, reference_dir):
    """Reference models of both formats and tasks, and a 16x16 feature vector with another output size."""
    reg.publish(reference_dir / "tf1_image_feature_vector", name="google/ifv-tf1", description="TF1 image features")
    reg.publish(reference_dir / "tf2_image_feature_vector", name="google/ifv-tf2", description="TF2 image features")
    reg.publish(reference_dir / "tf1_text_embedding", name="google/text-tf1", description="Text embedding, TF1")
    reg.publish(reference_dir / "tf2_text_embedding", name="acme/text-tf2", description="Text embedding, TF2")
    reg.publish(reference_dir / "tf1_dense_two_signatures", name="acme/dense")
    reg.publish(_feature_vector_module(16, 5), name="acme/tiny-ifv", description="A tiny feature extractor")
    return reg


def _handles(versions) -> list[str]:
    return [v.handle for v in versions]


@pytest.fixture(params=["from task index", "walk models in name order"])
def strategy(request, monkeypatch):
    """Run a test under both query plans: a tiny catalog would otherwise always take the sparse one."""
    from registry.catalog import search as discovery

    if request.param == "walk models in name order":
        monkeypatch.setattr(discovery, "SPARSE_ROWS_PER_RESULT", 0)
        monkeypatch.setattr(discovery, "WALK_ABOVE_ROWS", 0)  # words too: each a probe in the walk
    return request.param


def test_search_by_task_finds_both_formats(catalog, strategy):
    assert _handles(catalog.search(task="image_feature_vector")) == [
        "acme/tiny-ifv/1", "google/ifv-tf1/1", "google/ifv-tf2/1"]
    assert _handles(catalog.search(task="text_embedding")) == ["acme/text-tf2/1", "google/text-tf1/1"]
    assert catalog.search(task="image_classification") == []


def test_search_by_image_size_format_publisher_and_text(catalog, strategy):
    assert _handles(catalog.search(task="image_feature_vector", image_size=(32, 32))) == [
        "google/ifv-tf1/1", "google/ifv-tf2/1"]
    assert _handles(catalog.search(task="image_feature_vector", image_size=(16, 16))) == ["acme/tiny-ifv/1"]
    assert catalog.search(task="image_feature_vector", image_size=(224, 224)) == []
    assert _handles(catalog.search(task="image_feature_vector", format="tf1_hub")) == ["google/ifv-tf1/1"]
    assert _handles(catalog.search(task="text_embedding", publisher="acme")) == ["acme/text-tf2/1"]
    assert _handles(catalog.search(text="EMBEDDING")) == ["acme/text-tf2/1", "google/text-tf1/1"]
    assert _handles(catalog.search(task="image_feature_vector", output_dim=5)) == ["acme/tiny-ifv/1"]
    assert _handles(catalog.search(format="tf1_hub", limit=2)) == ["acme/dense/1", "google/ifv-tf1/1"]


def test_search_returns_the_newest_live_matching_version(catalog, reference_dir, strategy):
    catalog.publish(reference_dir / "tf2_image_feature_vector", name="google/ifv-tf2")  # version 2
    catalog.publish(reference_dir / "tf2_text_embedding", name="google/ifv-tf2")  # version 3: another task
    (found,) = catalog.search(task="image_feature_vector", publisher="google", text="ifv-tf2")
    assert found.version == 2
    assert {t.task for t in found.tasks} == {"image_feature_vector", "reusable_saved_model"}
    catalog.delete_version("google/ifv-tf2/2")
    # Words: "ifv" and "tf2" (acme/tiny-ifv, a TF2 SavedModel, has both too).
    assert _handles(catalog.search(task="image_feature_vector", text="ifv-tf2")) == ["acme/tiny-ifv/1",
                                                                                    "google/ifv-tf2/1"]


def test_an_unknown_task_is_an_error_not_an_empty_result(catalog):
    with pytest.raises(SignatureError, match="unknown task 'image_features'"):
        catalog.search(task="image_features")


def test_an_unknown_format_is_an_error_as_an_unknown_task_is(catalog):
    with pytest.raises(FormatError, match="unknown format 'onnx'; the registered formats are tf1_hub, tf2_saved_model"):
        catalog.search(format="onnx")


def test_feature_vectors_of_one_image_size_are_interchangeable(catalog):
    result = catalog.interchangeable("google/ifv-tf1", "google/ifv-tf2", task="image_feature_vector")
    assert result and result.task == "image_feature_vector" and result.reasons == ()
    # Without a task the common one is found.
    assert catalog.interchangeable("google/ifv-tf2", "google/ifv-tf1").task == "image_feature_vector"


def test_different_image_sizes_are_not_interchangeable(catalog):
    result = catalog.interchangeable("google/ifv-tf1", "acme/tiny-ifv", task="image_feature_vector")
    assert not result
    assert "input image size differs: 32x32 vs 16x16" in result.reasons[0]
    assert "output dimension differs (8 vs 5)" in " ".join(result.notes)


def test_different_tasks_are_not_interchangeable(catalog):
    result = catalog.interchangeable("google/ifv-tf1", "google/text-tf1")
    assert not result and "no common task" in result.reasons[0]
    result = catalog.interchangeable("google/text-tf1", "acme/dense", task="text_embedding")
    assert not result and result.reasons == ("acme/dense/1 does not implement text_embedding",)


def test_text_embeddings_swap_across_formats(catalog):
    result = catalog.interchangeable("google/text-tf1", "acme/text-tf2")
    assert result and result.task == "text_embedding"


def test_cli_search_and_list_by_task(catalog, registry_env):
    from registry.cli import cli

    runner = CliRunner()
    searched = runner.invoke(cli, ["search", "--task", "image_feature_vector", "--image-size", "32x32"])
    assert searched.exit_code == 0, searched.output
    lines = searched.output.splitlines()
    assert lines[0].split()[:3] == ["VERSION", "FORMAT", "TASKS"]
    assert [line.split()[0] for line in lines[2:]] == ["google/ifv-tf1/1", "google/ifv-tf2/1"]
    as_json = runner.invoke(cli, ["--json", "search", "--task", "text_embedding", "--format", "tf2_saved_model"])
    assert as_json.exit_code == 0, as_json.output
    assert [v["handle"] for v in json.loads(as_json.output)] == ["acme/text-tf2/1"]
    listed = runner.invoke(cli, ["--json", "list", "--task", "text_embedding"])
    assert listed.exit_code == 0, listed.output
    assert [v["handle"] for v in json.loads(listed.output)] == ["acme/text-tf2/1", "google/text-tf1/1"]
    bad = runner.invoke(cli, ["search", "--task", "image_feature_vector", "--image-size", "big"])
    assert bad.exit_code == 1 and "--image-size takes HEIGHTxWIDTH" in bad.output


def test_cli_tasks_states_what_each_definition_checks(registry_env):
    from registry.cli import cli

    result = CliRunner().invoke(cli, ["--json", "tasks"])
    assert result.exit_code == 0, result.output
    listed = {d["task"]: d for d in json.loads(result.output)}
    assert set(listed) == {"image_feature_vector", "image_classification", "text_embedding", "reusable_saved_model"}
    assert all(d["checks"] and d["plugin"] == "registry.plugins.signatures" for d in listed.values())


@pytest.mark.slow
def test_swap_example_trains_over_three_handles_in_both_formats(tmp_path):
    """The example publishes its three feature vectors into a fresh catalog and prints one row per handle."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_REGISTRY_DATABASE")}
    done = subprocess.run(
        [sys.executable, str(root / "examples" / "swap_feature_extractors.py"), "--catalog-dir", str(tmp_path),
         "--examples", "300", "--epochs", "5"],
        capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("HANDLE"))
    rows = [line.split() for line in table[header + 2:] if line.strip()]
    assert {row[0] for row in rows} == {"examples/colour-stats-ifv/1", "examples/reference-ifv-tf1/1",
                                        "examples/reference-ifv-tf2/1"}
    assert {row[1] for row in rows} == {"tf1_hub", "tf2_saved_model"}
    assert all(0.0 <= float(row[5]) <= 1.0 for row in rows)  # test accuracy


def test_module_level_functions_use_the_configured_registry(registry_env, reference_dir):
    import registry

    registry.publish(reference_dir / "tf2_text_embedding", name="acme/text")
    registry.publish(reference_dir / "tf1_text_embedding", name="google/text")
    assert [v.handle for v in registry.search(task="text_embedding")] == ["acme/text/1", "google/text/1"]
    assert registry.interchangeable("acme/text", "google/text", task="text_embedding")


@pytest.mark.postgres
def test_search_strategies_agree_on_postgresql(postgres_url, tmp_path, reference_dir, monkeypatch):
    """Both query plans (walk models in name order; start from the task index) on a PostgreSQL catalog."""
    from registry.catalog import search as discovery
    from registry.api import Registry
    from registry.catalog import schema

    schema.upgrade(postgres_url)  # server databases are migrated by an operator, never on open
    reg = Registry(database_url=postgres_url, storage_url=str(tmp_path / "artifacts"), cache_dir=tmp_path / "cache",
                   plugin_manager=make_plugin_manager(load_entry_points=False))
    for name in ("b/ifv", "a/ifv", "c/ifv"):
        reg.publish(reference_dir / "tf2_image_feature_vector", name=name, description="Image features")
    reg.publish(reference_dir / "tf1_text_embedding", name="a/text")
    expected = ["a/ifv/1", "b/ifv/1", "c/ifv/1"]
    criteria = dict(task="image_feature_vector", image_size=(32, 32), text="FEATURES")
    assert _handles(reg.search(**criteria)) == expected  # sparse: from the task index
    assert _handles(reg.search(limit=None, **criteria)) == expected
    monkeypatch.setattr(discovery, "SPARSE_ROWS_PER_RESULT", 0)  # force the walk in name order
    assert _handles(reg.search(limit=2, **criteria)) == expected[:2]


# --- text search: model text or a version's own description, on both plans and both databases ---------------------

IFV, TEXT = "image_feature_vector", "text_embedding"
#: publisher, name, versions as (format, task or None, description, deleted). A model's description is its first
#: non-empty version description (what ``create_version`` records), so some models match only through a version.
TEXT_MODELS = [
    ("acme", "alpha", [("tf1_hub", IFV, "Image features", False), ("tf2_saved_model", IFV, "", False),
                       ("tf1_hub", TEXT, "", False)]),
    ("acme", "bravo", [("tf1_hub", IFV, "plain features", False),
                       ("tf2_saved_model", IFV, "Fine-tuned DETECTOR", False), ("tf1_hub", IFV, "", False)]),
    ("acme", "detector-x", [("tf1_hub", IFV, "", False), ("tf2_saved_model", TEXT, "", False)]),
    ("acme", "off_sale", [("tf1_hub", TEXT, "", False)]),
    ("beta", "delta", [("tf1_hub", IFV, "base", False), ("tf2_saved_model", IFV, "Detector head", True)]),
    ("beta", "echo", [("tf2_saved_model", TEXT, "50% off_sale", False), ("tf2_saved_model", TEXT, "", False)]),
    ("beta", "foxtrot", [("tf1_hub", IFV, "base", False), ("tf1_hub", None, "detector, retrained", False),
                         ("tf1_hub", IFV, "Back\\slash", False), ("tf2_saved_model", IFV, "a DETECTOR again", False)]),
    ("beta", "kilo", [("tf2_saved_model", IFV, "base", False), ("tf2_saved_model", IFV, "detector v2", False),
                      ("tf2_saved_model", IFV, "detector v3", True)]),
    ("detectors", "golf", [("tf2_saved_model", IFV, "", False)]),
    ("gamma", "hotel", [("tf1_hub", IFV, "Détecteur d'images", False), ("tf1_hub", TEXT, "100% text", False)]),
    ("gamma", "india", [("tf2_saved_model", IFV, "", False), ("tf1_hub", IFV, "", False)]),
]
TEXTS = ["detector", "DETECTOR", "Détecteur", "ima", "feat", "%", "_", "off_", "\\", "50%", "acme", "ct", "zzz",
         "detector v2", "image tf1", "tf1_hub", "embedding acme", "détecteur"]
TEXT_CRITERIA = [{}, {"task": IFV}, {"task": TEXT}, {"format": "tf1_hub"}, {"task": IFV, "format": "tf2_saved_model"},
                 {"publisher": "beta"}, {"task": IFV, "format": "tf1_hub", "publisher": "beta"}]


def _expected(*, text, task=None, format=None, publisher=None) -> list[str]:
    """The answer worked out in Python: each model's newest live version matching everything, in name order.

    Text is words (as ``find``'s ``q``): each word of ``text`` begins a word of the version's searchable text —
    its model's publisher, name and description, its own description, its format and task names."""
    from registry.catalog.search import words_of

    wanted = words_of(text)
    found = []
    for model_publisher, name, versions in sorted(TEXT_MODELS):
        model_text = [model_publisher, name, next((d for _, _, d, _ in versions if d), "")]
        newest = None
        for number, (fmt, version_task, description, deleted) in enumerate(versions, start=1):
            own = words_of(" ".join([*model_text, description, fmt, version_task or ""]))
            if (not deleted and task in (None, version_task) and format in (None, fmt)
                    and publisher in (None, model_publisher)
                    and all(any(word.startswith(w) for word in own) for w in wanted)):
                newest = number
        if newest is not None:
            found.append(f"{model_publisher}/{name}/{newest}")
    return found


#: The search plans a text query can take, and the settings that force each on a tiny catalog.
TEXT_PLANS = {
    "a rare word: from its versions": {},
    "walk, each model asked": {"SPARSE_ROWS_PER_RESULT": 0, "WALK_ABOVE_ROWS": 0},
    "walk, then a sparse task": {"WALK_ABOVE_ROWS": 0},
}


def _each_text_plan(monkeypatch):
    from registry.catalog import search as discovery

    for plan, settings in TEXT_PLANS.items():
        with monkeypatch.context() as patch:
            for name, value in settings.items():
                patch.setattr(discovery, name, value)
            yield plan


@pytest.fixture
def text_catalog(database_url):
    """``TEXT_MODELS`` in a catalog, once per backend."""
    from registry.adapter import SignatureInfo, TensorInfo
    from registry.catalog.models import VersionCreate
    from registry.catalog.store import Catalog

    signatures = [SignatureInfo("default", {"x": TensorInfo("float32", (None, 8, 8, 3))},
                                {"y": TensorInfo("float32", (None, 4))})]
    with Catalog(database_url) as catalog:
        for publisher, name, versions in TEXT_MODELS:
            for number, (fmt, task, description, _) in enumerate(versions, start=1):
                tasks = [{"task": task, "signature": "default", "output_dim": 4}] if task else []
                catalog.create_version(VersionCreate(
                    publisher=publisher, name=name, format=fmt, size=1, tag_sets=[[]],
                    artifact_uri=f"file:///{publisher}/{name}/{number}", sha256=f"{number:064x}",
                    signatures=signatures, tasks=tasks, description=description))
            for number, (_, _, _, deleted) in enumerate(versions, start=1):
                if deleted:
                    catalog.delete_version(publisher=publisher, name=name, version=number)
        yield catalog


def test_the_text_fixture_covers_each_way_of_matching():
    """Matches through the publisher, the name, the model's description and only a version's description; as
    words (the start of one), never a substring inside a word."""
    assert _expected(text="detector") == ["acme/bravo/2", "acme/detector-x/2", "beta/foxtrot/4", "beta/kilo/2",
                                          "detectors/golf/1"]
    assert _expected(text="detector", task=IFV, format="tf1_hub") == ["acme/detector-x/1"]  # by its name
    assert _expected(text="detector", task=IFV) == ["acme/bravo/2", "acme/detector-x/1", "beta/foxtrot/4",
                                                    "beta/kilo/2", "detectors/golf/1"]
    assert _expected(text="off_sale") == ["acme/off_sale/1", "beta/echo/2"]  # "off" and "sale", as two words
    assert _expected(text="ct") == []  # inside "detector", "acme", "text": not the start of a word
    assert _expected(text="detector v2") == ["beta/kilo/2"]


def test_text_search_finds_each_models_newest_live_match_under_every_plan(text_catalog, monkeypatch):
    for plan in _each_text_plan(monkeypatch):
        for text in TEXTS:
            for criteria in TEXT_CRITERIA:
                expected = _expected(text=text, **criteria)
                where = (plan, text, criteria)
                assert text_catalog.search(text=text, handles_only=True, **criteria) == expected, where
                assert text_catalog.search(text=text, limit=None, handles_only=True, **criteria) == expected, where
                assert text_catalog.search(text=text, limit=2, handles_only=True, **criteria) == expected[:2], where
    records = text_catalog.search(text="detector", task=IFV)
    assert [record.handle for record in records] == _expected(text="detector", task=IFV)
    assert records == [text_catalog.get_version(record.handle) for record in records]


def test_text_search_pages_with_the_after_cursor_under_every_plan(text_catalog, monkeypatch):
    """Pages of one and of two, each starting after the last model of the one before, add up to the whole answer."""
    for plan in _each_text_plan(monkeypatch):
        for text in ("detector", "e", "_"):
            for criteria in TEXT_CRITERIA:
                expected, where = _expected(text=text, **criteria), (plan, text, criteria)
                for size in (1, 2):
                    pages, after = [], None
                    while True:
                        page = text_catalog.search(text=text, limit=size, after=after, handles_only=True, **criteria)
                        assert len(page) <= size, where
                        pages += page
                        if len(page) < size:
                            break
                        after = page[-1].rsplit("/", 1)[0]
                    assert pages == expected, (*where, size)
                # A cursor between models, or before a publisher's first, as a client may send.
                assert text_catalog.search(text=text, after="beta", handles_only=True, **criteria) == [
                    handle for handle in expected if handle.split("/")[0] >= "beta"], where
                assert text_catalog.search(text=text, after="acme/c", handles_only=True, **criteria) == [
                    handle for handle in expected if handle.rsplit("/", 1)[0] > "acme/c"], where


def test_sqlite_text_search_probes_each_version_through_the_word_index(tmp_path, monkeypatch):
    """The walk asks each model's live versions (a covering index) whether they have the words: a probe of each
    version's own words (``ix_search_word_by_version``, covering), never a read of a text column."""
    from sqlalchemy import event

    from registry.adapter import SignatureInfo, TensorInfo
    from registry.catalog import search as discovery
    from registry.catalog.models import VersionCreate
    from registry.catalog.store import Catalog

    monkeypatch.setattr(discovery, "SPARSE_ROWS_PER_RESULT", 0)
    monkeypatch.setattr(discovery, "WALK_ABOVE_ROWS", 0)
    plans = []
    signature = SignatureInfo("default", {"x": TensorInfo("string", (None,))}, {"y": TensorInfo("float32", (None, 4))})
    with Catalog(f"sqlite:///{tmp_path / 'catalog.db'}") as catalog:
        for number in range(3):
            catalog.create_version(VersionCreate(
                publisher="acme", name=f"m{number}", format="tf1_hub", size=1, tag_sets=[[]],
                artifact_uri=f"file:///{number}", sha256=f"{number:064x}", signatures=[signature],
                tasks=[{"task": TEXT, "signature": "default", "output_dim": 4}],
                description="described" if number else ""))

        def record(conn, cursor, statement, parameters, context, executemany):
            if "max(" in statement:
                plans.extend(row[-1] for row in cursor.connection.execute("EXPLAIN QUERY PLAN " + statement,
                                                                           parameters))

        event.listen(catalog.engine, "before_cursor_execute", record)
        assert catalog.search(task=TEXT, text="describ", handles_only=True) == ["acme/m1/1", "acme/m2/1"]
        event.remove(catalog.engine, "before_cursor_execute", record)
    plan = " | ".join(plans)
    assert "COVERING INDEX ix_search_word_by_version" in plan, plan
    assert "COVERING INDEX ix_version_by_model_live" in plan, plan
