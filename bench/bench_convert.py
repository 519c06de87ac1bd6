"""Benchmark: converting a TF1 Hub module, and running the result against hub.Module in the reference stack.

Each side runs in a fresh process of its own:

- conversion: wall time and peak RSS (``ru_maxrss`` of the converting process) of
  ``convert_module`` on the module (default: the largest TF1 Hub module in
  registry/demo_models);
- inference: time of one forward pass of the default signature on a fixed
  batch: the converted model's ``__call__`` (TensorFlow 2.21, eager call of the
  saved ``tf.function``) against ``session.run`` of ``hub.Module(path)(x)`` in the
  reference stack (TensorFlow 2.15.1 + tensorflow_hub 0.15.0).
  The same pass through the converted model's ``default`` signature is shown
  beside it: one concrete function, where an eager ``__call__`` first picks
  among its traces (``training``, a dict or a tensor input) in Python;
- training step: time of one plain-SGD step on MSE + regularization
  losses: ``__call__(x, training=True)`` under a ``GradientTape`` in a
  ``tf.function``, applying the gradients with the kernel tf.compat.v1's
  ``GradientDescentOptimizer`` runs, against ``session.run(train_op)`` of
  ``hub.Module(path, trainable=True, tags={"train"} if the module has it)``
  with the train op under UPDATE_OPS;
- the same two measurements for this project's ``registry.Module`` (the TF1 module in
  a graph and session on TensorFlow 2.21), which separates what the conversion
  costs from what the TensorFlow version does.

Each time is the smallest of ``--repeats`` medians of ``--steps`` repetitions, measured
the same way on every side. It prints both sides and the ratios (converted /
reference; the issue's target is <= 1.1) and writes them as JSON to
``bench/results/convert.json``. On a small module and batch the times are per-call
overhead (``--batch 2048`` shows the computation).

    .venv/bin/python bench/bench_convert.py [--steps 50] [--repeats 5] [--batch 64] [--refstack-python PATH]
        [MODULE_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "registry" / "demo_models"

CONVERT = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from registry.adapters.tf1_hub.convert import convert_module
t1 = time.perf_counter()
imported_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
report = convert_module(Path(sys.argv[1]), Path(sys.argv[2]))
t2 = time.perf_counter()
print("RESULTS" + json.dumps({"import_s": t1 - t0, "convert_s": t2 - t1,
                              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                              "rss_after_imports_mb": imported_rss,
                              "variables": len(report.variables)}))
"""

# The input batch: float inputs uniform in [0, 1), string inputs short sentences; the same on both sides.
INPUTS = r"""
import numpy as np
def batch_for(dtype_name, shape, n):
    shape = [n if d is None else d for d in shape]
    if dtype_name == "string":
        return np.array((["the cat sat on the mat", "a dog ran"] * n)[:shape[0]], dtype=object)
    return np.random.RandomState(0).rand(*shape).astype(dtype_name)
"""

CONVERTED = INPUTS + r"""
import json, statistics, sys, time
import tensorflow as tf
path, steps, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
m = tf.saved_model.load(path)
spec = m.signatures["default"].structured_input_signature[1]
(name, info), = spec.items()
x = tf.constant(batch_for(info.dtype.name, info.shape.as_list(), n))
y0 = m(x)
target = tf.zeros_like(y0)
opt_vars = list(m.trainable_variables)

@tf.function
def train_step():
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(m(x, training=True) - target))
        loss += tf.add_n([f() for f in m.regularization_losses]) if m.regularization_losses else 0.0
    for v, g in zip(opt_vars, tape.gradient(loss, opt_vars)):
        if g is not None:  # the kernel tf.compat.v1.train.GradientDescentOptimizer runs on the reference side
            tf.raw_ops.ResourceApplyGradientDescent(var=v.handle, alpha=tf.constant(0.01, v.dtype),
                                                    delta=tf.convert_to_tensor(g))
    return loss

def timed(fn):
    fn(); fn()  # warm-up: tracing, first execution
    medians = []
    for _ in range(repeats):
        times = []
        for _ in range(steps):
            t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
        medians.append(statistics.median(times))
    return min(medians)

signature = m.signatures["default"]
print("RESULTS" + json.dumps({"inference_s": timed(lambda: m(x).numpy()),
                              "signature_s": timed(lambda: signature(**{name: x})["default"].numpy()),
                              "train_step_s": timed(lambda: train_step().numpy())}))
"""

