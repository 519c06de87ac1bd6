"""Converted modules judged by the reference stack (TensorFlow 2.15 + tensorflow_hub 0.15).

- A TF 1.x-era module made by the reference stack under ``disable_v2_behavior``
  (ref variables, a v1 ``HashTable``, a partitioned variable, ``tf.cond`` and
  ``tf.while_loop`` over ref variables): every signature of the converted model
  computes what the reference stack's ``hub.Module`` computes (default
  variant), and fine-tuning it through the converted ``__call__`` follows the
  reference stack's losses and weights.
- Fine-tuning equals the reference: a module whose ``{"train"}`` variant has
  batch norm (training mode, moving averages in UPDATE_OPS) and an L2
  regularizer, trained N steps with plain SGD on fixed data: here the
  converted model in a Keras 3 ``Model.fit`` through
  ``registry.KerasLayer(..., trainable=True)``; there
  ``hub.Module(path, trainable=True, tags={"train"})`` with the task loss plus
  ``get_regularization_loss()``, the train op under UPDATE_OPS. Per-step
  losses, final weights and moving averages agree within 1e-5. The module is
  made both in TF2 behaviour (resource variables) and under
  ``disable_v2_behavior`` (ref variables, so batch norm's moving averages are
  ``AssignSub`` on ref variables, rewritten by the converter).
- Dropout: the ``{"train"}`` variant's dropout has an op-level seed
  (``tf.nn.dropout(..., seed=5)``), so its ``RandomUniform`` op carries fixed
  ``seed``/``seed2`` attributes that the conversion keeps. A seeded stateful
  random op draws the same Philox sequence in both stacks, one draw per
  execution, and both loops execute the forward pass exactly once per step
  (the reference runs ``[loss, train]`` in one ``session.run``; Keras's train
  step calls the model once), so step k uses the same dropout mask in both:
  the whole trajectory is compared, not only a deterministic part.
- The unmodified tensorflow_hub 0.16.1 client fine-tunes a converted model with
  ``hub.KerasLayer(..., trainable=True)`` in tf_keras, from a directory and from
  ``model-registry serve`` (published through the server's upload API), and its
  loss decreases.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import registry as hub
from registry.adapters.tf1_hub.convert import convert_module
from tests import refstack
from tests.tf1_support import load_arrays

pytestmark = [pytest.mark.refstack, pytest.mark.slow]

STEPS = 8

FINE_TUNE_REFERENCE = r"""
import os, sys, numpy as np, tensorflow as tf, tensorflow_hub as hub
tf1 = tf.compat.v1
out, behaviour, dropout, steps = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
if behaviour == "v1":
    tf1.disable_v2_behavior()  # ref variables: batch norm's moving averages are AssignSub on VariableV2

def layers_fn(training):
    # TF1 layers (in TF 2.15 these make resource variables, whatever the behaviour)
    x = tf1.placeholder(tf.float32, [None, 8])
    h = tf1.layers.dense(x, 6, activation=tf.nn.relu, kernel_regularizer=tf1.keras.regularizers.l2(0.01),
                         name="hidden")
    h = tf1.layers.batch_normalization(h, training=training, momentum=0.8, name="bn")
    if training and dropout:
        h = tf1.nn.dropout(h, rate=0.3, seed=5)
    y = tf1.layers.dense(h, 3, name="logits")
    hub.add_signature(inputs=x, outputs=y)

