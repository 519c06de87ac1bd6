"""Warm-cache ``registry.load`` against raw ``tf.saved_model.load`` on the same directory, in one process and fresh.

In-process: both run in this one process, interleaved (alternating which goes
first), on the cached directory of a published model, so the ratio shows what
the registry adds on top of TensorFlow for each load: a catalog lookup, a cache
check and the matrix gate.

Fresh process: what a user's script pays once per start. Each sample is the wall
time of one new ``python -c`` process, measured around the subprocess, that
either loads the pinned catalog handle (``import registry;
registry.load('bench/model-0/1', mode='tf2')``, the cache already warm) or loads
the same cached directory with ``import tensorflow as tf;
tf.saved_model.load(DIR)``. Both children get the very same environment. The
median of interleaved pairs (alternating which goes first) is reported, so a
slow spell of the machine hits both sides.

Both are measured on the tiny reference model and on a generated model of
realistic size: the registry's cost is fixed per load (or per start), so the
small model shows it most. Target for both ratios: within 5 % (<= 1.05).

    python bench/bench_load.py [--repeats 60] [--pairs 7] [--model DIR ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.05


def generated_model(directory: Path, layers: int = 40, width: int = 512) -> Path:
    """A TF2 SavedModel of ``layers`` dense layers (about 40 MB of float32 weights by default)."""
    import tensorflow as tf

    class Mlp(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernels = [tf.Variable(tf.random.normal([width, width], stddev=0.01), name=f"kernel_{i}")
                            for i in range(layers)]

        @tf.function(input_signature=[tf.TensorSpec([None, width], tf.float32)])
        def __call__(self, x):
            for kernel in self.kernels:
                x = tf.nn.relu(tf.matmul(x, kernel))
            return x

    tf.saved_model.save(Mlp(), str(directory))
    return directory


@dataclass(frozen=True)
class Published:
    """A benchmark model: its pinned catalog handle and the cache directory that handle resolves to."""

    label: str
    handle: str
    cached_dir: str


def publish(reg, model_dir: Path, name: str) -> Published:
    record = reg.publish(model_dir, name=name)
    label = str(model_dir.relative_to(ROOT) if model_dir.is_relative_to(ROOT) else model_dir.name)
    return Published(label=label, handle=record.handle, cached_dir=reg.resolve(record.handle))


# --------------------------------------------------------------------------- in one process

def measure_in_process(reg, model: Published, repeats: int) -> tuple[list[float], list[float]]:
    import tensorflow as tf

    reg.load(model.handle, mode="tf2")  # warm: adapters, catalog connection, TF's own caches
    tf.saved_model.load(model.cached_dir)

    def timed(load) -> float:
        start = time.perf_counter()
        load()
        return time.perf_counter() - start

    raw, ours = [], []
    for i in range(repeats):
        # alternate which goes first, so neither always runs right after the other warmed a cache
        if i % 2:
            ours.append(timed(lambda: reg.load(model.handle, mode="tf2")))
            raw.append(timed(lambda: tf.saved_model.load(model.cached_dir)))
        else:
            raw.append(timed(lambda: tf.saved_model.load(model.cached_dir)))
            ours.append(timed(lambda: reg.load(model.handle, mode="tf2")))
    return raw, ours


# --------------------------------------------------------------------------- in fresh processes

def child_environment(reg) -> dict[str, str]:
    """One environment for both children: this one, minus any MODEL_REGISTRY_* of the user, plus the bench catalog."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MODEL_REGISTRY_")}
    env.update({
        "MODEL_REGISTRY_DATABASE_URL": reg.settings.database_url,
        "MODEL_REGISTRY_STORAGE_URL": reg.settings.storage_url,
        "MODEL_REGISTRY_CACHE_DIR": str(reg.settings.cache_dir),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    })
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up runs write .pyc files; the measured ones read them
    return env


def fresh_commands(model: Published) -> dict[str, list[str]]:
    return {
        "raw": [sys.executable, "-c", f"import tensorflow as tf; tf.saved_model.load({model.cached_dir!r})"],
        "ours": [sys.executable, "-c", f"import registry; registry.load({model.handle!r}, mode='tf2')"],
    }


