"""Benchmark: building and running a TF1 Hub module in a graph, this project against the reference stack.

Each side runs in its own process on the same module directories: this
project (TensorFlow 2.21, ``registry.Module``) and the reference stack
(TensorFlow 2.15.1 + tensorflow_hub 0.15.0, ``hub.Module``). Per module and
per repeat, a fresh ``tf.Graph`` is timed through three phases:

- build: ``Module(path)`` (reading the module, creating its state);
- apply: two calls of the default signature (compute ops only);
- run: a session initialising variables and tables, then one forward pass.

The report prints the median of each phase for both sides and the ratio
(this project / reference; below 1 is faster) and writes it as JSON to
``bench/results/tf1_module.json``.

    .venv/bin/python bench/bench_tf1_module.py [--repeats 7] [--refstack-python PATH] [MODULE_DIR ...]

Without module directories, the TF1 reference modules in registry/demo_models are used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "registry" / "demo_models"

# Runs in either environment; HUB_IMPORT chooses the implementation.
PAYLOAD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
if os.environ["HUB_IMPORT"] == "registry":
    import registry as hub
else:
    import tensorflow_hub as hub
tf1 = tf.compat.v1
repeats = int(sys.argv[1])

def feed_for(info):
    shape = [2 if d is None else d for d in info.get_shape().as_list()]
    if info.dtype == tf.string:
        return np.array(["the cat sat", "a dog"][: shape[0]], dtype=object)
    return np.random.RandomState(0).rand(*shape).astype(info.dtype.as_numpy_dtype)

results = {}
for path in sys.argv[2:]:
    phases = {"build": [], "apply": [], "run": []}
    for _ in range(repeats + 1):  # the first round warms caches and is dropped
        with tf.Graph().as_default():
            t0 = time.perf_counter()
            m = hub.Module(path)
            t1 = time.perf_counter()
            sig = "default" if "default" in m.get_signature_names() else sorted(m.get_signature_names())[0]
            infos = m.get_input_info_dict(sig)
            placeholders = {k: tf1.placeholder(v.dtype, v.get_shape()) for k, v in infos.items()}
            outputs = [m(placeholders, signature=sig, as_dict=True) for _ in range(2)]
            t2 = time.perf_counter()
            with tf1.Session() as s:
                s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
                s.run(outputs, {placeholders[k]: feed_for(v) for k, v in infos.items()})
            t3 = time.perf_counter()
        for phase, value in (("build", t1 - t0), ("apply", t2 - t1), ("run", t3 - t2)):
            phases[phase].append(value)
    results[path] = {phase: values[1:] for phase, values in phases.items()}
print("RESULTS" + json.dumps({"tensorflow": tf.__version__, "results": results}))
"""


def run_side(python: str, hub_import: str, modules: list[str], repeats: int) -> dict:
    env = dict(os.environ, HUB_IMPORT=hub_import, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)
    if hub_import == "registry":
        env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([python, "-c", PAYLOAD, str(repeats), *modules], capture_output=True, text=True,
                          env=env, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"{hub_import} side failed:\n{proc.stderr[-3000:]}")
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULTS"))
    return json.loads(line[len("RESULTS"):])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="TF1 Hub module directories (default: the reference ones)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--refstack-python", help="python of the reference stack (default: build/locate .refstack)")
    args = parser.parse_args(argv)

    modules = [str(Path(m).resolve()) for m in args.modules] or sorted(
        str(p) for p in REFERENCE.glob("tf1_*") if p.is_dir())
    refstack_python = args.refstack_python
    if not refstack_python:
        sys.path.insert(0, str(REPO))
        from tests.refstack import ensure_refstack

        refstack_python = str(ensure_refstack())

    ours = run_side(sys.executable, "registry", modules, args.repeats)
    theirs = run_side(refstack_python, "tensorflow_hub", modules, args.repeats)

    report = {"repeats": args.repeats, "this_project_tf": ours["tensorflow"],
              "reference_tf": theirs["tensorflow"], "modules": {}}
    header = f"{'module':28} {'phase':6} {'this project':>13} {'reference':>11} {'ratio':>7}"
    lines = [header, "-" * len(header)]
    for path in modules:
        name = Path(path).name
        report["modules"][name] = {}
        for phase in ("build", "apply", "run"):
            a = statistics.median(ours["results"][path][phase])
            b = statistics.median(theirs["results"][path][phase])
            report["modules"][name][phase] = {"this_project_s": a, "reference_s": b, "ratio": a / b}
            lines.append(f"{name:28} {phase:6} {a * 1000:11.1f}ms {b * 1000:9.1f}ms {a / b:7.2f}")
    print(f"TF1 Hub module in a graph: this project (TF {ours['tensorflow']}) vs reference stack "
          f"(TF {theirs['tensorflow']}, tensorflow_hub 0.15), median of {args.repeats}")
    print("\n".join(lines))
    out = REPO / "bench" / "results" / "tf1_module.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
