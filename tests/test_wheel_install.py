"""The project installs like a library: a wheel alone, in a fresh virtual environment, runs the README's job.

The wheel must carry what the clone has beside the package: the Alembic
migration scripts (top-level ``alembic/``, shipped as ``registry.catalog.migrations``)
and the demo models (``registry/demo_models``). The slow test builds the wheel
from a copy of the working tree, installs it with ``-c constraints.txt`` into a
new virtual environment, and from a directory outside the repository runs
``model-registry db upgrade``, ``model-registry demo`` and a ``registry.load``,
checking that exactly one TensorFlow distribution got installed and that the
repository is nowhere on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from registry.catalog.migrations_dir import MIGRATIONS_PACKAGE, migrations_directory
from tests.conftest import REFERENCE_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
#: Distributions' top-level package: more than one distribution owning ``tensorflow/`` is the bug this guards.
TENSORFLOW_DISTRIBUTION = "tensorflow"
#: Not copied into the build tree: environments, VCS data and build leftovers (stale build/lib files end up in wheels).
NOT_BUILT = shutil.ignore_patterns(".venv", ".refstack", ".git", "build", "dist", "*.egg-info", "__pycache__",
                                   ".pytest_cache", ".cache")
DEMO_HANDLE = "examples/tf2-image-feature-vector/1"


# --------------------------------------------------------------------------- fast: the package list and the lookups


def test_pyproject_lists_every_package_of_the_tree():
    """pyproject.toml lists its packages (the migrations need a package-dir mapping): the list must match the tree."""
    from setuptools import find_packages

    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    found = set(find_packages(where=str(REPO_ROOT), include=["registry*"]))
    assert listed - set(mapped) == found, (
        "pyproject.toml [tool.setuptools] packages must list exactly the packages of the tree "
        f"(missing: {sorted(found - listed)}, not in the tree: {sorted(listed - set(mapped) - found)})")
    assert mapped == {MIGRATIONS_PACKAGE: "alembic", f"{MIGRATIONS_PACKAGE}.versions": "alembic/versions"}
    # An __init__.py there would make the repository's alembic/ shadow the alembic library on sys.path.
    assert not (REPO_ROOT / "alembic" / "__init__.py").exists()


def test_migrations_directory_holds_the_alembic_scripts():
    scripts = migrations_directory()
    assert (scripts / "env.py").is_file() and (scripts / "script.py.mako").is_file()
    assert sorted(p.name for p in (scripts / "versions").glob("*.py")) == sorted(
        p.name for p in (REPO_ROOT / "alembic" / "versions").glob("*.py"))


def test_demo_uses_the_models_the_tests_use():
    from registry.demo import REFERENCE_DIR as demo_dir

    assert demo_dir.resolve() == REFERENCE_DIR.resolve()
    assert (REFERENCE_DIR / "MANIFEST.json").is_file()


# --------------------------------------------------------------------------- slow: build, install, run


def _run(args: list, *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
        f"\n--- stderr\n{result.stderr[-6000:]}")
    return result


def _build_wheel(tmp: Path) -> Path:
    """Build from a copy of the working tree, so no build/ directory of the clone leaks old files into the wheel."""
    source = tmp / "src"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_BUILT)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", source, "-w", tmp / "dist"], timeout=600)
    (wheel,) = (tmp / "dist").glob("tf_model_registry-*.whl")
    return wheel


def _check_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    demo_files = {f"registry/demo_models/{p.relative_to(REFERENCE_DIR).as_posix()}"
                  for p in REFERENCE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert demo_files and demo_files <= names, f"demo models missing from the wheel: {sorted(demo_files - names)}"
    migrations = {"registry/catalog/migrations/env.py", "registry/catalog/migrations/script.py.mako"} | {
        f"registry/catalog/migrations/versions/{p.name}" for p in (REPO_ROOT / "alembic" / "versions").glob("*.py")}
    assert migrations <= names, f"migration scripts missing from the wheel: {sorted(migrations - names)}"
    top_level = {name.split("/", 1)[0] for name in names if "/" in name and ".dist-info/" not in name}
    assert top_level == {"registry"}, top_level  # no top-level adapters/, plugins/, alembic/ or tests/


def _sandboxed_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MODEL_REGISTRY_", "XDG_", "PYTHON", "VIRTUAL_ENV", "PIP_CONSTRAINT"))}
    env.update({
        "MODEL_REGISTRY_DATABASE_URL": f"sqlite:///{tmp / 'catalog' / 'catalog.db'}",
        "MODEL_REGISTRY_STORAGE_URL": str(tmp / "artifacts"),
        "MODEL_REGISTRY_CACHE_DIR": str(tmp / "cache"),
        "XDG_DATA_HOME": str(tmp / "xdg" / "data"),
        "XDG_CACHE_HOME": str(tmp / "xdg" / "cache"),
        "XDG_CONFIG_HOME": str(tmp / "xdg" / "config"),
        "XDG_STATE_HOME": str(tmp / "xdg" / "state"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    })
    for name in ("catalog", "artifacts"):
        (tmp / name).mkdir()
    return env


#: Run by the fresh environment's python: where everything came from, one TensorFlow, and a load by handle.
CHECK_INSTALLED = textwrap.dedent(f"""
    import importlib.metadata, json, sys
    from pathlib import Path
    import numpy as np
    import tensorflow as tf
    import registry
    from registry.catalog import schema
    from registry.demo import REFERENCE_DIR, expected_values

    m = registry.load({DEMO_HANDLE!r}, mode="tf2")
    inputs, outputs = expected_values(REFERENCE_DIR, "tf2_image_feature_vector")
    got = m(tf.constant(inputs["__call__"]["images"])).numpy()
    owners = importlib.metadata.packages_distributions().get("tensorflow", [])
    print(json.dumps({{
        "sys_path": sys.path,
        "registry": registry.__file__,
        "alembic_dir": str(schema.ALEMBIC_DIR),
        "demo_dir": str(REFERENCE_DIR),
        "tensorflow_distributions": sorted(set(owners)),
        "max_abs_diff": float(np.max(np.abs(got - outputs["__call__"]["default"]))),
    }}))