def ref_variables_fn(training):
    # The same network written the TF 1.x way: get_variable ref variables, batch norm by hand
    with tf1.variable_scope("", use_resource=False):
        x = tf1.placeholder(tf.float32, [None, 8])
        with tf1.variable_scope("hidden"):
            kernel = tf1.get_variable("kernel", [8, 6], regularizer=lambda w: 0.01 * tf.reduce_sum(tf.square(w)))
            h = tf.nn.relu(tf.matmul(x, kernel) + tf1.get_variable("bias", [6], initializer=tf1.zeros_initializer()))
        with tf1.variable_scope("bn"):
            gamma = tf1.get_variable("gamma", [6], initializer=tf1.ones_initializer())
            beta = tf1.get_variable("beta", [6], initializer=tf1.zeros_initializer())
            moving_mean = tf1.get_variable("moving_mean", [6], initializer=tf1.zeros_initializer(), trainable=False)
            moving_variance = tf1.get_variable("moving_variance", [6], initializer=tf1.ones_initializer(),
                                               trainable=False)
            if training:
                mean, variance = tf.nn.moments(h, [0])
                for average, value in ((moving_mean, mean), (moving_variance, variance)):
                    tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS, tf1.assign_sub(average, (average - value) * 0.2))
            else:
                mean, variance = moving_mean, moving_variance
            h = tf.nn.batch_normalization(h, mean, variance, beta, gamma, 1e-3)
        with tf1.variable_scope("logits"):
            y = tf.matmul(h, tf1.get_variable("kernel", [6, 3])) + tf1.get_variable(
                "bias", [3], initializer=tf1.zeros_initializer())
    hub.add_signature(inputs=x, outputs=y)

module_fn = ref_variables_fn if behaviour == "v1" else layers_fn
spec = hub.create_module_spec(module_fn, [(set(), {"training": False}), ({"train"}, {"training": True})])
module = os.path.join(out, "module")
with tf.Graph().as_default():
    tf1.set_random_seed(3)
    m = hub.Module(spec)
    with tf1.Session() as s:
        s.run(tf1.global_variables_initializer())
        m.export(module, s)
rng = np.random.RandomState(11)
x, y = rng.rand(16, 8).astype(np.float32), rng.rand(16, 3).astype(np.float32)
with tf.Graph().as_default():
    m = hub.Module(module, trainable=True, tags={"train"})
    loss = tf1.losses.mean_squared_error(y, m(x)) + tf1.losses.get_regularization_loss()
    with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
        train = tf1.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf1.Session() as s:
        s.run(tf1.global_variables_initializer())
        losses = [s.run([loss, train])[0] for _ in range(steps)]
        weights = s.run(m.variable_map)
    types = {op.type for op in tf1.get_default_graph().get_operations()}
np.savez(os.path.join(out, "record.npz"), x=x, y=y, losses=np.array(losses),
         ref_variables=np.array("VariableV2" in types), **{"w|" + k: v for k, v in weights.items()})
"""


def _fine_tune_here(path, x, y, steps):
    """The converted model in a Keras 3 model, trained by Model.fit with plain SGD; (losses, weights by name)."""
    import keras

    layer = hub.KerasLayer(str(path), trainable=True)
    model = keras.Sequential([keras.Input((8,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=False)
    history = model.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0)
    weights = {w._borrowed.name.split(":")[0]: w.numpy() for w in layer.weights}  # the SavedModel's own variables
    return np.array(history.history["loss"]), weights


@pytest.mark.parametrize("behaviour,dropout", [("v2", False), ("v1", False), ("v2", True)],
                         ids=["resource-variables", "ref-variables", "seeded-dropout"])
def test_fine_tuning_the_converted_model_in_keras_3_equals_hub_module_in_the_reference_stack(
        tmp_path, behaviour, dropout):
    refstack.run_script(FINE_TUNE_REFERENCE, tmp_path, behaviour, int(dropout), STEPS)
    record = load_arrays(tmp_path / "record.npz")
    assert bool(record["ref_variables"]) is (behaviour == "v1")
    report = convert_module(tmp_path / "module", tmp_path / "converted")
    assert report.train_variant and report.update_ops == 2 and report.regularization_losses == 1
    losses, weights = _fine_tune_here(tmp_path / "converted", record["x"], record["y"], STEPS)
    theirs = {k[2:]: v for k, v in record.items() if k.startswith("w|")}
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(losses, record["losses"], rtol=1e-5, atol=1e-5)
    assert sorted(weights) == sorted(theirs)
    for name in ("bn/moving_mean", "bn/moving_variance"):
        assert not np.allclose(theirs[name], 0 if name.endswith("mean") else 1)  # the update ops ran there...
    for name, value in theirs.items():
        np.testing.assert_allclose(weights[name], value, rtol=1e-5, atol=1e-5, err_msg=name)  # ...and here


TF1_ERA_MODULE = r"""
import os, sys, numpy as np, tensorflow as tf, tensorflow_hub as hub
from tensorflow.python.ops import gen_lookup_ops
tf1 = tf.compat.v1
tf1.disable_v2_behavior()  # as TF 1.x built graphs: ref variables, v1 control flow
OUT = sys.argv[1]

