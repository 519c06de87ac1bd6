"""Structures the TF1 Hub format allows beyond the shared fixtures, made by the reference stack at test time.

The reference stack (TF 2.15 + tensorflow_hub 0.15) creates modules with
partitioned variables, sparse inputs and outputs, tables without asset files,
three graph variants and signatures without a ``default`` output, and records
what ``hub.Module`` computes on them. This project must load each one and
compute the same.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import registry
from registry.adapters.tf1_hub.adapter import TF1HubAdapter
from tests import refstack
from tests.tf1_support import initialize, load_arrays

tf1 = tf.compat.v1

MAKE_MODULES = r"""
import os, sys
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
tf1 = tf.compat.v1
OUT = sys.argv[1]

def partitioned_fn():
    ids = tf1.placeholder(tf.int64, [None])
    emb = tf1.get_variable("emb", [10, 4], partitioner=tf1.fixed_size_partitioner(3),
                           initializer=tf1.random_normal_initializer(seed=1))
    x = tf1.placeholder(tf.float32, [None, 6])
    kernel = tf1.get_variable("dense/kernel", [6, 5], partitioner=tf1.fixed_size_partitioner(2),
                              initializer=tf1.random_normal_initializer(seed=2))
    hub.add_signature(inputs=ids, outputs=tf1.nn.embedding_lookup(emb, ids))
    hub.add_signature("project", inputs={"x": x}, outputs={"y": tf.matmul(x, kernel)})

def sparse_fn():
    ids = tf1.sparse_placeholder(tf.int64, shape=[None, None])
    emb = tf1.get_variable("emb", [8, 3], initializer=tf1.random_normal_initializer(seed=3))
    pooled = tf1.nn.embedding_lookup_sparse(emb, ids, None, combiner="mean")
    doubled = tf.SparseTensor(ids.indices, ids.values * 2, ids.dense_shape)
    hub.add_signature(inputs=ids, outputs={"default": pooled, "doubled": doubled})

def table_fn():
    words = tf1.placeholder(tf.string, [None])
    static = tf1.lookup.StaticHashTable(
        tf1.lookup.KeyValueTensorInitializer(["a", "b", "c"], tf.constant([10, 20, 30], tf.int64)), -1)
    buckets = tf1.lookup.StaticVocabularyTable(
        tf1.lookup.KeyValueTensorInitializer(["x", "y"], tf.constant([0, 1], tf.int64)), num_oov_buckets=3)
    hub.add_signature(inputs={"words": words},
                      outputs={"static": static.lookup(words), "buckets": buckets.lookup(words)})

def variants_fn(scale):
    x = tf1.placeholder(tf.float32, [None, 3])
    w = tf1.get_variable("w", [3, 2], initializer=tf1.random_normal_initializer(seed=4))
    hub.add_signature(inputs=x, outputs=tf.matmul(x, w) * scale)

def no_default_fn():
    a = tf1.placeholder(tf.float32, [None, 2])
    b = tf1.placeholder(tf.float32, [None, 2])
    v = tf1.get_variable("v", [2], initializer=tf1.constant_initializer([0.5, -1.0]))
    hub.add_signature(inputs={"a": a, "b": b}, outputs={"sum": a + b + v, "product": a * b * v})
    hub.add_signature("mix", inputs={"a": a}, outputs={"scaled": a * v})

DENSE = lambda a: a
rng = np.random.RandomState(5)
SPARSE = tf1.SparseTensorValue(indices=np.array([[0, 0], [0, 1], [2, 0]], np.int64),
                               values=np.array([1, 7, 3], np.int64), dense_shape=np.array([3, 2], np.int64))
