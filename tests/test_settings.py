"""Configuration is read in one place: ``registry/config.py`` reads the environment into ``Settings``, and the
parts a ``Registry`` builds are handed the values they use.

The scan is textual on purpose: any read of ``os.environ`` (``.get``, ``[...]``, iteration), ``os.getenv`` or
``environ`` imported on its own, in a module under ``registry/``, ``adapters/`` or ``plugins/`` other than
``registry/config.py`` and the CLI's entry, fails here with the file and line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from registry import config
from registry.api import Registry
from registry.config import (CACHE_DIR_ENV, DATABASE_TIMEOUT_ENV, DATABASE_URL_ENV, DEBUG_ENV,
                             DEFAULT_MAX_UPLOAD_BYTES, LOCK_TIMEOUT_ENV, MAX_EXPANSION_RATIO_ENV,
                             MAX_EXTRACTED_BYTES_ENV, MAX_MEMBERS_ENV, MAX_UPLOAD_BYTES_ENV, OFFLINE_ENV, PLUGINS_ENV,
                             REQUIRE_READ_TOKEN_ENV, SERVER_URL_ENV, STALL_TIMEOUT_ENV, STORAGE_URL_ENV, TF_LOGS_ENV,
                             CACHE_CHECK_ENV, UPLOAD_IDLE_TIMEOUT_ENV, UPLOAD_MIN_RATE_ENV, WEBHOOK_ALLOW_ENV,
                             WEBHOOK_MAX_ATTEMPTS_ENV, WEBHOOK_DISABLE_AFTER_ENV, COUNT_DOWNLOADS_ENV,
                             DOWNLOADS_ENV, ACCEL_REDIRECT_ENV, TOKEN_ENV, ArchiveLimits, Settings)
from registry.errors import ConfigError
from registry.server.settings import ServerSettings

REPO = Path(__file__).resolve().parent.parent
#: The environment is read here and nowhere else (the CLI's entry may read it for its own options).
READERS = {"registry/config.py", "registry/cli/__init__.py"}
#: Writes to the environment (defaults for TensorFlow's and gcsfs's own variables) are made here only.
WRITERS = {"registry/config.py"}
ENV_ACCESS = re.compile(r"\bos\.environ\b|\bgetenv\b|\bputenv\b|\bfrom\s+os\s+import\s+[^\n]*\benviron\b"
                        r"|(?<![\w.])environ\s*[\[.]")
ENV_WRITE = re.compile(r"\bos\.environ\s*(\[[^\]]*\]\s*=|\.(setdefault|update|pop|clear)\b)|\bputenv\b")


def _sources() -> list[Path]:
    """Every Python file of the package: registry/ (its adapters/ and plugins/ links skipped), adapters/, plugins/."""
    files = []
    for top in ("registry", "adapters", "plugins"):
        for path in sorted((REPO / top).rglob("*.py")):
            relative = path.relative_to(REPO)
            if top == "registry" and relative.parts[1] in ("adapters", "plugins"):
                continue  # symlinks to the top-level folders, scanned as themselves
            files.append(path)
    return files


def _hits(pattern: re.Pattern, allowed: set[str]) -> list[str]:
    found = []
    for path in _sources():
        relative = path.relative_to(REPO).as_posix()
        if relative in allowed:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and not code.lstrip().startswith(('"', "'")):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_the_environment_is_read_only_in_config_and_the_cli_entry():
    assert len(_sources()) > 50  # the scan sees the package
    assert _hits(ENV_ACCESS, READERS) == [], "read the value into registry.config.Settings and pass it down"


def test_the_environment_is_written_only_in_config():
    assert _hits(ENV_WRITE, WRITERS) == []


def test_the_scan_catches_every_spelling_of_a_read():
    for line in ("os.environ.get('X')", "os.environ['X']", "x = os.getenv('X')", "from os import environ, path",
                 "environ.get('X')", "dict(os.environ)"):
        assert ENV_ACCESS.search(line), line
    for line in ("settings.environ_name", "self.environment()", "environment().get_template(t)"):
        assert not ENV_ACCESS.search(line), line


def test_every_variable_has_its_documented_default(tmp_path):
    settings = Settings.from_env({DATABASE_URL_ENV: "sqlite:///x.db", STORAGE_URL_ENV: "/s", CACHE_DIR_ENV: "/c"})
    assert (settings.offline, settings.server_url, settings.token) == (False, None, None)
    assert (settings.database_timeout, settings.stall_timeout, settings.lock_timeout) == (60.0, 30.0, 600.0)
    assert settings.archive_limits == ArchiveLimits() == ArchiveLimits(max_bytes=64 << 30, max_ratio=200.0,
                                                                        max_members=20_000)
    assert (settings.require_read_token, settings.max_upload_bytes) == (False, 8 << 30) == \
        (False, DEFAULT_MAX_UPLOAD_BYTES)


def test_every_variable_is_read_into_settings():
    env = {DATABASE_URL_ENV: "sqlite:///x.db", STORAGE_URL_ENV: "gs://b/p", CACHE_DIR_ENV: "~/c",
           OFFLINE_ENV: "1", SERVER_URL_ENV: " http://h:1 ", TOKEN_ENV: "mr_t", DATABASE_TIMEOUT_ENV: "5",
           STALL_TIMEOUT_ENV: "7", LOCK_TIMEOUT_ENV: "9", MAX_EXTRACTED_BYTES_ENV: "1000",
           MAX_EXPANSION_RATIO_ENV: "3", MAX_MEMBERS_ENV: "11", REQUIRE_READ_TOKEN_ENV: "true",
           MAX_UPLOAD_BYTES_ENV: "4096"}
    s = Settings.from_env(env)
    assert (s.database_url, s.storage_url, s.cache_dir) == ("sqlite:///x.db", "gs://b/p", Path("~/c").expanduser())
    assert (s.offline, s.server_url, s.token) == (True, "http://h:1", "mr_t")
    assert (s.database_timeout, s.stall_timeout, s.lock_timeout) == (5.0, 7.0, 9.0)
    assert (s.archive_limits.max_bytes, s.archive_limits.max_ratio, s.archive_limits.max_members) == (1000, 3.0, 11)
    assert ServerSettings.from_settings(s) == ServerSettings(require_read_token=True, max_upload_bytes=4096)
    assert "mr_t" not in repr(s)


def test_an_unusable_number_is_an_error_naming_the_variable():
    base = {DATABASE_URL_ENV: "sqlite:///x.db", STORAGE_URL_ENV: "/s", CACHE_DIR_ENV: "/c"}
    for name, value in ((STALL_TIMEOUT_ENV, "soon"), (LOCK_TIMEOUT_ENV, "-1"), (MAX_UPLOAD_BYTES_ENV, "0"),
                        (MAX_MEMBERS_ENV, "many"), (MAX_EXPANSION_RATIO_ENV, "nan"), (DATABASE_TIMEOUT_ENV, "inf")):
        with pytest.raises(ConfigError, match=f"^{name}='{value}' is not valid: expected a "):
            Settings.from_env({**base, name: value})
    # Blank is unset, and surrounding spaces do not matter.
    assert Settings.from_env({**base, STALL_TIMEOUT_ENV: " ", LOCK_TIMEOUT_ENV: " 5 "})[7:9] == (30.0, 5.0)


#: A value each MODEL_REGISTRY_* variable cannot take, the command that reads it, and what the error must say
#: (besides the variable's name and, except for the token, the value). Every variable registry.config declares
#: must be here: test_every_variable_is_walked keeps the walk complete when one is added.
BAD_VALUES = {
    DATABASE_URL_ENV: ("mysql://u:hunter2@db/x", "list", "pip install 'tf-model-registry[postgres]'"),
    STORAGE_URL_ENV: ("nosuch://bucket/p", "publish", "unknown URL scheme 'nosuch'"),
    CACHE_DIR_ENV: ("{file}", "list", "name a folder"),
    OFFLINE_ENV: ("maybe", "list", "use 1, true, yes or on"),
    PLUGINS_ENV: ("registry.adapters.tf1hub", "compat", "the installed ones are registry.adapters.tf2_saved_model"),
    DATABASE_TIMEOUT_ENV: ("0", "list", "greater than 0 (unset: 60)"),
    DEBUG_ENV: ("verbose", "list", "use 1, true, yes or on"),
    SERVER_URL_ENV: ("http://registry:8000/api/v1/", "list", "use the server's root URL, http://registry:8000"),
    TOKEN_ENV: ("mr_abc def", "list", "printable ASCII without spaces"),
    REQUIRE_READ_TOKEN_ENV: ("sometimes", "list", "use 1, true, yes or on"),
    MAX_UPLOAD_BYTES_ENV: ("8G", "list", "a whole number of bytes greater than 0"),
    STALL_TIMEOUT_ENV: ("abc", "list", "a number of seconds greater than 0 (unset: 30)"),
    LOCK_TIMEOUT_ENV: ("-1", "list", "a number of seconds greater than 0 (unset: 600)"),
    MAX_EXTRACTED_BYTES_ENV: ("1.5e9", "list", "a whole number of bytes"),
    MAX_EXPANSION_RATIO_ENV: ("nan", "list", "greater than 0 (unset: 200)"),
    MAX_MEMBERS_ENV: ("-5", "list", "a whole number of members greater than 0 (unset: 20000)"),
    TF_LOGS_ENV: ("loud", "list", "use 1, true, yes or on"),
    CACHE_CHECK_ENV: ("sha1", "list", "use one of stat, hash (unset: stat)"),
    UPLOAD_IDLE_TIMEOUT_ENV: ("soon", "list", "a number of seconds greater than 0 (unset: 60)"),
    UPLOAD_MIN_RATE_ENV: ("0", "list", "a number of bytes per second greater than 0 (unset: 1024)"),
    WEBHOOK_ALLOW_ENV: ("hooks.example.com, http://x/y", "list", "none of a host name, a *.domain suffix"),
    WEBHOOK_MAX_ATTEMPTS_ENV: ("many", "list", "a whole number of attempts greater than 0 (unset: 10)"),
    WEBHOOK_DISABLE_AFTER_ENV: ("-1", "list", "a whole number of failed attempts greater than 0 (unset: 50)"),
    COUNT_DOWNLOADS_ENV: ("sometimes", "list", "use 1, true, yes or on"),
    DOWNLOADS_ENV: ("bucket", "list", "use one of redirect, proxy (unset: redirect where the storage can sign"),
    ACCEL_REDIRECT_ENV: ("internal-archives", "list", "a URL path that starts and ends with /"),
}


def test_every_variable_is_walked():
    declared = {value for name, value in vars(config).items() if name.endswith("_ENV") and
                isinstance(value, str) and value.startswith("MODEL_REGISTRY_")}
    assert declared == set(BAD_VALUES), "give each new MODEL_REGISTRY_* variable a bad value in BAD_VALUES"


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_value_of_every_variable_is_one_error_line_from_the_cli(name, registry_env, reference, tmp_path):
    """Through the installed ``model-registry`` in a process of its own, as a user meets it: one line, exit 1."""
    value, command, allowed = BAD_VALUES[name]
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    value = value.format(file=a_file)
    args = {"list": ["list"], "compat": ["compat"],
            "publish": ["publish", str(reference.model_dir("tf2_text_embedding")), "--name", "ex/walk"]}[command]
    env = {**os.environ, name: value, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([str(Path(sys.executable).with_name("model-registry")), *args], capture_output=True,
                            text=True, timeout=300, env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, (result.returncode, result.stderr)
    shown_value = "***" if name == TOKEN_ENV else value.replace("hunter2", "***")
    assert lines[0].startswith(f"Error: {name}={shown_value!r}") and " is not valid: " in lines[0], lines[0]
    assert allowed in lines[0], lines[0]
    assert "hunter2" not in result.stderr and ("abc def" not in result.stderr)
    assert result.stdout == ""


def test_a_postgresql_url_without_its_driver_says_which_extra_to_install(registry_env, tmp_path):
    """psycopg made unimportable for one process (``sys.modules[name] = None``, Python's way to block an import)."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['psycopg'] = None\n")
    env = {**os.environ, DATABASE_URL_ENV: "postgresql://registry:hunter2@db.internal/registry",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(blocker), str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([str(Path(sys.executable).with_name("model-registry")), "list"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"Error: {DATABASE_URL_ENV}='postgresql://registry:***@db.internal/registry' is "
                                    f"not valid: its driver (psycopg) is not installed: pip install "
                                    f"'tf-model-registry[postgres]'"), result.stderr


def test_load_plugins_naming_no_installed_plugin_is_an_error(monkeypatch):
    from registry.plugin_manager import make_plugin_manager

    with pytest.raises(ConfigError, match=r"no plugin named 'nosuch' is installed; the installed ones are "):
        make_plugin_manager(only={"registry.adapters.tf2_saved_model", "nosuch"})
    monkeypatch.setenv(PLUGINS_ENV, " , ")
    with pytest.raises(ConfigError, match=f"^{PLUGINS_ENV}=' , ' is not valid: expected comma-separated"):
        config.plugins_to_load()


def test_a_registry_hands_each_part_its_settings(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "store"),
                        cache_dir=tmp_path / "cache", database_timeout=3.0, stall_timeout=4.0, lock_timeout=5.0,
                        archive_limits=ArchiveLimits(max_members=6))
    registry = Registry(settings=settings)
    assert registry.catalog.timeout == 3.0
    assert registry.store.stall_timeout == 4.0
    assert (registry.cache.stall_timeout, registry.cache.lock_timeout, registry.cache.limits.max_members) == \
        (4.0, 5.0, 6)
    assert registry.resolver.store is registry.store and registry.resolver.cache is registry.cache

    client = Registry(settings=settings._replace(server_url="http://127.0.0.1:9", token="mr_x"))
    assert client.server_connection.timeout == 4.0 and client.server_connection.token == "mr_x"
    # An explicit argument changes its field only: the rest still comes from the settings.
    assert Registry(settings=settings, cache_dir=tmp_path / "other").cache.lock_timeout == 5.0
