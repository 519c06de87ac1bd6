"""TF1 code ports by ``import registry as hub``: the hub.Module API behaves as tensorflow_hub 0.15's did.

One section per behaviour of the TF1-fidelity issue (1-9, 11; 10 lives in the
storage layer). The tests hold in TF2 behaviour (eager at the top level, as hub
0.15 ran on TensorFlow 2.x) and, through ``tests/test_tf1_fidelity_v1.py``,
under ``tf.compat.v1.disable_v2_behavior()``: they build graphs explicitly and
read values through sessions, so the same code runs in both.
"""

from __future__ import annotations

import importlib
import os
import threading

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import function

import registry as hub
from registry.modes import current_mode
from tests.tf1_support import apply_requested_behaviour, tf1_behaviour

apply_requested_behaviour()

tf1 = tf.compat.v1


def run(fetches, feed=None, init=True):
    """Run ``fetches`` of the default graph in a fresh session, after the initialisers."""
    with tf1.Session() as session:
        if init:
            session.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        return session.run(fetches, feed)


def double_fn():
    x = tf1.placeholder(tf.float32, [None])
    hub.add_signature(inputs=x, outputs=2 * x)


def weighted_fn():
    w = tf1.get_variable("w", [], initializer=tf1.constant_initializer(2.0))
    x = tf1.placeholder(tf.float32)
    hub.add_signature(inputs=x, outputs=x * w)


def ref_variable_fn():
    v = tf1.get_variable("var123", shape=[], initializer=tf1.constant_initializer(10.0), use_resource=False)
    hub.add_signature(outputs=v.value())


def test_this_process_runs_in_the_behaviour_it_was_asked_for():
    assert tf.executing_eagerly() is not tf1_behaviour()
    assert current_mode() == ("tf1" if tf1_behaviour() else "tf2")


# -- 1. create_module_spec at the top level ---------------------------------------------------------


def test_create_module_spec_at_the_top_level_builds_a_graph_of_its_own():
    ops_before = len(tf1.get_default_graph().get_operations())
    spec = hub.create_module_spec(weighted_fn)  # eager in TF2 behaviour, the default graph in TF1
    assert spec.get_signature_names() == ["default"]
    assert len(tf1.get_default_graph().get_operations()) == ops_before
    with tf.Graph().as_default():
        assert run(hub.Module(spec)(np.array([1.5, 2.0], np.float32))).tolist() == [3.0, 4.0]


# -- 2. tf.compat.v1.layers inside module_fn -------------------------------------------------------


def layers_fn(training=False):
    x = tf1.placeholder(tf.float32, [None, 3])
    h = tf1.layers.dense(x, 4, activation=tf.nn.relu, kernel_regularizer=lambda w: 0.1 * tf.reduce_sum(w * w))
    h = tf1.layers.batch_normalization(h, training=training)
    v1 = importlib.import_module("tensorflow.compat.v1")  # `import tensorflow.compat.v1 as tf` style code
    y = v1.layers.dense(h, 2, name="logits")
    hub.add_signature(inputs=x, outputs={"default": y, "hidden": h})


def test_tf1_layers_work_in_module_fn_without_legacy_keras_and_leave_no_trace():
    assert os.environ.get("TF_USE_LEGACY_KERAS") is None
    layers_before = tf1.layers
    spec = hub.create_module_spec(layers_fn, [({"train"}, {"training": True}), (set(), {})])
    assert tf1.layers is layers_before
    with pytest.raises(AttributeError, match="not available with Keras 3"):
        tf1.layers.dense  # noqa: B018  (outside a module_fn, TensorFlow's own behaviour is unchanged)
    with tf.Graph().as_default():
        module = hub.Module(spec, trainable=True, tags={"train"})
        assert sorted(module.variable_map) == [
            "batch_normalization/beta", "batch_normalization/gamma", "batch_normalization/moving_mean",
            "batch_normalization/moving_variance", "dense/bias", "dense/kernel", "logits/bias", "logits/kernel"]
        outputs = module(np.ones([2, 3], np.float32), as_dict=True)
        assert tf1.losses.get_regularization_losses()
        assert tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
        assert run(outputs)["default"].shape == (2, 2)