# hub.Module in a graph and session; HUB_IMPORT picks tensorflow_hub 0.15 or this project's registry.Module.
TF1_SIDE = INPUTS + r"""
import json, os, statistics, sys, time
import tensorflow as tf
if os.environ["HUB_IMPORT"] == "registry":
    import registry as hub
else:
    import tensorflow_hub as hub
tf1 = tf.compat.v1
path, steps, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def timed(session, fetch, feed):
    session.run(fetch, feed); session.run(fetch, feed)
    medians = []
    for _ in range(repeats):
        times = []
        for _ in range(steps):
            t = time.perf_counter(); session.run(fetch, feed); times.append(time.perf_counter() - t)
        medians.append(statistics.median(times))
    return min(medians)

spec = hub.load_module_spec(path)
info, = spec.get_input_info_dict("default").values()
value = batch_for(info.dtype.name, info.get_shape().as_list(), n)
result = {}
with tf.Graph().as_default():
    m = hub.Module(spec)
    ph = tf1.placeholder(info.dtype, info.get_shape())
    y = m(ph)
    with tf1.Session() as s:
        s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        result["inference_s"] = timed(s, y, {ph: value})
tags = {"train"} if {"train"} in [set(t) for t in spec.get_tags()] else None
with tf.Graph().as_default():
    m = hub.Module(spec, trainable=True, tags=tags)
    ph = tf1.placeholder(info.dtype, info.get_shape())
    out = m(ph)
    loss = tf.reduce_mean(tf.square(out)) + tf1.losses.get_regularization_loss()
    with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
        train = tf1.train.GradientDescentOptimizer(0.01).minimize(loss)
    with tf1.Session() as s:
        s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        result["train_step_s"] = timed(s, [loss, train], {ph: value})
print("RESULTS" + json.dumps(result))
"""


def run(python: str, script: str, *args, pythonpath: bool, hub_import: str = "") -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", HUB_IMPORT=hub_import)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([python, "-c", script, *map(str, args)], capture_output=True, text=True, env=env,
                            check=False, timeout=1800)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULTS")]
    if result.returncode != 0 or not lines:
        sys.exit(f"{python} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULTS"):])


def largest_tf1_module() -> Path:
    modules = [p for p in REFERENCE.iterdir() if (p / "tfhub_module.pb").is_file()]
    return max(modules, key=lambda p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", nargs="?", type=Path, help="a TF1 Hub module directory (default: largest reference)")
    parser.add_argument("--steps", type=int, default=50, help="timed repetitions per measurement (median)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5,
                        help="blocks of --steps repetitions; the smallest block median is reported (on a shared "
                             "machine, the block least disturbed by other processes, on every side alike)")
    parser.add_argument("--refstack-python", help="python of the reference stack (default: build/locate .refstack)")
    args = parser.parse_args(argv)
    module = args.module or largest_tf1_module()
    refstack_python = args.refstack_python
    if not refstack_python:
        sys.path.insert(0, str(REPO))
        from tests.refstack import ensure_refstack

        refstack_python = str(ensure_refstack())
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as scratch:
        target = Path(scratch) / "converted"
        conversion = run(sys.executable, CONVERT, module, target, pythonpath=True)
        ours = run(sys.executable, CONVERTED, target, args.steps, args.batch, args.repeats, pythonpath=True)
        same_tf = run(sys.executable, TF1_SIDE, module, args.steps, args.batch, args.repeats, pythonpath=True,
                      hub_import="registry")
    theirs = run(refstack_python, TF1_SIDE, module, args.steps, args.batch, args.repeats, pythonpath=False,
                 hub_import="tensorflow_hub")
    keys = ("inference_s", "train_step_s")
    ratios = {key: ours[key] / theirs[key] for key in keys}
    same_tf_ratios = {key: ours[key] / same_tf[key] for key in keys}
    print(f"module: {module}")
    print(f"conversion: {conversion['convert_s']:.2f} s (+ {conversion['import_s']:.2f} s imports), peak RSS "
          f"{conversion['peak_rss_mb']:.0f} MB ({conversion['rss_after_imports_mb']:.0f} MB after the imports), "
          f"{conversion['variables']} variables")
    print(f"{'':14}{'converted':>14}{'hub.Module':>14}{'ratio':>7}{'registry.Module':>17}{'ratio':>7}")
    print(f"{'':14}{'TF 2.21':>14}{'TF 2.15':>14}{'':>7}{'TF 2.21':>17}")
    for key, label in (("inference_s", "inference"), ("train_step_s", "training step")):
        print(f"{label:14}{ours[key] * 1e3:>11.3f} ms{theirs[key] * 1e3:>11.3f} ms{ratios[key]:>7.2f}"
              f"{same_tf[key] * 1e3:>14.3f} ms{same_tf_ratios[key]:>7.2f}")
        if key == "inference_s":  # the same graph through one concrete function: no dispatch among __call__'s traces
            print(f"{'  (signature)':14}{ours['signature_s'] * 1e3:>11.3f} ms{theirs[key] * 1e3:>11.3f} ms"
                  f"{ours['signature_s'] / theirs[key]:>7.2f}{same_tf[key] * 1e3:>14.3f} ms"
                  f"{ours['signature_s'] / same_tf[key]:>7.2f}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "convert.json").write_text(json.dumps(
        {"module": str(module), "batch": args.batch, "steps": args.steps, "repeats": args.repeats,
         "conversion": conversion, "converted": ours, "reference": theirs, "ratios": ratios, "registry_module": same_tf,
         "ratios_to_registry_module": same_tf_ratios}, indent=1))


if __name__ == "__main__":
    main()
