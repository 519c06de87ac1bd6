"""TF1 fidelity judged by the reference stack (TensorFlow 2.15 + tensorflow_hub 0.15).

- The TF1 Hub format guide's own example (``module_fn`` with ``tf.layers.dense``)
  runs as written with ``import registry as hub`` and ``tf = tf.compat.v1``; the
  module it exports loads in the reference stack and computes the same.
- A module using TF1 layers with regularization and batch normalization, made
  here, fine-tunes to the same losses and weights here and there.
- Modules made the TF 1.x way by the reference stack (under
  ``disable_v2_behavior``): ref variables (VariableV2), a v1 ``HashTable``, and
  ``tf.cond`` / ``tf.while_loop`` over ref variables, load, apply and fine-tune
  here with the reference stack's outputs.

Like ``tests/test_tf1_fidelity.py`` this runs in TF2 behaviour and, through
``tests/test_tf1_fidelity_v1.py``, under ``disable_v2_behavior()``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import registry as hub
from tests import refstack
from tests.tf1_support import apply_requested_behaviour, load_arrays, save_arrays

apply_requested_behaviour()

tf1 = tf.compat.v1

# -- the TF1 Hub format guide's example, as written ------------------------------------------------


def guide_example_spec():
    """The example of the TF1 Hub format guide, with only the import lines a port changes."""
    tf = tf1  # the guide's code says `tf.placeholder`, `tf.layers`: TF1 names, as `tf = tf.compat.v1` gives

    def module_fn():
        inputs = tf.placeholder(dtype=tf.float32, shape=[None, 50])
        layer1 = tf.layers.dense(inputs, 200)
        layer2 = tf.layers.dense(layer1, 100)
        outputs = dict(default=layer2, hidden_activations=layer1)
        # Add default signature.
        hub.add_signature(inputs=inputs, outputs=outputs)

    spec = hub.create_module_spec(module_fn)
    return spec


REFSTACK_OUTPUTS = r"""
import sys, numpy as np, tensorflow as tf, tensorflow_hub as hub
tf1 = tf.compat.v1
module_dir, inputs_path, out_path = sys.argv[1:4]
with np.load(inputs_path) as data:
    arrays = {k: data[k] for k in data.files}
results = {}
with tf.Graph().as_default():
    m = hub.Module(module_dir)
    for key, value in arrays.items():
        signature, name = key.split(":")
        for out, tensor in m({name: value}, signature=signature, as_dict=True).items():
            results[f"{signature}:{out}"] = tensor
    with tf1.Session() as s:
        s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        np.savez(out_path, **s.run(results))
"""


def test_the_guides_example_runs_as_written_and_the_reference_stack_computes_the_same(tmp_path):
    spec = guide_example_spec()
    x = np.random.RandomState(0).rand(3, 50).astype(np.float32)
    with tf.Graph().as_default():
        m = hub.Module(spec)
        outputs = m(x, as_dict=True)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            ours = session.run(outputs)
            m.export(str(tmp_path / "module"), session)
    save_arrays(tmp_path / "inputs.npz", {"default:default": x})
    refstack.run_script(REFSTACK_OUTPUTS, tmp_path / "module", tmp_path / "inputs.npz", tmp_path / "out.npz")
    theirs = load_arrays(tmp_path / "out.npz")
    assert sorted(theirs) == ["default:default", "default:hidden_activations"]
    np.testing.assert_allclose(theirs["default:default"], ours["default"], atol=1e-5)
    np.testing.assert_allclose(theirs["default:hidden_activations"], ours["hidden_activations"], atol=1e-5)


# -- fine-tuning a module of TF1 layers, here and there ---------------------------------------------


def layers_fn(training):
    x = tf1.placeholder(tf.float32, [None, 4], name="x")
    h = tf1.layers.dense(x, 6, activation=tf.nn.relu, kernel_regularizer=lambda w: 0.01 * tf.reduce_sum(w * w))
    h = tf1.layers.batch_normalization(h, training=training, momentum=0.5)
    y = tf1.layers.dense(h, 2, name="logits")
    hub.add_signature(inputs=x, outputs={"default": y, "hidden": h})
    words = tf1.placeholder(tf.string, [None], name="words")
    lengths = tf.strings.length(words)
    hub.add_signature("lengths", inputs={"words": words}, outputs={"doubled": lengths * 2})


FINE_TUNE_SCRIPT = r"""
import sys, numpy as np, tensorflow as tf
import tensorflow_hub as hub
tf1 = tf.compat.v1
module_dir, out_path = sys.argv[1:3]
rng = np.random.RandomState(3)
x, target = rng.rand(8, 4).astype(np.float32), rng.rand(8, 2).astype(np.float32)
with tf.Graph().as_default():
    m = hub.Module(module_dir, trainable=True, tags={"train"})
    y = m(x)
    loss = tf1.losses.mean_squared_error(target, y) + tf1.losses.get_regularization_loss()
    with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
        train = tf1.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf1.Session() as s:
        s.run(tf1.global_variables_initializer())
        losses = []
        for _ in range(15):
            losses.append(s.run(loss))
            s.run(train)
        weights = s.run(m.variable_map)
