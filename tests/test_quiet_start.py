"""What a newcomer sees: TensorFlow's start-up lines are off the CLI's and the server's output unless asked for,
and the project's own code logs no deprecation or duplicate-ID warnings.

Real processes throughout: a Python process importing TensorFlow as the CLI and the server do, and a real
``model-registry serve`` whose log is read after ``/openapi.json`` is fetched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from registry.config import TF_LOGS_ENV

REPO = Path(__file__).resolve().parent.parent
#: The lines TensorFlow 2.21 prints at start-up, whatever TF_CPP_MIN_LOG_LEVEL says (on a machine without a GPU).
STARTUP_LINES = ("absl::InitializeLog()", "oneDNN custom operations", "Could not find cuda drivers",
                 "failed call to cuInit")

#: As the CLI's entry point and the server's app factory start: then TensorFlow is imported and used, a Python
#: warning is issued and a C++ error line is printed after start-up (neither may be swallowed).
SCRIPT = """
import sys, warnings
from registry.config import quiet_tensorflow_logs
quiet_tensorflow_logs()
import tensorflow as tf
print(int(tf.constant(20) + 22))
warnings.warn("the program's own warning")
print("the program's own line", file=sys.stderr)
"""


def _run(**env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", TF_LOGS_ENV)}
    environ.update(env, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=environ)
    assert done.returncode == 0 and done.stdout == "42\n", (done.stdout, done.stderr)
    return done


def test_tensorflow_start_up_lines_are_quiet_by_default_and_back_with_the_setting():
    for env in ({}, {"TF_CPP_MIN_LOG_LEVEL": "2"}, {"TF_CPP_MIN_LOG_LEVEL": "0"}):
        stderr = _run(**env).stderr
        assert not [line for line in STARTUP_LINES if line in stderr], (env, stderr)
        assert "UserWarning: the program's own warning" in stderr and "the program's own line" in stderr
    loud = _run(**{TF_LOGS_ENV: "1"}).stderr
    assert "absl::InitializeLog()" in loud, loud  # printed on every machine, GPU or not


def test_exporting_a_tf1_hub_module_logs_no_deprecation(tmp_path):
    script = """
import tensorflow as tf, registry
def module_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None, 2])
    registry.add_signature(inputs=x, outputs=x * 2)
spec = registry.create_module_spec(module_fn)
with tf.Graph().as_default():
    m = registry.Module(spec)
    with tf.compat.v1.Session() as session:
        m.export(%r, session)
print("exported")
""" % str(tmp_path / "module")
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=environ)
    assert done.returncode == 0 and done.stdout.strip() == "exported", done.stderr
    assert "deprecated" not in done.stderr.lower(), done.stderr
    assert (tmp_path / "module" / "tfhub_module.pb").is_file()


def test_the_openapi_document_logs_no_duplicate_operation_id(registry_server):
    status, spec = registry_server.json("GET", "/openapi.json")
    assert status == 200 and "/healthz" in spec["paths"] and list(spec["paths"]["/healthz"]) == ["get"]
    assert registry_server.request("HEAD", "/healthz")[0] == 200
    assert "Duplicate Operation ID" not in registry_server.log(), registry_server.log()
