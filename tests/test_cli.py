"""The ``model-registry`` command line, in process (Click's runner) and as the installed script.

Every test runs against an isolated catalog, storage folder and cache
(``registry_env``) and the reference models in registry/demo_models.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from registry import hookimpl
from registry.catalog import schema
from registry.cli import cli
from registry.cli.progress import click_progress_factory

SCRIPT = Path(sys.executable).with_name("model-registry")


def run(*args: str, code: int = 0, input: str | None = None):
    """Invoke the CLI in process and check its exit status."""
    result = CliRunner().invoke(cli, list(args), input=input)
    assert result.exit_code == code, (
        f"model-registry {' '.join(args)} exited {result.exit_code}, expected {code}\n{result.output}",
        result.exception)
    return result


def run_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed console script in a child process with this test's MODEL_REGISTRY_* environment."""
    assert SCRIPT.is_file(), f"the console script is not installed at {SCRIPT}"
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{stderr}"
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def dense(registry_env, reference) -> str:
    """The TF1 Hub model with two signatures, published from its .tar.gz as ex/dense/1."""
    run("publish", str(reference.archive("tf1_dense_two_signatures")), "--name", "ex/dense")
    return "ex/dense/1"


# --------------------------------------------------------------------------- publish, list, show


def test_publish_directory_and_archive_then_list_and_show(registry_env, reference):
    import registry

    out = run("publish", str(reference.model_dir("tf2_image_feature_vector")), "--name", "ex/img",
              "--description", "an image feature vector").stdout
    record = registry.Registry().get_version("ex/img/1")
    assert "published ex/img/1" in out
    assert "format:  tf2_saved_model" in out
    assert f"sha256:  {record.sha256}" in out

    out = run("publish", str(reference.archive("tf2_image_feature_vector")), "--name", "ex/img",
              "--parent", "ex/img/1").stdout
    assert "published ex/img/2" in out and "parent:  ex/img/1" in out
    run("publish", str(reference.archive("tf1_dense_two_signatures")), "--name", "other/dense")

    listing = run("list").stdout.splitlines()
    assert listing[0].split() == ["MODEL", "LATEST", "VERSIONS", "ALIASES", "DESCRIPTION"]
    rows = {line.split()[0]: line.split() for line in listing[2:]}
    assert rows["ex/img"][1:3] == ["2", "2"]
    assert rows["other/dense"][1:3] == ["1", "1"]
    assert [m["handle"] for m in json.loads(run("list", "--publisher", "ex", "--json").stdout)] == ["ex/img"]

    shown = run("show", "ex/img/2").stdout
    assert "lineage:     ex/img/2 <- ex/img/1" in shown
    assert "__call__" in shown and "in  images: float32[?,32,32,3]" in shown
    assert "compatibility (tf2_saved_model):" in shown
    assert "tf2_saved_model  fine-tune" in shown

    model_view = run("show", "ex/img").stdout
    assert "versions:    2 live, newest 2" in model_view
    assert "newest version, ex/img/2:" in model_view


def test_show_lists_the_signatures_of_the_manifest_and_the_matrix_row(dense, reference):
    manifest = reference.manifest["tf1_dense_two_signatures"]["signatures"]
    data = json.loads(run("show", dense, "--json").stdout)
    recorded = {s["name"]: s for s in data["signatures"] if s["tags"] == []}
    assert set(recorded) == set(manifest)
    for name, expected in manifest.items():
        for side in ("inputs", "outputs"):
            assert {k: [v["dtype"], v["shape"]] for k, v in recorded[name][side].items()} == expected[side]
    rows = {row["operation"]: row for row in data["compatibility"]}
    assert set(rows) == {"load", "fine_tune", "create"} and {r["format"] for r in rows.values()} == {"tf1_hub"}
    assert rows["fine_tune"]["tf2"]["supported"] is False and rows["fine_tune"]["tf2"]["alternative"]

    text = run("show", dense).stdout
    assert "    fruit_to_pet\n      in  apples: float32[?,50]" in text
    assert "out hidden_activations: float32[?,200]" in text
    assert "not supported" in text and "compatibility (tf1_hub):" in text


def test_resolve_prints_the_local_model_directory(dense):
    path = Path(run("resolve", dense).stdout.strip())
    assert (path / "saved_model.pb").is_file() and (path / "tfhub_module.pb").is_file()


