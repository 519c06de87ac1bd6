"""Edges found by the fault campaign, each a typed error before any bytes are copied."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import fsspec
import pytest
from click.testing import CliRunner

import registry
from registry.catalog import schema
from registry.cli import cli
from registry.errors import FormatError, HandleError, SchemaError


def _registry(tmp_path: Path) -> registry.Registry:
    return registry.Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "art"),
                             cache_dir=tmp_path / "cache")


def _cached_files(reg: registry.Registry) -> list[Path]:
    root = reg.settings.cache_dir
    return [p for p in root.rglob("*") if p.is_file() and p.parent.name != "locks"] if root.exists() else []


@pytest.mark.parametrize("handle", ["İHTTP://example.com/m.tar.gz", "İ://x", "HTTPİ://x/y"])
def test_a_scheme_with_a_non_ascii_letter_is_a_handle_error(handle, tmp_path):
    with pytest.raises(HandleError):
        registry.handles.parse(handle)
    with pytest.raises(HandleError):
        _registry(tmp_path).resolve(handle)


@pytest.mark.parametrize("handle", ["local:///..", "local:///", "file:///..", "local:///proc/.."])
def test_the_root_directory_by_url_is_a_format_error_and_nothing_is_copied(handle, tmp_path):
    reg = _registry(tmp_path)
    with pytest.raises((FormatError, HandleError)) as info:
        reg.resolve(handle)
    assert not isinstance(info.value, OSError)
    assert _cached_files(reg) == []


def test_a_local_url_of_a_directory_that_is_no_model_is_refused_before_its_files_are_read(tmp_path):
    """Walked first, this directory's FIFO would be NotARegularFile; copied first, its 8 MB would land in the cache."""
    folder = tmp_path / "not-a-model"
    (folder / "deep").mkdir(parents=True)
    (folder / "README").write_text("notes")
    (folder / "deep" / "weights.bin").write_bytes(os.urandom(8 << 20))
    os.mkfifo(folder / "deep" / "pipe")
    reg = _registry(tmp_path)
    for handle in (f"local://{folder}", f"file://{folder}", str(folder)):
        with pytest.raises(FormatError, match="not a model directory"):
            reg.resolve(handle)
    assert _cached_files(reg) == []


def test_a_local_url_of_a_model_is_used_in_place(tmp_path, reference_dir):
    reg = _registry(tmp_path)
    model = reference_dir / "tf2_image_feature_vector"
    assert Path(reg.resolve(f"local://{model}")) == model
    assert _cached_files(reg) == []


def test_a_remote_directory_that_is_no_model_is_refused_after_its_top_level_files_only(tmp_path):
    fs = fsspec.filesystem("memory")
    fs.pipe("/h10-no-model/README", b"notes")
    fs.pipe("/h10-no-model/deep/weights.bin", os.urandom(1 << 20))
    reg = _registry(tmp_path)
    try:
        with pytest.raises(FormatError, match="not a model directory"):
            reg.resolve("memory://h10-no-model")
    finally:
        fs.rm("/h10-no-model", recursive=True)
    assert _cached_files(reg) == []


def test_a_remote_directory_that_is_a_model_is_still_copied_whole(tmp_path, reference_dir):
    fs = fsspec.filesystem("memory")
    model = reference_dir / "tf2_image_feature_vector"
    for path in model.rglob("*"):
        if path.is_file():
            fs.pipe(f"/h10-model/{path.relative_to(model).as_posix()}", path.read_bytes())
    reg = _registry(tmp_path)
    try:
        cached = Path(reg.resolve("memory://h10-model"))
    finally:
        fs.rm("/h10-model", recursive=True)
    assert sorted(p.relative_to(cached) for p in cached.rglob("*") if p.is_file()) == \
        sorted(p.relative_to(model) for p in model.rglob("*") if p.is_file())


def test_two_rows_in_alembic_version_are_a_schema_error_naming_db_upgrade(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    schema.upgrade(url)
    with sqlite3.connect(tmp_path / "catalog.db") as db:
        db.execute("INSERT INTO alembic_version (version_num) VALUES ('0003')")
    with pytest.raises(SchemaError, match="model-registry db upgrade") as info:
        schema.check_schema(url)
    assert "2 schema revisions" in str(info.value)
    with pytest.raises(SchemaError, match="alembic_version"):
        schema.upgrade(url)
    with pytest.raises(SchemaError):
        _registry(tmp_path).list_models()
    monkeypatch.setenv("MODEL_REGISTRY_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code != 0 and "Traceback" not in result.output and "alembic_version" in result.output


def test_every_registry_error_the_server_sends_arrives_as_its_own_class():
    """What client mode does with a server's JSON error: the class, not a ServerError wrapping it."""
    from registry import errors
    from registry.error_codes import error_body, error_from_body, status_of

    classes = [cls for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.RegistryError)]
    assert errors.StorageFull in classes and errors.CatalogUnavailable in classes and len(classes) > 25
    for cls in classes:
        error = (cls("m", format="f", operation="load", mode="tf2") if cls is errors.UnsupportedOperation
                 else cls("m"))
        status, _ = status_of(error)
        arrived = error_from_body(status, error_body(error), fallback="?")
        assert type(arrived) is cls and str(arrived) == "m", cls
    assert status_of(errors.StorageFull("m"))[0] == 507 and status_of(errors.UploadStalled("m"))[0] == 408
