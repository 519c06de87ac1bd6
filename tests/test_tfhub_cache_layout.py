"""``registry.legacy.tfhub_cache``: the TFHUB_CACHE_DIR layout, read and written as tensorflow_hub 0.15 does.

The layout itself is checked against tensorflow_hub's own downloads in ``tests/test_legacy_tfhub.py`` (an
unmodified hub client filling a cache from the registry server, and loading from an exported one); here,
each refusal reason on entries made the way an interrupted or damaged download leaves them.
"""

from __future__ import annotations

import hashlib
import shutil

import pytest

from registry.errors import CacheEntryRefused, ConfigError
from registry.legacy import tfhub_cache
from tests.conftest import REFERENCE_DIR

MODEL = REFERENCE_DIR / "tf2_text_embedding"
HANDLE = "https://tfhub.dev/google/nnlm-en-dim50/2"


def test_an_entry_is_the_sha1_of_the_handle_as_given_with_its_descriptor(tmp_path):
    entry = tfhub_cache.write_entry(tmp_path, HANDLE, MODEL)
    assert entry.name == hashlib.sha1(HANDLE.encode()).hexdigest() == tfhub_cache.entry_name(HANDLE)
    assert sorted(p.name for p in entry.iterdir()) == sorted(p.name for p in MODEL.iterdir())
    descriptor = (tmp_path / f"{entry.name}.descriptor.txt").read_text()
    assert descriptor.splitlines()[0] == f"Module: {HANDLE}" and "Download Time:" in descriptor
    assert tfhub_cache.read_entry(tmp_path, entry.name) == tfhub_cache.CacheEntry(HANDLE, entry)
    assert tfhub_cache.find(f"file://{tmp_path}", HANDLE) == entry
    assert tfhub_cache.find(tmp_path, HANDLE + "/") is None  # another spelling is another entry

    # Another spelling, linked: the model is stored once.
    other = tfhub_cache.write_entry(tmp_path, HANDLE + "/", MODEL, link_to=entry)
    assert other.is_symlink() and other.resolve() == entry.resolve()
    assert tfhub_cache.read_entry(tmp_path, other.name).handle == HANDLE + "/"
    assert [item.handle for item in tfhub_cache.entries(tmp_path)] == sorted(
        [HANDLE, HANDLE + "/"], key=tfhub_cache.entry_name)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("damage, reason", [
    (lambda entry: [shutil.rmtree(entry), entry.mkdir()], tfhub_cache.EMPTY),
    (lambda entry: entry.with_name(entry.name + ".lock").write_text("host.1.abc"), tfhub_cache.LEFTOVER_LOCK),
    (lambda entry: entry.with_name(entry.name + ".abc123.tmp").mkdir(), tfhub_cache.LEFTOVER_TMP),
    (lambda entry: entry.with_name(entry.name + ".descriptor.txt").unlink(), tfhub_cache.MISSING_DESCRIPTOR),
    (lambda entry: entry.with_name(entry.name + ".descriptor.txt").write_text("Module: https://tfhub.dev/a/b/9"),
     tfhub_cache.GARBLED_DESCRIPTOR),
    (lambda entry: entry.with_name(entry.name + ".descriptor.txt").write_bytes(b"\xff\xfe"),
     tfhub_cache.GARBLED_DESCRIPTOR),
    (lambda entry: [shutil.rmtree(entry), entry.write_text("x")], tfhub_cache.NOT_A_DIRECTORY),
])
def test_each_unusable_entry_is_refused_with_its_reason(tmp_path, damage, reason):
    entry = tfhub_cache.write_entry(tmp_path, HANDLE, MODEL)
    damage(entry)
    with pytest.raises(CacheEntryRefused) as caught:
        tfhub_cache.read_entry(tmp_path, entry.name)
    assert caught.value.reason == reason and entry.name in str(caught.value)
    assert str(caught.value).endswith(tfhub_cache.REFUSALS[reason])
    [listed] = list(tfhub_cache.entries(tmp_path))
    assert isinstance(listed, CacheEntryRefused) and listed.reason == reason


def test_an_interrupted_download_with_nothing_else_left_is_listed(tmp_path):
    name = tfhub_cache.entry_name(HANDLE)
    (tmp_path / f"{name}.lock").write_text("host.1.abc")
    (tmp_path / f"{name}.abc.tmp").mkdir()
    assert tfhub_cache.entry_names(tmp_path) == [name]
    [listed] = list(tfhub_cache.entries(tmp_path))
    assert listed.reason == tfhub_cache.LEFTOVER_LOCK


def test_a_cache_on_another_file_system_is_a_config_error():
    with pytest.raises(ConfigError, match="TFHUB_CACHE_DIR='gs://b/c'"):
        tfhub_cache.cache_root("gs://b/c")


def test_filling_an_entry_follows_tensorflow_hubs_protocol_and_takes_over_a_dead_lock(tmp_path):
    name = tfhub_cache.entry_name(HANDLE)
    # A download killed midway: its lock and its .tmp stay, and nothing changes in them any more.
    (tmp_path / f"{name}.lock").write_text("otherhost.99.deadbeef")
    (tmp_path / f"{name}.deadbeef.tmp").mkdir()
    seen = []

    def fill(directory):
        seen.append((directory.name, (tmp_path / f"{name}.lock").read_text().split(".")[-1]))
        shutil.copytree(MODEL, directory, dirs_exist_ok=True)

    entry = tfhub_cache.fill_entry(tmp_path, HANDLE, fill, lock_timeout=0.5)
    assert entry == tmp_path / name and tfhub_cache.read_entry(tmp_path, name).handle == HANDLE
    [(directory, holder)] = seen
    assert directory == f"{name}.{holder}.tmp"  # filled under its own lock, in its own .tmp, then renamed
    assert not (tmp_path / f"{name}.lock").exists() and not (tmp_path / f"{name}.{holder}.tmp").exists()
    # Complete: not filled again.
    assert tfhub_cache.fill_entry(tmp_path, HANDLE, lambda directory: seen.append(directory), lock_timeout=0.5) == entry
    assert len(seen) == 1


def test_a_failed_fill_leaves_no_entry_lock_or_tmp(tmp_path):
    def fill(directory):
        (directory / "partial").write_text("x")
        raise OSError("the connection dropped")

    with pytest.raises(OSError, match="dropped"):
        tfhub_cache.fill_entry(tmp_path, HANDLE, fill, lock_timeout=0.5)
    assert list(tmp_path.iterdir()) == []