np.savez(out_path, losses=np.array(losses), **{"w|" + k: v for k, v in weights.items()})
"""


def _fine_tune_here(module_dir):
    """The fine-tuning script's loop, run in this process (in whichever behaviour it runs)."""
    rng = np.random.RandomState(3)
    x, target = rng.rand(8, 4).astype(np.float32), rng.rand(8, 2).astype(np.float32)
    with tf.Graph().as_default():
        m = hub.Module(module_dir, trainable=True, tags={"train"})
        loss = tf1.losses.mean_squared_error(target, m(x)) + tf1.losses.get_regularization_loss()
        with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
            train = tf1.train.GradientDescentOptimizer(0.1).minimize(loss)
        with tf1.Session() as s:
            s.run(tf1.global_variables_initializer())
            losses = []
            for _ in range(15):
                losses.append(s.run(loss))
                s.run(train)
            return np.array(losses), s.run(m.variable_map)


def test_a_tf1_layers_module_made_here_fine_tunes_as_in_the_reference_stack(tmp_path):
    spec = hub.create_module_spec(layers_fn, [({"train"}, {"training": True}), (set(), {"training": False})])
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            module.export(str(tmp_path / "module"), session)
    refstack.run_script(FINE_TUNE_SCRIPT, tmp_path / "module", tmp_path / "theirs.npz")
    theirs = load_arrays(tmp_path / "theirs.npz")
    losses, weights = _fine_tune_here(str(tmp_path / "module"))
    assert losses[-1] < 0.7 * losses[0]
    np.testing.assert_allclose(losses, theirs["losses"], rtol=1e-4, atol=1e-6)
    assert sorted(weights) == sorted(k[2:] for k in theirs if k.startswith("w|"))
    for name, value in weights.items():
        np.testing.assert_allclose(value, theirs["w|" + name], rtol=1e-4, atol=1e-5, err_msg=name)


# -- modules made the TF 1.x way: ref variables, HashTable (v1), control flow over ref variables ----

MAKE_TF1_ERA_MODULE = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
from tensorflow.python.ops import gen_lookup_ops
tf1 = tf.compat.v1
tf1.disable_v2_behavior()  # as TF 1.x built graphs: v1 control flow
OUT = sys.argv[1]

def module_fn():
    with tf1.variable_scope("", use_resource=False):  # ref variables (VariableV2), the TF 1.x default
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        n = tf1.placeholder(tf.int32, [], name="n")
        w = tf1.get_variable("w", initializer=tf.constant([[0.5, -1.0], [0.25, 2.0], [1.0, 0.0]]))
        b = tf1.get_variable("b", initializer=tf.constant([0.1, -0.2]))
        scale = tf1.get_variable("scale", initializer=tf.constant(1.5))
        decay = tf1.get_variable("decay", initializer=tf.constant(0.9))
        y = tf.matmul(x, w) + b
        # Reading a ref variable inside control flow makes RefSwitch / RefEnter ops, colocated with it.
        y = tf.cond(tf.reduce_sum(x) > 0, lambda: y * scale.read_value(), lambda: y - scale.read_value())
        _, y = tf.while_loop(lambda i, acc: i < n, lambda i, acc: (i + 1, acc * decay.read_value() + b), [0, y])
        words = tf1.placeholder(tf.string, [None], name="words")
        table = gen_lookup_ops.hash_table(key_dtype=tf.string, value_dtype=tf.int64, shared_name="vocab")
        tf1.add_to_collection(tf1.GraphKeys.TABLE_INITIALIZERS, gen_lookup_ops.initialize_table(
            table, tf.constant(["red", "green", "blue"]), tf.constant([1, 2, 3], tf.int64)))
        ids = gen_lookup_ops.lookup_table_find(table, words, tf.constant(-1, tf.int64))
    hub.add_signature(inputs={"x": x, "n": n}, outputs=y)
    hub.add_signature("lookup", inputs={"words": words}, outputs={"ids": ids, "scaled": tf.cast(ids, tf.float32) * scale})

spec = hub.create_module_spec(module_fn)
with tf.Graph().as_default():
    m = hub.Module(spec)
    with tf1.Session() as s:
        s.run(tf1.global_variables_initializer())
        m.export(os.path.join(OUT, "module"), s)

