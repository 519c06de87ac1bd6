"""Warm-cache ``registry.load`` against raw ``tf.saved_model.load`` on the same directory.

Both run in this one process, interleaved (alternating which goes first), on
the cached directory of a published model, so the ratio shows what the registry
adds on top of TensorFlow: a catalog lookup, a cache check and the matrix gate.
That cost is fixed per load, so it is measured on the tiny reference model and
on a generated model of realistic size. Target: within 5 %.

    python bench/bench_load.py [--repeats 60] [--model DIR ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]


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


def measure(reg, model_dir: Path, name: str, repeats: int) -> tuple[list[float], list[float]]:
    import tensorflow as tf

    record = reg.publish(model_dir, name=name)
    cached_dir = reg.resolve(record.handle)
    reg.load(record.handle, mode="tf2")  # warm: adapters, catalog connection, TF's own caches
    tf.saved_model.load(cached_dir)

    def timed(load) -> float:
        start = time.perf_counter()
        load()
        return time.perf_counter() - start

    raw, ours = [], []
    for i in range(repeats):
        # alternate which goes first, so neither always runs right after the other warmed a cache
        if i % 2:
            ours.append(timed(lambda: reg.load(record.handle, mode="tf2")))
            raw.append(timed(lambda: tf.saved_model.load(cached_dir)))
        else:
            raw.append(timed(lambda: tf.saved_model.load(cached_dir)))
            ours.append(timed(lambda: reg.load(record.handle, mode="tf2")))
    return raw, ours


def report(label: str, raw: list[float], ours: list[float]) -> None:
    ratio = statistics.median(ours) / statistics.median(raw)
    added = statistics.median(o - r for o, r in zip(ours, raw))
    print(f"\n{label}  ({len(raw)} loads each)")
    print(f"  {'':28}{'median ms':>10}{'p90 ms':>10}")
    for name, samples in (("tf.saved_model.load", raw), ("registry.load (warm cache)", ours)):
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"  {name:28}{statistics.median(samples) * 1e3:>10.1f}{p90 * 1e3:>10.1f}")
    print(f"  median added per load: {added * 1e3:.2f} ms")
    print(f"  ratio registry/raw: {ratio:.3f}  (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--model", action="append", help="model directories (default: the reference model "
                                                         "and a generated 40 MB one)")
    args = parser.parse_args()

    import registry

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reg = registry.Registry(database_url=f"sqlite:///{tmp}/catalog.db", storage_url=f"{tmp}/artifacts",
                                cache_dir=f"{tmp}/cache")
        models = [Path(m) for m in args.model] if args.model else [
            ROOT / "tests/data/reference/tf2_image_feature_vector", generated_model(tmp / "mlp-40mb")]
        for i, model_dir in enumerate(models):
            raw, ours = measure(reg, model_dir, f"bench/model-{i}", args.repeats)
            report(str(model_dir.relative_to(ROOT) if model_dir.is_relative_to(ROOT) else model_dir.name), raw, ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
