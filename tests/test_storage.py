"""Storage: archives, the content-addressed cache and artifact stores, on local disk, GCS (emulator) and HTTP.

Every failure test also checks the cache afterwards: a failed fetch must leave
no work directory, no entry and no record behind.
"""

from __future__ import annotations

import gc
import hashlib
import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from registry.errors import ArtifactError, ArtifactNotFound, IntegrityError, UnsafeArchive
from registry.storage.archive import extract_stream, pack_directory
from registry.storage.cache import ModelCache
from registry.storage.artifacts import ArtifactStore
from registry.storage.remote import open_stream

MB = 1 << 20


# --------------------------------------------------------------------------- helpers

def tree(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root``."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def pack(src: Path, dest: Path) -> tuple[Path, str, int]:
    with open(dest, "wb") as fh:
        sha, size = pack_directory(src, fh)
    return dest, sha, size


def assert_cache_holds_nothing(cache: ModelCache) -> None:
    """No entry, no record, no work directory: only the cache's empty folders and its lock files."""
    assert cache.entries() == []
    assert cache.incomplete() == []
    allowed_dirs = {cache.models, cache.refs, cache.tmp, cache.locks}
    leftovers = [p for p in cache.root.rglob("*")
                 if p not in allowed_dirs and not (p.parent == cache.locks and p.suffix == ".lock")]
    assert leftovers == [], f"the cache kept {leftovers}"


def never_opened():
    raise AssertionError("the cache opened the artifact although it holds it already")


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A small model-shaped directory: nested folders, a multi-chunk file and an empty one."""
    root = tmp_path / "model"
    (root / "variables").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "saved_model.pb").write_bytes(os.urandom(4096))
    (root / "variables" / "variables.index").write_bytes(os.urandom(300))
    (root / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(3 * MB + 17))
    (root / "assets" / "vocab.txt").write_text("the\ncat\nsat\n")
    (root / "assets" / "empty").write_bytes(b"")
    return root


@pytest.fixture
def packed(model_dir, tmp_path) -> tuple[Path, str, int]:
    return pack(model_dir, tmp_path / "model.tar.gz")


@pytest.fixture
def cache(tmp_path) -> ModelCache:
    return ModelCache(tmp_path / "cache")


# --------------------------------------------------------------------------- archives

def test_packing_is_deterministic(model_dir, tmp_path):
    _, first, size = pack(model_dir, tmp_path / "a.tar.gz")
    os.utime(model_dir / "saved_model.pb", (1, 1))
    _, second, _ = pack(model_dir, tmp_path / "b.tar.gz")
    assert first == second
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert size == (tmp_path / "a.tar.gz").stat().st_size
    assert first == hashlib.sha256((tmp_path / "a.tar.gz").read_bytes()).hexdigest()


def test_packed_archive_root_is_the_model_directory(packed, model_dir):
    archive, _, _ = packed
    with tarfile.open(archive, "r:gz") as tar:
        names = {m.name.removeprefix("./") for m in tar.getmembers() if m.isfile()}
    assert names == set(tree(model_dir))


def test_reference_archives_extract_to_their_directories(reference, tmp_path):
    # The reference archives were made with `tar -C DIR .`, the layout tfhub.dev served: './'-prefixed members.
    for name in reference.names:
        dest = tmp_path / name
        dest.mkdir()
        with open(reference.archive(name), "rb") as fh:
            result = extract_stream(fh, dest)
        assert tree(dest) == tree(reference.model_dir(name)), name
        assert result.sha256 == hashlib.sha256(reference.archive(name).read_bytes()).hexdigest()
        assert set(result.files) == set(tree(dest))


# --------------------------------------------------------------------------- round trips

def _round_trip(store: ArtifactStore, packed, model_dir, cache: ModelCache) -> str:
    archive, sha, size = packed
    uri = store.put(archive, sha)
    assert store.exists(uri)
    assert store.put(archive, sha) == uri  # the same bytes are stored once
    got_sha, path = cache.fetch(lambda: store.open(uri), source=uri, sha256=sha)
    assert got_sha == sha
    assert path == cache.get(sha)
    assert tree(path) == tree(model_dir)
    assert cache.record(sha)["archive_size"] == size
    assert cache.incomplete() == []
    assert cache.fetch(never_opened, source=uri, sha256=sha) == (sha, path)
    return uri


def test_local_round_trip(packed, model_dir, cache, tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    uri = _round_trip(store, packed, model_dir, cache)
    assert Path(uri).is_file() and Path(uri).is_relative_to(tmp_path / "store")
    assert list((tmp_path / "store").rglob("*.tmp")) == []


def test_gcs_round_trip(gcs_bucket, packed, model_dir, cache):
    store = ArtifactStore(gcs_bucket)
    uri = _round_trip(store, packed, model_dir, cache)
    assert uri.startswith(gcs_bucket + "/")


def test_gcs_missing_artifact_is_artifact_not_found(gcs_bucket, cache):
    store = ArtifactStore(gcs_bucket)
    uri = store.uri_for("0" * 64)
    with pytest.raises(ArtifactNotFound):
        cache.fetch(lambda: store.open(uri), source=uri, sha256="0" * 64)
    assert_cache_holds_nothing(cache)


@pytest.mark.parametrize("compressed", [True, False], ids=["tf-hub-format", "tar.gz-url"])
def test_http_round_trip(http_server, packed, model_dir, cache, compressed):
    archive, sha, _ = packed
    model_url = http_server.add_model("publisher/model/1", archive)
    url = f"{model_url}?tf-hub-format=compressed" if compressed else f"{model_url}.tar.gz"
    got_sha, path = cache.fetch(lambda: open_stream(url), source=model_url)
    assert got_sha == sha
    assert tree(path) == tree(model_dir)
    requests = http_server.count()
    assert requests >= 1
    assert cache.fetch(never_opened, source=model_url, sha256=sha) == (sha, path)
    assert http_server.count() == requests


def test_http_missing_model_is_artifact_not_found(http_server, cache):
    url = http_server.url("publisher/absent/1", compressed=True)
    with pytest.raises(ArtifactNotFound):
        cache.fetch(lambda: open_stream(url), source=url)
    assert_cache_holds_nothing(cache)


def test_http_server_error_is_artifact_error(http_server, packed, cache):
    archive, sha, _ = packed
    model_url = http_server.add_model("publisher/model/1", archive)
    http_server.fail("publisher/model/1", 500)
    with pytest.raises(ArtifactError):
        cache.fetch(lambda: open_stream(f"{model_url}?tf-hub-format=compressed"), source=model_url, sha256=sha)
    assert_cache_holds_nothing(cache)


# --------------------------------------------------------------------------- corrupt and interrupted

def _flip(data: bytes, offset: int) -> bytes:
    corrupt = bytearray(data)
    corrupt[offset] ^= 0xFF
    return bytes(corrupt)


@pytest.mark.parametrize("where", ["middle", "gzip-trailer"])
def test_flipped_byte_with_recorded_hash(packed, cache, tmp_path, where):
    archive, sha, size = packed
    offset = size // 2 if where == "middle" else size - 6
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_flip(archive.read_bytes(), offset))
    with pytest.raises((IntegrityError, ArtifactError)):
        cache.fetch(lambda: open(bad, "rb"), source=str(bad), sha256=sha)
    assert_cache_holds_nothing(cache)


@pytest.mark.parametrize("where", ["middle", "gzip-trailer"])
def test_flipped_byte_without_recorded_hash(reference, cache, tmp_path, where):
    # A URL handle has no recorded sha256: the gzip CRC is the only guard, and it must be checked.
    data = reference.archive("tf1_dense_two_signatures").read_bytes()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_flip(data, len(data) // 2 if where == "middle" else len(data) - 6))
    with pytest.raises(ArtifactError):
        cache.fetch(lambda: open(bad, "rb"), source=str(bad))
    assert_cache_holds_nothing(cache)


def test_flipped_byte_over_http(http_server, packed, cache):
    archive, sha, _ = packed
    model_url = http_server.add_model("publisher/model/1", archive)
    http_server.corrupt("publisher/model/1")
    with pytest.raises((IntegrityError, ArtifactError)):
        cache.fetch(lambda: open_stream(f"{model_url}?tf-hub-format=compressed"), source=model_url, sha256=sha)
    assert_cache_holds_nothing(cache)


@pytest.mark.parametrize("recorded", [True, False], ids=["with-sha256", "without-sha256"])
def test_truncated_archive(packed, cache, tmp_path, recorded):
    archive, sha, size = packed
    short = tmp_path / "short.tar.gz"
    short.write_bytes(archive.read_bytes()[: size // 2])
    with pytest.raises((IntegrityError, ArtifactError) if recorded else ArtifactError):
        cache.fetch(lambda: open(short, "rb"), source=str(short), sha256=sha if recorded else None)
    assert_cache_holds_nothing(cache)


@pytest.mark.parametrize("recorded", [True, False], ids=["with-sha256", "without-sha256"])
def test_interrupted_http_download(http_server, packed, cache, recorded):
    archive, sha, size = packed
    model_url = http_server.add_model("publisher/model/1", archive)
    http_server.truncate("publisher/model/1", at=size // 2)
    with pytest.raises(ArtifactError):
        cache.fetch(lambda: open_stream(f"{model_url}?tf-hub-format=compressed"), source=model_url,
                    sha256=sha if recorded else None)
    assert_cache_holds_nothing(cache)
    # The same fetch succeeds once the server recovers: nothing stale stands in the way.
    http_server.clear_faults()
    assert cache.fetch(lambda: open_stream(f"{model_url}?tf-hub-format=compressed"), source=model_url)[0] == sha


def test_not_an_archive(cache, tmp_path):
    page = tmp_path / "page.html"
    page.write_bytes(b"<html><body>a model page, not an archive</body></html>")
    with pytest.raises(ArtifactError):
        cache.fetch(lambda: open(page, "rb"), source=str(page))
    assert_cache_holds_nothing(cache)


def test_directory_without_completion_record_is_not_trusted(packed, model_dir, cache):
    archive, sha, _ = packed
    stale = cache.models / sha
    stale.mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"half-written by a killed process")
    assert cache.get(sha) is None
    _, path = cache.fetch(lambda: open(archive, "rb"), source=str(archive), sha256=sha)
    assert path == stale
    assert tree(path) == tree(model_dir)


# --------------------------------------------------------------------------- hostile archives

def _member(name: str, type_: bytes = tarfile.REGTYPE, data: bytes = b"", linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    info.size = len(data) if type_ == tarfile.REGTYPE else 0
    info.mode = 0o644
    if type_ in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, data


def _hostile(tmp_path: Path, kind: str) -> Path:
    outside = tmp_path / "outside"
    members = {
        "dotdot": [_member("../evil.txt", data=b"escaped")],
        "nested-dotdot": [_member("variables/../../evil.txt", data=b"escaped")],
        "absolute": [_member(str(outside / "evil.txt"), data=b"escaped")],
        "symlink": [_member("variables/variables.index", tarfile.SYMTYPE, linkname="/etc/passwd")],
        "symlink-dir": [_member("variables", tarfile.SYMTYPE, linkname=str(outside)),
                        _member("variables/evil.txt", data=b"escaped")],
        "hardlink": [_member("variables/variables.index", tarfile.LNKTYPE, linkname="/etc/passwd")],
        "char-device": [_member("variables/null", tarfile.CHRTYPE)],
        "block-device": [_member("variables/disk", tarfile.BLKTYPE)],
        "fifo": [_member("variables/pipe", tarfile.FIFOTYPE)],
    }[kind]
    # A harmless member first, so the refusal comes after something was already written.
    members.insert(0, _member("saved_model.pb", data=b"\x08\x01" * 100))
    path = tmp_path / f"{kind}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


HOSTILE = ["dotdot", "nested-dotdot", "absolute", "symlink", "symlink-dir", "hardlink",
           "char-device", "block-device", "fifo"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_archive_is_refused(tmp_path, cache, kind):
    archive = _hostile(tmp_path, kind)
    (tmp_path / "outside").mkdir()
    with pytest.raises(UnsafeArchive):
        cache.fetch(lambda: open(archive, "rb"), source=str(archive))
    assert list((tmp_path / "outside").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()
    assert not (cache.root / "evil.txt").exists()
    assert_cache_holds_nothing(cache)


def test_hostile_archive_over_http_is_refused(http_server, tmp_path, cache):
    url = http_server.add_model("publisher/evil/1", _hostile(tmp_path, "dotdot"))
    with pytest.raises(UnsafeArchive):
        cache.fetch(lambda: open_stream(f"{url}?tf-hub-format=compressed"), source=url)
    assert_cache_holds_nothing(cache)


def test_unsafe_archive_is_an_artifact_error():
    # Callers that handle ArtifactError handle hostile archives too.
    assert issubclass(UnsafeArchive, ArtifactError)


# --------------------------------------------------------------------------- bounded memory

@pytest.mark.slow
def test_pack_and_extract_stream_with_bounded_memory(tmp_path):
    size = 200 * MB
    src = tmp_path / "big-model"
    (src / "variables").mkdir(parents=True)
    (src / "saved_model.pb").write_bytes(b"\x08\x01" * 64)
    block = os.urandom(MB)
    with open(src / "variables" / "variables.data-00000-of-00001", "wb") as fh:
        for i in range(size // MB):
            fh.write(block[i % 7:] + block[: i % 7])  # shifted copies: incompressible enough, cheap to make
    archive = tmp_path / "big.tar.gz"
    dest = tmp_path / "extracted"
    dest.mkdir()

    gc.collect()
    tracemalloc.start()
    try:
        with open(archive, "wb") as fh:
            sha, archive_size = pack_directory(src, fh)
        _, pack_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with open(archive, "rb") as fh:
            result = extract_stream(fh, dest, expected_sha256=sha)
        _, extract_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.sha256 == sha and result.size == archive_size
    assert result.files["variables/variables.data-00000-of-00001"]["size"] == size
    assert (dest / "variables" / "variables.data-00000-of-00001").stat().st_size == size
    limit = 32 * MB  # a few read buffers; the file is 200 MB
    assert pack_peak < limit, f"packing peaked at {pack_peak / MB:.1f} MB"
    assert extract_peak < limit, f"extracting peaked at {extract_peak / MB:.1f} MB"
