"""The fine-tuning example runs end to end against a catalog (the swap example is run in test_search.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import registry

ROOT = Path(__file__).resolve().parents[1]


def test_fine_tune_example_publishes_a_child_version_that_loads_back(registry_env, reference_dir):
    parent = registry.publish(reference_dir / "tf2_image_feature_vector", name="vision/tiny-fv")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fine_tune_image_classifier.py"), "--handle", parent.handle,
         "--epochs", "3", "--classifier-name", "vision/colour-classifier"],
        capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "same outputs as the trained model: True" in done.stdout

    child = registry.get_version("vision/tiny-fv")
    assert child.version == 2 and child.parent == parent.handle and child.sha256 != parent.sha256
    classifier = registry.get_version("vision/colour-classifier/1")
    assert classifier.parent == parent.handle
    assert [v.handle for v in registry.lineage(child.handle)] == [child.handle, parent.handle]


def test_fine_tune_example_without_a_handle_leaves_no_temporary_catalog_behind(registry_env, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(scratch)}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "fine_tune_image_classifier.py"), "--epochs", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "throwaway catalog in " in done.stdout and "removed the throwaway catalog" in done.stdout
    assert list(scratch.iterdir()) == []
    assert registry.list_models() == []  # the configured catalog was not touched