# --------------------------------------------------------------------------- aliases and delete


def test_alias_set_moves_and_rm_removes(dense, reference):
    run("publish", str(reference.model_dir("tf1_dense_two_signatures")), "--name", "ex/dense")
    assert run("alias", "set", "ex/dense", "prod", "1").stdout.strip() == "ex/dense@prod -> ex/dense/1"
    assert run("show", "ex/dense@prod").stdout.startswith("ex/dense/1\n")
    run("alias", "set", "ex/dense", "prod", "2")
    assert run("show", "ex/dense@prod").stdout.startswith("ex/dense/2\n")
    assert json.loads(run("list", "--json").stdout)[0]["aliases"] == {"prod": 2}

    run("alias", "rm", "ex/dense", "prod")
    assert_one_line_error(run("show", "ex/dense@prod", code=1).stderr, "no alias 'prod'")
    assert_one_line_error(run("alias", "set", "ex/dense", "latest", "1", code=1).stderr, "reserved")


def test_delete_asks_first_then_hides_the_version(dense, reference):
    run("publish", str(reference.model_dir("tf1_dense_two_signatures")), "--name", "ex/dense")
    refused = run("delete", dense, input="n\n", code=1)
    assert "Delete ex/dense/1" in refused.output and "Aborted" in refused.output
    assert run("show", dense).stdout.startswith("ex/dense/1\n")

    assert run("delete", dense, input="y\n").stdout.strip().endswith("deleted ex/dense/1")
    assert_one_line_error(run("show", dense, code=1).stderr, "ex/dense/1 was deleted")
    versions = [v["version"] for v in json.loads(run("show", "ex/dense", "--json").stdout)["versions"]]
    assert versions == [2]
    assert "1 (deleted)" in run("show", "ex/dense", "--deleted").stdout

    run("delete", "ex/dense/2", "--yes")
    assert_one_line_error(run("show", "ex/dense/2", code=1).stderr, "was deleted")


def test_delete_without_a_version_is_refused_even_with_yes(dense, reference):
    """``delete --yes pub/model`` does not mean "the newest": --yes skips the question, never the version."""
    run("publish", str(reference.model_dir("tf1_dense_two_signatures")), "--name", "ex/dense")
    for args in (("ex/dense", "--yes"), ("ex/dense",)):
        assert_one_line_error(run("delete", *args, code=1).stderr, "delete needs a version", "ex/dense/N",
                              "ex/dense@alias")
    assert [v["version"] for v in json.loads(run("show", "ex/dense", "--json").stdout)["versions"]] == [1, 2]
    import registry
    from registry.errors import HandleError

    with pytest.raises(HandleError, match="delete needs a version"):
        registry.Registry().delete_version("ex/dense")
    run("alias", "set", "ex/dense", "prod", "1")
    assert run("delete", "ex/dense@prod", "--yes").stdout.strip() == "deleted ex/dense/1"
    assert [v["version"] for v in json.loads(run("show", "ex/dense", "--json").stdout)["versions"]] == [2]


# --------------------------------------------------------------------------- compat


def test_compat_prints_both_formats_and_the_unsupported_cells(registry_env):
    out = run("compat").stdout
    assert "tf1_hub" in out and "tf2_saved_model" in out and "not supported" in out
    rows = json.loads(run("compat", "--json").stdout)
    unsupported = {(r["format"], r["operation"]) for r in rows if r["tf2"] and not r["tf2"]["supported"]}
    assert unsupported == {("tf1_hub", "fine_tune"), ("tf1_hub", "create")}
    only = run("compat", "--format", "tf2_saved_model").stdout
    assert "tf2_saved_model" in only and "tf1_hub" not in only
    assert_one_line_error(run("compat", "--format", "nope", code=1).stderr, "no installed adapter")