def test_other_threads_keep_tensorflows_layers_while_a_module_fn_runs():
    seen = {}

    def look_from_another_thread():
        try:
            tf1.layers.dense  # noqa: B018
            seen["other"] = "available"
        except AttributeError as e:
            seen["other"] = str(e)

    def module_fn():
        thread = threading.Thread(target=look_from_another_thread)
        thread.start()
        thread.join()
        x = tf1.placeholder(tf.float32, [None, 2])
        hub.add_signature(inputs=x, outputs=tf1.layers.dense(x, 1))

    hub.create_module_spec(module_fn)
    assert "not available with Keras 3" in seen["other"]


# -- 3. Module inside function graphs --------------------------------------------------------------


@pytest.mark.parametrize("trainable", [False, True])
@pytest.mark.parametrize("wrapper", ["wrap_function", "tf.function", "Defun"])
def test_module_inside_function_graphs_of_a_graph(wrapper, trainable):
    spec = hub.create_module_spec(double_fn)
    with tf.Graph().as_default():
        def apply(x):
            return hub.Module(spec, trainable=trainable)(x)

        if wrapper == "wrap_function":
            y = tf1.wrap_function(apply, [tf.TensorSpec([None], tf.float32)])(tf.constant([1.0, 2.0]))
        elif wrapper == "tf.function":
            y = tf.function(apply)(tf.constant([1.0, 2.0]))
        else:
            y = function.Defun(tf.float32)(apply)(tf.constant([1.0, 2.0]))
        assert run(y, init=False).tolist() == [2.0, 4.0]


def test_module_with_variables_in_wrap_function_at_the_top_level():
    def module_fn():
        x = tf1.placeholder(tf.float32, name="x")
        r = tf1.get_variable("r", [], initializer=tf1.constant_initializer(10.0), use_resource=True)
        hub.add_signature(inputs={"x": x}, outputs=x + r)

    spec = hub.create_module_spec(module_fn)
    initialized = []

    def use_module(x, y):
        m = hub.Module(spec, trainable=True)
        with tf.control_dependencies([tf1.global_variables_initializer()]):
            initialized.append(tf.constant(True))
        return [m(x), m(y)]

    f = tf1.wrap_function(use_module, [tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.float32)])
    initialize = f.prune([], initialized)  # the variables live in the function graph: initialise them there
    if tf1_behaviour():
        outputs = f(tf.constant(9.0), tf.constant(6.0))
        with tf1.Session() as session:
            session.run(initialize())
            assert session.run(outputs) == [19.0, 16.0]
    else:
        initialize()
        assert [t.numpy() for t in f(9.0, 6.0)] == [19.0, 16.0]


def test_mode_follows_the_outermost_context_of_a_function_graph():
    seen = {}

    def record(label):
        seen[label] = current_mode()
        return tf.constant(1.0)

    def in_defun():
        return record("Defun in a graph")

    with tf.Graph().as_default():
        tf.function(lambda: record("tf.function in a graph"))()
        tf1.wrap_function(lambda: record("wrap_function in a graph"), [])
        function.Defun()(in_defun)()
    tf.function(lambda: record("tf.function at the top level"))()
    tf1.wrap_function(lambda: record("wrap_function at the top level"), [])
    top = "tf1" if tf1_behaviour() else "tf2"
    assert seen == {"tf.function in a graph": "tf1", "wrap_function in a graph": "tf1",
                    "Defun in a graph": "tf1", "tf.function at the top level": top,
                    "wrap_function at the top level": "tf1"}


# -- 4. colocation ---------------------------------------------------------------------------------


def colocated_fn():
    v = tf1.get_variable("var123", shape=[], initializer=tf1.constant_initializer(1.0), use_resource=False)
    v_value = v.value()
    x = tf1.placeholder(tf.float32, name="x")
    with tf1.colocate_with(v), tf1.colocate_with(x):
        y = tf.add(v_value, x, name="y")
    hub.add_signature(inputs=x, outputs=y)