def module_fn():
    with tf1.variable_scope("", use_resource=False):
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        n = tf1.placeholder(tf.int32, [], name="n")
        w = tf1.get_variable("w", initializer=tf.constant([[0.5, -1.0], [0.25, 2.0], [1.0, 0.0]]))
        b = tf1.get_variable("b", initializer=tf.constant([0.1, -0.2]))
        scale = tf1.get_variable("scale", initializer=tf.constant(1.5))
        decay = tf1.get_variable("decay", initializer=tf.constant(0.9))
        y = tf.matmul(x, w) + b
        y = tf.cond(tf.reduce_sum(x) > 0, lambda: y * scale.read_value(), lambda: y - scale.read_value())
        _, y = tf.while_loop(lambda i, acc: i < n, lambda i, acc: (i + 1, acc * decay.read_value() + b), [0, y])
        words = tf1.placeholder(tf.string, [None], name="words")
        table = gen_lookup_ops.hash_table(key_dtype=tf.string, value_dtype=tf.int64, shared_name="vocab")
        tf1.add_to_collection(tf1.GraphKeys.TABLE_INITIALIZERS, gen_lookup_ops.initialize_table(
            table, tf.constant(["red", "green", "blue"]), tf.constant([1, 2, 3], tf.int64)))
        ids = gen_lookup_ops.lookup_table_find(table, words, tf.constant(-1, tf.int64))
        emb = tf1.get_variable("emb", [7, 2], partitioner=tf1.fixed_size_partitioner(3),
                               initializer=tf1.random_normal_initializer(seed=1))
        rows = tf1.placeholder(tf.int64, [None], name="rows")
    hub.add_signature(inputs={"x": x, "n": n}, outputs=y)
    hub.add_signature("lookup", inputs={"words": words},
                      outputs={"ids": ids, "scaled": tf.cast(ids, tf.float32) * scale})
    hub.add_signature("embed", inputs={"rows": rows}, outputs={"vectors": tf.nn.embedding_lookup(emb, rows)})
    z = tf.matmul(x, w)
    z = tf.cond(tf.reduce_sum(x) > 0, lambda: z * scale.read_value(), lambda: z - scale.read_value()) + b
    hub.add_signature("scaled", inputs={"x": x}, outputs=z)
    # A while loop over trainable ref variables (and a resource variable, as later TF 1.x modules had) with a
    # fixed trip count, to fine-tune through.
    r = tf1.get_variable("r", initializer=tf.constant([0.05, -0.1]), use_resource=True)
    _, looped = tf.while_loop(lambda i, acc: i < 3, lambda i, acc: (
        i + 1, acc * decay.read_value() + b + r.read_value()), [0, tf.matmul(x, w)])
    hub.add_signature("loop", inputs={"x": x}, outputs=looped)
    # The same loop drawing random numbers: recomputing it for the gradient would draw other ones.
    _, noisy = tf.while_loop(lambda i, acc: i < 2, lambda i, acc: (
        i + 1, acc * decay.read_value() + tf1.random_uniform(tf.shape(acc), seed=3)), [0, tf.matmul(x, w)])
    hub.add_signature("noisy", inputs={"x": x}, outputs=noisy)

spec = hub.create_module_spec(module_fn)
with tf.Graph().as_default():
    m = hub.Module(spec)
    with tf1.Session() as s:
        s.run(tf1.global_variables_initializer())
        m.export(os.path.join(OUT, "module"), s)

