"""Benchmark: converting a TF1 Hub module, and running the result against hub.Module in the reference stack.

Conversion: wall time and peak RSS (``ru_maxrss`` of the converting process) of
``convert_module`` on the module (default: the largest TF1 Hub module in
registry/demo_models), in a fresh process.

Running: four worker processes (the sides below) stay up side by side, each with the model
loaded and every function warmed up (traced, run a few times), and the driver
asks them in turn for ``--steps`` timed calls of each measurement, in
``--rounds`` rounds: within a round, each measurement is taken on every side one
right after the other, in an order that rotates from round to round, so a burst
of load on a shared machine falls on every side alike rather than on whichever
ran last. Every side gets the
same batch (float inputs uniform in [0, 1), fixed seed), held in the runtime
before the timing starts (an eager tensor; a variable in the TF1 graph), and
fetches the output as a numpy array in every timed call, without copying it
(``session.run`` hands its tensor over; ``np.asarray`` of an eager tensor is a
view, where ``.numpy()`` would copy) — converting a numpy batch in, or copying
one out, costs each stack differently and is not the model's cost —
and runs with TensorFlow's default thread pools (``--threads N`` sets N intra-
and N inter-op threads on every side; with one inter-op thread, TensorFlow 2.21
hands a training step's functions between threads and, on a loaded machine,
waits for each hand-off: wall time well above CPU time).

What each side runs, each as it is meant to be used in its stack:

- ``converted`` (TensorFlow 2.21, the converted SavedModel, ``tf.saved_model.load``):
  *inference* is one call of the concrete function (``tf.function(...)
  .get_concrete_function(input spec)``) of a ``tf.function`` applying the model's
  ``__call__`` — the whole model one graph per call, as ``session.run`` runs one
  on the other side, and as a TF2 program runs a model it calls repeatedly with
  one input signature (Keras's ``predict`` and ``fit`` compile their step into a
  ``tf.function`` too); *training step* one call of the concrete function of a
  ``tf.function`` doing ``__call__(x, training=True)`` under a ``GradientTape``,
  the loss ``mean(y**2)`` plus the module's regularization losses, and the plain
  SGD update (``ResourceApplyGradientDescent``, the kernel tf.compat.v1's
  ``GradientDescentOptimizer`` runs). Shown beside them, not compared for the
  target: the same inference through the ``tf.function`` itself (its Python
  dispatch among traces, ~0.1-0.2 ms on every call in TensorFlow 2.21), the
  *eager* ``__call__`` (the restored function's dispatch), and the ``default``
  signature called eagerly.
- ``hub.Module`` (TensorFlow 2.15.1 + tensorflow_hub 0.15.0, the reference stack):
  ``hub.Module(path)(batch)`` in a graph, *inference* one ``session.run``
  of its output; *training step* one ``session.run([loss,
  train_op])`` of ``hub.Module(path, trainable=True, tags={"train"} if the
  module has it)``, the same loss (+ ``get_regularization_loss()``), the
  ``GradientDescentOptimizer`` train op under UPDATE_OPS.
- ``converted@2.15``: the same converted SavedModel, the same program, in the
  reference stack's TensorFlow 2.15 (it loads TF2 SavedModels): against
  ``hub.Module`` on one TensorFlow, what the conversion costs and nothing else.
- ``registry.Module`` (TensorFlow 2.21): the same graph-and-session program
  with this project's ``registry.Module``: what TensorFlow 2.21 costs against
  2.15 for the TF1 graph itself.
- *floor*: on every side the same call with nothing in it (a ``tf.function``
  returning its argument; a ``session.run`` of ``tf.identity`` of the batch):
  each stack's per-call cost. ``time - floor`` is the model's
  computation; where the floor is most of the time, the ratio compares the
  stacks' dispatch, not the models.

The converted functions hold the module's own ops (here ``MatMul``, ``BiasAdd``,
``ReadVariableOp``) and an ``Identity`` per output, nothing else; the nested
functions (``__call__`` -> the variant -> the imported piece) are inlined by
TensorFlow when it instantiates the outer function. ``training`` is a Python
bool that picks a trace (no ``tf.cond`` in either graph).

Reported per batch size (``--batch``, repeatable; default 64, 1024, 4096) and
measurement: the median wall time and median CPU time (``time.process_time``,
all the process's threads) over every timed call, and the ratio converted /
hub.Module as the median over rounds of the rounds' ratios (paired, so drift of
the machine's load between rounds cancels). The issue's target is a ratio <= 1.1
for inference and the training step. Results go to ``bench/results/convert.json``.

    .venv/bin/python bench/bench_convert.py [--steps 10] [--rounds 21] [--batch 64 --batch 1024 --batch 4096]
        [--threads 0] [--refstack-python PATH] [MODULE_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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

# Shared by every worker: the batch, and the loop answering the driver's requests ("NAME BATCH STEPS").
WORKER = r"""
import json, sys, time
import numpy as np
path, threads, batches = sys.argv[1], int(sys.argv[2]), [int(b) for b in sys.argv[3].split(",")]

