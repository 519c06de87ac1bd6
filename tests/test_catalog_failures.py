"""Database failures reach users as typed errors naming the database and the variable to change.

Real faults only: a second process holding SQLite's write lock, a catalog that
an unprivileged user can only read, a directory that cannot be created, a
PostgreSQL port nobody listens on.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import registry
from registry.config import DATABASE_URL_ENV


@pytest.fixture
def published(registry_env, reference_dir):
    record = registry.publish(reference_dir / "tf2_image_feature_vector", name="pub/ro")
    registry.set_alias("pub/ro", "prod", 1)
    return record


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_postgresql_is_catalog_unavailable_with_the_password_hidden(tmp_path):
    url = f"postgresql://reader:s3cret-pw@127.0.0.1:{_closed_port()}/catalog"
    reg = registry.Registry(database_url=url, storage_url=str(tmp_path / "a"), cache_dir=tmp_path / "c")
    for call in (lambda: reg.load("pub/m/1"), lambda: reg.get_version("pub/m"), lambda: reg.list_models(),
                 lambda: reg.search(text="x")):
        with pytest.raises(registry.CatalogUnavailable) as info:
            call()
        message = str(info.value)
        assert "s3cret-pw" not in message and "***" in message
        assert "127.0.0.1" in message and DATABASE_URL_ENV in message
        assert isinstance(info.value, ConnectionError)


def test_a_catalog_whose_directory_cannot_be_created_is_catalog_unavailable(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the catalog's directory should be")
    reg = registry.Registry(database_url=f"sqlite:///{blocker / 'sub' / 'catalog.db'}",
                            storage_url=str(tmp_path / "a"), cache_dir=tmp_path / "c")
    with pytest.raises(registry.CatalogUnavailable, match=DATABASE_URL_ENV) as info:
        reg.get_version("pub/m")
    assert str(blocker) in str(info.value)


HOLD_WRITE_LOCK = textwrap.dedent("""
    import sqlite3, sys, time
    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def test_a_locked_sqlite_catalog_is_catalog_busy_after_the_configured_wait(published, registry_env, reference_dir,
                                                                            monkeypatch):
    monkeypatch.setenv("MODEL_REGISTRY_DATABASE_TIMEOUT", "1")
    path = registry_env.root / "catalog.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(path), "30"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        writer = registry.Registry()
        started = time.monotonic()
        with pytest.raises(registry.CatalogBusy, match="locked by another process") as info:
            writer.set_alias("pub/ro", "staging", 1)
        assert time.monotonic() - started < 15  # bounded by MODEL_REGISTRY_DATABASE_TIMEOUT, not 60 s
        assert str(path) in str(info.value)
        # Readers are not blocked by a writer (WAL): loading still works.
        assert writer.get_version("pub/ro@prod").version == 1
    finally:
        holder.kill()
        holder.wait()
    # Nothing was lost: once the holder is gone, the write goes through.
    assert registry.Registry().set_alias("pub/ro", "staging", 1).version == 1


READ_ONLY_SESSION = textwrap.dedent("""
    import json, sys
    import registry
    reg = registry.Registry(database_url=sys.argv[1], storage_url=sys.argv[2], cache_dir=sys.argv[3])
    out = {
        "get_version": reg.get_version("pub/ro").handle,
        "alias": reg.get_version("pub/ro@prod").version,
        "list_models": [m.model_name for m in reg.list_models()],
        "list_versions": [v.handle for v in reg.list_versions("pub/ro")],
        "search": [v.handle for v in reg.search(task="image_feature_vector")],
        "lineage": [v.handle for v in reg.lineage("pub/ro/1")],
        "resolve": bool(reg.resolve("pub/ro/1")),
    }
    for name, call in [("set_alias", lambda: reg.set_alias("pub/ro", "staging", 1)),
                       ("publish", lambda: reg.publish(sys.argv[4], name="pub/ro"))]:
        try:
            call()
            out[name] = "wrote"
        except registry.CatalogReadOnly as error:
            out[name] = ["CatalogReadOnly", isinstance(error, PermissionError), str(error)]
        except Exception as error:  # reported, so the test shows what escaped
            out[name] = [type(error).__module__ + "." + type(error).__name__, str(error)]
    print(json.dumps(out))
""")


