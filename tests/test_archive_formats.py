"""A model archive read from a URL or a path may be any tar tensorflow_hub read: gzip, bz2, xz or uncompressed.

tensorflow_hub 0.15 opened a download with ``tarfile.open(mode="r|*")``, which tells the
compression from the first bytes (never the URL's suffix or the Content-Type), and took
handles ending in ``.tar``, ``.tar.gz`` or ``.tgz`` for archives. Here each compression of
a real model, served over HTTP on 127.0.0.1, must load and compute what the gzip one
computes; and each keeps the strict reader's guarantees: bombs refused, the end of the
compressed stream verified, trailing bytes refused, members checked, the raw bytes hashed.
Publishing still stores gzip only.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import registry
from registry.config import ArchiveLimits, Settings
from registry.errors import ArchiveTooLarge, ArtifactError, CorruptArchive, IntegrityError, UnsafeArchive
from registry.handles import parse
from registry.storage.archive import extract_stream
from registry.storage.cache import ModelCache
from registry.storage.tarstream import sniff
from tests.reference_checks import check_tf2_mode
from tests.test_archive_faults import END, assert_nothing_left, gz, header, member, model, refuse

MB = 1 << 20
NOT_A_TAR = re.escape("not a tar archive (gzip, bz2, xz or uncompressed)")


def compress(tar: bytes, kind: str) -> bytes:
    """``tar`` as ``kind`` compresses it: ``gzip``, ``bz2``, ``xz`` or ``none``."""
    if kind == "gzip":
        return gz(tar)
    if kind == "bz2":
        return bz2.compress(tar, 9)
    if kind == "xz":
        return lzma.compress(tar, format=lzma.FORMAT_XZ)
    assert kind == "none"
    return tar


SUFFIX = {"gzip": ".tar.gz", "bz2": ".tar.bz2", "xz": ".tar.xz", "none": ".tar"}
OTHERS = ["none", "bz2", "xz"]
STREAMED = ["bz2", "xz"]


@pytest.fixture
def cache(tmp_path) -> ModelCache:
    return ModelCache(tmp_path / "cache")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def _outputs(loaded, inputs: dict) -> dict:
    """Every signature's outputs for the recorded inputs, as numpy arrays."""
    got = {}
    for signature, feeds in inputs.items():
        if signature == "__call__":
            (value,) = feeds.values()
            got[signature] = {"default": np.asarray(loaded(tf.constant(value)))}
        else:
            result = loaded.signatures[signature](**{k: tf.constant(v) for k, v in feeds.items()})
            got[signature] = {k: np.asarray(v) for k, v in result.items()}
    return got


# --------------------------------------------------------------------------- real models over HTTP


@pytest.mark.parametrize("name", ["tf2_text_embedding", "tf1_dense_two_signatures"])
def test_each_compression_of_a_model_served_over_http_loads_like_the_gzip_one(name, http_server, registry_env,
                                                                              reference, reference_dir):
    tar = gzip.decompress(reference.archive(name).read_bytes())
    inputs, outputs = reference.expected(name)
    fmt = reference.manifest[name]["format"]
    gzip_url = http_server.add_file(f"files/{name}.tar.gz", reference.archive(name))
    want = _outputs(registry.load(gzip_url, mode="tf2"), inputs)
    want_tree = _tree(registry.resolve(gzip_url))
    for kind in OTHERS:
        data = compress(tar, kind)
        assert sniff(data[:512]) == kind
        url = http_server.add_file(f"files/{name}{SUFFIX[kind]}", data)
        assert parse(url).is_archive and parse(url).download_url() == url  # asked for as it is, no query
        http_server.reset_log()
        loaded = registry.load(url, mode="tf2")
        assert http_server.count(method="GET") == 1
        assert http_server.requests[-1].query == ""
        got = _outputs(loaded, inputs)
        assert got.keys() == want.keys()
        for signature in want:
            assert got[signature].keys() == want[signature].keys()
            for key in want[signature]:
                np.testing.assert_array_equal(got[signature][key], want[signature][key],
                                              err_msg=f"{kind}: {signature}:{key}")
        check_tf2_mode(loaded, fmt, inputs, outputs)
        assert _tree(registry.resolve(url)) == want_tree


def test_the_compression_is_told_from_the_bytes_not_the_name(http_server, registry_env, reference):
    """The repro of issue 9: an uncompressed tar named .tgz; and a tfhub-style model URL answering with xz."""
    name = "tf2_text_embedding"
    tar = gzip.decompress(reference.archive(name).read_bytes())
    inputs, outputs = reference.expected(name)
    plain_url = http_server.add_file("e2e/test_module.tgz", tar)
    check_tf2_mode(registry.load(plain_url, mode="tf2"), "tf2_saved_model", inputs, outputs)
    xz_url = http_server.add_model("models/emb/1", compress(tar, "xz"))  # served for ?tf-hub-format=compressed
    check_tf2_mode(registry.load(xz_url, mode="tf2"), "tf2_saved_model", inputs, outputs)
    assert http_server.requests[-1].query == "tf-hub-format=compressed"


