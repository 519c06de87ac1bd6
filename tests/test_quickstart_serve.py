"""The quick start's first command: publish the bundled examples into the embedded default catalog, then serve it.

``model-registry demo --serve`` (what ``make demo`` runs) prints the server's URL
and lines to try; the `curl | tar` line works against it, and Ctrl-C stops it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tarfile
import time
import urllib.request

import pytest

from tests.server_support import CLI
from tests.services import free_port

pytestmark = pytest.mark.slow


def test_demo_then_serve_until_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_REGISTRY_")}
    # the embedded default: no MODEL_REGISTRY_* at all, user directories in a sandbox
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), XDG_CACHE_HOME=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([*CLI, "demo", "--serve", "--port", str(port)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while "Ctrl-C stops it" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        text = log.read_text()
        curl = re.search(r"curl -L '(http://127\.0\.0\.1:\d+/[^']+)'", text)
        assert curl and f":{port}/" in curl.group(1), text[-2000:]
        for _ in range(120):
            try:
                with urllib.request.urlopen(curl.group(1), timeout=10) as response, \
                        tarfile.open(fileobj=response, mode="r|gz") as archive:
                    names = [member.name for member in archive]
                break
            except OSError:
                time.sleep(0.5)
        assert "tfhub_module.pb" in names and "saved_model.pb" in names
        # Every line to try runs as printed, in a shell on this machine (the hub client's only where it exists).
        tries = text.split("Try:\n", 1)[1].split("Ctrl-C stops it.", 1)[0].splitlines()
        assert len(tries) >= 3 and any("registry.load(" in line for line in tries), tries
        for line in tries:
            done = subprocess.run(["bash", "-c", line.strip()], env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        code = process.wait(timeout=60)
    assert code in (0, 1, -signal.SIGINT), log.read_text()[-2000:]
    assert "Traceback" not in log.read_text()