rng = np.random.RandomState(7)
pos, neg = rng.rand(4, 3).astype(np.float32), -rng.rand(2, 3).astype(np.float32)
target = rng.rand(4, 2).astype(np.float32)
words, rows = np.array([b"blue", b"red", b"cyan"]), np.array([6, 0, 3, 2], np.int64)
record = {"in|pos": pos, "in|neg": neg, "in|target": target, "in|words": words, "in|rows": rows}
with tf.Graph().as_default():
    m = hub.Module(os.path.join(OUT, "module"))
    types = sorted({op.type for op in tf1.get_default_graph().get_operations()})
    fetches = {"pos": m({"x": pos, "n": 3}), "neg": m({"x": neg, "n": 1}),
               **{"lookup_" + k: v for k, v in m(words, signature="lookup", as_dict=True).items()},
               **{"embed_" + k: v for k, v in m(rows, signature="embed", as_dict=True).items()},
               "scaled_pos": m(pos, signature="scaled"), "scaled_neg": m(neg, signature="scaled")}
    with tf1.Session() as s:
        s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        record.update({"out|" + k: v for k, v in s.run(fetches).items()})
with tf.Graph().as_default():
    m = hub.Module(os.path.join(OUT, "module"), trainable=True)
    # Fine-tuning through tf.cond over ref variables (a TF1 while loop has no TF2 gradient once saved).
    loss = tf1.losses.mean_squared_error(target, m(pos, signature="scaled"))
    train = tf1.train.GradientDescentOptimizer(0.05).minimize(loss)
    with tf1.Session() as s:
        s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        losses = [s.run([loss, train])[0] for _ in range(10)]
        record["tune|losses"] = np.array(losses)
        record.update({"tune|" + k: v for k, v in s.run(m.variable_map).items() if not isinstance(v, list)})
with tf.Graph().as_default():
    m = hub.Module(os.path.join(OUT, "module"), trainable=True)
    # Fine-tuning through a TF1 tf.while_loop over ref variables.
    loss = tf1.losses.mean_squared_error(target, m(pos, signature="loop"))
    train = tf1.train.GradientDescentOptimizer(0.05).minimize(loss)
    with tf1.Session() as s:
        s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        record["loop|losses"] = np.array([s.run([loss, train])[0] for _ in range(10)])
        record.update({"loop|" + k: v for k, v in s.run(m.variable_map).items() if not isinstance(v, list)})
record["types"] = np.array(types)
np.savez(os.path.join(OUT, "record.npz"), **record)
"""


@pytest.fixture(scope="module")
def tf1_era(tmp_path_factory):
    out = tmp_path_factory.mktemp("tf1-era")
    refstack.run_script(TF1_ERA_MODULE, out)
    report = convert_module(out / "module", out / "converted")
    return out, load_arrays(out / "record.npz"), report


def test_a_tf1_while_loop_whose_gradient_would_differ_is_refused_saying_why(tf1_era):
    out, record, report = tf1_era
    # Every other function running a TF1 while loop got the gradient the TF1 graph builds (tests below).
    (refused,) = report.not_differentiable
    assert refused.startswith("signature 'noisy': ") and "stateful ops (RandomUniform)" in refused
    loaded = tf.saved_model.load(str(out / "converted"))
    x = tf.constant(record["in|pos"])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(loaded.signatures["noisy"](x=x)["default"])
    # The gradient fails saying why, not with TensorFlow's internal error; the forward pass is unaffected.
    with pytest.raises(tf.errors.InvalidArgumentError, match="signature .+noisy.+ runs a TF1 tf.while_loop.*"
                                                             "RandomUniform.*fine-tune the TF1 Hub module"):
        tape.gradient(loss, [x])
    assert np.isfinite(loss.numpy())


def _sgd_through_call(loaded, inputs, target, steps, rate):
    """Plain SGD on MSE through the loaded model's ``__call__(training=True)``; the per-step losses."""
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(loaded(inputs, training=True) - target))
        grads = tape.gradient(loss, loaded.trainable_variables)
        losses.append(loss.numpy())
        for variable, grad in zip(loaded.trainable_variables, grads, strict=True):
            if grad is not None:
                variable.assign_sub(rate * tf.convert_to_tensor(grad))
    return np.array(losses), {v.name.split(":")[0]: v.numpy() for v in loaded.variables}