def test_compat_never_imports_tensorflow(registry_env):
    code = ("import sys; from click.testing import CliRunner; from registry.cli import cli; "
            "r = CliRunner().invoke(cli, ['compat']); print(r.exit_code, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["0", "False"], done.stderr


# --------------------------------------------------------------------------- cache


def test_cache_verify_reports_a_corrupt_file_and_prune_removes_it(dense, registry_env):
    entries = json.loads(run("cache", "ls", "--json").stdout)["entries"]
    assert len(entries) == 1
    sha = entries[0]["sha256"]
    assert sha[:16] in run("cache", "ls").stdout
    assert "1 of 1 entries intact" in run("cache", "verify").stdout

    victim = Path(entries[0]["path"]) / "saved_model.pb"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    bad = run("cache", "verify", code=1)
    assert f"{sha}: CORRUPT" in bad.stdout and "saved_model.pb: content changed" in bad.stdout
    assert_one_line_error(bad.stderr, "corrupt", "cache prune --corrupt")

    assert sha in run("cache", "prune", "--corrupt").stdout
    assert json.loads(run("cache", "ls", "--json").stdout)["entries"] == []
    path = Path(run("resolve", dense).stdout.strip())  # downloaded again from storage
    assert path.name == sha and (path / "saved_model.pb").read_bytes() != bytes(data)
    assert "1 of 1 entries intact" in run("cache", "verify").stdout


def test_cache_prune_removes_leftovers_and_keeps_entries_unless_asked(dense, registry_env):
    # An older version's leftover names its process; one above pid_max can never be alive.
    dead_pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    leftover = registry_env.cache_dir / "tmp" / f"{dead_pid}-interrupted"
    leftover.mkdir(parents=True)
    (leftover / "saved_model.pb").write_bytes(b"partial")
    assert "1 incomplete" in run("cache", "ls").stdout

    out = run("cache", "prune").stdout
    assert str(leftover) in out and not leftover.exists()
    assert len(json.loads(run("cache", "ls", "--json").stdout)["entries"]) == 1

    run("cache", "prune", "--all")
    assert json.loads(run("cache", "ls", "--json").stdout)["entries"] == []


# --------------------------------------------------------------------------- db


def test_db_current_and_upgrade(registry_env):
    head = schema.head()
    assert "no schema yet" in run("db", "current").stdout
    run("db", "current", "--check", code=1)

    assert f"to revision {head}" in run("db", "upgrade").stdout
    assert f"revision {head} (head)" in run("db", "current", "--check").stdout
    assert json.loads(run("db", "current", "--json").stdout) == {
        "database": registry_env.database_url, "revision": head, "head": head, "at_head": True}
    assert f"already at revision {head}" in run("db", "upgrade").stdout


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("args, fragment", [
    (("show", "Not A Handle"), "not a handle"),
    (("resolve", "ex/dense/x"), "not a handle"),
    (("show", "nobody/nothing/1"), "no model nobody/nothing"),
    (("show", "ex/dense/7"), "has no version 7"),
    (("publish", "./no/such/dir", "--name", "ex/dense"), "nothing to publish"),
    (("publish", "./no/such/dir", "--name", "Bad Name"), "publisher/model"),
])
def test_errors_are_one_line_without_traceback(dense, args, fragment):
    result = run(*args, code=1)
    assert_one_line_error(result.stderr, fragment)
    assert result.stdout == ""


def test_debug_shows_the_exception_instead(dense):
    from registry.errors import VersionNotFound

    result = CliRunner().invoke(cli, ["--debug", "show", "ex/dense/7"])
    assert isinstance(result.exception, VersionNotFound)


def test_installed_script_prints_one_error_line_and_exits_non_zero(dense):
    for args, fragment in ((["show", "Wrong:Handle"], "not a handle"),
                           (["resolve", "nobody/nothing"], "no model nobody/nothing")):
        done = run_script(*args)
        assert done.returncode == 1, done.stderr
        assert_one_line_error(done.stderr, fragment)

    usage = run_script("show")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert "Error: Missing argument 'HANDLE'" in usage.stderr

    shown = run_script("show", dense, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["handle"] == dense


# --------------------------------------------------------------------------- progress


def test_progress_is_shown_on_request_only(dense):
    run("cache", "prune", "--all")
    quiet = run("resolve", dense)
    assert "Downloading" not in quiet.stderr  # the runner's stderr is not a terminal

    run("cache", "prune", "--all")
    loud = run("--progress", "resolve", dense)
    assert "Downloading ex/dense/1" in loud.stderr
    assert Path(loud.stdout.strip()).is_dir()


def test_progress_of_unknown_size_counts_bytes(capsys):
    with click_progress_factory("Downloading gs://b/m.tar.gz", None) as update:
        for _ in range(3):
            update(100 * 1024)
    assert "Downloading gs://b/m.tar.gz  300.0 KiB" in capsys.readouterr().err


# --------------------------------------------------------------------------- plugins


class CommandsPlugin:
    """A third-party plugin adding two commands, one of them broken."""

    @hookimpl
    def register_commands(self, cli):
        @cli.command()
        def hello():
            """Say hello."""
            click.echo("hello from a plugin")

        @cli.command()
        def boom():
            """Fail the way a buggy plugin does."""
            raise RuntimeError("kaboom")


class ClobberingPlugin:
    @hookimpl
    def register_commands(self, cli):
        cli.add_command(click.Command("list", callback=lambda: None))


@pytest.fixture
def fresh_plugins():
    from registry.plugin_manager import get_plugin_manager, reset_plugin_manager

    reset_plugin_manager()
    yield get_plugin_manager()
    reset_plugin_manager()


def test_plugins_add_commands_and_their_failures_are_one_line(registry_env, fresh_plugins):
    fresh_plugins.register(CommandsPlugin(), name="test-commands")
    assert "hello" in run("--help").stdout
    assert run("hello").stdout == "hello from a plugin\n"
    assert_one_line_error(run("boom", code=1).stderr, "RuntimeError: kaboom", "--debug")


def test_plugins_cannot_replace_a_builtin_command(registry_env, fresh_plugins):
    fresh_plugins.register(ClobberingPlugin(), name="test-clobber")
    assert_one_line_error(run("--help", code=1).stderr, "replace the built-in command 'list'")


# --------------------------------------------------------------------------- demo


@pytest.mark.slow
def test_demo_publishes_loads_and_reproduces_every_reference_model_and_twice_is_once(registry_env, reference):
    done = run_script("demo", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for name in reference.names:
        model = f"examples/{name.replace('_', '-')}"
        assert f"published {model}/1 from {name} " in out
        assert f"{model}/2" not in out and ".tar.gz" not in out  # each bundled model once, from its directory
        modes = ("tf2", "tf1") if reference.manifest[name]["format"] == "tf2_saved_model" else ("tf2",)
        for mode in modes:
            assert f"load {model}/1 mode {mode}: " in out
    assert "MISMATCH" not in out and "FAILED" not in out
    assert f"{len(reference.names)} versions published (0 already there)" in out
    assert "0 mismatched, 0 examples failed" in out
    assert "catalog:\nMODEL" in out
    assert "compatibility matrix:\nformat" in out and "not supported" in out

    # A second run against the same catalog finds every model's content already there and publishes nothing.
    again = run_script("demo", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    for name in reference.names:
        model = f"examples/{name.replace('_', '-')}"
        assert f"already published {model}/1 " in again.stdout and f"published {model}/1 from" not in again.stdout
    assert f"0 versions published ({len(reference.names)} already there)" in again.stdout
    listed = json.loads(run("list", "--json").stdout)
    assert {m["handle"]: (m["version_count"], m["latest_version"]) for m in listed} == {
        f"examples/{name.replace('_', '-')}": (1, 1) for name in reference.names}


def test_demo_and_serve_on_a_busy_port_say_so_in_one_line_before_publishing_anything(registry_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args in (("demo", "--serve", "--port", str(port)), ("serve", "--port", str(port))):
            done = run_script(*args)
            assert done.returncode == 1 and done.stdout == "", (args, done.stdout, done.stderr)
            assert_one_line_error(done.stderr, f"port {port} on 127.0.0.1 is in use", "--port", "make demo PORT=N")
    assert json.loads(run("list", "--json").stdout) == []  # nothing was published


def test_demo_on_a_catalog_behind_the_code_says_so_once_and_publishes_nothing(registry_env):
    """A catalog at an older schema (after a `git pull`, say) is one error line naming `db upgrade`, not a
    failure per bundled model; nothing is published into it."""
    from registry.catalog import schema

    schema.upgrade(registry_env.database_url, "0005")
    done = run_script("demo", timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" not in done.stdout and "published" not in done.stdout
    assert_one_line_error(done.stderr, "older than this code's", "model-registry db upgrade")
