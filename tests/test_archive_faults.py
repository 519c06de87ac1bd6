"""Every malformed archive is refused with its own typed error, and nothing stays behind.

The archives are built byte by byte (a tar header writer below, gzip by hand
where the fault is in the compression), so each one has exactly the fault it
names; the 4 GB gzip bomb is a few MB of repeated deflate blocks, never 4 GB
of anything. Well-formed archives from other writers (GNU tar's long names,
PAX headers, several gzip members) must still extract.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from registry.config import Settings
from registry.errors import ArchiveTooLarge, ArtifactError, CorruptArchive, IntegrityError, UnsafeArchive
from registry.storage.archive import pack_directory
from registry.storage.cache import ModelCache

MB = 1 << 20
POSIX = b"ustar\x0000"
GNU = b"ustar  \x00"
END = bytes(1024)


# --------------------------------------------------------------------------- building archives


def header(name: bytes, size: int = 0, kind: bytes = b"0", *, magic: bytes = POSIX, linkname: bytes = b"",
           declared: int | None = None) -> bytes:
    """One 512-byte tar header with a correct checksum (``declared`` overrides the size field)."""
    block = bytearray(512)
    block[0:len(name[:100])] = name[:100]
    block[100:108] = b"0000644\x00"
    block[108:116] = block[116:124] = b"0000000\x00"
    block[124:136] = f"{size if declared is None else declared:011o}\x00".encode()
    block[136:148] = b"00000000000\x00"
    block[156:157] = kind
    block[157:157 + len(linkname)] = linkname
    block[257:265] = magic
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}\x00 ".encode()
    return bytes(block)


def member(name: str | bytes, data: bytes = b"", kind: bytes = b"0", **options) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    return header(raw, len(data), kind, **options) + data + bytes(-len(data) % 512)


def pax(records: dict[str, bytes]) -> bytes:
    """A PAX extended header ('x') applying ``records`` to the next member."""
    body = b""
    for key, value in records.items():
        text = b" " + key.encode() + b"=" + value + b"\n"
        length = len(text) + 1
        while len(str(length)) + len(text) != length:
            length = len(str(length)) + len(text)
        body += str(length).encode() + text
    return member("PaxHeader", body, b"x")


def gz(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def model(*members: bytes) -> bytes:
    """A well-formed tar stream (end-of-archive included) of a saved_model.pb and ``members``."""
    return member("saved_model.pb", b"\x08\x01" * 700) + b"".join(members) + END


def gzip_bomb(expanded: int) -> bytes:
    """A valid gzip of one tar member of ``expanded`` zero bytes, built from one repeated deflate block.

    After a full flush, deflate's output for a MiB of zeros no longer depends on what came
    before, so the same few hundred bytes repeat: ~4 MB of gzip for 4 GB of zeros.
    """
    from isal import isal_zlib

    head = header(b"variables/variables.data-00000-of-00001", expanded)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = [deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)]
    zeros = bytes(MB)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH) == block  # the block is independent
    body += [block] * (expanded // MB)
    body.append(deflate.compress(END) + deflate.flush())
    crc = isal_zlib.crc32(head)
    for _ in range(expanded // MB):
        crc = isal_zlib.crc32(zeros, crc)
    crc = isal_zlib.crc32(END, crc)
    size = (len(head) + expanded + len(END)) & 0xFFFFFFFF
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"".join(body) + crc.to_bytes(4, "little") + \
        size.to_bytes(4, "little")


# --------------------------------------------------------------------------- fixtures and checks


@pytest.fixture
def cache(tmp_path) -> ModelCache:
    return ModelCache(tmp_path / "cache")


def assert_nothing_left(cache: ModelCache) -> None:
    assert cache.entries() == []
    assert cache.incomplete() == []
    kept = [p for p in cache.root.rglob("*") if p.is_file() and p.parent != cache.locks]
    assert kept == [], f"the cache kept {kept}"


def cache_from_env(tmp_path) -> ModelCache:
    """The cache a ``Registry`` builds: its archive limits read from the environment into ``Settings``."""
    return ModelCache.from_settings(Settings.from_env()._replace(cache_dir=tmp_path / "cache"))


def refuse(cache: ModelCache, data: bytes, error: type[BaseException], match: str | None = None):
    with pytest.raises(error, match=match) as info:
        cache.fetch(lambda: io.BytesIO(data), source="test.tar.gz")
    assert_nothing_left(cache)
    return info.value


# --------------------------------------------------------------------------- structure


def test_a_well_formed_hand_built_archive_extracts(cache):
    sha, path = cache.fetch(lambda: io.BytesIO(gz(model(member("variables/", kind=b"5"),
                                                           member("variables/v.index", b"idx")))), source="ok")
    assert (path / "variables" / "v.index").read_bytes() == b"idx"
    assert (path / "saved_model.pb").stat().st_size == 1400


def test_a_bad_header_after_the_first_member_is_refused_not_read_as_the_end(cache):
    tar = bytearray(model(member("variables/v.index", b"x" * 600)))
    tar[2048 + 10] ^= 0x55  # inside the second member's name (after 512 + 1400 + 136): its checksum fails
    refuse(cache, gz(bytes(tar)), CorruptArchive, "bad tar header")


def test_a_short_size_lie_is_refused(cache):
    data = b"y" * 3000
    lie = header(b"variables/v.data", declared=1000) + data + bytes(-len(data) % 512)
    refuse(cache, gz(model(lie)), CorruptArchive)


def test_a_short_size_lie_within_one_block_is_refused(cache):
    data = b"y" * 500
    lie = header(b"variables/v.data", declared=300) + data + bytes(12)
    refuse(cache, gz(model(lie)), CorruptArchive, "size lie")


def test_a_long_size_lie_is_refused(cache):
    data = b"z" * 1000
    lie = header(b"variables/v.data", declared=9000) + data + bytes(-len(data) % 512)
    refuse(cache, gz(model(lie)), CorruptArchive, "ends inside")


def test_a_missing_end_of_archive_marker_is_refused(cache):
    refuse(cache, gz(model()[:-1024]), CorruptArchive, "end-of-archive")


def test_a_lone_zero_block_is_not_an_end_of_archive_marker(cache):
    refuse(cache, gz(model()[:-512]), CorruptArchive)


def test_garbage_after_the_end_of_archive_marker_is_refused(cache):
    refuse(cache, gz(model() + b"\x00" * 512 + b"trailing garbage" + bytes(496)), CorruptArchive, "trailing")


def test_zero_padding_after_the_end_of_archive_marker_is_accepted(cache):
    _, path = cache.fetch(lambda: io.BytesIO(gz(model() + bytes(8192))), source="padded")
    assert (path / "saved_model.pb").is_file()


def test_a_truncated_gzip_trailer_is_refused(cache):
    refuse(cache, gz(model())[:-4], CorruptArchive, "truncated")


def test_a_wrong_gzip_crc_is_refused(cache):
    data = bytearray(gz(model()))
    data[-8] ^= 0x01
    refuse(cache, bytes(data), CorruptArchive)


def test_bytes_after_the_gzip_stream_are_refused(cache):
    refuse(cache, gz(model()) + b"not gzip", CorruptArchive, "trailing garbage")


def test_several_gzip_members_and_zero_padding_are_one_stream(cache):
    tar = model(member("variables/v.index", b"i" * 5000))
    data = gz(tar[:3000]) + gz(tar[3000:]) + bytes(100)
    _, path = cache.fetch(lambda: io.BytesIO(data), source="two-members")
    assert (path / "variables" / "v.index").read_bytes() == b"i" * 5000


def test_an_empty_stream_and_an_empty_archive_are_refused(cache):
    refuse(cache, b"", CorruptArchive, "empty")
    refuse(cache, gz(END), ArtifactError, "no files")


def test_a_corrupt_archive_with_a_recorded_sha256_is_an_integrity_error(cache, tmp_path):
    good = gz(model(member("variables/v.index", b"x" * 600)))
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(IntegrityError):
        cache.fetch(lambda: io.BytesIO(bytes(bad)), source="recorded", sha256=hashlib.sha256(good).hexdigest(),
                    size=len(good))
    assert_nothing_left(cache)


# --------------------------------------------------------------------------- names and types


def test_a_nul_inside_a_member_name_is_refused(cache):
    refuse(cache, gz(model(member(b"variables/v.index\x00../../evil", b"x"))), UnsafeArchive, "NUL")


def test_a_nul_inside_a_pax_path_is_refused(cache):
    refuse(cache, gz(model(pax({"path": b"variables/a\x00b"}) + member("placeholder", b"x"))), UnsafeArchive,
           "NUL")


def test_an_over_long_member_name_is_refused(cache):
    long_path = "/".join(["d" * 200] * 30).encode()  # 6,029 bytes
    refuse(cache, gz(model(pax({"path": long_path}) + member("placeholder", b"x"))), UnsafeArchive, "bytes")


def test_an_over_long_name_component_is_refused(cache):
    refuse(cache, gz(model(pax({"path": b"variables/" + b"n" * 300}) + member("placeholder", b"x"))),
           UnsafeArchive, "component")


def test_a_control_character_in_a_name_is_refused(cache):
    refuse(cache, gz(model(member("variables/a\nb", b"x"))), UnsafeArchive, "control")


def test_a_file_then_a_directory_of_the_same_name_is_refused(cache):
    refuse(cache, gz(model(member("variables", b"a file"), member("variables/", kind=b"5"))), UnsafeArchive,
           "twice")


def test_a_directory_then_a_file_of_the_same_name_is_refused(cache):
    refuse(cache, gz(model(member("variables/", kind=b"5"), member("variables", b"a file"))), UnsafeArchive,
           "twice")


def test_a_regular_file_twice_extracts_the_later_copy_as_tar_does(cache, tmp_path):
    """tensorflow_hub 0.15 (tarfile) and tar itself extract the later copy: so does the registry, and records it."""
    data = gz(model(member("assets/vocab.txt", b"the first copy, longer than the second"),
                    member("assets/other.txt", b"between"), member("assets/vocab.txt", b"two"),
                    member("./assets/vocab.txt", b"three")))
    sha, path = cache.fetch(lambda: io.BytesIO(data), source="twice.tar.gz")
    assert (path / "assets" / "vocab.txt").read_bytes() == b"three"
    assert (path / "assets" / "other.txt").read_bytes() == b"between"
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) == [
        "assets/other.txt", "assets/vocab.txt", "saved_model.pb"]
    assert cache.verify(sha) == {}  # the record holds the later copy's size and hash
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as tar:
        tar.extractall(tmp_path / "tarfile", filter="data")
    assert (tmp_path / "tarfile" / "assets" / "vocab.txt").read_bytes() == b"three"
    if shutil.which("tar"):
        (tmp_path / "tar").mkdir()
        subprocess.run(["tar", "-xzf", "-", "-C", str(tmp_path / "tar")], input=data, check=True)
        assert (tmp_path / "tar" / "assets" / "vocab.txt").read_bytes() == b"three"


@pytest.mark.parametrize("kind", [b"1", b"2"], ids=["hard-link", "symbolic-link"])
def test_a_file_then_a_link_of_the_same_name_is_refused(cache, kind):
    refuse(cache, gz(model(member("assets/vocab.txt", b"one"),
                           member("assets/vocab.txt", kind=kind, linkname=b"assets/vocab.txt"))), UnsafeArchive,
           "link")


def test_a_member_inside_a_file_is_refused(cache):
    refuse(cache, gz(model(member("variables", b"a file"), member("variables/v.index", b"x"))), UnsafeArchive,
           "which is a file")


@pytest.mark.parametrize("kind", [b"1", b"2"], ids=["hard-link", "symbolic-link"])
def test_links_are_refused(cache, kind):
    refuse(cache, gz(model(member("variables/v.index", kind=kind, linkname=b"../../../etc/passwd"))), UnsafeArchive,
           "link")


@pytest.mark.parametrize("kind", [b"3", b"4", b"6", b"V", b"Z"])
def test_special_and_unknown_member_types_are_refused(cache, kind):
    refuse(cache, gz(model(member("variables/thing", kind=kind))), UnsafeArchive)


def test_a_sparse_file_bomb_is_refused(cache):
    # A GNU sparse member declaring a 1 TB real size with almost no data in the archive.
    sparse = bytearray(header(b"variables/variables.data-00000-of-00001", 512, b"S", magic=GNU))
    sparse[483:495] = f"{1 << 40:011o}\x00".encode()  # realsize
    sparse[148:156] = b" " * 8
    sparse[148:156] = f"{sum(sparse):06o}\x00 ".encode()
    refuse(cache, gz(model(bytes(sparse) + bytes(512))), UnsafeArchive, "sparse")


def test_a_pax_sparse_file_is_refused(cache):
    refuse(cache, gz(model(pax({"GNU.sparse.major": b"1", "GNU.sparse.realsize": str(1 << 40).encode()})
                           + member("variables/v.data", b"x" * 512))), UnsafeArchive, "sparse")


def test_a_directory_member_with_data_is_refused(cache):
    refuse(cache, gz(model(header(b"variables/", 0, b"5", declared=512) + bytes(512))), CorruptArchive)


# --------------------------------------------------------------------------- bombs and counts


def test_a_4_gb_gzip_bomb_is_refused_after_reading_little(cache):
    bomb = gzip_bomb(4 << 30)
    assert len(bomb) < 40 * MB  # a bomb: a few MB expanding to 4 GB
    error = refuse(cache, bomb, ArchiveTooLarge, "decompression bomb")
    assert "MODEL_REGISTRY_MAX_EXPANSION_RATIO" in str(error)


def test_the_expansion_bounds_are_configurable(tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_REGISTRY_MAX_EXTRACTED_BYTES", str(1 * MB))
    incompressible = os.urandom(2 * MB)
    error = refuse(cache_from_env(tmp_path), gz(model(member("variables/v.data", incompressible))), ArchiveTooLarge)
    assert "MODEL_REGISTRY_MAX_EXTRACTED_BYTES" in str(error)
    monkeypatch.setenv("MODEL_REGISTRY_MAX_EXTRACTED_BYTES", str(1 << 30))
    monkeypatch.setenv("MODEL_REGISTRY_MAX_EXPANSION_RATIO", "2")
    error = refuse(cache_from_env(tmp_path), gz(model(member("variables/zeros", bytes(80 * MB)))),
                   ArchiveTooLarge)  # past 64 MiB
    assert "MODEL_REGISTRY_MAX_EXPANSION_RATIO" in str(error)


def test_100000_tiny_members_are_refused(cache):
    members = b"".join(header(f"assets/f{i:06d}".encode()) for i in range(100_000))
    refuse(cache, gz(model(member("assets/", kind=b"5"), members)), ArchiveTooLarge, "MODEL_REGISTRY_MAX_MEMBERS")


# --------------------------------------------------------------------------- other writers


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def awkward_model(tmp_path) -> Path:
    root = tmp_path / "awkward"
    deep = root / "assets" / ("a" * 90) / ("b" * 90)
    deep.mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"\x08\x01" * 50)
    (deep / ("c" * 120 + ".txt")).write_text("a path of over 300 bytes")
    (root / "assets" / "vöcab-ünïcode.txt").write_text("non-ASCII name")
    (root / "assets" / "empty").write_bytes(b"")
    return root


@pytest.mark.parametrize("writer", ["gnu-tar", "python-pax", "python-gnu", "registry"])
def test_archives_from_other_writers_extract(awkward_model, tmp_path, cache, writer):
    archive = tmp_path / f"{writer}.tar.gz"
    if writer == "gnu-tar":
        tar = shutil.which("tar")
        assert tar is not None, "GNU tar is needed: apt-get install -y tar"
        subprocess.run([tar, "-czf", str(archive), "-C", str(awkward_model), "."], check=True)
    elif writer == "registry":
        with open(archive, "wb") as out:
            pack_directory(awkward_model, out)
    else:
        form = tarfile.PAX_FORMAT if writer == "python-pax" else tarfile.GNU_FORMAT
        with tarfile.open(archive, "w:gz", format=form) as out:
            out.add(awkward_model, arcname=".")
    _, path = cache.fetch(lambda: open(archive, "rb"), source=str(archive))
    assert _tree(path) == _tree(awkward_model)
