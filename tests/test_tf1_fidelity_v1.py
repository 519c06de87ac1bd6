"""The TF1-fidelity tests again, under ``tf.compat.v1.disable_v2_behavior()``, in a process of their own.

TF1 programs ported with ``import registry as hub`` often switch TensorFlow to
TF1 behaviour first (graph mode at the top level, ref variables, v1 control
flow). That switch is process-wide and cannot be undone, so the same test
modules run in a pytest subprocess that sets ``TF1_BEHAVIOUR_ENV``; each module
calls ``disable_v2_behavior()`` on import and checks that it took effect.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.refstack import REPO_ROOT, ensure_refstack
from tests.tf1_support import TF1_BEHAVIOUR_ENV

MODULES = ["tests/test_tf1_fidelity.py", "tests/test_tf1_fidelity_reference.py"]


def test_the_fidelity_tests_pass_under_disable_v2_behavior():
    ensure_refstack()  # built (or found) here, so the subprocess only uses it
    env = dict(os.environ, **{TF1_BEHAVIOUR_ENV: "1"})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::UserWarning", *MODULES],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|error|xfailed)", summary)}
    assert counts.get("passed", 0) >= 30 and set(counts) == {"passed"}, summary