def test_applied_ops_are_colocated_with_the_instantiated_state_and_the_callers_input():
    spec = hub.create_module_spec(colocated_fn)
    with tf.Graph().as_default():
        module = hub.Module(spec)
        u1, u2 = tf.constant(1, name="u1"), tf.constant(2, name="u2")
        with tf1.colocate_with(u1), tf1.colocate_with(u2):
            x = tf.constant(100.0, name="x")
        y = module(x)
        assert sorted(y.op.colocation_groups()) == [b"loc:@module/var123", b"loc:@u1", b"loc:@u2"]
        assert run(y) == 101.0


def test_state_and_input_colocation_rewrites_in_one_module():
    def module_fn():
        w = tf.Variable(42 + 69, name="w")
        with tf1.colocate_with(w.op):
            v = tf.Variable(1.0, name="v")  # state colocated with state: allowed
            y = tf.add(v, 1, name="y")
        x = tf1.placeholder(tf.float32, name="x")
        with tf1.colocate_with(x):
            z = tf.add(x, 1, name="z")
        hub.add_signature(inputs=dict(x=x), outputs=dict(y=y, z=z))

    spec = hub.create_module_spec(module_fn)
    with tf.Graph().as_default():
        u = tf.constant(7.0, name="u")
        outputs = hub.Module(spec, name="m")(dict(x=u), as_dict=True)
        assert outputs["y"].op.colocation_groups() == [b"loc:@m/w"]
        assert outputs["z"].op.colocation_groups() == [b"loc:@u"]
        assert run(outputs) == {"y": 2.0, "z": 8.0}


def test_applied_ops_move_to_the_device_of_their_colocation_target():
    spec = hub.create_module_spec(colocated_fn)
    with tf.Graph().as_default():
        with tf.device("/device:CPU:0"):
            module = hub.Module(spec)
        y = module(tf.constant(1.0))
        assert module.variable_map["var123"].op.device == y.op.device == "/device:CPU:0"


def test_a_signature_input_under_colocate_with_is_refused_at_creation():
    def module_fn():
        u = tf.add(42, 69, name="u")
        with tf1.colocate_with(u):
            x = tf1.placeholder(tf.float32, name="x")
        hub.add_signature(inputs=x, outputs=x + 1.0)

    with pytest.raises(ValueError, match="(?s)must not be subject to a tf.colocate_with.*input.*loc:@u"):
        hub.create_module_spec(module_fn)


def test_a_state_op_colocated_with_a_non_state_op_is_refused_at_creation():
    def module_fn():
        u = tf.add(42, 69, name="u")
        with tf1.colocate_with(u):
            v = tf.Variable(1.0, name="v")
        x = tf1.placeholder(tf.float32)
        hub.add_signature(inputs=x, outputs=x + v)

    with pytest.raises(ValueError, match="(?s)state-holding.*colocate.*loc:@u"):
        hub.create_module_spec(module_fn)


def test_ambiguous_colocation_rewrites_fail_when_applied():
    def module_fn():
        x, y = tf.split([1, 2], 2, name="split")
        with tf1.colocate_with(x), tf1.colocate_with(y):
            z = tf.add(x, y, name="add")
        hub.add_signature(inputs=dict(x=x, y=y), outputs=z, name="both")
        hub.add_signature(inputs=dict(x=x), outputs=z, name="partial")

    spec = hub.create_module_spec(module_fn)
    with tf.Graph().as_default():
        u = tf.constant([1], name="u")
        with tf1.colocate_with(u):
            v = tf.constant([2], name="v")
        w = tf.constant([3], name="w")
        m = hub.Module(spec, name="m")
        assert m(dict(x=u, y=v), signature="both").op.colocation_groups() == [b"loc:@u"]
        with pytest.raises(ValueError, match=r"(?s)Failed to rewrite .*'loc:@m_apply_both_1/split' .*"
                                             r"\[b'loc:@[uw]'\] vs \[b'loc:@[wu]'\]"):
            m(dict(x=u, y=w), signature="both")
        with pytest.raises(ValueError, match=r"(?s)Failed to rewrite .*'loc:@m_apply_partial/split' .*"
                                             r"\[b'loc:@u'\] vs \[b'loc:@m_apply_partial/split'\]"):
            m(dict(x=u), signature="partial")