def test_fine_tuning_through_a_tf1_while_loop_equals_hub_module(tf1_era):
    out, record, _ = tf1_era
    report = convert_module(out / "module", out / "loop", call_signature="loop")
    assert not any(name.startswith("__call__") for name in report.not_differentiable)
    # Once with a GradientTape around the loaded model's __call__...
    loaded = tf.saved_model.load(str(out / "loop"))
    losses, weights = _sgd_through_call(loaded, tf.constant(record["in|pos"]), tf.constant(record["in|target"]),
                                        10, 0.05)
    # ...and once in a Keras 3 Model.fit through registry.KerasLayer(trainable=True).
    import keras

    layer = hub.KerasLayer(str(out / "loop"), trainable=True)
    model = keras.Sequential([keras.Input((3,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=False)
    history = model.fit(record["in|pos"], record["in|target"], batch_size=4, epochs=10, shuffle=False, verbose=0)
    fit_weights = {w._borrowed.name.split(":")[0]: w.numpy() for w in layer.weights}
    assert record["loop|losses"][-1] < record["loop|losses"][0]
    initial = {"w": [[0.5, -1.0], [0.25, 2.0], [1.0, 0.0]], "b": [0.1, -0.2], "decay": 0.9, "r": [0.05, -0.1]}
    for name, value in initial.items():  # the loop's trainable variables moved there (the gradient reached them)...
        assert not np.allclose(record["loop|" + name], value), name
    for mine, their_losses in ((losses, record["loop|losses"]), (np.array(history.history["loss"]),
                                                                 record["loop|losses"])):
        np.testing.assert_allclose(mine, their_losses, rtol=1e-5, atol=1e-6)
    for found in (weights, fit_weights):  # ...and here, the same way
        for name in ("w", "b", "scale", "decay", "r"):
            np.testing.assert_allclose(found[name], record["loop|" + name], rtol=1e-5, atol=1e-6, err_msg=name)


HUB_CLIENT_LOOP = r"""
import json, sys, numpy as np, tensorflow_hub as hub, tf_keras
record = np.load(sys.argv[2])
layer = hub.KerasLayer(sys.argv[1], trainable=True)
model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(3,)), layer])
model.compile(optimizer=tf_keras.optimizers.SGD(0.05), loss="mse")
history = model.fit(record["in|pos"], record["in|target"], epochs=10, batch_size=4, verbose=0, shuffle=False)
print(json.dumps({"losses": history.history["loss"],
                  "weights": {w.name.split(":")[0]: w.numpy().tolist() for w in layer.trainable_weights}}))
"""


def test_the_unmodified_hub_client_fine_tunes_through_a_tf1_while_loop_as_hub_module(tf1_era):
    import json

    out, record, _ = tf1_era
    convert_module(out / "module", out / "loop-for-client", call_signature="loop")
    result = refstack.run_hub_client_script(HUB_CLIENT_LOOP, out / "loop-for-client", out / "record.npz")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(outcome["losses"], record["loop|losses"], rtol=1e-5, atol=1e-6)
    for name in ("w", "b", "decay", "r"):
        np.testing.assert_allclose(outcome["weights"][name], record["loop|" + name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_the_reference_module_is_made_of_tf1_era_ops(tf1_era):
    _, record, report = tf1_era
    assert {"VariableV2", "HashTable", "LookupTableFind", "RefSwitch", "RefEnter"} <= set(record["types"].tolist())
    assert {"emb/part_0", "emb/part_1", "emb/part_2"} <= set(report.variables)
    assert report.tables == ("HashTable",)


def test_every_signature_of_the_converted_tf1_era_module_equals_hub_module(tf1_era):
    out, record, _ = tf1_era
    loaded = tf.saved_model.load(str(out / "converted"))
    assert set(loaded.signatures) == {"default", "lookup", "embed", "scaled", "loop", "noisy", "serving_default"}
    for sign in ("pos", "neg"):
        np.testing.assert_allclose(loaded.signatures["scaled"](x=tf.constant(record["in|" + sign]))["default"],
                                   record["out|scaled_" + sign], atol=1e-6)
    default = loaded.signatures["default"]
    np.testing.assert_allclose(default(x=tf.constant(record["in|pos"]), n=tf.constant(3))["default"],
                               record["out|pos"], atol=1e-6)
    np.testing.assert_allclose(default(x=tf.constant(record["in|neg"]), n=tf.constant(1))["default"],
                               record["out|neg"], atol=1e-6)
    lookup = loaded.signatures["lookup"](words=tf.constant(record["in|words"]))
    assert lookup["ids"].numpy().tolist() == record["out|lookup_ids"].tolist() == [3, 1, -1]
    np.testing.assert_allclose(lookup["scaled"], record["out|lookup_scaled"], atol=1e-6)
    np.testing.assert_allclose(loaded.signatures["embed"](rows=tf.constant(record["in|rows"]))["vectors"],
                               record["out|embed_vectors"], atol=1e-6)
    # __call__ takes the default signature's dict of inputs.
    np.testing.assert_allclose(loaded({"x": tf.constant(record["in|pos"]), "n": tf.constant(3)}),
                               record["out|pos"], atol=1e-6)


def test_fine_tuning_through_cond_over_ref_variables_equals_hub_module(tf1_era):
    out, record, _ = tf1_era
    report = convert_module(out / "module", out / "scaled", call_signature="scaled")
    assert not any(name.startswith("__call__") for name in report.not_differentiable)
    loaded = tf.saved_model.load(str(out / "scaled"))
    losses, by_name = _sgd_through_call(loaded, tf.constant(record["in|pos"]), tf.constant(record["in|target"]),
                                        10, 0.05)
    np.testing.assert_allclose(losses, record["tune|losses"], rtol=1e-5, atol=1e-7)
    assert losses[-1] < losses[0]
    for name in ("w", "b", "scale"):
        np.testing.assert_allclose(by_name[name], record["tune|" + name], rtol=1e-5, atol=1e-6, err_msg=name)


HUB_CLIENT_FINE_TUNE = r"""
import json, sys, numpy as np, tensorflow_hub as hub, tf_keras
layer = hub.KerasLayer(sys.argv[1], trainable=True)
model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(16,)), layer, tf_keras.layers.Dense(1)])
model.compile(optimizer=tf_keras.optimizers.SGD(0.05), loss="mse")
rng = np.random.RandomState(1)
x, y = rng.rand(32, 16).astype(np.float32), rng.rand(32, 1).astype(np.float32)
history = model.fit(x, y, epochs=5, batch_size=32, verbose=0, shuffle=False)
print(json.dumps({"losses": history.history["loss"], "model_losses": len(model.losses),
                  "trainable": len(layer.trainable_weights), "non_trainable": len(layer.non_trainable_weights)}))
"""


def _tar_gz(directory, archive):
    """The layout tfhub.dev served: a .tar.gz whose root is the model directory's contents."""
    import tarfile

    with tarfile.open(archive, "w:gz") as tar:
        for entry in sorted(directory.iterdir()):
            tar.add(entry, arcname=entry.name)
    return archive


def test_the_unmodified_hub_client_fine_tunes_a_converted_model_served_by_the_registry(tmp_path, registry_server):
    import json

    from tests.conftest import REFERENCE_DIR

    convert_module(REFERENCE_DIR / "tf1_train_tags", tmp_path / "converted")
    archive = _tar_gz(tmp_path / "converted", tmp_path / "converted.tar.gz").read_bytes()
    # The server's upload: a multipart form, a 'manifest' part (JSON) and then an 'archive' part.
    boundary = "converted-model-boundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n"
            f"Content-Type: application/json\r\n\r\n{{}}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"converted.tar.gz\"\r\n"
            f"Content-Type: application/gzip\r\n\r\n").encode() + archive + f"\r\n--{boundary}--\r\n".encode()
    status, body = registry_server.json("POST", "/api/v1/models/hub/converted/versions", body=form,
                                        token=registry_server.admin_token,
                                        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 201, body
    for where in (str(tmp_path / "converted"), f"{registry_server.url}/hub/converted/1"):
        result = refstack.run_hub_client_script(HUB_CLIENT_FINE_TUNE, where,
                                                env={"TFHUB_CACHE_DIR": str(tmp_path / "hub-cache")})
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        # tensorflow_hub 0.16.1 reads the Reusable SavedModel attributes: 6 trainable variables, the 2 moving
        # averages as non-trainable ones, and the module's regularization loss.
        assert (outcome["trainable"], outcome["non_trainable"], outcome["model_losses"]) == (6, 2, 1), where
        assert outcome["losses"][-1] < outcome["losses"][0], where
    assert '"GET /hub/converted/1?tf-hub-format=compressed' in registry_server.log()
