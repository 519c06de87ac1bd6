"""A cached model is checked on every use: tampered entries are fetched again, or refused, never loaded silently.

Each tampering an operator (or a bad disk) can do to an extracted entry — valid weights of another model
put in place with their times preserved, flipped bytes, an emptied completion record, a missing file, an
extra file — is tried twice: on a catalog version (its bytes can be fetched again: the load must give the
published model's outputs) and on a URL resolved offline (nothing to fetch: the load must be a typed
error naming ``cache verify``/``prune``). Every cache command must then see the entry and remove it.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from click.testing import CliRunner

import registry
from registry.cli import cli
from registry.errors import ConfigError, IntegrityError, OfflineError

TAMPERINGS = ("other_weights", "flipped_bytes", "empty_record", "missing_file", "extra_file")
INPUT = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)


def _save(path: Path, weights: list[list[float]]) -> Path:
    import tensorflow as tf

    class Linear(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.array(weights, dtype=np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.w)

    module = Linear()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Two SavedModels of one structure: the same files, of the same sizes, with different weights."""
    root = tmp_path_factory.mktemp("models")
    a = _save(root / "a", [[1.0], [1.0], [1.0]])
    b = _save(root / "b", [[5.0], [-1.0], [2.0]])
    with tarfile.open(root / "a.tar.gz", "w:gz") as tar:
        for item in sorted(a.iterdir()):
            tar.add(item, arcname=item.name)
    return {"a": a, "b": b, "a_archive": root / "a.tar.gz"}


def _output(model) -> float:
    return float(np.asarray(model.signatures["serving_default"](x=INPUT)["output_0"]).ravel()[0])


def _tamper(entry: Path, how: str, models: dict[str, Path]) -> None:
    record = entry.with_name(entry.name + ".json")
    if how == "other_weights":  # a valid checkpoint of the same shapes, its times preserved (cp -p)
        for rel in ("variables/variables.data-00000-of-00001", "variables/variables.index"):
            assert (entry / rel).stat().st_size == (models["b"] / rel).stat().st_size
            os.chmod(entry / rel, 0o644)
            shutil.copy2(models["b"] / rel, entry / rel)
    elif how == "flipped_bytes":  # one bit, in place, with the file's times put back
        target = entry / "variables/variables.data-00000-of-00001"
        before = target.stat()
        os.chmod(target, 0o644)
        data = bytearray(target.read_bytes())
        data[-1] ^= 0x01
        target.write_bytes(bytes(data))
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif how == "empty_record":
        record.write_text("")
    elif how == "missing_file":
        (entry / "variables/variables.index").unlink()
    elif how == "extra_file":
        (entry / "variables/notes.txt").write_text("left here by hand")
    else:
        raise AssertionError(how)


def _registry(tmp_path: Path, **extra) -> registry.Registry:
    return registry.Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "art"),
                             cache_dir=tmp_path / "cache", **extra)


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_tampered_catalog_version_is_fetched_again_never_loaded(tmp_path, models, how):
    reg = _registry(tmp_path)
    version = reg.publish(models["a"], name="pub/linear")
    assert _output(reg.load("pub/linear/1", mode="tf2")) == 6.0
    _tamper(Path(reg.resolve("pub/linear/1")), how, models)

    assert _output(reg.load("pub/linear/1", mode="tf2")) == 6.0  # model A's output, from a fresh copy
    assert reg.cache.verify() == {} and reg.cache.corrupt() == []
    assert reg.cache.checked(version.sha256) is not None


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_tampered_entry_that_cannot_be_fetched_again_is_a_typed_error_every_cache_command_handles(
        tmp_path, models, how, http_server, monkeypatch):
    shutil.copy(models["a_archive"], http_server.root / "linear.tar.gz")
    url = f"{http_server.base_url}/linear.tar.gz"
    online = _registry(tmp_path)
    assert _output(online.load(url, mode="tf2")) == 6.0
    entry = Path(online.resolve(url))
    _tamper(entry, how, models)

    offline = _registry(tmp_path, offline=True)
    with pytest.raises((IntegrityError, OfflineError)) as info:
        offline.load(url, mode="tf2")
    if how == "empty_record":  # an unreadable record: the entry is not there at all for a load
        assert "not in the local cache" in str(info.value)
    else:
        assert isinstance(info.value, IntegrityError)
        assert "cache verify" in str(info.value) and "cache prune --corrupt" in str(info.value)

    sha = entry.name
    for name, value in (("MODEL_REGISTRY_DATABASE_URL", f"sqlite:///{tmp_path / 'catalog.db'}"),
                        ("MODEL_REGISTRY_STORAGE_URL", str(tmp_path / "art")),
                        ("MODEL_REGISTRY_CACHE_DIR", str(tmp_path / "cache"))):
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["cache", "ls", "--json"]).output)
    if how == "empty_record":
        assert [c["sha256"] for c in listed["corrupt"]] == [sha] and listed["entries"] == []
        assert "CORRUPT" in runner.invoke(cli, ["cache", "ls"]).output
    else:
        assert [e["sha256"] for e in listed["entries"]] == [sha]
    verified = runner.invoke(cli, ["cache", "verify"])
    assert verified.exit_code == 1 and f"{sha}: CORRUPT" in verified.output
    pruned = runner.invoke(cli, ["cache", "prune", "--corrupt"])
    assert pruned.exit_code == 0 and sha in pruned.output
    assert not entry.exists() and not entry.with_name(sha + ".json").exists()
    listed = json.loads(runner.invoke(cli, ["cache", "ls", "--json"]).output)
    assert listed["entries"] == listed["corrupt"] == []

    # Online again, the bytes are fetched afresh.
    assert _output(_registry(tmp_path).load(url, mode="tf2")) == 6.0


