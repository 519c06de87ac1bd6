"""TensorFlow's start-up lines, kept off a command line's and a server's output.

Importing TensorFlow 2.21 prints, from C++ and before its own logging is set up
(so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them), absl's "All log messages
before absl::InitializeLog()" warning, the oneDNN and "no CUDA driver" notices
(twice: two shared libraries each log them), and, when it first sets up devices,
``failed call to cuInit`` on a machine without a GPU. None of it says anything
about the command that was run.

``install()`` (called by the CLI's entry point and the server's app factory; off
with ``MODEL_REGISTRY_TF_LOGS=1``) puts a finder first on ``sys.meta_path`` that
wraps the first ``import tensorflow``: during it, and during the device set-up it
then triggers (``tf.config.list_physical_devices``, which TensorFlow would do on
the first op anyway), file descriptor 2 goes to a temporary file; afterwards
every line that is not one of the known start-up lines is written to the real
stderr, in order. Nothing is filtered after that, and nothing but those lines is
ever dropped: a genuine error or warning during the import still shows.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
from collections.abc import Iterator

#: The start-up lines dropped (bytes: they are read back from a file descriptor).
NOISE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|\] oneDNN custom operations are on"
    rb"|\] Could not find cuda drivers on your machine"
    rb"|\] failed call to cuInit"
    rb"|\] Unable to register cu(DNN|FFT|BLAS) factory"
    rb"|\] computation placer already registered"
    rb"|\] This TensorFlow binary is optimized to use available CPU instructions"
    rb"|(^|\] )To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"
)


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """File descriptor 2 into a temporary file for the block, then every line but ``NOISE``'s to the real one."""
    import tempfile  # here: it imports shutil and random, which a CLI start that never imports TensorFlow skips

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                captured.seek(0)
                for line in captured:
                    if not NOISE.search(line):
                        os.write(2, line)
    finally:
        os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, as the next finder would, with its loader's ``exec_module`` filtered."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # one import only: afterwards TensorFlow is in sys.modules
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def quietly(module) -> None:
            with filtered_stderr():
                exec_module(module)
                try:
                    module.config.list_physical_devices()  # sets up devices now: the cuInit line is printed here
                except Exception:  # noqa: BLE001 - a device problem is the first op's to report, not the import's
                    pass

        spec.loader.exec_module = quietly  # type: ignore[method-assign]  # this spec's own loader
        return spec


def install() -> None:
    """Filter TensorFlow's start-up lines in this process, unless TensorFlow is imported already."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowImport())
