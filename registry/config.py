"""Every environment variable the registry reads, with its default, in one place.

Nothing here needs setting up: with no variables set the registry keeps an
SQLite catalog in the user's data directory, published artifacts in a folder
beside it, and downloads in the user's cache directory.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from registry.errors import ConfigError

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
#: "1"/"true": the CLI and the server show TensorFlow's start-up lines (absl, oneDNN, CUDA, cuInit); hidden by default.
TF_LOGS_ENV = "MODEL_REGISTRY_TF_LOGS"
#: How a cached model is checked each time it is used: "stat" (default: every file's size and times against the
#: record, ~0.1 ms) or "hash" (every file re-hashed: about as long as reading the model). See the README's Cache.
CACHE_CHECK_ENV = "MODEL_REGISTRY_CACHE_CHECK"
CACHE_CHECK_LEVELS = ("stat", "hash")
#: Server: seconds an upload's body may send nothing before it is dropped (default 60).
UPLOAD_IDLE_TIMEOUT_ENV = "MODEL_REGISTRY_UPLOAD_IDLE_TIMEOUT"
#: Server: the slowest average rate, bytes per second, an upload may keep after its first 30 s (default 1024).
UPLOAD_MIN_RATE_ENV = "MODEL_REGISTRY_UPLOAD_MIN_RATE"
#: Server: where webhooks may point: comma-separated host names, ``*.domain`` suffixes and IP networks (none by
#: default); ``..._MAX_ATTEMPTS``: attempts per message (default 10); ``..._DISABLE_AFTER``: failed attempts in a
#: row after which a hook is disabled (default 50).
WEBHOOK_ALLOW_ENV = "MODEL_REGISTRY_WEBHOOK_ALLOW"
WEBHOOK_MAX_ATTEMPTS_ENV = "MODEL_REGISTRY_WEBHOOK_MAX_ATTEMPTS"
WEBHOOK_DISABLE_AFTER_ENV = "MODEL_REGISTRY_WEBHOOK_DISABLE_AFTER"
#: Server: "0"/"false" turns download counting off (on by default).
COUNT_DOWNLOADS_ENV = "MODEL_REGISTRY_COUNT_DOWNLOADS"
#: tensorflow_hub's own cache variable, honoured as tensorflow_hub 0.15 does (``registry.legacy.tfhub_cache``).
TFHUB_CACHE_DIR_ENV = "TFHUB_CACHE_DIR"
#: Server: how a model URL delivers an archive: "redirect" (to a short-lived signed URL of the bucket) or "proxy"
#: (the server sends the bytes); unset: redirect where the storage can sign, else proxy (``registry.server.downloads``).
DOWNLOADS_ENV = "MODEL_REGISTRY_DOWNLOADS"
DOWNLOAD_MODES = ("redirect", "proxy")
#: Server: a URL path prefix (``/internal-archives/``) under which a front proxy (nginx) serves the local storage
#: folder; set, local archives are answered with ``X-Accel-Redirect`` and the proxy sends the bytes.
ACCEL_REDIRECT_ENV = "MODEL_REGISTRY_ACCEL_REDIRECT"


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
#: Defaults of ``MODEL_REGISTRY_UPLOAD_IDLE_TIMEOUT`` (seconds) and ``..._UPLOAD_MIN_RATE`` (bytes per second).
DEFAULT_UPLOAD_IDLE_TIMEOUT_S = 60.0
DEFAULT_UPLOAD_MIN_RATE = 1024.0


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
        return cls(max_bytes=int(_positive_number(env, MAX_EXTRACTED_BYTES_ENV, default.max_bytes, "bytes",
                                                  integer=True)),
                   max_ratio=_positive_number(env, MAX_EXPANSION_RATIO_ENV, default.max_ratio,
                                              "expanded bytes per compressed byte"),
                   max_members=int(_positive_number(env, MAX_MEMBERS_ENV, default.max_members, "members",
                                                    integer=True)))


#: An entry of MODEL_REGISTRY_WEBHOOK_ALLOW: a host name, ``*.`` and a domain, or an IPv4/IPv6 address or network.
_HOST_OR_NETWORK = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(/\d{1,3})?$"
                              r"|^[0-9A-Fa-f:.]+(/\d{1,3})?$")


class WebhookSettings(NamedTuple):
    """What webhooks obey (``registry.catalog.webhooks``): the destinations allowed, and when to give up."""

    allow: tuple[str, ...] = ()
    max_attempts: int = 10
    disable_after: int = 50

    @classmethod
    def from_env(cls, env: "Mapping[str, str]") -> "WebhookSettings":
        allow = tuple(part.strip() for part in _raw(env, WEBHOOK_ALLOW_ENV).split(",") if part.strip())
        for entry in allow:
            if not _HOST_OR_NETWORK.match(entry):
                raise invalid(WEBHOOK_ALLOW_ENV, _raw(env, WEBHOOK_ALLOW_ENV),
                              f"{entry!r} is none of a host name, a *.domain suffix or an IP network (10.0.0.0/8); "
                              f"separate entries with commas")
        return cls(allow=allow,
                   max_attempts=int(_positive_number(env, WEBHOOK_MAX_ATTEMPTS_ENV, cls().max_attempts, "attempts",
                                                     integer=True)),
                   disable_after=int(_positive_number(env, WEBHOOK_DISABLE_AFTER_ENV, cls().disable_after,
                                                      "failed attempts", integer=True)))


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
    #: Server: ``MODEL_REGISTRY_DOWNLOADS``, one of ``DOWNLOAD_MODES``; None: redirect where the storage can sign.
    downloads: str | None = None
    #: Server: ``MODEL_REGISTRY_ACCEL_REDIRECT``, a URL path starting and ending with "/", or None.
    accel_redirect: str | None = None
    #: Server: ``MODEL_REGISTRY_REQUIRE_READ_TOKEN``.
    require_read_token: bool = False
    #: Server: ``MODEL_REGISTRY_MAX_UPLOAD_BYTES``.
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: ``MODEL_REGISTRY_CACHE_CHECK``: one of ``CACHE_CHECK_LEVELS``.
    cache_check: str = "stat"
    #: Server: ``MODEL_REGISTRY_UPLOAD_IDLE_TIMEOUT`` and ``MODEL_REGISTRY_UPLOAD_MIN_RATE``.
    upload_idle_timeout: float = DEFAULT_UPLOAD_IDLE_TIMEOUT_S
    upload_min_rate: float = DEFAULT_UPLOAD_MIN_RATE
    #: ``TFHUB_CACHE_DIR`` (tensorflow_hub's cache: a path or ``file://`` URL), as set; None when unset or empty.
    #: URLs the hub-compatible API loads are cached there in tensorflow_hub's layout, and found there in place.
    tfhub_cache_dir: str | None = None

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}"
                          for name, value in zip(self._fields, self, strict=True) if name != "token")
        return f"Settings({shown}, token={'***' if self.token else None})"

    @classmethod
    def from_env(cls, environ: "Mapping[str, str] | None" = None) -> "Settings":
        """Every variable, checked: a value the registry cannot use is a ``ConfigError`` naming it, never a default."""
        env = os.environ if environ is None else environ
        return cls(
            database_url=_database_url(env),
            storage_url=_storage_url(env),
            cache_dir=_cache_dir(env),
            offline=_flag(env, OFFLINE_ENV),
            server_url=_server_url(env),
            token=_token(env),
            database_timeout=_positive_number(env, DATABASE_TIMEOUT_ENV, DEFAULT_DATABASE_TIMEOUT_S, "seconds"),
            stall_timeout=_positive_number(env, STALL_TIMEOUT_ENV, DEFAULT_STALL_TIMEOUT_S, "seconds"),
            lock_timeout=_positive_number(env, LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT_S, "seconds"),
            archive_limits=ArchiveLimits.from_env(env),
            require_read_token=_flag(env, REQUIRE_READ_TOKEN_ENV),
            max_upload_bytes=int(_positive_number(env, MAX_UPLOAD_BYTES_ENV, DEFAULT_MAX_UPLOAD_BYTES, "bytes",
                                                  integer=True)),
            cache_check=_cache_check(env),
            upload_idle_timeout=_positive_number(env, UPLOAD_IDLE_TIMEOUT_ENV, DEFAULT_UPLOAD_IDLE_TIMEOUT_S,
                                                 "seconds"),
            upload_min_rate=_positive_number(env, UPLOAD_MIN_RATE_ENV, DEFAULT_UPLOAD_MIN_RATE, "bytes per second"),
            webhooks=WebhookSettings.from_env(env),
            # On unless turned off: unset counts.
            count_downloads=_flag(env, COUNT_DOWNLOADS_ENV) if _raw(env, COUNT_DOWNLOADS_ENV) else True,
            # Checked where it is used (registry.legacy.tfhub_cache.cache_root): a gs:// cache set for
            # tensorflow_hub must not stop every other use of the registry.
            tfhub_cache_dir=_raw(env, TFHUB_CACHE_DIR_ENV) or None,
            downloads=_downloads(env),
            accel_redirect=_accel_redirect(env),
        )


#: What a yes/no variable accepts; anything else is an error (unset or empty: no).
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
#: PostgreSQL drivers SQLAlchemy knows, by the module each imports (``postgresql://`` alone means psycopg 3).
_POSTGRES_DRIVERS = {"psycopg": "psycopg", "psycopg2": "psycopg2", "psycopg2cffi": "psycopg2cffi",
                     "pg8000": "pg8000", "asyncpg": "asyncpg"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _downloads(env: "Mapping[str, str]") -> str | None:
    """One of ``DOWNLOAD_MODES``, or None (unset: redirect where the storage can sign, else proxy)."""
    raw = _raw(env, DOWNLOADS_ENV)
    if not raw:
        return None
    if raw.lower() not in DOWNLOAD_MODES:
        raise invalid(DOWNLOADS_ENV, raw, f"use one of {', '.join(DOWNLOAD_MODES)} (unset: redirect where the "
                                          f"storage can sign URLs, else proxy)")
    return raw.lower()


#: A URL path of plain segments, starting and ending with "/": nginx matches it as a location prefix.
_ACCEL_PREFIX = re.compile(r"^/([A-Za-z0-9._~-]+/)+$")


def _accel_redirect(env: "Mapping[str, str]") -> str | None:
    raw = _raw(env, ACCEL_REDIRECT_ENV)
    if not raw:
        return None
    if not _ACCEL_PREFIX.match(raw):
        raise invalid(ACCEL_REDIRECT_ENV, raw, "a URL path that starts and ends with / (e.g. /internal-archives/), "
                                               "the nginx location of an internal alias of the storage folder")
    return raw


def _cache_check(env: "Mapping[str, str]") -> str:
    """One of ``CACHE_CHECK_LEVELS`` (unset: "stat")."""
    raw = _raw(env, CACHE_CHECK_ENV)
    if not raw:
        return "stat"
    if raw.lower() not in CACHE_CHECK_LEVELS:
        raise invalid(CACHE_CHECK_ENV, raw, f"use one of {', '.join(CACHE_CHECK_LEVELS)} (unset: stat)")
    return raw.lower()


def invalid(name: str, value: str, allowed: str) -> ConfigError:
    """The one form of a bad setting: ``NAME='value' is not valid: what is allowed``, on one line."""
    return ConfigError(f"{name}={value!r} is not valid: {allowed}")


def _raw(env: "Mapping[str, str]", name: str) -> str:
    return (env.get(name) or "").strip()


def _flag(env: "Mapping[str, str]", name: str) -> bool:
    raw = _raw(env, name)
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise invalid(name, raw, "use 1, true, yes or on to turn it on; 0, false, no, off or unset for off")


def _positive_number(env: "Mapping[str, str]", name: str, default: float, unit: str, *,
                     integer: bool = False) -> float:
    raw = _raw(env, name)
    if not raw:
        return default
    try:
        value: float = int(raw) if integer else float(raw)
    except ValueError:
        value = 0
    if not 0 < value < float("inf"):  # also refuses nan
        kind = "a whole number" if integer else "a number"
        shown_default = f"{int(default)}" if integer else f"{default:g}"
        raise invalid(name, raw, f"expected {kind} of {unit} greater than 0 (unset: {shown_default})")
    return value


def _database_url(env: "Mapping[str, str]") -> str:
    raw = _raw(env, DATABASE_URL_ENV)
    if not raw:
        return default_database_url()
    from registry.catalog.urls import backend, redact  # standard library only

    allowed = ("the catalog is SQLite (sqlite:///PATH) or PostgreSQL (postgresql+psycopg://USER@HOST/DB, "
               "after pip install 'tf-model-registry[postgres]')")
    name = backend(raw)
    if name not in ("sqlite", "postgresql", "postgres"):
        raise invalid(DATABASE_URL_ENV, redact(raw), allowed)
    if name != "sqlite":
        scheme = raw.split("://", 1)[0]
        driver = scheme.split("+", 1)[1].lower() if "+" in scheme else "psycopg"
        module = _POSTGRES_DRIVERS.get(driver)
        if module is None:
            raise invalid(DATABASE_URL_ENV, redact(raw), f"{driver!r} is not a PostgreSQL driver; {allowed}")
        if importlib.util.find_spec(module) is None:
            hint = ("pip install 'tf-model-registry[postgres]'" if module == "psycopg" else
                    f"install {module}, or use postgresql+psycopg:// after pip install 'tf-model-registry[postgres]'")
            raise invalid(DATABASE_URL_ENV, redact(raw), f"its driver ({module}) is not installed: {hint}")
    return raw


def _storage_url(env: "Mapping[str, str]") -> str:
    raw = _raw(env, STORAGE_URL_ENV)
    if not raw:
        return default_storage_url()
    if any(ord(c) < 32 for c in raw) or ("://" in raw and not _SCHEME.match(raw)):
        raise invalid(STORAGE_URL_ENV, raw, "expected a local folder or an fsspec URL (gs://bucket/prefix, ...)")
    return raw  # the scheme is checked against fsspec's when the storage is opened (importing fsspec is slow)


def _cache_dir(env: "Mapping[str, str]") -> Path:
    raw = _raw(env, CACHE_DIR_ENV)
    if not raw:
        return default_cache_dir()
    if "://" in raw or any(ord(c) < 32 for c in raw):
        raise invalid(CACHE_DIR_ENV, raw, "expected a local folder (downloads are extracted there)")
    path = Path(os.path.expanduser(raw))
    if path.exists() and not path.is_dir():
        raise invalid(CACHE_DIR_ENV, raw, "it is a file: name a folder (it is created if missing)")
    return path


def _server_url(env: "Mapping[str, str]") -> str | None:
    raw = _raw(env, SERVER_URL_ENV)
    if not raw:
        return None
    from urllib.parse import urlsplit, urlunsplit

    allowed = "expected the server's root URL, http(s)://HOST[:PORT] (what model-registry serve prints)"
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError unless the port is a number from 0 to 65535
    except ValueError:
        raise invalid(SERVER_URL_ENV, raw, allowed) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise invalid(SERVER_URL_ENV, raw, allowed)
    path = parts.path.rstrip("/")
    for api in ("/api/v1", "/api"):
        if path.endswith(api):
            root = urlunsplit((parts.scheme, parts.netloc, path[: -len(api)] or "", "", ""))
            raise invalid(SERVER_URL_ENV, raw, f"use the server's root URL, {root}: the client adds /api/v1 itself")
    return raw


def _token(env: "Mapping[str, str]") -> str | None:
    raw = _raw(env, TOKEN_ENV)
    if not raw:
        return None
    if not all(33 <= ord(c) < 127 for c in raw):
        raise invalid(TOKEN_ENV, "***", "a token is printable ASCII without spaces, as `model-registry token create` "
                                        "printed it; copy it again")
    return raw


def debug_from_env() -> bool:
    """``MODEL_REGISTRY_DEBUG``; a value that is neither yes nor no is a ``ConfigError`` like any other setting's."""
    return _flag(os.environ, DEBUG_ENV)


