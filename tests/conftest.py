"""Shared fixtures: real services (PostgreSQL, GCS emulator, HTTP), an isolated registry configuration, reference models.

Fixtures
--------
postgres_server  (session)  tests.services.PostgresServer — a running cluster on 127.0.0.1
postgres_url     (function) str — SQLAlchemy URL (postgresql+psycopg://) of a fresh, empty database
gcs_emulator     (session)  tests.services.GcsEmulator — running, with gcsfs configured to reach it
gcs_bucket       (function) str — "gs://BUCKET/registry", a fresh bucket; plain fsspec calls reach it
http_server      (function) tests.services.HttpModelServer — tfhub.dev-style server, faults, request log
registry_env     (function) RegistryEnv — temporary catalog/storage/cache, exported as MODEL_REGISTRY_* variables
start_registry_server (function) factory of tests.server_support.RegistryServer — `model-registry serve` processes
registry_server  (function) tests.server_support.RegistryServer — one server on a fresh SQLite catalog, with .admin_token
reference_dir    (session)  pathlib.Path — registry/demo_models (REFERENCE_DIR)
reference        (session)  tests.services.ReferenceArtifacts — its MANIFEST.json and expected outputs

The environment is fixed before anything else is imported: gcsfs must see
GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false at import (or every bucket access waits
60 s on a gRPC lookup), the user's data and cache directories are redirected to
a temporary directory so no test can touch them, any MODEL_REGISTRY_* the user
set is dropped, and only the built-in plugins load, so installed third-party
plugins cannot change what the tests see.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

for _name in [n for n in os.environ if n.startswith("MODEL_REGISTRY_")]:
    del os.environ[_name]

_USER_DIRS_SANDBOX = tempfile.mkdtemp(prefix="registry-tests-userdirs-")
os.environ["XDG_DATA_HOME"] = os.path.join(_USER_DIRS_SANDBOX, "data")
os.environ["XDG_CACHE_HOME"] = os.path.join(_USER_DIRS_SANDBOX, "cache")

from registry.plugin_manager import DEFAULT_PLUGINS  # noqa: E402  (after the environment is fixed)

os.environ["MODEL_REGISTRY_LOAD_PLUGINS"] = ",".join(DEFAULT_PLUGINS)

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.services import (  # noqa: E402
    GcsEmulator,
    HttpModelServer,
    PostgresServer,
    ReferenceArtifacts,
    ServiceUnavailable,
    clear_gcsfs_cache,
)

#: The reference models; the package ships them for `model-registry demo` (registry.demo.REFERENCE_DIR).
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "registry" / "demo_models"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _service_failed(exc: Exception) -> None:
    where = ("CI installs every service before the tests run, so this is a broken CI set-up"
             if IN_CI else "run `make test`, which installs what the tests need")
    pytest.fail(f"{exc}\n({where})", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _sandboxed_user_dirs():
    """Keep HOME-derived data and cache directories in a temporary directory for the whole session."""
    yield Path(_USER_DIRS_SANDBOX)
    shutil.rmtree(_USER_DIRS_SANDBOX, ignore_errors=True)


def _reset_default_registry() -> None:
    # Only an already-imported registry.api can hold a default instance; importing it here would import it for nothing.
    api = sys.modules.get("registry.api")
    reset = getattr(api, "reset_default_registry", None)
    if reset is not None:
        reset()


# --------------------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster for the whole session, owned by the `postgres` user when tests run as root."""
    try:
        server = PostgresServer().start()
    except ServiceUnavailable as exc:
        _service_failed(exc)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of a fresh empty database, dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """A catalog database at head, once per backend: a new SQLite file (the catalog creates it at head
    when first opened) or a fresh PostgreSQL database migrated now (server databases are migrated by an
    operator, never on open)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    from registry.catalog import schema

    url = request.getfixturevalue("postgres_url")
    schema.upgrade(url)
    return url


# --------------------------------------------------------------------------- GCS emulator

@pytest.fixture(scope="session")
def gcs_emulator():
    """The GCS emulator for the whole session; gcsfs (in this process and children) is pointed at it."""
    import fsspec.config

    saved_conf = dict(fsspec.config.conf.get("gcs", {}))
    emulator = GcsEmulator()
    saved_env = {name: os.environ.get(name) for name in emulator.environ()}
    try:
        emulator.start()
    except ServiceUnavailable as exc:
        _service_failed(exc)
    emulator.configure_fsspec()
    yield emulator
    clear_gcsfs_cache()
    fsspec.config.conf["gcs"] = saved_conf
    for name, value in saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    emulator.stop()


@pytest.fixture
def gcs_bucket(gcs_emulator: GcsEmulator) -> str:
    """``gs://BUCKET/registry`` in a bucket created for this test."""
    clear_gcsfs_cache()
    bucket = gcs_emulator.create_bucket()
    yield f"gs://{bucket}/registry"
    clear_gcsfs_cache()


