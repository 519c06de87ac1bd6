"""The server's own client: its wheel, served as a PEP 503 package index at ``/simple/``.

A model page's setup line installs the registry client from the server that shows it,
so it works on a network that reaches only this server and a package registry (for
the client's dependencies): nothing needs the project to be on a public index. The
wheel is the running project itself, made once per server process on first request:

* from a source tree (a clone or an editable install: ``pyproject.toml`` beside the
  package), a copy of the tree is built with ``pip wheel --no-deps --no-build-isolation``
  (the copy keeps build leftovers out of the tree);
* from an installed wheel, the installed files its ``RECORD`` lists are packed again
  into the same wheel.

The index is open to everyone, whatever the read-token setting: it serves the client
code, which is no secret, to ``pip``, which cannot send this server's bearer token.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from registry.errors import RegistryError

#: The distribution this server runs (and serves).
DISTRIBUTION = "tf-model-registry"
#: Its PEP 503 normalised name, the index's project path.
PROJECT = "tf-model-registry"
#: What the copy of a source tree leaves out (environments, VCS data, build leftovers).
NOT_COPIED = shutil.ignore_patterns(".venv", ".refstack", ".hubclient", ".bench", ".git", "build", "dist",
                                    "*.egg-info", "__pycache__", ".pytest_cache", ".cache", ".mypy_cache",
                                    ".ruff_cache", "node_modules")
#: Seconds building the wheel may take.
BUILD_TIMEOUT_S = 300

router = APIRouter(prefix="/simple", include_in_schema=False)


class ClientUnavailable(RegistryError):
    """The server cannot make its client wheel (no source tree and no installed files to pack)."""


@dataclass(frozen=True)
class Wheel:
    path: Path
    sha256: str

    @property
    def filename(self) -> str:
        return self.path.name


_lock = threading.Lock()
_wheel: Wheel | None = None


def client_wheel() -> Wheel:
    """This process's wheel of the running project, made on first use."""
    global _wheel
    with _lock:
        if _wheel is None or not _wheel.path.is_file():
            target = Path(tempfile.mkdtemp(prefix="registry-client-wheel-"))
            root = source_tree()
            path = build_from_source(root, target) if root is not None else pack_installed(target)
            _wheel = Wheel(path, hashlib.sha256(path.read_bytes()).hexdigest())
        return _wheel


def wheel_filename() -> str:
    """The wheel's file name, known without building it (pure Python: ``py3-none-any``)."""
    version = metadata.version(DISTRIBUTION)
    return f"{DISTRIBUTION.replace('-', '_')}-{version}-py3-none-any.whl"


def source_tree() -> Path | None:
    """The project's source tree when the running package lives in one (a clone, an editable install)."""
    import registry

    root = Path(registry.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DISTRIBUTION}"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def build_from_source(root: Path, target: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="registry-client-src-") as work:
        tree = Path(work) / "src"
        shutil.copytree(root, tree, ignore=NOT_COPIED, symlinks=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "--no-input",
             "--disable-pip-version-check", "-q", "-w", str(target), str(tree)],
            capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    wheels = sorted(target.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise ClientUnavailable(f"building the client wheel failed: {result.stderr.strip()[-500:]}")
    return wheels[0]


def pack_installed(target: Path) -> Path:
    """The installed distribution's files (its ``RECORD``) packed again as its wheel."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ClientUnavailable(f"{DISTRIBUTION} is not installed as a distribution; run the server from an "
                                f"installed package or a clone") from None
    files = [f for f in dist.files or () if not str(f).startswith("..") and "__pycache__" not in str(f)]
    info = next((f for f in files if str(f).endswith(".dist-info/RECORD")), None)
    if info is None:
        raise ClientUnavailable(f"the installed {DISTRIBUTION} lists no files (RECORD); reinstall it from a wheel")
    dist_info = str(info).rsplit("/", 1)[0]
    path = target / wheel_filename()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        for file in files:
            name = str(file)
            if name in (f"{dist_info}/RECORD", f"{dist_info}/INSTALLER", f"{dist_info}/direct_url.json",
                        f"{dist_info}/REQUESTED"):
                continue
            data = Path(str(file.locate())).read_bytes()
            wheel.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([name, f"sha256={digest}", len(data)])
        writer.writerow([f"{dist_info}/RECORD", "", ""])
        wheel.writestr(f"{dist_info}/RECORD", record.getvalue())
    return path


def install_line(base_url: str) -> str:
    """The ``pip install`` line of a model page: this server's client wheel by its URL in the index (pinned by
    its exact file, so no other index's package of the same name can take its place); its dependencies come
    from the package index pip is configured with."""
    return f'pip install "{DISTRIBUTION} @ {base_url.rstrip("/")}/simple/{PROJECT}/{wheel_filename()}"'


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta name="pypi:repository-version" content="1.0"><title>{title}</title></head>
<body><h1>{title}</h1>
{links}
</body></html>
"""


@router.get("/", name="simple_index")
async def index():
    return HTMLResponse(_PAGE.format(title="Simple index", links=f'<a href="/simple/{PROJECT}/">{PROJECT}</a>'))


@router.get("/{project}/", name="simple_project")
async def project(project: str):
    if _normalised(project) != PROJECT:
        return HTMLResponse("Not found", status_code=404)
    wheel = await run_in_threadpool(client_wheel)
    link = f'<a href="/simple/{PROJECT}/{wheel.filename}#sha256={wheel.sha256}">{wheel.filename}</a>'
    return HTMLResponse(_PAGE.format(title=f"Links for {PROJECT}", links=link))


@router.get("/{project}/{filename}", name="simple_file")
async def wheel_file(request: Request, project: str, filename: str):
    if _normalised(project) != PROJECT:
        return HTMLResponse("Not found", status_code=404)
    wheel = await run_in_threadpool(client_wheel)
    if filename != wheel.filename:
        return HTMLResponse("Not found", status_code=404)
    return FileResponse(wheel.path, media_type="application/octet-stream", filename=wheel.filename)


def _normalised(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()