def test_ref_variable_module_inside_a_callers_while_loop_and_cond():
    spec = hub.create_module_spec(ref_variable_fn)
    with tf.Graph().as_default():
        module = hub.Module(spec)
        groups = []

        def body(i, x):
            v = module()
            groups.append(v.op.colocation_groups())
            return tf.add(i, 1), 2 * x + 0 * v

        pred = tf1.placeholder(tf.bool)
        if not tf1_behaviour():
            # TF2 behaviour builds control-flow bodies as function graphs: hub 0.15 refused them there too.
            with pytest.raises(RuntimeError, match="graph it was instantiated for"):
                tf.while_loop(lambda i, x: tf.less(i, 4), body, [0, 10.0])
            return
        loop = tf.while_loop(lambda i, x: tf.less(i, 4), body, [0, 10.0])
        cond = tf.cond(pred, lambda: module(), lambda: tf.constant(9.0))
        assert groups == [[b"loc:@module/var123"]]  # with the instantiated variable, not a copy in the loop
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            assert list(session.run(loop)) == [4, 160.0]
            assert session.run(cond, {pred: True}) == 10.0
            assert session.run(cond, {pred: False}) == 9.0


def test_module_applied_in_a_while_loop_differentiates_through_it():
    spec = hub.create_module_spec(weighted_fn)
    with tf.Graph().as_default():
        module = hub.Module(spec)
        x = tf.constant(10.0)
        p = tf1.placeholder(tf.int32)
        if not tf1_behaviour():
            with pytest.raises(RuntimeError, match="graph it was instantiated for"):
                tf.while_loop(lambda i, x: tf.less(i, p), lambda i, x: (tf.add(i, 1), module(x)), [0, x])
            return
        _, out = tf.while_loop(lambda i, x: tf.less(i, p), lambda i, x: (tf.add(i, 1), module(x)), [0, x])
        dodv, dodx = tf.gradients(out, [module.variables[0], x])
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            assert session.run([out, dodv, dodx], {p: 4}) == [160.0, 320.0, 16.0]


# -- 5. eval_function_for_module -------------------------------------------------------------------


def table_and_variable_fn():
    x = tf1.placeholder(tf.int64, name="x")
    table = tf1.lookup.StaticHashTable(
        tf1.lookup.KeyValueTensorInitializer(tf.constant([0, 1, 2], tf.int64), ["index0", "hello", "world"]), "UNK")
    hub.add_signature(inputs=x, outputs=table.lookup(x))
    v = tf1.get_variable("v", [3], initializer=tf1.constant_initializer([1.0, 2.0, 3.0]))
    ids = tf1.sparse_placeholder(tf.int64, name="ids")
    hub.add_signature("sum", inputs={"ids": ids}, outputs={"total": tf.reduce_sum(tf.gather(v, ids.values))})


def test_eval_function_for_module_evaluates_every_signature_on_values(tmp_path):
    spec = hub.create_module_spec(table_and_variable_fn)
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            module.export(str(tmp_path / "module"), session)
    graph_before = tf1.get_default_graph()
    ops_before = len(graph_before.get_operations())
    for source in (spec, str(tmp_path / "module")):
        with hub.eval_function_for_module(source) as f:
            assert tf1.get_default_graph() is graph_before  # the caller's code runs as it did
            assert tf.executing_eagerly() is not tf1_behaviour()
            assert list(f([0, 1, 2, 3])) == [b"index0", b"hello", b"world", b"UNK"]
            ids = tf1.SparseTensorValue([[0, 0], [1, 0]], np.array([2, 0], np.int64), [2, 1])
            assert f({"ids": ids}, signature="sum", as_dict=True) == {"total": 4.0}
            with pytest.raises(TypeError, match="There is no output named 'default'"):
                f({"ids": ids}, signature="sum")
            with pytest.raises(ValueError, match="Signature 'nope' is missing"):
                f([0], signature="nope")
    assert len(graph_before.get_operations()) == ops_before


