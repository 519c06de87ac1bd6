"""Bad input gets a clear, typed error and loses nothing: handles, unknown names, corrupt and hostile archives."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

import registry
from registry.storage.cache import ModelCache


@pytest.fixture
def published(registry_env, reference_dir):
    return registry.publish(reference_dir / "tf2_image_feature_vector", name="bad/input")


def _fresh_cache_registry(tmp_path) -> registry.Registry:
    return registry.Registry(cache_dir=tmp_path / "fresh-cache")


def _assert_cache_clean(cache: ModelCache, sha256: str) -> None:
    assert cache.get(sha256) is None
    assert cache.incomplete() == []


@pytest.mark.parametrize("handle", ["", "nonsense", "Bad/Name", "p/m/0", "p/m/1/2", "p/m@", 42])
def test_wrong_handles(handle, registry_env):
    with pytest.raises(registry.HandleError):
        registry.load(handle)


def test_unknown_model_version_and_alias(published):
    with pytest.raises(registry.ModelNotFound, match="bad/unknown"):
        registry.load("bad/unknown")
    with pytest.raises(registry.VersionNotFound, match="version 7"):
        registry.load("bad/input/7")
    with pytest.raises(registry.VersionNotFound, match="staging"):
        registry.load("bad/input@staging")
    with pytest.raises(registry.ArtifactNotFound):
        registry.load("./no/such/dir")


def test_a_flipped_byte_in_storage_is_an_integrity_error(published, tmp_path):
    artifact = Path(published.artifact_uri)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    reader = _fresh_cache_registry(tmp_path)
    with pytest.raises((registry.IntegrityError, registry.ArtifactError)) as info:
        reader.load(published.handle, mode="tf2")
    assert isinstance(info.value, registry.IntegrityError), info.value  # the bytes differ from the record
    _assert_cache_clean(reader.cache, published.sha256)


def test_a_truncated_artifact_is_an_artifact_error(published, tmp_path):
    artifact = Path(published.artifact_uri)
    artifact.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 2])
    reader = _fresh_cache_registry(tmp_path)
    with pytest.raises(registry.ArtifactError, match="truncated|interrupted"):
        reader.load(published.handle, mode="tf2")
    _assert_cache_clean(reader.cache, published.sha256)


def test_an_interrupted_download_leaves_nothing_and_a_retry_succeeds(http_server, registry_env, reference_dir):
    url = http_server.add_model("models/fv/1", reference_dir / "tf2_image_feature_vector.tar.gz")
    http_server.truncate("models/fv/1.tar.gz")
    reg = registry.Registry()
    with pytest.raises(registry.ArtifactError):
        reg.load(url, mode="tf2")
    assert reg.cache.entries() == [] and reg.cache.incomplete() == []
    http_server.clear_faults()
    assert reg.load(url, mode="tf2") is not None


def _archive(members) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


HOSTILE = {
    "dotdot": [_file("saved_model.pb"), _file("../escape.txt")],
    "absolute": [_file("saved_model.pb"), _file("/tmp/registry-escape.txt")],
    "symlink": [_file("saved_model.pb"), _link("variables", "/etc")],
    "hardlink": [_file("saved_model.pb"), _link("evil", "/etc/passwd", tarfile.LNKTYPE)],
    "device": [_file("saved_model.pb"), (lambda i: (setattr(i, "type", tarfile.CHRTYPE), (i, None))[1])(
        tarfile.TarInfo("dev"))],
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_archives_are_refused_on_publish(kind, registry_env, tmp_path):
    archive = tmp_path / f"{kind}.tar.gz"
    archive.write_bytes(_archive(HOSTILE[kind]))
    with pytest.raises(registry.UnsafeArchive):
        registry.publish(archive, name="bad/hostile")
    assert registry.list_models() == []
    assert not any(p.is_file() for p in registry_env.storage_dir.rglob("*"))
    assert not Path("/tmp/registry-escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()
    assert registry.Registry().cache.incomplete() == []


@pytest.mark.parametrize("kind", ["dotdot", "symlink"])
def test_hostile_archives_are_refused_over_http(kind, http_server, registry_env):
    url = http_server.add_model(f"evil/{kind}", _archive(HOSTILE[kind]))
    reg = registry.Registry()
    with pytest.raises(registry.UnsafeArchive):
        reg.load(url)
    assert reg.cache.entries() == [] and reg.cache.incomplete() == []


def test_not_an_archive(registry_env, tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not gzip at all" * 100)
    with pytest.raises(registry.ArtifactError, match="not a readable"):
        registry.publish(junk, name="bad/junk")
    with pytest.raises(registry.ArtifactError):
        registry.load(str(junk))


def test_a_directory_that_is_no_model(registry_env, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(registry.FormatError, match="not a model directory"):
        registry.publish(tmp_path / "empty", name="bad/empty")
    assert registry.list_models() == []


def test_an_unknown_parent_is_refused_before_any_work(registry_env, reference_dir):
    with pytest.raises(registry.ModelNotFound):
        registry.publish(reference_dir / "tf2_text_embedding", name="bad/child", parent="bad/nobody/1")
    with pytest.raises(registry.HandleError):
        registry.publish(reference_dir / "tf2_text_embedding", name="bad/child", parent="./some/path")
    assert registry.list_models() == []