@pytest.mark.parametrize("kind", OTHERS)
def test_a_local_path_of_each_compression_resolves(kind, registry_env, reference, tmp_path):
    name = "tf2_image_feature_vector"
    tar = gzip.decompress(reference.archive(name).read_bytes())
    path = tmp_path / f"m{SUFFIX[kind]}"
    path.write_bytes(compress(tar, kind))
    assert parse(str(path)).is_archive
    resolved = registry.resolve(str(path))
    assert _tree(resolved) == _tree(reference.model_dir(name))
    check_tf2_mode(registry.load(str(path), mode="tf2"), "tf2_saved_model", *reference.expected(name))


@pytest.mark.parametrize("kind", OTHERS)
def test_publishing_keeps_artifacts_gzip(kind, registry_env, reference, tmp_path):
    tar = gzip.decompress(reference.archive("tf2_text_embedding").read_bytes())
    path = tmp_path / f"m{SUFFIX[kind]}"
    path.write_bytes(compress(tar, kind))
    with pytest.raises(CorruptArchive, match="only gzip-compressed"):
        registry.publish(path, name="formats/emb")
    assert list(registry_env.storage_dir.rglob("*.tar.gz")) == []
    record = registry.publish(reference.archive("tf2_text_embedding"), name="formats/emb")
    assert Path(record.artifact_uri).read_bytes()[:2] == b"\x1f\x8b"


# --------------------------------------------------------------------------- the stream's own checks


@pytest.mark.parametrize("kind", ["gzip", *OTHERS])
def test_the_hash_is_of_the_bytes_as_received(kind, cache):
    data = compress(model(member("variables/v.index", b"i" * 5000)), kind)
    sha, path = cache.fetch(lambda: io.BytesIO(data), source=f"m{SUFFIX[kind]}")
    assert sha == hashlib.sha256(data).hexdigest()
    assert (path / "variables" / "v.index").read_bytes() == b"i" * 5000


def test_a_pre_posix_tar_without_magic_is_read_uncompressed(cache):
    v7 = header(b"saved_model.pb", 1400, magic=bytes(8)) + b"\x08\x01" * 700 + bytes(-1400 % 512) + END
    assert sniff(v7) == "none"
    _, path = cache.fetch(lambda: io.BytesIO(v7), source="v7.tar")
    assert (path / "saved_model.pb").stat().st_size == 1400


@pytest.mark.parametrize("data", [b"this is not any archive at all" * 40, b"PK\x03\x04" + bytes(600),
                                  b"\x28\xb5\x2f\xfd" + bytes(600), b"BZh0" + bytes(600), b"\x1f", bytes(4096)],
                         ids=["text", "zip", "zstd", "bz2-bad-level", "one-byte", "zeros"])
def test_an_unknown_format_is_a_corrupt_archive_saying_so(data, cache):
    assert sniff(data) is None
    error = refuse(cache, data, CorruptArchive, NOT_A_TAR)
    assert "not a readable" in str(error)


def test_an_unknown_format_over_http_is_a_corrupt_archive(http_server, registry_env):
    url = http_server.add_file("files/junk.tar", b"<html>not a model</html>" * 50)
    reg = registry.Registry()
    with pytest.raises(CorruptArchive, match=r"not a tar archive \(gzip, bz2, xz or uncompressed\)"):
        reg.load(url)
    assert reg.cache.entries() == [] and reg.cache.incomplete() == []


def test_an_empty_stream_is_refused(cache):
    refuse(cache, b"", CorruptArchive, "empty")