# -- 6. a single input binds to the signature's only input -----------------------------------------


def test_a_single_value_binds_to_the_only_input_whatever_its_name():
    def module_fn():
        x = tf1.placeholder(tf.float32)
        hub.add_signature(inputs={"x": x}, outputs={"y": 2 * x})
        a, b = tf1.placeholder(tf.float32), tf1.placeholder(tf.float32)
        hub.add_signature("pair", inputs={"a": a, "b": b}, outputs=a + b)
        hub.add_signature("constant", outputs=tf.constant(3.0))

    spec = hub.create_module_spec(module_fn)
    with tf.Graph().as_default():
        module = hub.Module(spec)
        assert run(module(tf.constant([2.0]), as_dict=True))["y"].tolist() == [4.0]
        with pytest.raises(TypeError, match="Signature expects multiple inputs. Use a dict"):
            module(1.0, signature="pair")
        with pytest.raises(TypeError, match="Signature expects no inputs"):
            module(1.0, signature="constant")
        with pytest.raises(TypeError, match=r"Cannot convert dict_inputs: missing \['b'\], extra given \['c'\]"):
            module({"a": 1.0, "c": 2.0}, signature="pair")
        assert run(module(signature="constant")) == 3.0


# -- 7. signature types ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["input", "output"])
def test_indexed_slices_in_a_signature_are_refused_listing_the_supported_types(role):
    def module_fn():
        x = tf1.placeholder(tf.int64, None)
        y = tf1.placeholder(tf.int64, None)
        slices = tf.IndexedSlices(x, y)
        if role == "input":
            hub.add_signature(inputs={"x": slices}, outputs=x)
        else:
            hub.add_signature(inputs={"x": x, "y": y}, outputs=slices)

    with pytest.raises(ValueError, match=rf"should have one of the types .*: Tensor, SparseTensor, RaggedTensor.\n"
                                         rf"  \* {role} '\w+' has type IndexedSlices"):
        hub.create_module_spec(module_fn)


def test_a_variable_as_output_is_refused_with_the_fix():
    def module_fn():
        v = tf1.get_variable("v", [], initializer=tf1.zeros_initializer())
        hub.add_signature(outputs=v)

    with pytest.raises(ValueError, match=r"(?s)output 'default' has type .*Variable.*v\.value\(\)"):
        hub.create_module_spec(module_fn)


# -- 8. get_tags order -----------------------------------------------------------------------------


def tagged_fn(training):
    x = tf1.placeholder(tf.float32, [None, 3])
    hub.add_signature(inputs=x, outputs=2 * x if training else x)


def test_tags_keep_the_order_of_tags_and_args_through_export(tmp_path):
    spec = hub.create_module_spec(tagged_fn, [({"training"}, {"training": True}), ({"inference"}, {"training": False})])
    assert spec.get_tags() == [{"training"}, {"inference"}]
    # Sets are ordered by inclusion only, as hub 0.15 sorted them: the empty set comes first.
    assert hub.create_module_spec(tagged_fn, [({"train"}, {"training": True}), (set(), {"training": False})]
                                  ).get_tags() == [set(), {"train"}]
    with tf.Graph().as_default():
        module = hub.Module(spec, tags={"inference"})
        with tf1.Session() as session:
            module.export(str(tmp_path / "m"), session)
    assert hub.load_module_spec(str(tmp_path / "m")).get_tags() == [{"training"}, {"inference"}]


# -- 9. error texts that programs match on ---------------------------------------------------------