def run_fresh(command: list[str], env: dict[str, str], cwd: str) -> float:
    """Wall seconds of one child process, start to exit; fail loudly if it did not succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[-1]!r} exited with {done.returncode}:\n{done.stderr.decode(errors='replace')}")
    return elapsed


def measure_fresh(reg, model: Published, pairs: int, cwd: str) -> tuple[list[float], list[float]]:
    env = child_environment(reg)
    commands = fresh_commands(model)
    for command in commands.values():  # warm: the OS page cache, .pyc files, the registry's cache refs
        run_fresh(command, env, cwd)
    raw, ours = [], []
    for i in range(pairs):
        order = ("ours", "raw") if i % 2 else ("raw", "ours")
        for side in order:
            (ours if side == "ours" else raw).append(run_fresh(commands[side], env, cwd))
    return raw, ours


# --------------------------------------------------------------------------- reporting

def verdict(ratio: float) -> str:
    return f"{ratio:.3f}  (target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})"


def report_in_process(raw: list[float], ours: list[float]) -> float:
    ratio = statistics.median(ours) / statistics.median(raw)
    added = statistics.median(o - r for o, r in zip(ours, raw))
    print(f"  in one process  ({len(raw)} loads each)")
    print(f"    {'':40}{'median ms':>10}{'p90 ms':>10}")
    for name, samples in (("tf.saved_model.load", raw), ("registry.load (warm cache)", ours)):
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"    {name:40}{statistics.median(samples) * 1e3:>10.1f}{p90 * 1e3:>10.1f}")
    print(f"    median added per load: {added * 1e3:.2f} ms")
    print(f"    ratio registry/raw: {verdict(ratio)}")
    return ratio


def report_fresh(model: Published, raw: list[float], ours: list[float]) -> float:
    ratio = statistics.median(ours) / statistics.median(raw)
    added = statistics.median(o - r for o, r in zip(ours, raw))
    print(f"  fresh process  ({len(raw)} interleaved pairs; wall time around `python -c ...`)")
    print(f"    {'':40}{'median ms':>10}{'min ms':>10}{'max ms':>10}")
    for name, samples in (("python -c 'tf.saved_model.load(DIR)'", raw),
                          ("python -c 'registry.load(HANDLE)'", ours)):
        print(f"    {name:40}{statistics.median(samples) * 1e3:>10.0f}{min(samples) * 1e3:>10.0f}"
              f"{max(samples) * 1e3:>10.0f}")
    print(f"    median added per start: {added * 1e3:.0f} ms")
    print(f"    ratio registry/raw: {verdict(ratio)}")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60, help="in-process loads of each kind (default 60)")
    parser.add_argument("--pairs", type=int, default=7, help="fresh-process pairs, at least 5 (default 7)")
    parser.add_argument("--model", action="append", help="model directories (default: the reference model "
                                                         "and a generated 40 MB one)")
    args = parser.parse_args()
    if args.pairs < 5:
        parser.error("--pairs must be at least 5: a median of fewer fresh processes is noise")

    import registry
    from registry.demo import REFERENCE_DIR

    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reg = registry.Registry(database_url=f"sqlite:///{tmp}/catalog.db", storage_url=f"{tmp}/artifacts",
                                cache_dir=f"{tmp}/cache")
        models = [Path(m) for m in args.model] if args.model else [
            REFERENCE_DIR / "tf2_image_feature_vector", generated_model(tmp / "mlp-40mb")]
        for i, model_dir in enumerate(models):
            model = publish(reg, model_dir, f"bench/model-{i}")
            print(f"\n{model.label}  ({model.handle})")
            in_process = report_in_process(*measure_in_process(reg, model, args.repeats))
            fresh = report_fresh(model, *measure_fresh(reg, model, args.pairs, cwd=str(tmp)))
            summary.append((model.label, in_process, fresh))

    print(f"\n{'model':52}{'in-process':>12}{'fresh':>10}   (registry/raw, target <= {TARGET})")
    for label, in_process, fresh in summary:
        print(f"{label:52}{in_process:>12.3f}{fresh:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
