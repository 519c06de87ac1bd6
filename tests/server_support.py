"""A real registry server for tests: ``model-registry serve`` in its own process on 127.0.0.1.

``RegistryServer`` starts the CLI exactly as an operator would, with the
catalog and storage given as environment variables, waits until ``/healthz``
answers, and keeps the server's log (stderr) for assertions — the access log
must never show a token. ``admin_token`` is created with the CLI before the
server starts, as an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import LOCALHOST, ServiceUnavailable, free_port

#: The console script of the interpreter running the tests (the project's venv).
CLI = [str(Path(sys.executable).with_name("model-registry"))]


def multipart_publish_body(manifest: dict, archive: bytes, *,
                           boundary: str = "tests-boundary-7f3a9c") -> tuple[str, bytes]:
    """(Content-Type, body) of a publish, framed here by hand (RFC 7578), independently of the client's encoder."""
    lines = [f"--{boundary}", 'Content-Disposition: form-data; name="manifest"', "Content-Type: application/json", "",
             json.dumps(manifest), f"--{boundary}",
             'Content-Disposition: form-data; name="archive"; filename="model.tar.gz"',
             "Content-Type: application/gzip", "", ""]
    body = "\r\n".join(lines).encode() + archive + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def server_environ(*, database_url: str, storage_url: str, cache_dir: Path, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_REGISTRY_")}
    env.update({"MODEL_REGISTRY_DATABASE_URL": database_url, "MODEL_REGISTRY_STORAGE_URL": storage_url,
                "MODEL_REGISTRY_CACHE_DIR": str(cache_dir), "TF_CPP_MIN_LOG_LEVEL": "3"})
    env.update(extra or {})
    return env


def cli(*args: str, env: dict, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=check)


def create_token(env: dict, name: str, scope: str, publisher: str | None = None) -> str:
    args = ["token", "create", "--name", name, "--scope", scope] + (["--publisher", publisher] if publisher else [])
    return cli(*args, env=env).stdout.strip()


@dataclass
class RegistryServer:
    """One ``model-registry serve`` process."""

    env: dict
    log_path: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    #: An admin token created with the CLI before the server started (None if not asked for).
    admin_token: str | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def start(self, *, timeout: float = 90) -> "RegistryServer":
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [*CLI, "serve", "--host", LOCALHOST, "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceUnavailable(f"model-registry serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise ServiceUnavailable(f"model-registry serve did not become healthy in {timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(self, method: str, path: str, *, token: str | None = None, body: bytes | None = None,
                headers: dict | None = None, json_body=None) -> tuple[int, dict, bytes]:
        """(status, headers, body) of one request; never raises for an HTTP error status."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, method: str, path: str, **kwargs) -> tuple[int, object]:
        status, _, body = self.request(method, path, **kwargs)
        return status, (json.loads(body) if body else None)

    def publish(self, name: str, archive: bytes, *, token: str | None | bool = True, headers: dict | None = None,
                **manifest) -> tuple[int, object]:
        """POST ``archive`` as the next version of ``name`` with ``manifest`` (description=, parent=, tasks=...),
        as the multipart body the API takes; ``token=True`` is the admin token."""
        content_type, body = multipart_publish_body(manifest, archive)
        return self.json("POST", f"/api/v1/models/{name}/versions", body=body,
                         token=self.admin_token if token is True else token or None,
                         headers={"Content-Type": content_type, **(headers or {})})
