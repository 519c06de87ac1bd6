"""Warm-cache ``registry.load`` against raw ``tf.saved_model.load`` on the same directory.

Both run in this one process, interleaved, on the cached directory of a
published model, so the ratio shows what the registry adds on top of
TensorFlow: a catalog lookup, a cache check and the matrix gate. Target: within 5 %.

    python bench/bench_load.py [--repeats 30] [--model tests/data/reference/tf2_image_feature_vector]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--model", default=str(ROOT / "tests/data/reference/tf2_image_feature_vector"))
    args = parser.parse_args()

    import tensorflow as tf

    import registry

    with tempfile.TemporaryDirectory() as tmp:
        reg = registry.Registry(database_url=f"sqlite:///{tmp}/catalog.db", storage_url=f"{tmp}/artifacts",
                                cache_dir=f"{tmp}/cache")
        record = reg.publish(args.model, name="bench/model")
        cached_dir = reg.resolve(record.handle)
        reg.load(record.handle, mode="tf2")  # warm: adapters, catalog connection, TF's own caches
        tf.saved_model.load(cached_dir)

        raw, ours = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            tf.saved_model.load(cached_dir)
            raw.append(time.perf_counter() - start)
            start = time.perf_counter()
            reg.load(record.handle, mode="tf2")
            ours.append(time.perf_counter() - start)

    raw_median, ours_median = statistics.median(raw), statistics.median(ours)
    ratio = ours_median / raw_median
    print(f"model: {args.model}  repeats: {args.repeats}")
    print(f"{'':28}{'median ms':>10}{'p90 ms':>10}")
    for label, samples in (("tf.saved_model.load", raw), ("registry.load (warm cache)", ours)):
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{label:28}{statistics.median(samples) * 1e3:>10.1f}{p90 * 1e3:>10.1f}")
    print(f"ratio registry/raw: {ratio:.3f}  (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