""")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_wheel_installs_alone_and_runs_the_demo(tmp_path):
    wheel = _build_wheel(tmp_path / "build")
    _check_wheel_contents(wheel)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], timeout=300)
    python, script = venv / "bin" / "python", venv / "bin" / "model-registry"
    install_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    _run([python, "-m", "pip", "install", "--quiet", "-c", REPO_ROOT / "constraints.txt", wheel],
         timeout=1200, env=install_env)

    env = _sandboxed_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    upgrade = _run([script, "db", "upgrade"], timeout=300, cwd=work, env=env)
    assert "revision" in upgrade.stdout + upgrade.stderr
    demo = _run([script, "demo"], timeout=900, cwd=work, env=env)
    assert DEMO_HANDLE in demo.stdout
    assert "0 mismatched, 0 examples failed" in demo.stdout, demo.stdout[-3000:]

    report = json.loads(_run([python, "-c", CHECK_INSTALLED], timeout=300, cwd=work, env=env).stdout.splitlines()[-1])
    site = venv.resolve()
    for key in ("registry", "alembic_dir", "demo_dir"):
        assert Path(report[key]).resolve().is_relative_to(site), (key, report[key])
    repo = REPO_ROOT.resolve()
    on_path = [p for p in report["sys_path"] if p and Path(p).resolve().is_relative_to(repo)]
    assert not on_path, f"the repository is on sys.path in the installed environment: {on_path}"
    assert [name.lower().replace("_", "-") for name in report["tensorflow_distributions"]] == [
        TENSORFLOW_DISTRIBUTION], report["tensorflow_distributions"]
    assert report["max_abs_diff"] <= 1e-5, report
    shutil.rmtree(venv, ignore_errors=True)  # ~2 GB; pytest keeps the last few tmp_path trees