MODULES = {
    "partitioned": (partitioned_fn, None, {
        "default": {"default": np.array([0, 3, 4, 9], np.int64)},
        "project": {"x": rng.rand(2, 6).astype(np.float32)}}),
    "sparse": (sparse_fn, None, {"default": {"default": SPARSE}}),
    "tables": (table_fn, None, {"default": {"words": np.array(["a", "c", "x", "zz", "y"])}}),
    "variants": (variants_fn, [(set(), {"scale": 1.0}), ({"train"}, {"scale": 2.0}),
                               ({"serve", "gpu"}, {"scale": 3.0})],
                 {"default": {"default": rng.rand(4, 3).astype(np.float32)}}),
    "no_default": (no_default_fn, None, {
        "default": {"a": rng.rand(2, 2).astype(np.float32), "b": rng.rand(2, 2).astype(np.float32)},
        "mix": {"a": rng.rand(3, 2).astype(np.float32)}}),
}

for name, (fn, tags_and_args, feeds) in MODULES.items():
    path = os.path.join(OUT, name)
    spec = hub.create_module_spec(fn, tags_and_args=tags_and_args)
    with tf.Graph().as_default():
        m = hub.Module(spec)
        with tf1.Session() as s:
            s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
            m.export(path, s)
    record = {}
    for sig, inputs in feeds.items():
        for k, v in inputs.items():
            if isinstance(v, tf1.SparseTensorValue):
                for part in ("indices", "values", "dense_shape"):
                    record[f"in|{sig}|{k}|{part}"] = getattr(v, part)
            else:
                record[f"in|{sig}|{k}"] = v
    for tags in hub.load_module_spec(path).get_tags():
        label = ",".join(sorted(tags)) or "-"
        with tf.Graph().as_default():
            m = hub.Module(path, tags=set(tags))
            fetches = {}
            for sig, inputs in feeds.items():
                feed = {k: (tf.SparseTensor(*v) if isinstance(v, tf1.SparseTensorValue) else tf.constant(v))
                        for k, v in inputs.items()}
                for out, t in m(feed, signature=sig, as_dict=True).items():
                    fetches[f"out|{label}|{sig}|{out}"] = t
            with tf1.Session() as s:
                s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
                for key, value in s.run(fetches).items():
                    if isinstance(value, tf1.SparseTensorValue):
                        for part in ("indices", "values", "dense_shape"):
                            record[f"{key}|{part}"] = getattr(value, part)
                    else:
                        record[key] = value
    np.savez(os.path.join(OUT, name + ".npz"), **record)
