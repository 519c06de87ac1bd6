"""nginx in front of a registry server, configured exactly as the README's "Serving downloads" says.

``readme_nginx_site`` takes the README's ```nginx block and fills its placeholders;
``Nginx`` runs it (with any other server blocks) in the foreground under a throwaway
prefix. ``tests/test_server_delivery.py`` and ``bench/bench_server.py`` both use it, so
the configuration users copy is the one that is tested and measured.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from tests.services import ServiceUnavailable, wait_for_port

README = Path(__file__).resolve().parent.parent / "README.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def readme_nginx_site(*, upstream: str, listen: str, storage: Path) -> str:
    """The README's nginx configuration (its ```nginx block), placeholders filled in."""
    block = re.search(r"^```nginx\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)
    if block is None:
        raise AssertionError("README.md lost its ```nginx block (Serving downloads)")
    return (block.group(1).replace("REGISTRY_UPSTREAM", upstream).replace("LISTEN", listen)
            .replace("STORAGE_FOLDER", str(storage).rstrip("/")))


class Nginx:
    """nginx in the foreground: ``sites`` (server and upstream blocks) inside a minimal main configuration."""

    def __init__(self, workdir: Path, sites: str, port: int, *, workers: int = 1, access_log: bool = True):
        self.workdir, self.port = workdir, port
        workdir.mkdir(parents=True, exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""  # workers must read the tests' 0700 folders
        temp = "\n".join(f"    {kind}_temp_path {workdir}/{kind};" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        log = f"access_log {workdir}/access.log;" if access_log else "access_log off;"
        (workdir / "nginx.conf").write_text(
            f"{user}\nworker_processes {workers};\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log;\n"
            f"events {{ worker_connections 1024; }}\nhttp {{\n    {log}\n    keepalive_requests 100000;\n{temp}\n"
            f"{sites}\n}}\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> "Nginx":
        if not Path(NGINX).exists():
            raise ServiceUnavailable("nginx is not installed; scripts/install-system-packages.sh installs it")
        self.process = subprocess.Popen([NGINX, "-p", str(self.workdir), "-c", str(self.workdir / "nginx.conf"),
                                         "-g", "daemon off;"], start_new_session=True)
        wait_for_port(self.port, timeout=30, process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)
            self.process.wait(timeout=30)

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""