def test_error_messages_begin_as_tensorflow_hubs_did():
    spec = hub.create_module_spec(tagged_fn, [(set(), {"training": False})])
    with pytest.raises(ValueError, match="No signatures present"):
        hub.create_module_spec(lambda: tf.identity(tf1.placeholder(tf.float32)))

    def collection_fn():
        x = tf1.placeholder(tf.float32)
        tf1.add_to_collection("my_scope", x)
        hub.add_signature(inputs=x, outputs=x)

    with pytest.raises(ValueError, match=r"Unsupported collections in graph: \['my_scope'\]"):
        hub.create_module_spec(collection_fn)
    with pytest.raises(ValueError, match="called with malformed key 'not a key'"):
        hub.create_module_spec(lambda: (double_fn(), hub.attach_message("not a key", tf1.train.Int64List())))
    with pytest.raises(ValueError, match="Signature 'nope' is missing from meta graph"):
        spec.get_input_info_dict("nope")
    with pytest.raises(KeyError, match=r"No attached message for key 'bad' in graph version \[\]"):
        spec.get_attached_message("bad", tf1.train.BytesList, required=True)
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=r"No such graph variant: tags=\['train'\]"):
            hub.Module(spec, tags={"train"})
        module = hub.Module(hub.create_module_spec(lambda: hub.add_signature(outputs={"y": tf.constant(1.0)})))
        with pytest.raises(TypeError, match="There is no output named 'default'. Use as_dict=True"):
            module()
        with tf.Graph().as_default():
            with pytest.raises(RuntimeError, match="Module must be applied in the graph it was instantiated for"):
                module()
        other = tf1.Session(graph=tf.Graph())
        with pytest.raises(RuntimeError, match="session graph differs from the graph where the module"):
            module.export("/nonexistent/never-written", other)
        other.close()


# -- 11. TensorFlow filesystem URLs ----------------------------------------------------------------


def vocabulary_fn(vocabulary):
    def module_fn():
        table = tf1.lookup.StaticHashTable(tf1.lookup.TextFileInitializer(
            vocabulary, tf.string, tf1.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf1.lookup.TextFileIndex.LINE_NUMBER), default_value=-1)
        words = tf1.placeholder(tf.string)
        hub.add_signature(inputs=words, outputs=table.lookup(words))
    return module_fn


def export_and_read_back(vocabulary, export_path, local_copy):
    with tf.Graph().as_default():
        module = hub.Module(hub.create_module_spec(vocabulary_fn(vocabulary)))
        with tf1.Session() as session:
            module.export(export_path, session)
    if export_path.startswith("ram://"):  # a filesystem only TensorFlow can read: copy it out
        for directory, _, files in tf.io.gfile.walk(export_path):
            target = local_copy + directory[len(export_path):]
            tf.io.gfile.makedirs(target)
            for name in files:
                tf.io.gfile.copy(f"{directory}/{name}", f"{target}/{name}", overwrite=True)
    with tf.Graph().as_default():
        out = hub.Module(local_copy)(["two", "one", "zero"])
        return run(out).tolist()


def test_export_and_assets_through_tensorflow_filesystem_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written to a relative "file:" directory would land here
    tf.io.gfile.GFile(f"file://{tmp_path}/words.txt", "w").write("zero\none\n")
    assert export_and_read_back(f"file://{tmp_path}/words.txt", str(tmp_path / "a"), str(tmp_path / "a")) == [-1, 1, 0]
    assert export_and_read_back(str(tmp_path / "words.txt"), f"file://{tmp_path}/b", str(tmp_path / "b")) == [-1, 1, 0]
    # A filesystem only TensorFlow knows (in memory), for the asset and for the module.
    tf.io.gfile.GFile("ram://fidelity/words.txt", "w").write("zero\none\n")
    assert export_and_read_back("ram://fidelity/words.txt", "ram://fidelity/module", str(tmp_path / "c")) == [-1, 1, 0]
    assert sorted(tf.io.gfile.listdir("ram://fidelity/module")) == [
        "assets", "saved_model.pb", "tfhub_module.pb", "variables"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "words.txt"]