def batch_for(dtype_name, shape, n):
    shape = [n if d is None else d for d in shape]
    if dtype_name == "string":
        return np.array((["the cat sat on the mat", "a dog ran"] * n)[:shape[0]], dtype=object)
    return np.random.RandomState(0).rand(*shape).astype(dtype_name)

def serve(measurements):
    # measurements: {(name, batch): zero-argument function}; each warmed up before the driver is told READY.
    for fn in measurements.values():
        for _ in range(10):
            fn()
    print("READY", flush=True)
    for line in sys.stdin:
        name, n, steps = line.split()
        fn = measurements[(name, int(n))]
        wall, cpu = [], []
        for _ in range(int(steps)):
            w, c = time.perf_counter(), time.process_time()
            fn()
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - w)
        print("RESULT" + json.dumps({"wall": wall, "cpu": cpu}), flush=True)
"""

CONVERTED = WORKER + r"""
import tensorflow as tf
if threads:  # 0: TensorFlow's default, as the reference side's ConfigProto with 0
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
m = tf.saved_model.load(path)
signature = m.signatures["default"]
(name, info), = signature.structured_input_signature[1].items()
opt_vars = list(m.trainable_variables)

@tf.function
def floor(x):
    return tf.identity(x)

@tf.function
def inference(x):
    return m(x)

@tf.function
def train_step(x):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(m(x, training=True)))
        if m.regularization_losses:
            loss += tf.add_n([f() for f in m.regularization_losses])
    for v, g in zip(opt_vars, tape.gradient(loss, opt_vars)):
        if g is not None:  # the kernel tf.compat.v1.train.GradientDescentOptimizer runs on the reference side
            tf.raw_ops.ResourceApplyGradientDescent(var=v.handle, alpha=tf.constant(0.01, v.dtype),
                                                    delta=tf.convert_to_tensor(g))
    return loss

# Concrete functions for a fixed input signature (public API: tf.function(...).get_concrete_function(spec)), as a
# TF2 program calls one function many times; the tf.function itself (its Python dispatch among traces on each call)
# is timed beside them.
floor_cf, inference_cf, train_cf = (f.get_concrete_function(info) for f in (floor, inference, train_step))
measurements = {}
for n in batches:
    x = tf.constant(batch_for(info.dtype.name, info.shape.as_list(), n))  # in the runtime, as on the other sides
    # np.asarray: the output as a numpy array without a copy, as session.run hands over its fetched tensor
    # (EagerTensor.numpy() copies, a cost that grows with the batch and is not the model's).
    measurements.update({
        ("floor", n): lambda x=x: np.asarray(floor_cf(x)),
        ("inference", n): lambda x=x: np.asarray(inference_cf(x)),
        ("tf_function", n): lambda x=x: np.asarray(inference(x)),
        ("eager_call", n): lambda x=x: np.asarray(m(x)),
        ("signature", n): lambda x=x: np.asarray(signature(**{name: x})["default"]),
        ("train_step", n): lambda x=x: np.asarray(train_cf(x)),
    })
serve(measurements)
"""

# hub.Module in a graph and session; HUB_IMPORT picks tensorflow_hub 0.15 or this project's registry.Module.
TF1_SIDE = WORKER + r"""
import os
import tensorflow as tf
if os.environ["HUB_IMPORT"] == "registry":
    import registry as hub
else:
    import tensorflow_hub as hub
tf1 = tf.compat.v1
config = tf1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
spec = hub.load_module_spec(path)
info, = spec.get_input_info_dict("default").values()
tags = {"train"} if {"train"} in [set(t) for t in spec.get_tags()] else None

def batch_variable(n):
    # The batch in the runtime (a variable: a constant would let grappler fold what depends only on the input).
    return tf1.Variable(batch_for(info.dtype.name, info.get_shape().as_list(), n), trainable=False,
                        use_resource=True).read_value()

measurements = {}
with tf.Graph().as_default():
    module = hub.Module(spec)
    fetches = {}
    for n in batches:
        x = batch_variable(n)
        fetches.update({("floor", n): tf.identity(x), ("inference", n): module(x)})
    s = tf1.Session(config=config)
    s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
    measurements.update({key: lambda s=s, fetch=fetch: s.run(fetch) for key, fetch in fetches.items()})