def plugins_to_load() -> set[str] | None:
    """``MODEL_REGISTRY_LOAD_PLUGINS``, read when the process-wide plugin manager is first built.

    Whether each name is an installed plugin is checked there (``registry.plugin_manager``), the one place that
    knows them (``unknown_plugins_error``); a value that names nothing at all is refused here.
    """
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    names = {name.strip() for name in raw.split(",") if name.strip()}
    if not names:
        raise invalid(PLUGINS_ENV, raw, "expected comma-separated plugin names (as "
                                        "registry.plugin_manager.DEFAULT_PLUGINS lists them); unset it to load every "
                                        "installed plugin")
    return names


def unknown_plugins_error(unknown: "set[str]", installed: "list[str]") -> ConfigError:
    """``MODEL_REGISTRY_LOAD_PLUGINS`` names plugins that are not installed (raised by the plugin manager)."""
    raw = os.environ.get(PLUGINS_ENV) or ",".join(sorted(unknown))
    return invalid(PLUGINS_ENV, raw, f"no plugin named {', '.join(repr(n) for n in sorted(unknown))} is installed; "
                                     f"the installed ones are {', '.join(installed)}")


def quiet_tensorflow_logs() -> None:
    """Keep TensorFlow's start-up lines off a command line's and a server's output, unless ``MODEL_REGISTRY_TF_LOGS``.

    Defaults ``TF_CPP_MIN_LOG_LEVEL`` to 2 (its C++ info lines; a set value wins), a write to the environment made
    here with every other environment access, and filters the lines printed before TensorFlow's logging is set up,
    which no variable silences (``registry.tf_logs``).
    """
    if _flag(os.environ, TF_LOGS_ENV):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from registry import tf_logs

    tf_logs.install()


