"""A full disk is ``StorageFull`` everywhere, and leaves nothing half-written behind.

Real small filesystems (tmpfs, mounted here and unmounted after) stand for the artifact storage, the
server's cache and the client's cache, each filled by a model bigger than it during a publish, an upload
and a download.
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

import registry
from registry.errors import StorageFull

MODEL_BYTES = 3 << 20  # random float32 weights: incompressible, so the archive is this big too


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(name, size)``: a tmpfs of ``size`` bytes mounted at ``tmp_path/name``; unmounted after."""
    mounted = []

    def mount(name: str, size: int) -> Path:
        point = tmp_path / name
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture(scope="module")
def big_model(tmp_path_factory) -> Path:
    import tensorflow as tf

    root = tmp_path_factory.mktemp("big")
    module = tf.Module()
    module.w = tf.Variable(np.random.default_rng(0).standard_normal((3, MODEL_BYTES // 12)).astype(np.float32))
    module.f = tf.function(lambda x: tf.matmul(x, module.w), input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    tf.saved_model.save(module, str(root / "model"), signatures={"serving_default": module.f})
    with tarfile.open(root / "model.tar.gz", "w:gz") as tar:
        for item in sorted((root / "model").iterdir()):
            tar.add(item, arcname=item.name)
    return root / "model"


def _files(root: Path) -> list[str]:
    """Every file under ``root`` but the cache's fetch lock files (empty, kept for the next fetch)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.parent.name != "locks")


def test_storage_full_during_a_publish_is_storage_full_and_leaves_no_temporary_file(tmp_path, small_disk, big_model):
    storage = small_disk("storage", 1 << 20)
    reg = registry.Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(storage),
                            cache_dir=tmp_path / "cache")
    with pytest.raises(StorageFull) as info:
        reg.publish(big_model, name="pub/big")
    assert isinstance(info.value, OSError) and info.value.errno == 28 and str(storage) in str(info.value)
    assert _files(storage) == []  # no sha256/…/….tar.gz.<uuid>.tmp left
    assert reg.list_models() == [] and reg.cache.incomplete() == []


def test_a_temporary_file_of_a_killed_publisher_is_swept_by_the_next_publish(tmp_path, big_model, reference_dir):
    reg = registry.Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "art"),
                            cache_dir=tmp_path / "cache")
    reg.publish(reference_dir / "tf2_text_embedding", name="pub/first")
    # What a publisher SIGKILLed mid-copy leaves: a temporary file nobody holds.
    dead = tmp_path / "art" / "sha256" / "00" / ("0" * 64 + ".tar.gz.deadbeef.tmp")
    dead.parent.mkdir(parents=True)
    dead.write_bytes(b"half an archive")
    reg.publish(reference_dir / "tf2_image_feature_vector", name="pub/second")
    assert not dead.exists()
    assert not [p for p in (tmp_path / "art").rglob("*.tmp")]


def test_the_client_cache_full_during_a_download_is_storage_full_and_leaves_nothing(tmp_path, small_disk, big_model):
    settings = dict(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "art"))
    registry.Registry(**settings, cache_dir=tmp_path / "publisher-cache").publish(big_model, name="pub/big")
    cache = small_disk("cache", 1 << 20)
    reader = registry.Registry(**settings, cache_dir=cache)
    with pytest.raises(StorageFull, match="model-registry cache prune"):
        reader.resolve("pub/big/1")
    assert reader.cache.incomplete() == [] and reader.cache.entries() == []
    assert _files(cache) == []


@pytest.mark.parametrize("full", ["server cache", "storage"])
def test_a_full_disk_on_the_server_is_507_storage_full_in_client_mode_and_leaves_nothing(
        tmp_path, small_disk, big_model, start_registry_server, full):
    disk = small_disk("disk", 1 << 20)
    extra = {"MODEL_REGISTRY_CACHE_DIR": str(disk)} if full == "server cache" else {}
    server = start_registry_server(storage_url=str(disk) if full == "storage" else None, extra_env=extra)
    archive = (big_model.parent / "model.tar.gz").read_bytes()

    status, body = server.publish("pub/big", archive)
    assert status == 507 and body["type"] == "StorageFull", body
    assert str(tmp_path) not in body["message"] and str(disk) not in body["message"]  # no server path

    client = registry.Registry(server_url=server.url, token=server.admin_token, cache_dir=tmp_path / "client-cache")
    with pytest.raises(StorageFull):
        client.publish(big_model, name="pub/big")
    assert client.list_models() == []
    assert _files(disk) == []  # no upload left in the server's cache, no temporary file in its storage