# What hub.Module computes on it, and what fine-tuning it does.
rng = np.random.RandomState(7)
pos, neg = rng.rand(4, 3).astype(np.float32), -rng.rand(2, 3).astype(np.float32)
target = rng.rand(4, 2).astype(np.float32)
record = {"in|pos": pos, "in|neg": neg, "in|target": target}
with tf.Graph().as_default():
    m = hub.Module(os.path.join(OUT, "module"))
    types = sorted({op.type for op in tf1.get_default_graph().get_operations()})
    fetches = {"pos": m({"x": pos, "n": 3}), "neg": m({"x": neg, "n": 1}),
               **{"lookup_" + k: v for k, v in m(np.array(["blue", "red", "cyan"]), signature="lookup", as_dict=True).items()}}
    with tf1.Session() as s:
        s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        record.update({"out|" + k: v for k, v in s.run(fetches).items()})
with tf.Graph().as_default():
    m = hub.Module(os.path.join(OUT, "module"), trainable=True)
    loss = tf1.losses.mean_squared_error(target, m({"x": pos, "n": 2}))
    train = tf1.train.GradientDescentOptimizer(0.05).minimize(loss)
    with tf1.Session() as s:
        s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        losses = []
        for _ in range(10):
            losses.append(s.run(loss))
            s.run(train)
        record["tune|losses"] = np.array(losses)
        record.update({"tune|" + k: v for k, v in s.run(m.variable_map).items()})
np.savez(os.path.join(OUT, "record.npz"), **record)
print(json.dumps(types))
"""


@pytest.fixture(scope="module")
def tf1_era_module(tmp_path_factory):
    out = tmp_path_factory.mktemp("tf1-era")
    result = refstack.run_script(MAKE_TF1_ERA_MODULE, out)
    op_types = json.loads(result.stdout.strip().splitlines()[-1])
    return out / "module", load_arrays(out / "record.npz"), op_types


def test_the_reference_module_is_made_of_tf1_era_ops(tf1_era_module):
    _, _, op_types = tf1_era_module
    assert {"VariableV2", "HashTable", "LookupTableFind", "RefSwitch", "RefEnter"} <= set(op_types)


def test_a_tf1_era_module_applies_as_in_the_reference_stack(tf1_era_module):
    path, record, _ = tf1_era_module
    with tf.Graph().as_default():
        m = hub.Module(str(path))
        assert m.variable_map["w"].op.type == "VariableV2"
        graph = tf1.get_default_graph()
        assert "HashTable" in {op.type for op in tf1.get_default_graph().get_operations()}
        fetches = {"pos": m({"x": record["in|pos"], "n": 3}), "neg": m({"x": record["in|neg"], "n": 1}),
                   **{"lookup_" + k: v for k, v in
                      m(np.array(["blue", "red", "cyan"]), signature="lookup", as_dict=True).items()}}
        # The applied RefSwitch/RefEnter ops stay next to the instantiated variables (not to stillborn copies).
        ref_ops = [op for op in graph.get_operations()
                   if op.type in ("RefSwitch", "RefEnter") and op.name.startswith("module_apply")]
        assert ref_ops and all(op.colocation_groups() in ([b"loc:@module/scale"], [b"loc:@module/decay"])
                               for op in ref_ops)
        with tf1.Session() as session:
            session.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
            got = session.run(fetches)
    assert got["lookup_ids"].tolist() == [3, 1, -1]
    for key, value in got.items():
        np.testing.assert_allclose(value, record["out|" + key], atol=1e-6, err_msg=key)


def test_a_tf1_era_module_fine_tunes_as_in_the_reference_stack(tf1_era_module):
    path, record, _ = tf1_era_module
    with tf.Graph().as_default():
        m = hub.Module(str(path), trainable=True)
        assert {v.op.name for v in tf1.trainable_variables()} == {"module/w", "module/b", "module/scale", "module/decay"}
        loss = tf1.losses.mean_squared_error(record["in|target"], m({"x": record["in|pos"], "n": 2}))
        train = tf1.train.GradientDescentOptimizer(0.05).minimize(loss)
        with tf1.Session() as session:
            session.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
            losses = []
            for _ in range(10):
                losses.append(session.run(loss))
                session.run(train)
            weights = session.run(m.variable_map)
    np.testing.assert_allclose(losses, record["tune|losses"], rtol=1e-5, atol=1e-7)
    assert losses[-1] < losses[0]
    for name, value in weights.items():
        np.testing.assert_allclose(value, record["tune|" + name], rtol=1e-5, atol=1e-6, err_msg=name)
