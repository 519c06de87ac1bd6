"""Training-step time through ``registry.KerasLayer`` against the same model on the SavedModel's variables directly.

    python bench/bench_keras_layer.py [--model DIR_OR_HANDLE] [--batch 64] [--steps 100] [--rounds 5]

Both sides run the same compiled training step (a ``tf.function``: forward, loss,
gradient, plain SGD update) on the same inputs:

- layer:  ``keras.Sequential([Input, registry.KerasLayer(model, trainable=True), Dense])``;
- direct: the restored SavedModel called as is, with the head as two ``tf.Variable``s.

Rounds alternate between the two so machine load affects both alike; the median
step time of each is printed, and their ratio (layer / direct). The layer only
borrows the SavedModel's variables, so the ratio should be ~1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "registry" / "demo_models" / "tf2_image_feature_vector"


def build_layer_step(model_path, input_shape, classes, learning_rate):
    import keras
    import tensorflow as tf

    from registry.keras.layer import KerasLayer

    model = keras.Sequential([keras.Input(input_shape), KerasLayer(model_path, trainable=True),
                              keras.layers.Dense(classes)])
    variables = model.trainable_variables

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)) + tf.add_n(
                model.losses or [0.0])
        for v, g in zip(variables, tape.gradient(loss, variables)):
            v.assign_sub(learning_rate * g)
        return loss

    return step


def build_direct_step(model_path, classes, learning_rate):
    import tensorflow as tf

    saved = tf.saved_model.load(str(model_path))
    width = int(saved.__call__.concrete_functions[0].structured_outputs.shape[-1])
    kernel = tf.Variable(tf.random.normal([width, classes]) * 0.1)
    bias = tf.Variable(tf.zeros([classes]))
    variables = list(saved.trainable_variables) + [kernel, bias]
    losses = list(getattr(saved, "regularization_losses", []))

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = saved(x) @ kernel + bias
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)) + tf.add_n(
                [fn() for fn in losses] or [0.0])
        for v, g in zip(variables, tape.gradient(loss, variables)):
            v.assign_sub(learning_rate * g)
        return loss

    return step


def time_steps(step, x, y, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(x, y)
    loss.numpy()  # wait for the last step
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="a TF2 image model: directory or handle")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np
    import tensorflow as tf

    import registry

    path = registry.default_registry().resolve_path(args.model)
    spec = tf.saved_model.load(str(path)).__call__.concrete_functions[0].structured_input_signature[0][0]
    input_shape = tuple(d or 32 for d in spec.shape[1:])
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(size=(args.batch, *input_shape)).astype(np.float32))
    y = tf.constant(rng.integers(0, 3, size=args.batch))

    steps = {"layer": build_layer_step(path, input_shape, 3, 0.01), "direct": build_direct_step(path, 3, 0.01)}
    for step in steps.values():
        time_steps(step, x, y, 3)  # trace and warm up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].append(time_steps(step, x, y, args.steps))
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"model {args.model}, batch {args.batch}, {args.rounds} rounds of {args.steps} steps")
    for name, value in median.items():
        print(f"  {name:6s} {value * 1e3:8.3f} ms/step  (rounds: {', '.join(f'{t * 1e3:.3f}' for t in times[name])})")
    print(f"  ratio layer/direct: {median['layer'] / median['direct']:.3f}")


if __name__ == "__main__":
    main()