# --------------------------------------------------------------------------- HTTP

@pytest.fixture
def http_server(tmp_path_factory) -> HttpModelServer:
    """An HTTP server on 127.0.0.1 serving a fresh directory the way tfhub.dev served models."""
    server = HttpModelServer(tmp_path_factory.mktemp("http-root")).start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- registry configuration

@dataclass(frozen=True)
class RegistryEnv:
    """Where an isolated test registry keeps its catalog, artifacts and cache."""

    root: Path
    database_url: str
    storage_url: str
    storage_dir: Path
    cache_dir: Path


@pytest.fixture
def registry_env(tmp_path_factory, monkeypatch) -> RegistryEnv:
    """A fresh SQLite catalog, storage folder and cache, exported as MODEL_REGISTRY_* for this test."""
    root = tmp_path_factory.mktemp("registry")
    storage_dir = root / "artifacts"
    cache_dir = root / "cache"
    storage_dir.mkdir()
    cache_dir.mkdir()
    env = RegistryEnv(root=root, database_url=f"sqlite:///{root / 'catalog.db'}",
                      storage_url=str(storage_dir), storage_dir=storage_dir, cache_dir=cache_dir)
    monkeypatch.setenv("MODEL_REGISTRY_DATABASE_URL", env.database_url)
    monkeypatch.setenv("MODEL_REGISTRY_STORAGE_URL", env.storage_url)
    monkeypatch.setenv("MODEL_REGISTRY_CACHE_DIR", str(env.cache_dir))
    monkeypatch.delenv("MODEL_REGISTRY_OFFLINE", raising=False)
    _reset_default_registry()
    yield env
    _reset_default_registry()


# --------------------------------------------------------------------------- registry server

@pytest.fixture
def start_registry_server(tmp_path_factory):
    """Start ``model-registry serve`` processes: ``start(database_url=, storage_url=, workers=, extra_env=)``.

    The catalog is migrated and an ``admin`` token created with the CLI first (unless
    ``admin_token=False``, e.g. for a second server over the same database); every
    server started is stopped after the test.
    """
    from tests.server_support import RegistryServer, cli, create_token, server_environ

    servers = []

    def start(*, database_url: str | None = None, storage_url: str | None = None, workers: int = 1,
              extra_env: dict | None = None, admin_token: bool = True) -> RegistryServer:
        root = tmp_path_factory.mktemp("server")
        env = server_environ(database_url=database_url or f"sqlite:///{root / 'catalog.db'}",
                             storage_url=storage_url or str(root / "artifacts"), cache_dir=root / "server-cache",
                             extra=extra_env)
        cli("db", "upgrade", env=env)
        token = create_token(env, "admin", "admin") if admin_token else None
        server = RegistryServer(env=env, log_path=root / "server.log", workers=workers)
        server.admin_token = token
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def registry_server(start_registry_server):
    """One ``model-registry serve`` on a fresh SQLite catalog and storage folder; ``.admin_token`` is admin."""
    return start_registry_server()


# --------------------------------------------------------------------------- reference artifacts

@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """registry/demo_models: the models the reference stack (TF 2.15 + tensorflow_hub 0.15) made."""
    if not (REFERENCE_DIR / "MANIFEST.json").is_file():
        pytest.fail(f"{REFERENCE_DIR} is missing its MANIFEST.json; the reference artifacts belong in the repository",
                    pytrace=False)
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def reference(reference_dir: Path) -> ReferenceArtifacts:
    """The reference models with their manifest and expected inputs and outputs."""
    return ReferenceArtifacts(reference_dir)