for n in batches:
    with tf.Graph().as_default():
        out = hub.Module(spec, trainable=True, tags=tags)(batch_variable(n))
        loss = tf.reduce_mean(tf.square(out)) + tf1.losses.get_regularization_loss()
        with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
            train = tf1.train.GradientDescentOptimizer(0.01).minimize(loss)
        s = tf1.Session(config=config)
        s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        measurements[("train_step", n)] = lambda s=s, fetch=[loss, train]: s.run(fetch)
serve(measurements)
"""

SIDES = {  # name: (worker script, measurements, what it is)
    "converted": (CONVERTED, ("floor", "inference", "tf_function", "eager_call", "signature", "train_step"),
                  "the converted SavedModel, TensorFlow 2.21 (this project's stack)"),
    "converted@2.15": (CONVERTED, ("floor", "inference", "train_step"),
                       "the same SavedModel loaded by the reference stack's TensorFlow 2.15: the conversion's own "
                       "cost, without the TensorFlow version's"),
    "hub.Module": (TF1_SIDE, ("floor", "inference", "train_step"),
                   "the TF1 module, tensorflow_hub 0.15 + TensorFlow 2.15 (the reference)"),
    "registry.Module": (TF1_SIDE, ("floor", "inference", "train_step"),
                        "the TF1 module, registry.Module + TensorFlow 2.21: the TensorFlow version's cost"),
}


def _env(pythonpath: bool, hub_import: str = "") -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", HUB_IMPORT=hub_import)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = str(REPO)
    return env


def run(python: str, script: str, *args, pythonpath: bool) -> dict:
    result = subprocess.run([python, "-c", script, *map(str, args)], capture_output=True, text=True,
                            env=_env(pythonpath), check=False, timeout=1800)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULTS")]
    if result.returncode != 0 or not lines:
        sys.exit(f"{python} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULTS"):])


class Worker:
    """One side's process: the model loaded and warmed up, answering timing requests on stdin/stdout."""

    def __init__(self, name: str, python: str, script: str, *args, pythonpath: bool, hub_import: str = ""):
        self.name = name
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([python, "-c", script, *map(str, args)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.errors, text=True,
                                        env=_env(pythonpath, hub_import))

    def _line(self, prefix: str) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(prefix):
                return line[len(prefix):]
        self.errors.seek(0)
        sys.exit(f"{self.name} failed (exit {self.process.wait()}):\n{self.errors.read()[-3000:]}")

    def ready(self) -> None:
        self._line("READY")

    def time(self, measurement: str, batch: int, steps: int) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{measurement} {batch} {steps}\n")
        self.process.stdin.flush()
        return json.loads(self._line("RESULT"))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self.errors.close()


def largest_tf1_module() -> Path:
    modules = [p for p in REFERENCE.iterdir() if (p / "tfhub_module.pb").is_file()]
    return max(modules, key=lambda p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()))


LABELS = {"floor": "floor (empty call)", "inference": "inference", "tf_function": "  via tf.function call",
          "eager_call": "  via eager __call__", "signature": "  via eager signature", "train_step": "training step"}


def measure(workers: dict[str, Worker], batches: list[int], steps: int, rounds: int) -> dict:
    """{side: {measurement: {batch: [per-round {"wall": [...], "cpu": [...]}]}}}.

    In each round every measurement is taken on every side one right after the other (the sides' order
    rotating from round to round), so the samples a paired ratio compares are a few milliseconds apart.
    """
    samples: dict = {side: {m: {b: [] for b in batches} for m in SIDES[side][1]} for side in workers}
    order = list(workers)
    every = [m for m in LABELS if any(m in SIDES[side][1] for side in workers)]
    for r in range(rounds):
        sides = order[r % len(order):] + order[:r % len(order)]
        for batch in batches:
            for measurement in every:
                for side in sides:
                    if measurement in SIDES[side][1]:
                        samples[side][measurement][batch].append(workers[side].time(measurement, batch, steps))
    return samples


