"""Every environment variable the registry reads, with its default, in one place.

Nothing here needs setting up: with no variables set the registry keeps an
SQLite catalog in the user's data directory, published artifacts in a folder
beside it, and downloads in the user's cache directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

APP_NAME = "model-registry"

#: SQLAlchemy URL of the catalog database.
DATABASE_URL_ENV = "MODEL_REGISTRY_DATABASE_URL"
#: fsspec URL of the folder where published artifacts are written.
STORAGE_URL_ENV = "MODEL_REGISTRY_STORAGE_URL"
#: Local folder for downloaded and extracted models.
CACHE_DIR_ENV = "MODEL_REGISTRY_CACHE_DIR"
#: "1"/"true": never touch the network; cached handles still load.
OFFLINE_ENV = "MODEL_REGISTRY_OFFLINE"
#: Comma-separated plugin names: load only these (built-ins included), for debugging and tests.
PLUGINS_ENV = "MODEL_REGISTRY_LOAD_PLUGINS"
#: Seconds a writer waits for another process's SQLite write lock before ``CatalogBusy`` (default 60).
DATABASE_TIMEOUT_ENV = "MODEL_REGISTRY_DATABASE_TIMEOUT"
#: "1"/"true": the CLI shows tracebacks instead of one-line errors.
DEBUG_ENV = "MODEL_REGISTRY_DEBUG"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def default_data_dir() -> Path:
    import platformdirs  # only when no variable names the location: keeps start-up light

    return Path(platformdirs.user_data_dir(APP_NAME))


def default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'catalog.db'}"


def default_storage_url() -> str:
    return str(default_data_dir() / "artifacts")


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


@dataclass(frozen=True)
class Settings:
    """Where the catalog, the artifacts and the cache live, and whether the network may be used."""

    database_url: str = field(default_factory=default_database_url)
    storage_url: str = field(default_factory=default_storage_url)
    cache_dir: Path = field(default_factory=default_cache_dir)
    offline: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get(DATABASE_URL_ENV) or default_database_url(),
            storage_url=env.get(STORAGE_URL_ENV) or default_storage_url(),
            cache_dir=Path(os.path.expanduser(env.get(CACHE_DIR_ENV) or default_cache_dir())),
            offline=_truthy(env.get(OFFLINE_ENV)),
        )


def debug_from_env() -> bool:
    return _truthy(os.environ.get(DEBUG_ENV))


def plugins_to_load() -> set[str] | None:
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def database_timeout_s(default: float = 60.0) -> float:
    """How long an SQLite writer waits for the write lock, from ``MODEL_REGISTRY_DATABASE_TIMEOUT``."""
    raw = os.environ.get(DATABASE_TIMEOUT_ENV)
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = default
    return value if value > 0 else default
