"""Other TensorFlow stacks, each in its own virtual environment, for scripts the tests run beside the project.

The reference stack: TensorFlow 2.15.1 + tensorflow_hub 0.15.0.

It is the last release pair that could create and load the TF1 Hub format, so
tests use it as the judge of compatibility: modules this project writes must
load there through ``hub.Module``, and modules made there must load here. It
cannot share an environment with TensorFlow 2.21, so scripts run in it as
subprocesses exchanging files.

``ensure_refstack()`` builds the environment once under ``<repo>/.refstack/``
(gitignored; ``REFSTACK_DIR`` overrides the location), guarded by a file lock
so parallel test processes build it once, and marks it complete only after
its imports work.

The hub client stack: the unmodified tensorflow_hub 0.16.1 client with
TensorFlow 2.21 and tf-keras (``ensure_hub_client``, under ``<repo>/.hubclient/``),
as a team that never heard of this project would use it to read the server's
tfhub.dev-style URLs.

The kagglehub stack: the unmodified kagglehub 1.0.3 with kagglesdk 0.1.38 (``ensure_kagglehub``, under
``<repo>/.kagglehub/``), downloading from the server's answer to Kaggle's model API.

The MLflow stack: MLflow's tracking server (``ensure_mlflow``, under
``<repo>/.mlflow/``, ``MLFLOW_DIR`` overrides), the peer ``bench/bench_server.py``
measures catalog reads against; it cannot share the project's environment
(its pins of SQLAlchemy, Flask, pandas... are its own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parent.parent
PINS = ("tensorflow-cpu==2.15.1", "tensorflow-hub==0.15.0")
_MARKER = "refstack-complete.json"


class RefstackError(RuntimeError):
    """The reference stack could not be built, or a script in it failed."""


def refstack_dir() -> Path:
    return Path(os.environ.get("REFSTACK_DIR") or REPO_ROOT / ".refstack")


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _base_python() -> str:
    # TensorFlow 2.15 has wheels for Python 3.9-3.11; the interpreter running the tests is one of those.
    return getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable


def ensure_refstack() -> Path:
    """The reference stack's Python interpreter, building its virtual environment if needed."""
    root = refstack_dir()
    venv = root / "venv"
    marker = root / _MARKER
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "build.lock")):
        if marker.exists() and json.loads(marker.read_text()).get("pins") == list(PINS):
            return _venv_python(venv)
        _say(f"reference stack: building {venv} (TensorFlow 2.15 + tensorflow_hub 0.15, ~1.5 GB, a few minutes)")
        if not _venv_python(venv).exists():
            _say("reference stack: creating the virtual environment")
            _run([_base_python(), "-m", "venv", str(venv)], "create the virtual environment")
        _say(f"reference stack: pip install {' '.join(PINS)}")
        _run([str(_venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PINS],
             "install " + " ".join(PINS), timeout=1800)
        _say("reference stack: checking that it imports")
        versions = _run([str(_venv_python(venv)), "-c",
                         "import tensorflow as tf, tensorflow_hub as hub; print(tf.__version__, hub.__version__)"],
                        "import the reference stack", env=_quiet_env()).stdout.split()
        if versions[-2:] != ["2.15.1", "0.15.0"]:
            raise RefstackError(f"the reference stack reports versions {versions[-2:]}, expected 2.15.1 0.15.0")
        marker.write_text(json.dumps({"pins": list(PINS)}))
        _say("reference stack: ready")
    return _venv_python(venv)


def _quiet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _say(what: str) -> None:
    """One line on stderr per step of a build (minutes, gigabytes): `make test` shows what it is waiting for."""
    print(what, file=sys.stderr, flush=True)


def _run(cmd, what: str, *, timeout: int = 600, env=None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise RefstackError(f"reference stack: {what} took more than {timeout}s") from None
    if result.returncode != 0:
        raise RefstackError(f"reference stack: could not {what} (exit {result.returncode}):\n"
                            f"{result.stderr[-4000:]}")
    return result


def run_script(script: str, *args, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run Python source ``script`` in the reference stack with ``sys.argv[1:] = args``."""
    python = ensure_refstack()
    return _run([str(python), "-c", textwrap.dedent(script), *map(str, args)], "run a script",
                timeout=timeout, env=_quiet_env())


HUB_CLIENT_PINS = ("tensorflow==2.21.0", "tf-keras==2.21.0", "tensorflow-hub==0.16.1")


def hub_client_dir() -> Path:
    return Path(os.environ.get("HUBCLIENT_DIR") or REPO_ROOT / ".hubclient")


def ensure_hub_client() -> Path:
    """The hub client stack's interpreter (tensorflow_hub 0.16.1, TF 2.21, tf-keras), built once."""
    root = hub_client_dir()
    venv = root / "venv"
    marker = root / _MARKER
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "build.lock")):
        if marker.exists() and json.loads(marker.read_text()).get("pins") == list(HUB_CLIENT_PINS):
            return _venv_python(venv)
        _say(f"hub client stack: building {venv} (TensorFlow 2.21 + tensorflow_hub 0.16.1, ~2 GB, a few minutes)")
        if not _venv_python(venv).exists():
            _say("hub client stack: creating the virtual environment")
            _run([_base_python(), "-m", "venv", str(venv)], "create the hub client's virtual environment")
        constraints = REPO_ROOT / "constraints.txt"
        _say(f"hub client stack: pip install {' '.join(HUB_CLIENT_PINS)}")
        _run([str(_venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "-c", str(constraints), *HUB_CLIENT_PINS], "install " + " ".join(HUB_CLIENT_PINS), timeout=1800)
        versions = _run([str(_venv_python(venv)), "-c",
                         "import tensorflow as tf, tensorflow_hub as hub; print(tf.__version__, hub.__version__)"],
                        "import the hub client stack", env=_quiet_env()).stdout.split()
        _say("hub client stack: checked that it imports")
        if versions[-2:] != ["2.21.0", "0.16.1"]:
            raise RefstackError(f"the hub client stack reports versions {versions[-2:]}, expected 2.21.0 0.16.1")
        marker.write_text(json.dumps({"pins": list(HUB_CLIENT_PINS)}))
        _say("hub client stack: ready")
    return _venv_python(venv)


def run_hub_client_script(script: str, *args, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run Python source ``script`` with the unmodified tensorflow_hub 0.16.1 client."""
    python = ensure_hub_client()
    return _run([str(python), "-c", textwrap.dedent(script), *map(str, args)], "run a hub client script",
                timeout=timeout, env={**_quiet_env(), **(env or {})})


KAGGLEHUB_PINS = ("kagglehub==1.0.3", "kagglesdk==0.1.38", "certifi==2026.10.19.post1", "protobuf==7.36.2",
                  "requests==2.34.2", "urllib3==2.8.0", "tqdm==4.70.1", "PyYAML==6.0.4", "packaging==26.4")
"""kagglehub 1.0.3 and the Kaggle SDK release it resolves to, with their dependencies pinned too: kagglehub
needs a newer certifi than the project's constraints allow, so this stack cannot share them."""


def kagglehub_dir() -> Path:
    return Path(os.environ.get("KAGGLEHUB_STACK_DIR") or REPO_ROOT / ".kagglehub")


def ensure_kagglehub() -> Path:
    """The interpreter of the unmodified kagglehub stack (kagglehub 1.0.3 + kagglesdk 0.1.38), built once.

    No TensorFlow: kagglehub only downloads files, and the tests compare bytes with what was published.
    """
    root = kagglehub_dir()
    venv = root / "venv"
    marker = root / _MARKER
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "build.lock")):
        if marker.exists() and json.loads(marker.read_text()).get("pins") == list(KAGGLEHUB_PINS):
            return _venv_python(venv)
        _say(f"kagglehub stack: building {venv} (kagglehub 1.0.3 + kagglesdk, a few MB)")
        if not _venv_python(venv).exists():
            _run([_base_python(), "-m", "venv", str(venv)], "create the kagglehub virtual environment")
        _say(f"kagglehub stack: pip install {' '.join(KAGGLEHUB_PINS)}")
        _run([str(_venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              *KAGGLEHUB_PINS], "install " + " ".join(KAGGLEHUB_PINS), timeout=900)
        versions = _run([str(_venv_python(venv)), "-c",
                         "import kagglehub, importlib.metadata as m; "
                         "print(kagglehub.__version__, m.version('kagglesdk'))"],
                        "import the kagglehub stack", env=_quiet_env()).stdout.split()
        if versions[-2:] != ["1.0.3", "0.1.38"]:
            raise RefstackError(f"the kagglehub stack reports versions {versions[-2:]}, expected 1.0.3 0.1.38")
        marker.write_text(json.dumps({"pins": list(KAGGLEHUB_PINS)}))
        _say("kagglehub stack: ready")
    return _venv_python(venv)


MLFLOW_PINS = ("mlflow==3.17.2",)


def mlflow_dir() -> Path:
    return Path(os.environ.get("MLFLOW_DIR") or REPO_ROOT / ".mlflow")


def ensure_mlflow() -> Path:
    """The MLflow stack's interpreter (its ``mlflow server`` is the peer of the registry's version reads), built once."""
    root = mlflow_dir()
    venv = root / "venv"
    marker = root / _MARKER
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "build.lock")):
        if marker.exists() and json.loads(marker.read_text()).get("pins") == list(MLFLOW_PINS):
            return _venv_python(venv)
        _say(f"MLflow stack: building {venv} ({' '.join(MLFLOW_PINS)}, ~1 GB, a few minutes)")
        if not _venv_python(venv).exists():
            _run([_base_python(), "-m", "venv", str(venv)], "create the MLflow virtual environment")
        _run([str(_venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              *MLFLOW_PINS], "install " + " ".join(MLFLOW_PINS), timeout=1800)
        version = _run([str(_venv_python(venv)), "-c", "import mlflow; print(mlflow.__version__)"],
                       "import the MLflow stack", env=_quiet_env()).stdout.split()
        if version[-1:] != [MLFLOW_PINS[0].split("==")[1]]:
            raise RefstackError(f"the MLflow stack reports version {version[-1:]}, expected {MLFLOW_PINS[0]}")
        marker.write_text(json.dumps({"pins": list(MLFLOW_PINS)}))
        _say("MLflow stack: ready")
    return _venv_python(venv)

# -- axe-core: the accessibility engine the browser tests inject into each page --------------------------------

AXE_CORE_VERSION = "4.14.1"
#: The npm registry's integrity of ``axe-core-4.14.1.tgz``; a tarball that does not match is refused.
AXE_CORE_INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="


def axe_core_dir() -> Path:
    return Path(os.environ.get("AXE_CORE_DIR") or REPO_ROOT / ".axe-core")


def ensure_axe_core() -> Path:
    """``axe.min.js`` of the pinned axe-core, fetched once with ``npm pack`` (npm's own client and registry
    settings) into ``<repo>/.axe-core/`` (gitignored; ``AXE_CORE_DIR`` overrides), checked against its integrity."""
    import base64
    import hashlib
    import tarfile

    root = axe_core_dir()
    script = root / AXE_CORE_VERSION / "axe.min.js"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "build.lock")):
        if script.exists():
            return script
        npm = shutil.which("npm")
        if npm is None:
            raise RefstackError("npm is missing: run scripts/install-system-packages.sh (apt-get install npm)")
        _say(f"axe-core: npm pack axe-core@{AXE_CORE_VERSION}")
        _run([npm, "pack", f"axe-core@{AXE_CORE_VERSION}", "--pack-destination", str(root), "--silent"],
             f"fetch axe-core {AXE_CORE_VERSION}", timeout=300)
        tarball = root / f"axe-core-{AXE_CORE_VERSION}.tgz"
        algorithm, _, expected = AXE_CORE_INTEGRITY.partition("-")
        actual = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
        if actual != expected:
            tarball.unlink()
            raise RefstackError(f"axe-core-{AXE_CORE_VERSION}.tgz does not match its pinned integrity")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            script.parent.mkdir(parents=True, exist_ok=True)
            partial = script.with_suffix(".partial")
            partial.write_bytes(member.read())
            partial.replace(script)
        tarball.unlink()
        _say("axe-core: ready")
    return script