def summarize(samples: dict, batches: list[int]) -> dict:
    """Medians over every call, and paired ratios to hub.Module (median over rounds of the rounds' ratio)."""
    summary: dict = {}
    for side, by_measurement in samples.items():
        for measurement, by_batch in by_measurement.items():
            for batch in batches:
                per_round = by_batch[batch]
                summary.setdefault(side, {}).setdefault(measurement, {})[batch] = {
                    "wall_ms": 1e3 * statistics.median(t for r in per_round for t in r["wall"]),
                    "cpu_ms": 1e3 * statistics.median(t for r in per_round for t in r["cpu"]),
                    "round_wall_ms": [1e3 * statistics.median(r["wall"]) for r in per_round]}
    reference = samples["hub.Module"]
    for side, by_measurement in samples.items():
        for measurement, by_batch in by_measurement.items():
            against = measurement if measurement in reference else "inference"
            for batch in batches:
                entry = summary[side][measurement][batch]
                theirs = reference[against][batch]
                entry["ratio_wall"] = statistics.median(
                    statistics.median(a["wall"]) / statistics.median(b["wall"])
                    for a, b in zip(by_batch[batch], theirs, strict=True))
                entry["ratio_cpu"] = statistics.median(
                    statistics.median(a["cpu"]) / max(statistics.median(b["cpu"]), 1e-9)
                    for a, b in zip(by_batch[batch], theirs, strict=True))
    return summary


def report(summary: dict, batches: list[int]) -> None:
    print(f"{'':24}{'side':>17}{'wall ms':>10}{'cpu ms':>9}{'ratio wall':>12}{'ratio cpu':>11}")
    for batch in batches:
        print(f"batch {batch}")
        for measurement, label in LABELS.items():
            for side in SIDES:
                entry = summary[side].get(measurement, {}).get(batch)
                if entry is None:
                    continue
                ratios = ("" if side == "hub.Module" else f"{entry['ratio_wall']:12.2f}{entry['ratio_cpu']:11.2f}")
                print(f"  {label:22}{side:>17}{entry['wall_ms']:10.3f}{entry['cpu_ms']:9.3f}{ratios}")
                label = ""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", nargs="?", type=Path, help="a TF1 Hub module directory (default: largest reference)")
    parser.add_argument("--steps", type=int, default=10, help="timed calls per measurement, side and round")
    parser.add_argument("--rounds", type=int, default=21, help="rounds, each side's order rotating")
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable; default 64, 1024 and 4096)")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra- and inter-op threads on every side (0, the default: TensorFlow's own choice)")
    parser.add_argument("--refstack-python", help="python of the reference stack (default: build/locate .refstack)")
    args = parser.parse_args(argv)
    batches = args.batch or [64, 1024, 4096]
    module = (args.module or largest_tf1_module()).resolve()  # a relative path is not a registry handle
    refstack_python = args.refstack_python
    if not refstack_python:
        sys.path.insert(0, str(REPO))
        from tests.refstack import ensure_refstack

        refstack_python = str(ensure_refstack())
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as scratch:
        target = Path(scratch) / "converted"
        conversion = run(sys.executable, CONVERT, module, target, pythonpath=True)
        worker_args = (args.threads, ",".join(map(str, batches)))
        workers = {
            "converted": Worker("converted", sys.executable, CONVERTED, target, *worker_args, pythonpath=True),
            "converted@2.15": Worker("converted@2.15", refstack_python, CONVERTED, target, *worker_args,
                                     pythonpath=False),
            "hub.Module": Worker("hub.Module", refstack_python, TF1_SIDE, module, *worker_args, pythonpath=False,
                                 hub_import="tensorflow_hub"),
            "registry.Module": Worker("registry.Module", sys.executable, TF1_SIDE, module, *worker_args,
                                      pythonpath=True, hub_import="registry"),
        }
        try:
            for worker in workers.values():
                worker.ready()
            samples = measure(workers, batches, args.steps, args.rounds)
        finally:
            for worker in workers.values():
                worker.close()
    load_after = os.getloadavg()
    summary = summarize(samples, batches)
    print(f"module: {module}")
    print(f"conversion: {conversion['convert_s']:.2f} s (+ {conversion['import_s']:.2f} s imports), peak RSS "
          f"{conversion['peak_rss_mb']:.0f} MB ({conversion['rss_after_imports_mb']:.0f} MB after the imports), "
          f"{conversion['variables']} variables")
    print(f"{args.rounds} rounds x {args.steps} calls per side and measurement, {args.threads or 'default'} "
          f"thread(s) per side, {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; times are medians, ratios converted / hub.Module (paired by round)")
    report(summary, batches)
    for side, (_, _, what) in SIDES.items():
        print(f"{side}: {what}")
    print("inference and training step: a concrete function (converted) against session.run (hub.Module, "
          "registry.Module); the 'via' rows (the same inference through the tf.function's dispatch, the eager "
          "__call__, the eager default signature) are compared with hub.Module's inference for information")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "convert.json").write_text(json.dumps(
        {"module": str(module), "batches": batches, "steps": args.steps, "rounds": args.rounds,
         "threads": args.threads, "load_average": [load_before, load_after], "conversion": conversion,
         "results": summary}, indent=1))


if __name__ == "__main__":
    main()