def prepare_gcs_environment() -> None:
    """gcsfs asks GCS for a bucket's type over gRPC first; an emulator never answers, so turn that off for one.

    Both are gcsfs's own variables (``STORAGE_EMULATOR_HOST`` names the emulator), read by gcsfs itself.
    """
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


class GcsReadEnvironment(NamedTuple):
    """What gcsfs and fsspec would read from the environment to choose a ``gs://`` endpoint and credentials
    (their own variables), for ``registry.storage.remote``'s anonymous reads, which do without importing them."""

    #: ``STORAGE_EMULATOR_HOST`` ("" when unset or ``default``, as gcsfs reads it).
    emulator: str
    #: fsspec's config folder (``FSSPEC_CONFIG_DIR``, else ``~/.config/fsspec``), whose files fsspec also reads.
    fsspec_config_dir: Path
    #: ``FSSPEC_GS[_OPTION]`` and ``FSSPEC_GCS[_OPTION]``: fsspec's options for gcsfs, read as fsspec reads them.
    fsspec_options: dict
    #: ``GOOGLE_CLOUD_UNIVERSE_DOMAIN`` or ``GOOGLE_API_USE_CLIENT_CERTIFICATE``: an endpoint only gcsfs works out.
    other_endpoint: bool


def gcs_read_environment() -> GcsReadEnvironment:
    import json

    emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
    options: dict = {}
    for protocol in ("GS", "GCS"):  # fsspec: a JSON object for the protocol, then one variable per option
        whole = os.environ.get(f"FSSPEC_{protocol}")
        if whole:
            try:
                value = json.loads(whole)
            except ValueError:
                value = None
            if isinstance(value, dict):
                options.update(value)
        prefix = f"FSSPEC_{protocol}_"
        options.update({name[len(prefix):].lower(): value for name, value in os.environ.items()
                        if name.startswith(prefix) and len(name) > len(prefix)})
    return GcsReadEnvironment(
        emulator="" if emulator == "default" else emulator,
        fsspec_config_dir=Path(os.environ.get("FSSPEC_CONFIG_DIR") or Path.home() / ".config" / "fsspec"),
        fsspec_options=options,
        other_endpoint=bool(os.environ.get("GOOGLE_CLOUD_UNIVERSE_DOMAIN")
                            or os.environ.get("GOOGLE_API_USE_CLIENT_CERTIFICATE")))
