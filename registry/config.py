"""Every environment variable the registry reads, with its default, in one place.

Nothing here needs setting up: with no variables set the registry keeps an
SQLite catalog in the user's data directory, published artifacts in a folder
beside it, and downloads in the user's cache directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping

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
#: Client mode: the URL of a registry server (``model-registry serve``); catalog and storage are then the server's.
SERVER_URL_ENV = "MODEL_REGISTRY_URL"
#: The token a client sends to the server (needed for writes, and for reads where the server requires it).
TOKEN_ENV = "MODEL_REGISTRY_TOKEN"
#: Server: "1"/"true" makes reads (API, model URLs, pages) need a token too; by default reads are open.
REQUIRE_READ_TOKEN_ENV = "MODEL_REGISTRY_REQUIRE_READ_TOKEN"
#: Server: the largest upload accepted, in bytes (default 8 GiB).
MAX_UPLOAD_BYTES_ENV = "MODEL_REGISTRY_MAX_UPLOAD_BYTES"
#: Seconds a download may go without receiving a single byte before ``TransferStalled`` (default 30).
STALL_TIMEOUT_ENV = "MODEL_REGISTRY_STALL_TIMEOUT"
#: Seconds a process waits for another one fetching the same artifact before ``CacheBusy`` (default 600).
#: A holder that makes no progress for ``MODEL_REGISTRY_STALL_TIMEOUT`` seconds is not waited for at all.
LOCK_TIMEOUT_ENV = "MODEL_REGISTRY_LOCK_TIMEOUT"
#: Largest total size, in bytes, an archive may expand to (default 64 GiB).
MAX_EXTRACTED_BYTES_ENV = "MODEL_REGISTRY_MAX_EXTRACTED_BYTES"
#: Largest ratio of expanded to compressed bytes past the first 64 MiB (default 200; weights compress ~1.1x).
MAX_EXPANSION_RATIO_ENV = "MODEL_REGISTRY_MAX_EXPANSION_RATIO"
#: Most members (files and directories) an archive may hold (default 20,000; a SavedModel has a handful).
MAX_MEMBERS_ENV = "MODEL_REGISTRY_MAX_MEMBERS"
#: Server: where webhooks may point: comma-separated host names, ``*.domain`` suffixes and IP networks (none by
#: default); ``..._MAX_ATTEMPTS``: attempts per message (default 10); ``..._DISABLE_AFTER``: failed attempts in a
#: row after which a hook is disabled (default 50).
WEBHOOK_ALLOW_ENV = "MODEL_REGISTRY_WEBHOOK_ALLOW"
WEBHOOK_MAX_ATTEMPTS_ENV = "MODEL_REGISTRY_WEBHOOK_MAX_ATTEMPTS"
WEBHOOK_DISABLE_AFTER_ENV = "MODEL_REGISTRY_WEBHOOK_DISABLE_AFTER"
#: Server: "0"/"false" turns download counting off (on by default).
COUNT_DOWNLOADS_ENV = "MODEL_REGISTRY_COUNT_DOWNLOADS"


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


#: Defaults of the timeouts above, in seconds (used where no ``Settings`` is passed, e.g. a bare ``ModelCache``).
DEFAULT_DATABASE_TIMEOUT_S = 60.0
DEFAULT_STALL_TIMEOUT_S = 30.0
DEFAULT_LOCK_TIMEOUT_S = 600.0
#: Default of ``MODEL_REGISTRY_MAX_UPLOAD_BYTES``.
DEFAULT_MAX_UPLOAD_BYTES = 8 << 30


class ArchiveLimits(NamedTuple):
    """Bounds on what one archive may expand to: refused past them with ``ArchiveTooLarge``."""

    max_bytes: int = 64 << 30
    max_ratio: float = 200.0
    ratio_grace_bytes: int = 64 << 20
    max_members: int = 20_000
    max_name_bytes: int = 4096
    max_component_bytes: int = 255

    @classmethod
    def from_env(cls, environ: "Mapping[str, str] | None" = None) -> "ArchiveLimits":
        env = os.environ if environ is None else environ
        default = cls()
        return cls(max_bytes=int(_positive_float(env, MAX_EXTRACTED_BYTES_ENV, default.max_bytes)),
                   max_ratio=_positive_float(env, MAX_EXPANSION_RATIO_ENV, default.max_ratio),
                   max_members=int(_positive_float(env, MAX_MEMBERS_ENV, default.max_members)))


class WebhookSettings(NamedTuple):
    """What webhooks obey (``registry.catalog.webhooks``): the destinations allowed, and when to give up."""

    allow: tuple[str, ...] = ()
    max_attempts: int = 10
    disable_after: int = 50

    @classmethod
    def from_env(cls, env: "Mapping[str, str]") -> "WebhookSettings":
        allow = tuple(part.strip() for part in (env.get(WEBHOOK_ALLOW_ENV) or "").split(",") if part.strip())
        return cls(allow=allow, max_attempts=int(_positive_float(env, WEBHOOK_MAX_ATTEMPTS_ENV, cls().max_attempts)),
                   disable_after=int(_positive_float(env, WEBHOOK_DISABLE_AFTER_ENV, cls().disable_after)))


class Settings(NamedTuple):
    """Every value the registry takes from its environment, read once and handed down from here.

    ``Settings.from_env()`` fills every field from the environment, with the defaults above;
    the parts a ``Registry`` builds (catalog, storage, cache, server connection) and the
    server are given the values they use, and nothing below this module reads the
    environment again (``tests/test_settings.py`` keeps it so). (Named tuples, not
    dataclasses, for this module's records and those on the path of ``registry.resolve``:
    importing ``dataclasses`` costs a process ~15 ms, see ``tests/test_one_path.py``.)
    """

    database_url: str
    storage_url: str
    cache_dir: Path
    offline: bool = False
    #: Client mode when set: every catalog read and write, and every download, goes through this server.
    server_url: str | None = None
    token: str | None = None
    #: ``MODEL_REGISTRY_DATABASE_TIMEOUT``: seconds an SQLite writer waits for the write lock.
    database_timeout: float = DEFAULT_DATABASE_TIMEOUT_S
    #: ``MODEL_REGISTRY_STALL_TIMEOUT``: seconds a download may receive nothing.
    stall_timeout: float = DEFAULT_STALL_TIMEOUT_S
    #: ``MODEL_REGISTRY_LOCK_TIMEOUT``: seconds to wait for another process fetching the same artifact.
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    #: ``MODEL_REGISTRY_MAX_EXTRACTED_BYTES``, ``..._MAX_EXPANSION_RATIO``, ``..._MAX_MEMBERS``.
    archive_limits: ArchiveLimits = ArchiveLimits()
    #: Server: ``MODEL_REGISTRY_WEBHOOK_ALLOW``, ``..._WEBHOOK_MAX_ATTEMPTS``, ``..._WEBHOOK_DISABLE_AFTER``.
    webhooks: WebhookSettings = WebhookSettings()
    #: Server: ``MODEL_REGISTRY_COUNT_DOWNLOADS``.
    count_downloads: bool = True
    #: Server: ``MODEL_REGISTRY_REQUIRE_READ_TOKEN``.
    require_read_token: bool = False
    #: Server: ``MODEL_REGISTRY_MAX_UPLOAD_BYTES``.
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self) if name != "token")
        return f"Settings({shown}, token={'***' if self.token else None})"

    @classmethod
    def from_env(cls, environ: "Mapping[str, str] | None" = None) -> "Settings":
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get(DATABASE_URL_ENV) or default_database_url(),
            storage_url=env.get(STORAGE_URL_ENV) or default_storage_url(),
            cache_dir=Path(os.path.expanduser(env.get(CACHE_DIR_ENV) or default_cache_dir())),
            offline=_truthy(env.get(OFFLINE_ENV)),
            server_url=(env.get(SERVER_URL_ENV) or "").strip() or None,
            token=(env.get(TOKEN_ENV) or "").strip() or None,
            database_timeout=_positive_float(env, DATABASE_TIMEOUT_ENV, DEFAULT_DATABASE_TIMEOUT_S),
            stall_timeout=_positive_float(env, STALL_TIMEOUT_ENV, DEFAULT_STALL_TIMEOUT_S),
            lock_timeout=_positive_float(env, LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT_S),
            archive_limits=ArchiveLimits.from_env(env),
            webhooks=WebhookSettings.from_env(env),
            count_downloads=(env.get(COUNT_DOWNLOADS_ENV) or "1").strip().lower() not in {"0", "false", "no", "off"},
            require_read_token=_truthy(env.get(REQUIRE_READ_TOKEN_ENV)),
            max_upload_bytes=_max_upload_bytes(env.get(MAX_UPLOAD_BYTES_ENV)),
        )


def _max_upload_bytes(raw: str | None) -> int:
    raw = (raw or "").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_UPLOAD_BYTES
    except ValueError:
        value = DEFAULT_MAX_UPLOAD_BYTES
    return value if value > 0 else DEFAULT_MAX_UPLOAD_BYTES


def _positive_float(env: "Mapping[str, str]", name: str, default: float) -> float:
    raw = env.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = default
    return value if value > 0 else default


def debug_from_env() -> bool:
    return _truthy(os.environ.get(DEBUG_ENV))


def plugins_to_load() -> set[str] | None:
    """``MODEL_REGISTRY_LOAD_PLUGINS``, read when the process-wide plugin manager is first built."""
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def quiet_tensorflow_logs() -> None:
    """Default ``TF_CPP_MIN_LOG_LEVEL`` to 2 (TensorFlow's C++ info lines drown a CLI's output); a set value wins.

    TensorFlow reads its own variable when it is imported, so this is a write to the environment, made here
    with every other environment access.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def prepare_gcs_environment() -> None:
    """gcsfs asks GCS for a bucket's type over gRPC first; an emulator never answers, so turn that off for one.

    Both are gcsfs's own variables (``STORAGE_EMULATOR_HOST`` names the emulator), read by gcsfs itself.
    """
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
