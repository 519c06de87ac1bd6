"""A Module built inside a function within a graph keeps its state in the outer graph and initialises once.

tensorflow_hub 0.15 let TPU code build a ``hub.Module`` inside the function it
replicates (a ``function.Defun``, a ``tf.function`` called in a graph, or a
``tf.compat.v1.wrap_function``), under a ``TPUReplicateContext``: the module's
variables go to the outer graph (``tf.init_scope``), where
``global_variables_initializer()`` initialises them once; the function
captures them; and each application is pruned to what its signature needs
(a function runs every op it holds, so an unpruned copy of the state's
initializers would run on every call). These are our own versions of
tensorflow_hub 0.15's ``native_module_test.py`` ``testTPUModule*`` tests, with
a stand-in ``TPUReplicateContext`` as theirs.

They run in TF2 behaviour here and, through the last test, under
``tf.compat.v1.disable_v2_behavior()`` in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import function
from tensorflow.python.ops.control_flow_ops import ControlFlowContext

import registry as hub
from tests.refstack import REPO_ROOT
from tests.tf1_support import TF1_BEHAVIOUR_ENV, apply_requested_behaviour, tf1_behaviour

apply_requested_behaviour()

tf1 = tf.compat.v1


class TPUReplicateContext(ControlFlowContext):
    """What TPU replication puts around the function body: a control-flow context of that name."""

    def __init__(self):
        super().__init__()
        self._name = "TPUReplicateContext"

    def AddOp(self, _):  # TensorFlow's method names
        pass

    def AddValue(self, x):
        return x

    def to_control_flow_context_def(self, context_def, export_scope=None):
        super().to_control_flow_context_def(context_def, export_scope)


def random_variable_fn():
    r = tf1.get_variable("rv", shape=[], initializer=tf1.random_uniform_initializer(), use_resource=True)
    hub.add_signature(outputs=r.value())


def variable_with_input_fn():
    x = tf1.placeholder(tf.float32, name="x")
    y = tf1.placeholder(tf.float32, name="y")  # a placeholder no output needs
    r = tf1.get_variable("rv", shape=[], initializer=tf1.constant_initializer(10.0), use_resource=True)
    t = tf1.get_variable("unused", shape=[], initializer=tf1.constant_initializer(10.0), use_resource=True)
    t.assign(y)  # an op no output needs, that would fail without y
    hub.add_signature(inputs={"x": x}, outputs=x + r)


def control_dependency_fn():
    dependency = tf.constant(1.0, name="dependency_op")
    with tf.control_dependencies([dependency]):
        result = tf.constant(3.0) + tf.constant(2.0)
    hub.add_signature(inputs={}, outputs=result)


def unused_input_fn():
    x = tf1.placeholder(tf.int64)
    y = tf1.placeholder(tf.int64)
    hub.add_signature(inputs={"x": x, "unused": y}, outputs=x * x)


def test_state_initialises_once_with_defun():
    spec = hub.create_module_spec(random_variable_fn)

    @function.Defun()
    def computation():
        TPUReplicateContext().Enter()
        m = hub.Module(spec, name="module_", trainable=True)
        return [m(), m()]

    with tf.Graph().as_default(), tf1.Session() as session:
        x = computation()
        # The state lives in the outer graph: its initializer is an element of this graph.
        assert [v.op.name for v in tf1.global_variables()] == ["module_/rv"]
        session.run(tf1.global_variables_initializer())
        first, second = session.run(x)
        # Equal: the random initializer ran once, not on each application or call.
        assert first == second
        assert list(session.run(x)) == [first, second]


def test_defun_with_inputs_shares_the_outer_state():
    spec = hub.create_module_spec(variable_with_input_fn)

    @function.Defun()
    def computation(first, second):
        TPUReplicateContext().Enter()
        m = hub.Module(spec, name="module_", trainable=True)
        return [m(first), m(second)]

    with tf.Graph().as_default(), tf1.Session() as session:
        x = computation(9.0, 6.0)
        session.run(tf1.global_variables_initializer())
        assert list(session.run(x)) == [19.0, 16.0]
        session.run(tf1.assign(tf1.global_variables()[0], 20.0))
        assert list(session.run(x)) == [29.0, 26.0]  # the function reads the outer variable


def test_tf_function_called_in_a_graph():
    with tf.Graph().as_default(), tf1.Session() as session:
        spec = hub.create_module_spec(variable_with_input_fn)

        @tf.function
        def computation(first, second):
            TPUReplicateContext().Enter()
            m = hub.Module(spec, trainable=True)
            return [m(first), m(second)]

        x = computation(9.0, 6.0)
        session.run(tf1.global_variables_initializer())
        assert list(session.run(x)) == [19.0, 16.0]


def test_wrap_function_in_a_graph():
    spec = hub.create_module_spec(variable_with_input_fn)

    def computation(first, second):
        TPUReplicateContext().Enter()
        m = hub.Module(spec, trainable=True)
        return [m(first), m(second)]

    with tf.Graph().as_default(), tf1.Session() as session:
        wrapped = tf1.wrap_function(computation, [tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.float32)])
        session.run(tf1.global_variables_initializer())
        assert list(session.run(wrapped(9.0, 6.0))) == [19.0, 16.0]


def test_control_dependencies_inside_the_module_are_not_pruned():
    spec = hub.create_module_spec(control_dependency_fn)

    @function.Defun()
    def computation():
        TPUReplicateContext().Enter()
        return hub.Module(spec, name="module_", trainable=True)()

    with tf.Graph().as_default(), tf1.Session() as session:
        x = computation()
        assert session.run(x) == 5.0
        # The state graph (here: everything but the signature's inputs) was built in the outer graph.
        tf1.get_default_graph().get_operation_by_name("module_/dependency_op")


def test_an_unused_input_is_pruned_away():
    spec = hub.create_module_spec(unused_input_fn)

    @function.Defun()
    def computation(x):
        TPUReplicateContext().Enter()
        m = hub.Module(spec, name="module_", trainable=True)
        return m({"x": tf.cast(x, tf.int64), "unused": tf.constant(2, tf.int64)})

    with tf.Graph().as_default(), tf1.Session() as session:
        assert session.run(computation(5)) == 25


def test_a_module_with_collections_is_refused_inside_a_tpu_function():
    """As tensorflow_hub 0.15: assets, TF1 control flow or update ops cannot be applied inside the function."""
    from registry.adapters.tf1_hub.errors import FunctionApplyError
    from tests.conftest import REFERENCE_DIR

    spec = hub.load_module_spec(str(REFERENCE_DIR / "tf1_text_embedding"))

    @function.Defun(tf.string)
    def computation(sentences):
        TPUReplicateContext().Enter()
        return hub.Module(spec, name="module_")(sentences)

    with tf.Graph().as_default(), pytest.raises(FunctionApplyError, match=r"asset_filepaths"):
        computation(tf.constant(["a cat"]))


def test_outside_a_tpu_context_state_stays_where_the_module_is_built():
    """Without the TPU context, as tensorflow_hub 0.15: the module is built where it is created."""
    spec = hub.create_module_spec(variable_with_input_fn)
    with tf.Graph().as_default() as graph:
        hub.Module(spec, name="plain")
        assert [v.op.name for v in graph.get_collection("variables")] == ["plain/rv", "plain/unused"]


@pytest.mark.skipif(tf1_behaviour(), reason="this is the run under disable_v2_behavior")
def test_the_same_tests_pass_under_disable_v2_behavior():
    env = dict(os.environ, **{TF1_BEHAVIOUR_ENV: "1"})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::UserWarning", __file__],
        check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "9 passed, 1 skipped" in result.stdout.strip().splitlines()[-1]


def test_this_process_runs_in_the_behaviour_it_was_asked_for():
    assert tf.executing_eagerly() is not tf1_behaviour()
    assert np.float32  # numpy imported for the session values' types