print("made", sorted(MODULES))
"""

NAMES = ["partitioned", "sparse", "tables", "variants", "no_default"]


@pytest.fixture(scope="module")
def reference_modules(tmp_path_factory):
    out = tmp_path_factory.mktemp("refstack-modules")
    refstack.run_script(MAKE_MODULES, out)
    return out


def _inputs(record):
    inputs: dict[str, dict] = {}
    for key, value in record.items():
        parts = key.split("|")
        if parts[0] != "in":
            continue
        _, sig, name, *part = parts
        if part:
            inputs.setdefault(sig, {}).setdefault(name, {})[part[0]] = value
        else:
            inputs.setdefault(sig, {})[name] = value
    return {sig: {name: tf.SparseTensor(**v) if isinstance(v, dict) else tf.constant(v)
                  for name, v in arrays.items()} for sig, arrays in inputs.items()}


def _outputs_here(path, tags, record):
    with tf.Graph().as_default():
        module = registry.Module(str(path), tags=tags)
        fetches = {}
        for sig, feed in _inputs(record).items():
            for out, tensor in module(feed, signature=sig, as_dict=True).items():
                fetches[(sig, out)] = tensor
        with tf1.Session() as session:
            initialize(session)
            return session.run(fetches)


@pytest.mark.parametrize("name", NAMES)
def test_module_made_by_the_reference_stack_computes_the_same_here(reference_modules, name):
    path = reference_modules / name
    record = load_arrays(reference_modules / f"{name}.npz")
    labels = sorted({key.split("|")[1] for key in record if key.startswith("out|")})
    assert [sorted(t) for t in registry.load_module_spec(str(path)).get_tags()] == \
        sorted([[] if label == "-" else label.split(",") for label in labels], key=lambda t: (len(t), t))
    for label in labels:
        tags = set() if label == "-" else set(label.split(","))
        got = _outputs_here(path, tags, record)
        for (sig, out), value in got.items():
            prefix = f"out|{label}|{sig}|{out}"
            if isinstance(value, tf1.SparseTensorValue):
                for part in ("indices", "values", "dense_shape"):
                    np.testing.assert_array_equal(getattr(value, part), record[f"{prefix}|{part}"])
            else:
                np.testing.assert_allclose(value, record[prefix], atol=1e-5, err_msg=prefix)
        assert len(got) == len({k.rsplit("|", 1)[0] if k.endswith(("|indices", "|values", "|dense_shape")) else k
                                for k in record if k.startswith(f"out|{label}|")})


def test_partitioned_variables_map_to_their_slices(reference_modules):
    with tf.Graph().as_default():
        module = registry.Module(str(reference_modules / "partitioned"))
        assert set(module.variable_map) == {"emb", "dense/kernel"}
        assert [v.shape.as_list() for v in module.variable_map["emb"]] == [[4, 4], [3, 4], [3, 4]]
        assert len(module.variables) == 5


def test_sparse_signatures_are_described_and_type_checked(reference_modules):
    info = TF1HubAdapter().inspect(reference_modules / "sparse")
    (signature,) = info.signatures
    assert signature.inputs["default"].kind == "sparse" and signature.inputs["default"].dtype == "int64"
    assert signature.outputs["doubled"].kind == "sparse"
    with tf.Graph().as_default():
        module = registry.Module(str(reference_modules / "sparse"))
        with pytest.raises(TypeError, match="must be a tf.SparseTensor"):
            module(tf.constant([[1, 2]], tf.int64))


def test_a_signature_without_default_output_needs_as_dict(reference_modules):
    with tf.Graph().as_default():
        module = registry.Module(str(reference_modules / "no_default"))
        a = tf1.placeholder(tf.float32, [None, 2])
        with pytest.raises(registry.SignatureError, match="as_dict=True"):
            module({"a": a, "b": a})
        with pytest.raises(TypeError, match=r"missing \[.b.\]"):
            module({"a": a}, as_dict=True)
        with pytest.raises(TypeError, match="dtype int32"):
            module({"a": a, "b": tf.constant([[1, 2]])}, as_dict=True)


def test_three_graph_variants_and_a_clear_error_for_others(reference_modules):
    info = TF1HubAdapter().inspect(reference_modules / "variants")
    assert sorted(map(sorted, info.tag_sets)) == [[], ["gpu", "serve"], ["train"]]
    assert len(info.signatures) == 3
    with tf.Graph().as_default():
        with pytest.raises(registry.SignatureError, match=r"variants are: set\(\), \{'train'\}, \{'gpu', 'serve'\}"):
            registry.Module(str(reference_modules / "variants"), tags={"serve"})


MAKE_RAGGED = r"""
import sys, tensorflow as tf, tensorflow_hub as hub
tf1 = tf.compat.v1
def fn():
    rt = tf1.ragged.placeholder(tf.float32, ragged_rank=1, value_shape=[])
    v = tf1.get_variable("v", [], initializer=tf1.constant_initializer(2.0))
    hub.add_signature(inputs=rt, outputs={"default": tf.reduce_sum(rt, axis=1) * v, "ragged": rt * v})
spec = hub.create_module_spec(fn)
with tf.Graph().as_default():
    m = hub.Module(spec)
    with tf1.Session() as s:
        s.run(tf1.global_variables_initializer())
        m.export(sys.argv[1], s)
"""


def test_ragged_signature_made_by_the_reference_stack(tmp_path):
    refstack.run_script(MAKE_RAGGED, tmp_path / "ragged")
    with tf.Graph().as_default():
        module = registry.Module(str(tmp_path / "ragged"))
        assert module.get_input_info_dict()["default"].kind == "ragged"
        outputs = module(tf.ragged.constant([[1.0, 2.0], [3.0]]), as_dict=True)
        with tf1.Session() as session:
            initialize(session)
            got = session.run(outputs)
    assert got["default"].tolist() == [6.0, 6.0]
    assert got["ragged"].to_list() == [[2.0, 4.0], [6.0]]