@pytest.mark.parametrize("kind", STREAMED)
@pytest.mark.parametrize("cut", ["last-byte", "half", "header-only"])
def test_a_truncated_stream_is_refused(kind, cut, cache):
    data = compress(model(member("variables/v.data", bytes(range(256)) * 400)), kind)
    keep = {"last-byte": len(data) - 1, "half": len(data) // 2, "header-only": 12}[cut]
    refuse(cache, data[:keep], CorruptArchive, "truncated")


@pytest.mark.parametrize("kind", STREAMED)
def test_bytes_after_the_stream_are_refused(kind, cache):
    data = compress(model(), kind)
    refuse(cache, data + b"not compressed data", CorruptArchive, "trailing garbage")
    refuse(cache, data + bytes(64) + b"\x01", CorruptArchive, "trailing garbage")


@pytest.mark.parametrize("kind", STREAMED)
def test_a_corrupt_stream_is_refused(kind, cache):
    data = bytearray(compress(model(member("variables/v.data", bytes(range(256)) * 400)), kind))
    data[len(data) // 2] ^= 0xFF
    refuse(cache, bytes(data), CorruptArchive, "invalid")


@pytest.mark.parametrize("kind", STREAMED)
def test_a_corrupt_stream_with_a_recorded_sha256_is_an_integrity_error(kind, cache):
    good = compress(model(member("variables/v.data", bytes(range(256)) * 400)), kind)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(IntegrityError):
        cache.fetch(lambda: io.BytesIO(bytes(bad)), source="recorded", sha256=hashlib.sha256(good).hexdigest(),
                    size=len(good))
    assert_nothing_left(cache)


@pytest.mark.parametrize("kind", STREAMED)
def test_several_streams_and_zero_padding_are_one_archive(kind, cache):
    tar = model(member("variables/v.index", b"i" * 5000))
    data = compress(tar[:3000], kind) + bytes(8) + compress(tar[3000:], kind) + bytes(100)
    _, path = cache.fetch(lambda: io.BytesIO(data), source=f"two-streams{SUFFIX[kind]}")
    assert (path / "variables" / "v.index").read_bytes() == b"i" * 5000


def test_an_uncompressed_tar_keeps_the_tar_checks(cache):
    refuse(cache, model() + b"\x00" * 512 + b"trailing garbage" + bytes(496), CorruptArchive, "trailing")
    refuse(cache, model()[:-1024], CorruptArchive, "end-of-archive")
    refuse(cache, model(member("variables/v.data", b"x" * 3000))[:2500], CorruptArchive, "ends inside")
    tar = bytearray(model(member("variables/v.index", b"x" * 600)))
    tar[2048 + 10] ^= 0x55
    refuse(cache, bytes(tar), CorruptArchive, "bad tar header")
    _, path = cache.fetch(lambda: io.BytesIO(model() + bytes(8192)), source="padded.tar")
    assert (path / "saved_model.pb").is_file()


@pytest.mark.parametrize("kind", OTHERS)
def test_member_checks_hold_for_every_compression(kind, cache):
    refuse(cache, compress(model(member("../../evil", b"x")), kind), UnsafeArchive, "outside")
    refuse(cache, compress(model(member("variables/v", kind=b"2", linkname=b"/etc/passwd")), kind), UnsafeArchive,
           "link")
    refuse(cache, compress(model(member("a\nb", b"x")), kind), UnsafeArchive, "control")
    if kind == "none":  # an all-zero tar has no header to tell it by
        refuse(cache, END, CorruptArchive, NOT_A_TAR)
    else:
        refuse(cache, compress(END, kind), ArtifactError, "no files")


# --------------------------------------------------------------------------- bombs and bounds


def _zeros_member_header(expanded: int) -> bytes:
    return header(b"variables/variables.data-00000-of-00001", expanded)


@pytest.mark.parametrize("kind", STREAMED)
def test_a_4_gb_bomb_of_concatenated_streams_is_refused_after_reading_little(kind, cache):
    """Identical streams of 16 MiB of zeros each, repeated: under a MB for 4 GiB of tar."""
    block = compress(bytes(16 * MB), kind) if kind == "bz2" else lzma.compress(bytes(16 * MB), preset=0)
    count = 256
    bomb = compress(_zeros_member_header(count * 16 * MB), kind) + block * count + compress(END, kind)
    assert len(bomb) < 4 * MB
    error = refuse(cache, bomb, ArchiveTooLarge, "decompression bomb")
    assert "MODEL_REGISTRY_MAX_EXPANSION_RATIO" in str(error)


@pytest.mark.parametrize("kind", STREAMED)
def test_a_single_stream_bomb_is_refused_by_the_expansion_ratio(kind, tmp_path):
    expanded = 16 * MB
    tar = _zeros_member_header(expanded) + bytes(expanded) + END
    bomb = compress(tar, kind) if kind == "bz2" else lzma.compress(tar, preset=0)
    limits = ArchiveLimits(ratio_grace_bytes=1 * MB, max_ratio=50)
    (tmp_path / "out").mkdir()
    with pytest.raises(ArchiveTooLarge, match="more than 50 times"):
        extract_stream(io.BytesIO(bomb), tmp_path / "out", source=f"bomb{SUFFIX[kind]}", limits=limits)
    # the same bytes within generous bounds are a well-formed archive
    (tmp_path / "ok").mkdir()
    result = extract_stream(io.BytesIO(bomb), tmp_path / "ok", source="ok", limits=ArchiveLimits())
    assert result.files["variables/variables.data-00000-of-00001"]["size"] == expanded


@pytest.mark.parametrize("kind", OTHERS)
def test_the_total_size_bound_holds_for_every_compression(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_REGISTRY_MAX_EXTRACTED_BYTES", str(1 * MB))
    cache = ModelCache.from_settings(Settings.from_env()._replace(cache_dir=tmp_path / "cache"))
    error = refuse(cache, compress(model(member("variables/v.data", bytes(2 * MB))), kind), ArchiveTooLarge)
    assert "MODEL_REGISTRY_MAX_EXTRACTED_BYTES" in str(error)


# --------------------------------------------------------------------------- handles


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"])
def test_archive_suffixes_are_archives_as_tensorflow_hub_took_them(suffix):
    url = parse(f"https://host/models/m{suffix}")
    assert url.is_archive
    assert url.download_url() == f"https://host/models/m{suffix}"
    assert parse(f"./models/m{suffix}").is_archive
    assert not parse("https://host/models/m").is_archive
    assert parse("https://host/models/m").download_url() == "https://host/models/m?tf-hub-format=compressed"