def _run_unprivileged(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run Python as a user who cannot write the catalog (``nobody`` when the tests run as root)."""
    command = [sys.executable, "-c", READ_ONLY_SESSION, *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run a process as an unprivileged user"
        command = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_a_read_only_catalog_serves_every_read_and_refuses_writes_typed(registry_env, reference_dir):
    # A directory every user can traverse (pytest's tmp_path is private to root), owned by root, read-only to others.
    shared = Path(tempfile.mkdtemp(prefix="registry-readonly-", dir="/tmp"))
    try:
        catalog_dir = shared / "catalog"
        owner = registry.Registry(database_url=f"sqlite:///{catalog_dir / 'catalog.db'}",
                                  storage_url=str(shared / "artifacts"), cache_dir=shared / "owner-cache")
        owner.publish(reference_dir / "tf2_image_feature_vector", name="pub/ro")
        owner.set_alias("pub/ro", "prod", 1)
        owner.catalog.close()
        cache = shared / "cache"
        cache.mkdir()
        source = shared / "model"
        shutil.copytree(reference_dir / "tf2_image_feature_vector", source)
        for path in [shared, *shared.rglob("*")]:
            mode = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
            if path.is_dir():
                mode |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
            path.chmod(mode)
        os.chmod(cache, 0o777)  # the reader's own cache and the storage are writable; the catalog is not
        for path in [shared / "artifacts", *(shared / "artifacts").rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        if os.geteuid() != 0:
            os.chmod(shared, 0o555)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_REGISTRY_")}
        env.update(HOME=str(cache), XDG_DATA_HOME=str(cache / "data"), XDG_CACHE_HOME=str(cache / "xdg"),
                   PYTHONPATH=str(Path(registry.__file__).resolve().parents[1]),
                   MODEL_REGISTRY_LOAD_PLUGINS=os.environ["MODEL_REGISTRY_LOAD_PLUGINS"])
        result = _run_unprivileged([f"sqlite:///{catalog_dir / 'catalog.db'}", str(shared / "artifacts"),
                                    str(cache), str(source)], env)
        assert result.returncode == 0, result.stderr[-3000:]
        import json

        out = json.loads(result.stdout.strip().splitlines()[-1])
        assert out["get_version"] == "pub/ro/1" and out["alias"] == 1
        assert out["list_models"] == ["pub/ro"] and out["list_versions"] == ["pub/ro/1"]
        assert out["search"] == ["pub/ro/1"] and out["lineage"] == ["pub/ro/1"] and out["resolve"]
        for write in ("set_alias", "publish"):
            kind, is_permission_error, message = out[write]
            assert kind == "CatalogReadOnly" and is_permission_error, out[write]
            assert DATABASE_URL_ENV in message and "catalog.db" in message
    finally:
        for path in [shared, *shared.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(shared, ignore_errors=True)


def test_a_rollback_journal_catalog_locked_exclusively_is_catalog_busy_for_reads_and_writes(tmp_path, reference_dir,
                                                                                           monkeypatch):
    # A catalog left in SQLite's rollback-journal mode (made by another tool, or on a file system without WAL):
    # an exclusive lock there blocks readers too. Each call is CatalogBusy within its configured wait, and a new
    # connection does not spend that wait trying to switch the file to WAL.
    monkeypatch.setenv("MODEL_REGISTRY_DATABASE_TIMEOUT", "1")
    path = tmp_path / "catalog.db"
    settings = dict(database_url=f"sqlite:///{path}", storage_url=str(tmp_path / "artifacts"),
                    cache_dir=tmp_path / "cache")
    owner = registry.Registry(**settings)
    owner.publish(reference_dir / "tf2_image_feature_vector", name="pub/journal")
    owner.catalog.close()
    import sqlite3

    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode = DELETE").fetchone() == ("delete",)
    connection.close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK.replace("IMMEDIATE", "EXCLUSIVE"), str(path),
                               "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        fresh = registry.Registry(**{**settings, "cache_dir": tmp_path / "other-cache"})
        for call in (lambda: fresh.get_version("pub/journal"), lambda: fresh.list_versions("pub/journal"),
                     lambda: fresh.set_alias("pub/journal", "prod", 1)):
            with pytest.raises(registry.CatalogBusy, match="locked by another process") as info:
                call()
            assert str(path) in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    assert registry.Registry(**settings).set_alias("pub/journal", "prod", 1).version == 1
