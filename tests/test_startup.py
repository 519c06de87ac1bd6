"""Start-up: finding third-party plugins without a full ``importlib.metadata`` scan, and never missing one.

``registry.plugin_manager._group_may_exist`` reads ``entry_points.txt`` files as bytes
and lets ``importlib.metadata`` decide whenever one mentions the group or the
path holds something it does not follow itself. These tests hold it to its
promise: whatever ``importlib.metadata`` would find, it answers True for (a
superset, never fewer), on the real environment and on constructed layouts, and
a plugin installed or removed is seen by the next manager built (it caches
nothing). How fast it is lives in ``bench/bench_load.py``.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import zipfile
from importlib.metadata import distributions, entry_points
from pathlib import Path

import pytest

import registry
from registry import plugin_manager as plugins
from registry.plugin_manager import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, AdapterSet, make_plugin_manager

PLUGIN_SOURCE = '''
import registry
from registry.adapter import FormatAdapter


class StartupAdapter(FormatAdapter):
    format = "startup_toy"
    matrix = ()

    @classmethod
    def detect(cls, path):
        return False

    def inspect(self, path):
        raise NotImplementedError

    def load(self, path, *, mode, **options):
        raise NotImplementedError


@registry.hookimpl
def register_adapters(register):
    register(StartupAdapter)
'''


def _dist_info(site: Path, name: str, entry_points_text: str | None, suffix: str = ".dist-info") -> Path:
    dist = site / f"{name}-0.1{suffix}"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    if entry_points_text is not None:
        (dist / "entry_points.txt").write_text(entry_points_text)
    return dist


def _declares(path: list[str], group: str) -> bool:
    """What importlib.metadata itself says: does any distribution on ``path`` declare an entry point in ``group``?"""
    importlib.invalidate_caches()
    return any(ep.group == group for dist in distributions(path=path) for ep in dist.entry_points)


# --------------------------------------------------------------------------------------------- layouts

def _plain(tmp: Path) -> tuple[list[str], bool]:
    """Distributions with and without entry points, none in the group: the fast answer is "none"."""
    site = tmp / "site"
    _dist_info(site, "console_only", "[console_scripts]\nthing = thing:main\n")
    _dist_info(site, "no_entry_points", None)
    _dist_info(site, "mentions_a_longer_group", "[model_registry_extras]\nmodel_registry = model_registry.x\n")
    (site / "legacy.egg-info").write_text("Metadata-Version: 1.0\nName: legacy\n")  # an egg-info *file*
    (site / "some_package").mkdir()
    return [str(site), str(tmp / "does-not-exist")], False


def _declared(tmp: Path) -> tuple[list[str], bool]:
    site = tmp / "site"
    _dist_info(site, "toy", f"[{ENTRY_POINT_GROUP}]\ntoy = toy_plugin\n")
    return [str(site)], True


def _declared_upper_case_suffix(tmp: Path) -> tuple[list[str], bool]:
    site = tmp / "site"
    _dist_info(site, "Toy", f"[{ENTRY_POINT_GROUP}]\ntoy = toy_plugin\n", suffix=".DIST-INFO")
    return [str(site)], True


def _declared_in_egg_info(tmp: Path) -> tuple[list[str], bool]:
    site = tmp / "site"
    _dist_info(site, "toy", f"# a comment\n  [{ENTRY_POINT_GROUP}]  \r\ntoy = toy_plugin\n", suffix=".egg-info")
    return [str(site)], True


def _declared_in_a_zip(tmp: Path) -> tuple[list[str], bool]:
    archive = tmp / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("toy-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: toy\nVersion: 0.1\n")
        zf.writestr("toy-0.1.dist-info/entry_points.txt", f"[{ENTRY_POINT_GROUP}]\ntoy = toy_plugin\n")
    return [str(archive)], True


def _an_egg(tmp: Path) -> tuple[list[str], bool]:
    egg = tmp / "toy-0.1-py3.11.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: toy\nVersion: 0.1\n")
    (egg / "EGG-INFO" / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntoy = toy_plugin\n")
    return [str(egg)], True


def _unreadable_entry_points(tmp: Path) -> tuple[list[str], bool]:
    site = tmp / "site"
    dist = _dist_info(site, "odd", None)
    (dist / "entry_points.txt").mkdir()  # cannot be read as a file: let importlib.metadata decide
    return [str(site)], True


LAYOUTS = {
    "plain": _plain,
    "declared": _declared,
    "declared, upper-case suffix": _declared_upper_case_suffix,
    "declared in an egg-info directory": _declared_in_egg_info,
    "declared inside a zip on the path": _declared_in_a_zip,
    "an .egg on the path": _an_egg,
    "entry_points.txt that is not a file": _unreadable_entry_points,
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_prefilter_answers_true_whenever_importlib_metadata_finds_the_group(layout, tmp_path):
    path, expected = LAYOUTS[layout](tmp_path)
    may_exist = plugins._group_may_exist(ENTRY_POINT_GROUP, path)
    assert may_exist is expected
    assert may_exist or not _declares(path, ENTRY_POINT_GROUP)


def test_the_empty_path_entry_is_the_current_directory(tmp_path, monkeypatch):
    _dist_info(tmp_path, "toy", f"[{ENTRY_POINT_GROUP}]\ntoy = toy_plugin\n")
    monkeypatch.chdir(tmp_path)
    assert plugins._group_may_exist(ENTRY_POINT_GROUP, [""]) is True
    assert plugins._group_may_exist("some_other_group", [""]) is False


def test_another_distribution_finder_always_defers_to_importlib_metadata(tmp_path, monkeypatch):
    class Finder:
        """A meta-path finder that can report distributions the prefilter cannot see."""

        @staticmethod
        def find_spec(*args, **kwargs):
            return None

        @staticmethod
        def find_distributions(context=None):
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [Finder, *sys.meta_path])
    assert plugins._group_may_exist(ENTRY_POINT_GROUP, [str(tmp_path)]) is True


def test_every_group_installed_here_is_seen():
    groups = entry_points().groups
    assert "console_scripts" in groups  # pip, pytest...: the check below checks something
    for group in groups:
        assert plugins._group_may_exist(group), group
    if not plugins._group_may_exist(ENTRY_POINT_GROUP):
        assert not list(entry_points(group=ENTRY_POINT_GROUP))


# --------------------------------------------------------------------------------------------- install / remove

@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path where the test installs and removes a plugin distribution."""
    site = tmp_path / "site"
    (site / "startup_toy_plugin").mkdir(parents=True)
    (site / "startup_toy_plugin" / "__init__.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("startup_toy_plugin", None)


def _install(site: Path) -> Path:
    dist = _dist_info(site, "startup_toy_plugin", f"[{ENTRY_POINT_GROUP}]\nstartup_toy = startup_toy_plugin\n")
    importlib.invalidate_caches()
    return dist


def _remove(dist: Path) -> None:
    for child in dist.iterdir():
        child.unlink()
    dist.rmdir()
    importlib.invalidate_caches()


def test_a_plugin_installed_or_removed_is_seen_by_the_next_manager(site):
    assert make_plugin_manager(load_defaults=False).get_plugin("startup_toy") is None
    dist = _install(site)
    pm = make_plugin_manager()
    assert pm.get_plugin("startup_toy") is not None
    assert "startup_toy" in AdapterSet(pm)
    _remove(dist)
    assert make_plugin_manager().get_plugin("startup_toy") is None
    _install(site)
    assert make_plugin_manager().get_plugin("startup_toy") is not None


def test_the_process_wide_manager_sees_a_plugin_installed_before_a_reset(site, monkeypatch):
    monkeypatch.delenv("MODEL_REGISTRY_LOAD_PLUGINS", raising=False)
    plugins.reset_plugin_manager()
    try:
        assert plugins.get_plugin_manager().get_plugin("startup_toy") is None
        _install(site)
        plugins.reset_plugin_manager()
        assert plugins.get_plugin_manager().get_plugin("startup_toy") is not None
        assert "startup_toy" in registry.Registry().adapters
    finally:
        plugins.reset_plugin_manager()


def test_only_still_loads_a_named_third_party_plugin(site):
    _install(site)
    pm = make_plugin_manager(only={"registry.adapters.tf2_saved_model", "startup_toy"})
    assert sorted(name for name, _ in pm.list_name_plugin()) == ["registry.adapters.tf2_saved_model", "startup_toy"]


def test_only_naming_built_ins_alone_skips_the_scan(site, monkeypatch):
    _install(site)

    def scanned(group):
        raise AssertionError("no entry point can be named by `only`: nothing to scan for")

    monkeypatch.setattr(plugins, "group_entry_points", scanned)
    pm = make_plugin_manager(only=set(DEFAULT_PLUGINS))
    assert [name for name, _ in pm.list_name_plugin()] == list(DEFAULT_PLUGINS)


# --------------------------------------------------------------------------------------------- fresh process

def test_building_the_manager_reads_no_distribution_metadata_when_no_plugin_declares_the_group():
    code = ("import sys; from registry import plugin_manager as plugins; pm = plugins.get_plugin_manager(); "
            "print(plugins._group_may_exist(plugins.ENTRY_POINT_GROUP), 'importlib.metadata' in sys.modules, "
            "sorted(name for name, _ in pm.list_name_plugin()))")
    env = {k: v for k, v in os.environ.items() if k != "MODEL_REGISTRY_LOAD_PLUGINS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    may_exist, imported, names = result.stdout.strip().splitlines()[-1].split(" ", 2)
    if may_exist == "False":  # no third-party plugin here: the fast path must have been taken
        assert imported == "False"
    assert all(name in names for name in DEFAULT_PLUGINS)
