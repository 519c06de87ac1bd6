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
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

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


class Stack(NamedTuple):
    """One stack: where it lives, what is installed, and the versions it must report once built."""

    label: str  # "reference stack", said in each step's line and error
    root: Callable[[], Path]  # its folder (each has an environment variable that overrides it)
    pins: tuple[str, ...]
    version_script: str  # Python printing the versions of ``expected``, space-separated
    expected: tuple[str, ...]
    size: str  # what the build costs, said before it starts
    use_constraints: bool = False  # install under the project's constraints.txt (same TensorFlow as the project)


def ensure_stack(stack: Stack) -> Path:
    """``stack``'s Python interpreter, building its virtual environment the first time.

    Guarded by a file lock, so parallel test processes build it once, and marked complete (its pins in
    a marker file) only after it imports and reports the expected versions; a change of pins rebuilds it.
    """
    root = stack.root()
    venv = root / "venv"
    marker = root / _MARKER
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "build.lock")):
        if marker.exists() and json.loads(marker.read_text()).get("pins") == list(stack.pins):
            return _venv_python(venv)
        _say(f"{stack.label}: building {venv} ({stack.size})")
        if not _venv_python(venv).exists():
            _say(f"{stack.label}: creating the virtual environment")
            _run([_base_python(), "-m", "venv", str(venv)], f"create the {stack.label}'s virtual environment")
        constraints = ["-c", str(REPO_ROOT / "constraints.txt")] if stack.use_constraints else []
        _say(f"{stack.label}: pip install {' '.join(stack.pins)}")
        _run([str(_venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              *constraints, *stack.pins], "install " + " ".join(stack.pins), timeout=1800)
        versions = _run([str(_venv_python(venv)), "-c", stack.version_script], f"import the {stack.label}",
                        env=_quiet_env()).stdout.split()
        if tuple(versions[-len(stack.expected):]) != stack.expected:
            raise RefstackError(f"the {stack.label} reports versions {versions[-len(stack.expected):]}, "
                                f"expected {' '.join(stack.expected)}")
        marker.write_text(json.dumps({"pins": list(stack.pins)}))
        _say(f"{stack.label}: ready")
    return _venv_python(venv)


REFERENCE_STACK = Stack("reference stack", refstack_dir, PINS,
                        "import tensorflow as tf, tensorflow_hub as hub; print(tf.__version__, hub.__version__)",
                        ("2.15.1", "0.15.0"), "TensorFlow 2.15 + tensorflow_hub 0.15, ~1.5 GB, a few minutes")


def ensure_refstack() -> Path:
    """The reference stack's Python interpreter, building its virtual environment if needed."""
    return ensure_stack(REFERENCE_STACK)


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


HUB_CLIENT_STACK = Stack("hub client stack", hub_client_dir, HUB_CLIENT_PINS,
                        "import tensorflow as tf, tensorflow_hub as hub; print(tf.__version__, hub.__version__)",
                        ("2.21.0", "0.16.1"), "TensorFlow 2.21 + tensorflow_hub 0.16.1, ~2 GB, a few minutes",
                        use_constraints=True)


def ensure_hub_client() -> Path:
    """The hub client stack's interpreter (tensorflow_hub 0.16.1, TF 2.21, tf-keras), built once."""
    return ensure_stack(HUB_CLIENT_STACK)


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


KAGGLEHUB_STACK = Stack("kagglehub stack", kagglehub_dir, KAGGLEHUB_PINS,
                       "import kagglehub, importlib.metadata as m; "
                       "print(kagglehub.__version__, m.version('kagglesdk'))",
                       ("1.0.3", "0.1.38"), "kagglehub 1.0.3 + kagglesdk, a few MB")


def ensure_kagglehub() -> Path:
    """The interpreter of the unmodified kagglehub stack (kagglehub 1.0.3 + kagglesdk 0.1.38), built once.

    No TensorFlow: kagglehub only downloads files, and the tests compare bytes with what was published.
    """
    return ensure_stack(KAGGLEHUB_STACK)


MLFLOW_PINS = ("mlflow==3.17.2",)


def mlflow_dir() -> Path:
    return Path(os.environ.get("MLFLOW_DIR") or REPO_ROOT / ".mlflow")


MLFLOW_STACK = Stack("MLflow stack", mlflow_dir, MLFLOW_PINS, "import mlflow; print(mlflow.__version__)",
                    ("3.17.2",), "mlflow 3.17.2, ~1 GB, a few minutes")


def ensure_mlflow() -> Path:
    """The MLflow stack's interpreter (its ``mlflow server`` is the peer of the registry's reads), built once."""
    return ensure_stack(MLFLOW_STACK)


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
