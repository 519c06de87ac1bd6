"""One registry, one path: every entry point uses the Registry it is given, and gates once, before downloading.

The TF1 Hub API and the Keras layers have their own file
(``test_one_path_adapters.py``); this one covers the core entry points, the
offline rule and what loading a cached model imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import registry
from tests.gate_support import record_gate_calls


def _registry(root: Path, name: str) -> registry.Registry:
    return registry.Registry(database_url=f"sqlite:///{root / name / 'catalog.db'}",
                             storage_url=str(root / name / "artifacts"), cache_dir=root / name / "cache")


@pytest.fixture
def two_registries(tmp_path, reference_dir):
    """Two catalogs, each with a different model under the same name ``pub/m``."""
    a, b = _registry(tmp_path, "a"), _registry(tmp_path, "b")
    a.publish(reference_dir / "tf2_image_feature_vector", name="pub/m", description="from A")
    b.publish(reference_dir / "tf2_text_embedding", name="pub/m", description="from B")
    a.publish(reference_dir / "tf1_image_feature_vector", name="pub/other")
    b.publish(reference_dir / "tf1_image_feature_vector", name="pub/other")
    return a, b


def test_each_entry_point_reads_from_its_own_registry(two_registries, registry_env):
    a, b = two_registries
    assert a.get_version("pub/m").description == "from A"
    assert b.get_version("pub/m").description == "from B"
    assert a.get_version("pub/m").format == b.get_version("pub/m").format == "tf2_saved_model"
    assert a.get_version("pub/m").sha256 != b.get_version("pub/m").sha256

    assert Path(a.resolve("pub/m/1")).parent == a.settings.cache_dir / "models"
    assert Path(b.resolve("pub/m/1")).parent == b.settings.cache_dir / "models"

    image_model = a.load("pub/m/1", mode="tf2")
    text_model = b.load("pub/m/1", mode="tf2")
    assert image_model.signatures["serving_default"].structured_input_signature[1]  # both real models
    inputs_a = list(image_model.signatures["serving_default"].structured_input_signature[1].values())
    inputs_b = list(text_model.signatures["serving_default"].structured_input_signature[1].values())
    assert inputs_a[0].dtype.name == "float32" and inputs_b[0].dtype.name == "string"

    assert a.fine_tune("pub/m/1", mode="tf2") is not None
    assert [v.handle for v in a.search(task="image_feature_vector")] == ["pub/m/1", "pub/other/1"]
    assert [v.handle for v in b.search(task="image_feature_vector")] == ["pub/other/1"]
    assert [v.handle for v in b.search(task="text_embedding")] == ["pub/m/1"]
    assert bool(a.interchangeable("pub/m/1", "pub/other/1", task="image_feature_vector"))
    assert not b.interchangeable("pub/m/1", "pub/other/1")  # B's pub/m is a text embedding

    # The default registry (registry_env) is a third catalog: it knows none of them.
    with pytest.raises(registry.ModelNotFound):
        registry.get_version("pub/m")


def test_load_and_fine_tune_pass_the_gate_exactly_once(two_registries, monkeypatch):
    a, _ = two_registries
    calls = record_gate_calls(a, monkeypatch)
    a.load("pub/m/1", mode="tf2")
    assert calls == [("tf2_saved_model", "load", "tf2")]
    calls.clear()
    a.fine_tune("pub/m", mode="tf2")
    assert calls == [("tf2_saved_model", "fine_tune", "tf2")]
    calls.clear()
    a.load(a.resolve("pub/other/1"), mode="tf2")  # a path: the format is detected, then gated once
    assert calls == [("tf1_hub", "load", "tf2")]


def test_a_refused_cell_is_refused_before_anything_is_downloaded(two_registries, tmp_path):
    a, _ = two_registries
    record = a.get_version("pub/other/1")
    Path(record.artifact_uri).unlink()  # a download would fail with ArtifactNotFound
    fresh = registry.Registry(database_url=a.settings.database_url, storage_url=a.settings.storage_url,
                              cache_dir=tmp_path / "fresh-cache")
    with pytest.raises(registry.UnsupportedOperation) as info:
        fresh.fine_tune("pub/other/1", mode="tf2")
    assert info.value.format == "tf1_hub" and info.value.alternative
    assert fresh.cache.get(record.sha256) is None and fresh.cache.incomplete() == []


def test_resolve_of_a_directory_in_no_known_format_is_a_format_error(tmp_path, registry_env):
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "README").write_text("hello")
    with pytest.raises(registry.FormatError):
        registry.resolve(str(tmp_path / "not-a-model"))
    result = subprocess.run([str(Path(sys.executable).parent / "model-registry"), "resolve", str(tmp_path / "not-a-model")],
                            capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "not a model directory" in result.stderr


def test_a_bad_mode_is_unknown_mode_and_still_a_value_error(registry_env, reference_dir):
    with pytest.raises(registry.UnknownMode) as info:
        registry.load(str(reference_dir / "tf2_image_feature_vector"), mode="tf3")
    assert isinstance(info.value, ValueError) and "tf1" in str(info.value)


# --------------------------------------------------------------------------------------------- offline


@pytest.fixture
def offline_env(registry_env, reference_dir, monkeypatch):
    """A model published to local storage, with the cache emptied: its bytes are local, but not cached."""
    registry.publish(reference_dir / "tf2_image_feature_vector", name="pub/local")
    registry.set_alias("pub/local", "prod", 1)
    import shutil

    shutil.rmtree(registry_env.cache_dir)
    monkeypatch.setenv("MODEL_REGISTRY_OFFLINE", "1")
    from registry.api import reset_default_registry

    reset_default_registry()
    return registry_env


@pytest.mark.parametrize("handle", ["pub/local/1", "pub/local", "pub/local@prod", "pub/local@latest"])
def test_offline_loads_whatever_is_local_pinned_or_not(offline_env, handle):
    model = registry.load(handle, mode="tf2")
    assert callable(model)


def test_offline_refuses_what_is_not_local(offline_env, tmp_path):
    with pytest.raises(registry.OfflineError, match="MODEL_REGISTRY_OFFLINE"):
        registry.load("http://127.0.0.1:9/models/m.tar.gz", mode="tf2")
    with pytest.raises(registry.OfflineError, match="MODEL_REGISTRY_OFFLINE"):
        registry.load("gs://bucket/models/m", mode="tf2")


@pytest.mark.postgres
def test_offline_with_a_catalog_on_the_network(postgres_url, tmp_path, reference_dir):
    """A handle resolves to what it last resolved to here; one never resolved here is an OfflineError."""
    from registry.catalog import schema

    schema.upgrade(postgres_url)
    settings = dict(database_url=postgres_url, storage_url=str(tmp_path / "artifacts"), cache_dir=tmp_path / "cache")
    online = registry.Registry(**settings, offline=False)
    online.publish(reference_dir / "tf2_image_feature_vector", name="pub/net")
    online.publish(reference_dir / "tf2_image_feature_vector", name="pub/never")
    online.set_alias("pub/net", "prod", 1)
    for handle in ("pub/net/1", "pub/net@prod"):
        online.resolve(handle)
    # Offline, with the server's URL pointing nowhere: nothing may reach it.
    unreachable = postgres_url.replace(f":{online.catalog.store.engine.url.port}/", ":9/")
    offline = registry.Registry(**{**settings, "database_url": unreachable}, offline=True)
    offline_same_identity = registry.Registry(**settings, offline=True)
    for handle in ("pub/net/1", "pub/net@prod"):
        assert callable(offline_same_identity.load(handle, mode="tf2"))
    with pytest.raises(registry.OfflineError, match="never been resolved"):
        offline_same_identity.load("pub/never/1", mode="tf2")
    with pytest.raises(registry.OfflineError):
        offline.load("pub/net/1", mode="tf2")  # another catalog identity: nothing cached for it


# --------------------------------------------------------------------------------------------- start-up


def test_resolving_a_cached_handle_imports_only_what_a_hit_needs(registry_env, reference_dir):
    """A crowd of processes waiting for one download mostly costs their start-up (bench_fetch's ``--crowd``):
    a hit (or a wait that ends in one) reads the catalog and stats the cache, so it must not pay for
    plugins (pluggy), extraction (tarfile), remote storage (fsspec), hashing, a database library, or
    ``dataclasses`` (which imports ``inspect``, ``ast`` and ``dis``: ~15 ms a process, so the records on this
    path are named tuples)."""
    registry.publish(reference_dir / "tf2_image_feature_vector", name="pub/fast")
    registry.resolve("pub/fast/1")  # cached now
    unwanted = ("pluggy", "tarfile", "hashlib", "shutil", "socket", "uuid", "fsspec", "sqlalchemy", "tensorflow",
                "dataclasses", "inspect")
    code = (f"import sys, registry; print(registry.resolve('pub/fast/1')); "
            f"print(sorted(m for m in {unwanted!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    path, loaded = result.stdout.strip().splitlines()[-2:]
    assert Path(path).is_dir() and loaded == "[]"


def test_loading_a_cached_pinned_handle_imports_no_database_library(registry_env, reference_dir):
    registry.publish(reference_dir / "tf2_image_feature_vector", name="pub/fast")
    registry.load("pub/fast/1", mode="tf2")  # cached now
    code = ("import sys, registry; registry.load('pub/fast/1', mode='tf2'); "
            "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'alembic', 'mako', 'pydantic', 'click') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
