"""The example third-party adapter (examples/keras_file_adapter) claims Keras models by its precedence and,
installed from its own directory into a fresh virtual environment, passes the shipped contract suite there.

The fresh environment borrows the test environment's installed dependencies
(TensorFlow, Keras...) through a ``.pth`` file naming a folder of links to them,
minus this project's own distribution, so that it costs seconds, not a
TensorFlow download: the project and the example are built as wheels from their
own directories and installed with ``--no-deps``; their entry points are the ones
the fresh environment sees.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import registry
from registry.plugin_manager import AdapterSet, make_plugin_manager
from tests.test_wheel_install import NOT_BUILT, REPO_ROOT, _run, _sandboxed_env

EXAMPLE = REPO_ROOT / "examples" / "keras_file_adapter"


@pytest.fixture
def example(monkeypatch):
    """The example's plugin module, imported from its directory (not installed in this environment)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(EXAMPLE / "tests"))
    import keras_file_adapter
    import test_contract

    yield keras_file_adapter, test_contract
    for name in [n for n in sys.modules if n.split(".")[0] in ("keras_file_adapter", "test_contract")]:
        del sys.modules[name]


def _manager(*plugins):
    pm = make_plugin_manager(load_entry_points=False)
    for i, plugin in enumerate(plugins):
        pm.register(plugin, name=f"example-{i}")
    return pm


def test_its_precedence_wins_keras_models_and_files_over_the_builtin(example, registry_env, tmp_path):
    plugin, samples = example
    model = samples.tiny_model()
    with_example = AdapterSet(_manager(plugin))
    assert with_example.for_object(model).format == "keras_file"
    assert AdapterSet(_manager()).for_object(model).format == "tf2_saved_model"  # what it wins over

    class Humble(plugin.KerasFileAdapter):  # the same adapter, declared below the built-ins
        precedence = -1

    class HumblePlugin:
        @registry.hookimpl
        def register_adapters(self, register):
            register(Humble)

    assert AdapterSet(_manager(HumblePlugin())).for_object(model).format == "tf2_saved_model"

    file = samples.KerasFileSample().model_path(tmp_path)
    assert with_example.claim_file(file).format == "keras_file"
    reg = registry.Registry(plugin_manager=_manager(plugin))
    record = reg.publish(file, name="keras/tiny")  # a single file, claimed before it is taken for an archive
    assert record.format == "keras_file"
    assert reg.publish(model, name="keras/tiny-object").format == "keras_file"
    samples.KerasFileSample().check_loaded(reg.load(record.handle, mode="tf2"), "tf2", file)
    with pytest.raises(registry.HandleError, match="not a .tar.gz archive"):
        registry.Registry(plugin_manager=_manager()).load(str(file), mode="tf2")  # without the example


def test_the_example_passes_the_contract_in_this_environment(example, registry_env, tmp_path):
    plugin, samples = example
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(plugin, name="keras_file")
    from registry.testing.adapter_contract import AdapterContract

    for check in AdapterContract.CHECKS:
        AdapterContract(plugin.KerasFileAdapter, samples.KerasFileSample(), tmp_path / check,
                        plugin_manager=pm).run(check)


# --------------------------------------------------------------------------- slow: a fresh environment

#: Not borrowed from the test environment: this project (the fresh environment installs its own wheel).
OWN_DISTRIBUTION = ("tf_model_registry", "__editable__", "registry_keras_file_adapter", "keras_file_adapter")


def fresh_venv(root: Path) -> Path:
    """A new virtual environment that sees this environment's dependencies but none of this project's files.

    Returns its python. ``pip`` comes from the borrowed folder too, and installs
    into the new environment (its ``sys.prefix``).
    """
    _run([sys.executable, "-m", "venv", "--without-pip", root / "venv"], timeout=120)
    borrowed = root / "borrowed"
    borrowed.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if entry.name.startswith(OWN_DISTRIBUTION) or entry.suffix == ".pth" or entry.name == "__pycache__":
            continue
        (borrowed / entry.name).symlink_to(entry)
    python = root / "venv" / "bin" / "python"
    venv_site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          timeout=60).stdout.strip())
    (venv_site / "borrowed-dependencies.pth").write_text(f"{borrowed}\n")
    return python


def build_wheel(source: Path, dist: Path) -> Path:
    """A wheel built from a copy of ``source`` (no build isolation: the build tools are this environment's)."""
    copy = dist.parent / f"src-{source.name}"
    shutil.copytree(source, copy, ignore=NOT_BUILT, symlinks=True)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
          copy, "-w", dist], timeout=600)
    return max(dist.glob("*.whl"), key=os.path.getmtime)


CHECK_INSTALLED = textwrap.dedent("""
    import json
    import keras_file_adapter, registry
    from keras_file_adapter import KerasFileAdapter
    from registry.plugin_manager import AdapterSet, make_plugin_manager

    adapters = AdapterSet(make_plugin_manager())  # built-ins and every installed entry point, as a user gets
    print(json.dumps({
        "registry": registry.__file__, "example": keras_file_adapter.__file__,
        "formats": adapters.formats, "source": adapters.source("keras_file"),
        "ranked": [a.format for a in adapters.ranked],
    }))
""")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_installed_from_its_directory_into_a_fresh_venv_it_passes_the_shipped_contract(tmp_path):
    dist = tmp_path / "dist"
    project_wheel = build_wheel(REPO_ROOT, dist)
    example_wheel = build_wheel(EXAMPLE, dist)
    assert example_wheel.name.startswith("registry_keras_file_adapter-")
    python = fresh_venv(tmp_path)
    install_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", project_wheel, example_wheel],
         timeout=600, env=install_env)

    env = _sandboxed_env(tmp_path)
    work = tmp_path / "work"
    shutil.copytree(EXAMPLE / "tests", work / "tests")
    (work / "pytest.ini").write_text("[pytest]\n")  # this folder is the rootdir: no configuration of the repository
    report = json.loads(_run([python, "-c", CHECK_INSTALLED], timeout=300, cwd=work, env=env).stdout.splitlines()[-1])
    venv = (tmp_path / "venv").resolve()
    for key in ("registry", "example"):
        assert Path(report[key]).resolve().is_relative_to(venv), (key, report[key])
    assert set(report["formats"]) == {"keras_file", "tf1_hub", "tf2_saved_model"}
    assert report["source"] == "keras_file" and report["ranked"][0] == "keras_file"  # the entry point; precedence

    done = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    from registry.testing.adapter_contract import AdapterContract

    assert f"{len(AdapterContract.CHECKS)} passed" in done.stdout, done.stdout[-3000:]
