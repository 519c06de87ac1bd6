"""Fine-tuning a reference TF1 Hub module in mode tf1, exporting it and publishing it as the next version."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import registry

tf1 = tf.compat.v1


def _data():
    rng = np.random.RandomState(11)
    x = rng.rand(64, 16).astype(np.float32)
    y = x @ rng.randn(16, 4).astype(np.float32)
    return x, y


def inference_loss(handle) -> float:
    x, y = _data()
    with tf.Graph().as_default():
        module = registry.Module(handle)
        loss = tf1.losses.mean_squared_error(y, module(x))
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            return float(session.run(loss))


def module_weights(handle) -> dict[str, np.ndarray]:
    with tf.Graph().as_default():
        module = registry.Module(handle)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            return session.run(module.variable_map)


def test_fine_tuning_lowers_the_loss_and_publishes_the_next_version_with_its_parent(reference, registry_env,
                                                                                     tmp_path):
    parent = registry.publish(reference.model_dir("tf1_train_tags"), name="hub/tagged")
    x, y = _data()
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        module = registry.fine_tune(parent.handle, mode="tf1")  # trainable, tags {"train"}
        predictions = module(x)
        loss = tf1.losses.mean_squared_error(y, predictions) + tf1.losses.get_regularization_loss()
        with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
            train_op = tf1.train.AdamOptimizer(0.01).minimize(loss)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            first = session.run(loss)
            for _ in range(300):
                session.run(train_op)
            last = session.run(loss)
            module.export(str(tmp_path / "tuned"), session)
    assert last < 0.5 * first

    before = inference_loss(parent.handle)
    child = registry.publish(tmp_path / "tuned", name="hub/tagged", parent=parent.handle)
    assert child.version == parent.version + 1
    assert registry.get_version(child.handle).parent == parent.handle
    assert sorted(map(sorted, child.tag_sets)) == [[], ["train"]]
    assert inference_loss(child.handle) < 0.5 * before

    old, new = module_weights(parent.handle), module_weights(child.handle)
    assert old.keys() == new.keys()
    assert not np.allclose(old["hidden/kernel"], new["hidden/kernel"])
    # Batch-norm moving statistics were updated through UPDATE_OPS and exported.
    assert not np.allclose(old["bn/moving_mean"], new["bn/moving_mean"])