@pytest.mark.parametrize("command", [["cache", "prune"], ["cache", "prune", "--all"]])
def test_every_prune_removes_an_entry_whose_record_is_unreadable(tmp_path, models, monkeypatch, command):
    reg = _registry(tmp_path)
    reg.publish(models["a"], name="pub/linear")
    entry = Path(reg.resolve("pub/linear/1"))
    entry.with_name(entry.name + ".json").write_bytes(b"\xff\xfe not json")
    monkeypatch.setenv("MODEL_REGISTRY_CACHE_DIR", str(tmp_path / "cache"))
    assert reg.cache.corrupt() == [entry.name] and reg.cache.get(entry.name) is None
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0 and entry.name in result.output
    assert not entry.exists() and reg.cache.corrupt() == []


def test_a_copied_cache_is_rehashed_once_and_kept(tmp_path, models):
    """New times with the same bytes (a cache copied or restored elsewhere) are not damage: re-hashed, re-recorded."""
    reg = _registry(tmp_path)
    version = reg.publish(models["a"], name="pub/linear")
    reg.resolve("pub/linear/1")
    shutil.copytree(tmp_path / "cache", tmp_path / "copy")  # copy2: same mtimes, new ctimes
    copy = registry.Registry(database_url=reg.settings.database_url, storage_url=reg.settings.storage_url,
                             cache_dir=tmp_path / "copy")
    record_path = tmp_path / "copy" / "models" / (version.sha256 + ".json")
    before = json.loads(record_path.read_text())["stats"]
    assert copy.cache.checked(version.sha256) == tmp_path / "copy" / "models" / version.sha256
    after = json.loads(record_path.read_text())["stats"]
    assert after != before and after == json.loads(record_path.read_text())["stats"]
    assert _output(copy.load("pub/linear/1", mode="tf2")) == 6.0


def test_the_hash_level_rehashes_every_file_on_every_use(tmp_path, models, monkeypatch):
    monkeypatch.setenv("MODEL_REGISTRY_CACHE_CHECK", "hash")
    from registry.config import Settings

    assert Settings.from_env().cache_check == "hash"
    monkeypatch.setenv("MODEL_REGISTRY_CACHE_CHECK", "nonsense")
    with pytest.raises(ConfigError, match="MODEL_REGISTRY_CACHE_CHECK='nonsense' is not valid"):
        Settings.from_env()  # an unknown level is a bad setting, as every other one: never "no check"
    monkeypatch.setenv("MODEL_REGISTRY_CACHE_CHECK", "hash")
    reg = _registry(tmp_path, settings=Settings.from_env()._replace(cache_check="hash"))
    assert reg.cache.check == "hash"
    version = reg.publish(models["a"], name="pub/linear")
    entry = Path(reg.resolve("pub/linear/1"))
    _tamper(entry, "flipped_bytes", models)
    with pytest.raises(IntegrityError, match="content changed"):
        reg.cache.checked(version.sha256)
    with pytest.raises(IntegrityError, match="content changed"):
        _registry(tmp_path).cache.checked(version.sha256, full=True)
