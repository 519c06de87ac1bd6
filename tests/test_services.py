"""The test services themselves work: every other test trusts these fixtures."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from registry.config import Settings, default_cache_dir, default_data_dir
from registry.plugin_manager import DEFAULT_PLUGINS


def _get(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


# --------------------------------------------------------------------------- PostgreSQL

def test_postgres_url_is_a_fresh_empty_database(postgres_url):
    import sqlalchemy as sa

    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            assert sa.inspect(conn).get_table_names() == []
            conn.execute(sa.text("CREATE TABLE t (id serial PRIMARY KEY, name text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO t (name) VALUES ('a'), ('b')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM t ORDER BY id")).scalars().all() == ["a", "b"]
            assert conn.execute(sa.text("SHOW server_version")).scalar().split(".")[0].isdigit()
    finally:
        engine.dispose()


def test_postgres_databases_are_isolated_and_dropped(postgres_server):
    import psycopg

    first = postgres_server.create_database()
    second = postgres_server.create_database()
    assert first != second
    with psycopg.connect(postgres_server.conninfo(first), autocommit=True) as conn:
        conn.execute("CREATE TABLE only_in_first (x int)")
    with psycopg.connect(postgres_server.conninfo(second)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_first'").fetchone() == (0,)
    # An open connection does not stop the drop: tests may leak engines.
    leaked = psycopg.connect(postgres_server.conninfo(first))
    postgres_server.drop_database(first)
    postgres_server.drop_database(second)
    leaked.close()
    with psycopg.connect(postgres_server.conninfo()) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert first not in names and second not in names


def test_postgres_listens_on_localhost_only(postgres_server):
    import psycopg

    with psycopg.connect(postgres_server.conninfo()) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)


# --------------------------------------------------------------------------- GCS emulator

def test_gcs_bucket_write_read_through_plain_fsspec_urls(gcs_bucket):
    import fsspec
    import gcsfs

    assert gcs_bucket.startswith("gs://") and gcs_bucket.endswith("/registry")
    fs, path = fsspec.core.url_to_fs(gcs_bucket)
    assert isinstance(fs, gcsfs.GCSFileSystem)
    assert fs._endpoint.startswith("http://127.0.0.1:")
    payload = os.urandom(300_000)
    with fsspec.open(f"{gcs_bucket}/blobs/a.bin", "wb") as fh:
        fh.write(payload)
    with fsspec.open(f"{gcs_bucket}/blobs/a.bin", "rb") as fh:
        assert fh.read() == payload
    assert fs.ls(f"{path}/blobs") == [f"{path}/blobs/a.bin"]
    assert fs.info(f"{path}/blobs/a.bin")["size"] == len(payload)


def test_gcs_buckets_are_fresh_per_test(gcs_emulator, gcs_bucket):
    import fsspec

    fs, path = fsspec.core.url_to_fs(gcs_bucket)
    bucket = path.split("/")[0]
    assert fs.ls(bucket) == []
    other = gcs_emulator.create_bucket()
    assert other != bucket


def test_gcs_emulator_reaches_child_processes(gcs_bucket):
    import fsspec

    with fsspec.open(f"{gcs_bucket}/from-parent.txt", "wb") as fh:
        fh.write(b"hello child")
    script = ("import sys, fsspec\n"
              "with fsspec.open(sys.argv[1], 'rb') as fh: sys.stdout.write(fh.read().decode())\n")
    result = subprocess.run([sys.executable, "-c", script, f"{gcs_bucket}/from-parent.txt"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello child"


# --------------------------------------------------------------------------- HTTP

@pytest.fixture
def served_model(http_server, reference):
    archive = reference.archive("tf2_text_embedding")
    url = http_server.add_model("models/text/1", archive)
    return url, archive.read_bytes()


def test_http_compressed_format_serves_the_archive(http_server, served_model):
    url, archive = served_model
    assert url == f"{http_server.base_url}/models/text/1"
    status, headers, body = _get(f"{url}?tf-hub-format=compressed")
    assert status == 200
    assert body == archive
    assert headers["Content-Type"] == "application/x-tar"
    assert int(headers["Content-Length"]) == len(archive)
    status, headers, body = _get(f"{url}.tar.gz")
    assert (status, body) == (200, archive)


def test_http_bare_model_url_is_a_page_and_unknown_paths_404(http_server, served_model):
    url, _ = served_model
    status, headers, body = _get(url)
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<html>" in body
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        _get(f"{http_server.base_url}/models/absent?tf-hub-format=compressed")
    assert excinfo.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        _get(f"{http_server.base_url}/../../etc/passwd")
    assert excinfo.value.code == 404


def test_http_model_from_a_directory(http_server, reference_dir):
    import tarfile

    url = http_server.add_model("models/dir/1", reference_dir / "tf2_text_embedding")
    _, _, body = _get(f"{url}?tf-hub-format=compressed")
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        names = {m.name.removeprefix("./") for m in tar.getmembers() if m.isfile()}
    expected = {p.relative_to(reference_dir / "tf2_text_embedding").as_posix()
                for p in (reference_dir / "tf2_text_embedding").rglob("*") if p.is_file()}
    assert names == expected


def test_http_range_requests(http_server, served_model):
    url, archive = served_model
    status, headers, body = _get(f"{url}.tar.gz", {"Range": "bytes=10-19"})
    assert status == 206 and body == archive[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(archive)}"


def test_http_fault_status(http_server, served_model):
    url, archive = served_model
    http_server.fail("models/text/1", 500)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        _get(f"{url}?tf-hub-format=compressed")
    assert excinfo.value.code == 500
    http_server.clear_faults()
    assert _get(f"{url}?tf-hub-format=compressed")[2] == archive


def test_http_fault_truncated_download_raises(http_server, served_model):
    url, archive = served_model
    # A fault on the file also catches the model URL that resolves to it.
    http_server.truncate("models/text/1.tar.gz", at=1000)
    with pytest.raises(http.client.IncompleteRead) as excinfo:
        _get(f"{url}?tf-hub-format=compressed")
    assert len(excinfo.value.partial) == 1000
    assert excinfo.value.expected == len(archive) - 1000


def test_http_fault_truncated_download_raises_through_fsspec(http_server, served_model):
    import aiohttp
    import fsspec

    url, _ = served_model
    http_server.truncate("models/text/1")
    with pytest.raises((aiohttp.ClientPayloadError, OSError, ValueError)):
        with fsspec.open(f"{url}?tf-hub-format=compressed", "rb", block_size=0) as fh:
            while fh.read(1 << 16):
                pass


def test_http_fault_flipped_byte(http_server, served_model):
    url, archive = served_model
    http_server.corrupt("models/text/1", offset=123)
    _, _, body = _get(f"{url}?tf-hub-format=compressed")
    assert len(body) == len(archive)
    assert [i for i in range(len(body)) if body[i] != archive[i]] == [123]
    assert hashlib.sha256(body).hexdigest() != hashlib.sha256(archive).hexdigest()


def test_http_request_log_counts(http_server, served_model):
    import fsspec

    url, archive = served_model
    assert http_server.count() == 0
    _get(f"{url}?tf-hub-format=compressed")
    with fsspec.open(f"{url}?tf-hub-format=compressed", "rb") as fh:
        assert fh.read() == archive
    assert http_server.count("models/text/1") >= 2
    assert http_server.count("models/text/1", method="GET") >= 2
    assert http_server.count("elsewhere") == 0
    first = http_server.requests[0]
    assert (first.method, first.path, first.query, first.status) == (
        "GET", "/models/text/1", "tf-hub-format=compressed", 200)
    http_server.reset_log()
    assert http_server.count() == 0


# --------------------------------------------------------------------------- isolation

def test_registry_env_is_isolated(registry_env, tmp_path_factory):
    settings = Settings.from_env()
    assert settings.database_url == registry_env.database_url == f"sqlite:///{registry_env.root / 'catalog.db'}"
    assert settings.storage_url == str(registry_env.storage_dir)
    assert settings.cache_dir == registry_env.cache_dir
    assert settings.offline is False
    assert registry_env.storage_dir.is_dir() and registry_env.cache_dir.is_dir()
    assert list(registry_env.cache_dir.iterdir()) == []
    assert registry_env.root.is_relative_to(tmp_path_factory.getbasetemp())


@pytest.mark.parametrize("run", [1, 2])
def test_registry_env_resets_the_default_registry(registry_env, run):
    # Run twice: the second run must not see the default registry the first one created.
    from registry.api import default_registry

    settings = default_registry().settings
    assert settings.database_url == registry_env.database_url
    assert settings.cache_dir == registry_env.cache_dir
    assert settings.storage_url == registry_env.storage_url


def test_user_dirs_are_sandboxed(_sandboxed_user_dirs):
    assert default_data_dir().is_relative_to(_sandboxed_user_dirs)
    assert default_cache_dir().is_relative_to(_sandboxed_user_dirs)
    assert not default_data_dir().is_relative_to(Path.home())


def test_only_builtin_plugins_load():
    assert os.environ["MODEL_REGISTRY_LOAD_PLUGINS"].split(",") == list(DEFAULT_PLUGINS)


# --------------------------------------------------------------------------- reference artifacts

def test_reference_artifacts_are_complete(reference, reference_dir):
    assert reference.root == reference_dir
    assert json.loads((reference_dir / "MANIFEST.json").read_text()) == reference.manifest
    assert reference.names, "the manifest lists no models"
    for name in reference.names:
        assert (reference.model_dir(name) / "saved_model.pb").is_file()
        assert reference.archive(name).is_file()
        inputs, outputs = reference.expected(name)
        signatures = reference.manifest[name]["signatures"]
        for signature, tensors in inputs.items():
            if signature != "__call__":
                assert signature in signatures, (name, signature)
                assert set(tensors) == set(signatures[signature]["inputs"])
        assert set(outputs) == set(inputs)
    assert reference.names_of_format("tf1_hub")
