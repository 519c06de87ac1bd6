"""Inspecting a TF2 SavedModel without TensorFlow records exactly what restoring it with TensorFlow did.

The adapter reads tags, signatures, the ``__call__`` signature and the reusable
API's list lengths from ``saved_model.pb`` through ``registry.adapters.saved_model_schema``
(no TensorFlow import, so publishing a large model stays small). The oracle
here is the inspection it replaced, kept verbatim: ``tf.saved_model.load`` with
the checkpoint skipped, then the restored object's concrete functions and lists.
Every model below — tf.Module variants, Keras 3 and tf_keras exports, fine-tuned
KerasLayers, the reference and bench models — must give the same ArtifactInfo,
down to the order of inputs, outputs and metadata keys. Models the reader leaves
to TensorFlow (``Unsupported``) must still give the oracle's answer, through it.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from registry.adapters import saved_model_schema as schema
from registry.adapters.saved_model_file import read_saved_model
from registry.adapters.tf2_saved_model import signatures as sigs
from registry.adapters.tf2_saved_model.adapter import TF2SavedModelAdapter
from registry.adapters.tf2_saved_model.export import save_reusable
from registry.adapter import ArtifactInfo, SignatureInfo, TensorInfo
from tests import keras_models
from tests.conftest import REFERENCE_DIR

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- the oracle (the former inspection)

def _oracle_spec_to_info(spec) -> TensorInfo:
    if isinstance(spec, tf.SparseTensorSpec):
        kind = "sparse"
    elif isinstance(spec, tf.RaggedTensorSpec):
        kind = "ragged"
    else:
        kind = "dense"
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorInfo(dtype=spec.dtype.name, shape=shape, kind=kind)


def _oracle_tensor_info(info) -> TensorInfo:
    dtype = tf.dtypes.as_dtype(info.dtype).name
    kind = "sparse" if info.WhichOneof("encoding") == "coo_sparse" else (
        "ragged" if info.WhichOneof("encoding") == "composite_tensor" else "dense")
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(None if d.size < 0 else d.size for d in shape.dim)
    return TensorInfo(dtype=dtype, shape=dims, kind=kind)


def _oracle_call_signature(obj):
    call = getattr(obj, "__call__", None)
    concrete = list(getattr(call, "concrete_functions", []) or [])
    if not concrete:
        return None, False
    concrete.sort(key=lambda f: ("training" in f.structured_input_signature[1]
                                 and f.structured_input_signature[1]["training"] is not False))
    fn = concrete[0]
    takes_training = any("training" in f.structured_input_signature[1] or
                         len(f.structured_input_signature[0]) > 1 for f in concrete)
    args, kwargs = fn.structured_input_signature
    inputs = {}
    flat_args = [a for a in args if isinstance(a, tf.TypeSpec)]
    if len(flat_args) == 1 and not kwargs:
        inputs[getattr(flat_args[0], "name", None) or "inputs"] = _oracle_spec_to_info(flat_args[0])
    else:
        for i, spec in enumerate(args):
            if isinstance(spec, dict):
                inputs.update({k: _oracle_spec_to_info(v) for k, v in spec.items() if isinstance(v, tf.TypeSpec)})
            elif isinstance(spec, tf.TypeSpec):
                inputs[getattr(spec, "name", None) or f"input_{i}"] = _oracle_spec_to_info(spec)
        for k, v in kwargs.items():
            if isinstance(v, tf.TypeSpec):
                inputs[k] = _oracle_spec_to_info(v)
    structured = fn.structured_outputs

    def as_info(v):
        return _oracle_spec_to_info(v if isinstance(v, tf.TypeSpec) else tf.type_spec_from_value(v))

    if isinstance(structured, dict):
        outputs = {k: as_info(v) for k, v in structured.items()}
    elif isinstance(structured, (tf.Tensor, tf.SparseTensor, tf.RaggedTensor, tf.TypeSpec)):
        outputs = {"default": as_info(structured)}
    else:
        outputs = {}
    return SignatureInfo(name="__call__", inputs=inputs, outputs=outputs), takes_training


def oracle(path: Path) -> ArtifactInfo:
    """The adapter's ``inspect`` as it was: TensorFlow's protos, and the object restored without its weights."""
    proto = read_saved_model(path)
    signatures, tag_sets = [], []
    for meta_graph in proto.meta_graphs:
        tags = frozenset(t for t in meta_graph.meta_info_def.tags if t != "serve")
        tag_sets.append(tags)
        for name in sorted(meta_graph.signature_def):
            sig = meta_graph.signature_def[name]
            if name.startswith("__"):
                continue
            signatures.append(SignatureInfo(
                name=name, tags=tags,
                inputs={k: _oracle_tensor_info(v) for k, v in sorted(sig.inputs.items())},
                outputs={k: _oracle_tensor_info(v) for k, v in sorted(sig.outputs.items())}))
    details = {}
    obj = tf.saved_model.load(str(path), options=tf.saved_model.LoadOptions(experimental_skip_checkpoint=True))
    signature, takes_training = _oracle_call_signature(obj)
    if signature is not None:
        signatures.append(signature)
        details["reusable_api"] = {
            "__call__": True,
            "variables": len(getattr(obj, "variables", []) or []),
            "trainable_variables": len(getattr(obj, "trainable_variables", []) or []),
            "regularization_losses": len(getattr(obj, "regularization_losses", []) or []),
            "has_variables": hasattr(obj, "variables"),
            "has_trainable_variables": hasattr(obj, "trainable_variables"),
            "has_regularization_losses": hasattr(obj, "regularization_losses"),
        }
        details["call_accepts_training"] = takes_training
    return ArtifactInfo(format="tf2_saved_model", tag_sets=tuple(tag_sets) or (frozenset(),),
                        signatures=tuple(signatures), metadata=details)


def ordered(info: ArtifactInfo):
    """ArtifactInfo as nested lists, so that comparing also compares the order of every dict (as JSON keeps it)."""
    return [info.format, [sorted(t) for t in info.tag_sets],
            [[s.name, sorted(s.tags), [[k, v.to_json()] for k, v in s.inputs.items()],
              [[k, v.to_json()] for k, v in s.outputs.items()]] for s in info.signatures],
            json.dumps(info.metadata)]


def outcome(inspect, path):
    try:
        return ordered(inspect(path))
    except Exception as error:  # the oracle's failures must be the reader's failures
        return f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------- models

F32 = tf.float32


def _module(call, **attributes):
    root = tf.Module()
    for name, value in attributes.items():
        setattr(root, name, value)
    root.__call__ = call
    return root


def one_named_arg(path):
    w = tf.Variable(2.0)
    call = tf.function(lambda x: x * w, input_signature=[tf.TensorSpec([None, 3], F32, name="features")])
    tf.saved_model.save(_module(call, w=w), str(path))


def one_unnamed_arg(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], F32)])
        def __call__(self, x):
            return {"y": x + 1.0, "z": tf.reduce_sum(x, axis=1)}

    tf.saved_model.save(M(), str(path))


def several_args_tuple_output(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="a"), tf.TensorSpec([None], tf.int64),
                                      tf.TensorSpec(None, tf.string, name="s")])
        def __call__(self, a, b, s):
            return a + b, a * b

    tf.saved_model.save(M(), str(path))


def scalar_unknown_rank_and_bool(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.float64, name="t"), tf.TensorSpec(None, tf.bool)])
        def __call__(self, t, flag):
            return tf.where(flag, t, -t)

    tf.saved_model.save(M(), str(path))


def training_flags_and_kwargs(path):
    keras_models.save_normalizing(path)


def dict_in_dict_out(path):
    keras_models.save_dict_model(path)


def training_true_traced_first(path):
    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable([1.0, 2.0])

        @tf.function
        def __call__(self, x, training=None):
            return x * self.w if training else x

    model = M()
    spec = tf.TensorSpec([None, 2], F32, name="x")
    for training in (True, None, False):
        model.__call__.get_concrete_function(spec, training=training)
    tf.saved_model.save(model, str(path))


def training_positional(path):
    class M(tf.Module):
        @tf.function
        def __call__(self, x, training):
            return x * 2.0 if training else x

    model = M()
    model.__call__.get_concrete_function(tf.TensorSpec([None, 2], F32), True)
    model.__call__.get_concrete_function(tf.TensorSpec([None, 2], F32), False)
    tf.saved_model.save(model, str(path))


def python_values_in_the_signature(path):
    class M(tf.Module):
        @tf.function
        def __call__(self, x, n, *, scale, name="s"):
            return x * float(n) * scale

    model = M()
    model.__call__.get_concrete_function(tf.TensorSpec([None], F32, name="x"), 3, scale=tf.TensorSpec([], F32))
    model.__call__.get_concrete_function(tf.TensorSpec([None], F32, name="x"), 4, scale=0.5, name="t")
    tf.saved_model.save(model, str(path))


def list_and_namedtuple_args(path):
    pair = collections.namedtuple("Pair", ["left", "right"])

    class M(tf.Module):
        @tf.function(input_signature=[[tf.TensorSpec([2], F32), tf.TensorSpec([2], F32)],
                                      pair(tf.TensorSpec([2], F32), tf.TensorSpec([2], F32))])
        def __call__(self, xs, p):
            return [xs[0] + p.left, xs[1] + p.right]

    tf.saved_model.save(M(), str(path))


def sparse_in_sparse_out(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.SparseTensorSpec([None, 4], F32)])
        def __call__(self, x):
            return tf.sparse.map_values(tf.multiply, x, 2.0)

    tf.saved_model.save(M(), str(path))


class _Ragged(tf.Module):
    @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1,
                                                      row_splits_dtype=tf.int32)])
    def __call__(self, x):
        return x * 2


def ragged_in_ragged_out(path):
    tf.saved_model.save(_Ragged(), str(path), signatures={})  # no serving signature: see the next one


def ragged_serving_signature(path):
    # The automatic serving signature records the ragged input with dtype DT_INVALID, which the former
    # inspection could not name (TypeError): the reader leaves it to TensorFlow, which fails as before.
    tf.saved_model.save(_Ragged(), str(path))


def ragged_and_sparse_kwargs(path):
    class M(tf.Module):
        @tf.function
        def __call__(self, dense, ragged=None, sparse=None):
            return {"sum": tf.reduce_sum(dense) + tf.cast(tf.reduce_sum(ragged), F32)
                    + tf.sparse.reduce_sum(sparse), "ragged": ragged}

    model = M()
    model.__call__.get_concrete_function(tf.TensorSpec([None, 2], F32),
                                         ragged=tf.RaggedTensorSpec([None, None, 3], tf.int64, ragged_rank=1),
                                         sparse=tf.SparseTensorSpec(None, F32))
    tf.saved_model.save(model, str(path))


def bounded_spec(path):
    from tensorflow.python.framework.tensor import BoundedTensorSpec

    class M(tf.Module):
        @tf.function(input_signature=[BoundedTensorSpec([None, 2], F32, 0.0, 1.0, name="unit")])
        def __call__(self, x):
            return 1.0 - x

    tf.saved_model.save(M(), str(path))


def lists_tuples_and_dicts_as_the_api(path):
    v1, v2, v3 = tf.Variable(1.0), tf.Variable(2.0), tf.Variable(3.0, trainable=False)
    root = tf.__internal__.tracking.AutoTrackable()
    root.__call__ = tf.function(lambda x: x * v1 + v2 + v3, input_signature=[tf.TensorSpec([], F32)])
    root.variables = (v1, v2, v3)
    root.trainable_variables = {"a": v1, "b": v2}
    root.regularization_losses = []
    tf.saved_model.save(root, str(path))


def signatures_only(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], F32, name="x")])
        def serve(self, x):
            return {"y": 2.0 * x}

    model = M()
    tf.saved_model.save(model, str(path), signatures={"serving_default": model.serve,
                                                      "other": model.serve.get_concrete_function()})


def bare_concrete_call(path):
    root = tf.Module()
    root.__call__ = tf.function(lambda x: x + 1.0).get_concrete_function(tf.TensorSpec([3], F32, name="x"))
    tf.saved_model.save(root, str(path))


def call_never_traced_with_a_list_of_functions(path):
    root = tf.__internal__.tracking.AutoTrackable()
    root.__call__ = tf.function(lambda x: x, input_signature=[tf.TensorSpec([None], tf.uint8)])
    root.regularization_losses = [tf.function(lambda: tf.constant(0.5), input_signature=[])]
    root.variables = []
    tf.saved_model.save(root, str(path))


def keras3_sequential(path):
    import keras

    model = keras.Sequential([keras.Input((4,), name="features"),
                              keras.layers.Dense(3, kernel_regularizer="l2"),
                              keras.layers.Dropout(0.2), keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    save_reusable(model, path)


def keras3_functional_dict(path):
    import keras

    inputs = {"a": keras.Input((2,), name="a"), "b": keras.Input((3,), name="b", dtype="int32")}
    merged = keras.layers.Concatenate()([inputs["a"], keras.ops.cast(inputs["b"], "float32")])
    save_reusable(keras.Model(inputs, keras.layers.Dense(1)(merged)), path)


def keras3_export(path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.export(str(path), verbose=False)


def keras3_saved_directly(path):
    import keras

    tf.saved_model.save(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), str(path))


def several_traces_no_signature(path):
    class M(tf.Module):
        @tf.function
        def __call__(self, x):
            return tf.reduce_sum(x, axis=-1)

    model = M()
    for shape, dtype in (([None, 2], F32), ([None, 5], tf.float64), ([3], tf.int32)):
        model.__call__.get_concrete_function(tf.TensorSpec(shape, dtype))
    tf.saved_model.save(model, str(path))


def tf_keras_reusable(path):
    import tf_keras

    model = tf_keras.Sequential([tf_keras.Input((4,)),
                                 tf_keras.layers.Dense(3, kernel_regularizer=tf_keras.regularizers.l2(0.01)),
                                 tf_keras.layers.Dropout(0.1), tf_keras.layers.Dense(1)])
    save_reusable(model, path)


def tf_keras_saved_model(path):
    import tf_keras

    inputs = tf_keras.Input((5,), name="values")
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, activity_regularizer="l1")(inputs))
    model.save(str(path), save_format="tf")


def keras_layer_fine_tuned(path):
    import keras

    from registry.keras.layer import KerasLayer

    layer = KerasLayer(str(REFERENCE_DIR / "tf2_image_feature_vector"), trainable=True)
    model = keras.Sequential([keras.Input((32, 32, 3)), layer, keras.layers.Dense(3)])
    model(np.zeros((1, 32, 32, 3), np.float32))
    save_reusable(layer, path)


def keras_model_with_a_keras_layer(path):
    import keras

    from registry.keras.layer import KerasLayer

    layer = KerasLayer(str(REFERENCE_DIR / "tf2_text_embedding"), trainable=True)
    model = keras.Sequential([keras.Input((), dtype="string"), layer, keras.layers.Dense(2)])
    save_reusable(model, path)


def tf_keras_layer_eager(path):
    from registry.keras.tf_keras import KerasLayer

    layer = KerasLayer(str(keras_models.save_normalizing(path.parent / f"{path.name}-src")), trainable=True)
    layer(np.zeros((2, keras_models.FEATURES), np.float32))
    save_reusable(layer, path)


def restored_then_saved(path):
    save_reusable(tf.saved_model.load(str(REFERENCE_DIR / "tf2_text_embedding")), path)


def _bench(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def bench_load_model(path):
    _bench("bench_load").generated_model(path, layers=3, width=8)


def bench_fetch_model(path):
    _bench("bench_fetch").make_model(path, 1)


# Left to TensorFlow: the reader raises Unsupported and the adapter restores the object instead.

def _tf1_saved_model(path, *extra_tags):
    with tf.Graph().as_default():
        x = tf.compat.v1.placeholder(F32, [None, 2], name="x")
        y = tf.matmul(x, tf.compat.v1.get_variable("w", [2, 1]))
        builder = tf.compat.v1.saved_model.Builder(str(path))
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"serving_default": signature})
            if extra_tags:
                builder.add_meta_graph(["serve", *extra_tags])
        builder.save()


def tf1_saved_model(path):
    _tf1_saved_model(path)  # restored through load_v1_in_v2: no __call__


def tf1_two_meta_graphs(path):
    _tf1_saved_model(path, "gpu")  # which tf.saved_model.load refuses without tags=


def python_value_output(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], F32, name="x")])
        def __call__(self, x):
            return {"y": x, "version": 3}  # traced as a constant tensor

    tf.saved_model.save(M(), str(path))


def none_in_output_dict(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], F32, name="x")])
        def __call__(self, x):
            return {"y": x, "nothing": None}

    tf.saved_model.save(M(), str(path))


def nested_dict_output(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], F32, name="x")])
        def __call__(self, x):
            return {"outer": {"inner": x}}

    tf.saved_model.save(M(), str(path))


def indexed_slices_input(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.IndexedSlicesSpec([None, 4], F32)])
        def __call__(self, slices):
            return slices.values

    tf.saved_model.save(M(), str(path))


def dataset_input(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.data.DatasetSpec(tf.TensorSpec([], tf.int64))])
        def __call__(self, dataset):
            return dataset.reduce(tf.constant(0, tf.int64), lambda total, x: total + x)

    tf.saved_model.save(M(), str(path))


def ragged_rank_two_output(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], F32, name="x")])
        def __call__(self, x):
            return tf.RaggedTensor.from_uniform_row_length(tf.RaggedTensor.from_tensor(x), 1)

    tf.saved_model.save(M(), str(path), signatures={})


READ_WITHOUT_TENSORFLOW = [
    one_named_arg, one_unnamed_arg, several_args_tuple_output, scalar_unknown_rank_and_bool, training_flags_and_kwargs,
    dict_in_dict_out, training_true_traced_first, training_positional, python_values_in_the_signature,
    list_and_namedtuple_args, sparse_in_sparse_out, ragged_in_ragged_out, ragged_and_sparse_kwargs, bounded_spec,
    lists_tuples_and_dicts_as_the_api, signatures_only, bare_concrete_call, call_never_traced_with_a_list_of_functions,
    several_traces_no_signature, python_value_output, ragged_rank_two_output,
    keras3_sequential, keras3_functional_dict, keras3_export, keras3_saved_directly, tf_keras_reusable,
    tf_keras_saved_model, keras_layer_fine_tuned, keras_model_with_a_keras_layer, tf_keras_layer_eager,
    restored_then_saved, bench_load_model, bench_fetch_model,
]
LEFT_TO_TENSORFLOW = [tf1_saved_model, tf1_two_meta_graphs, ragged_serving_signature, none_in_output_dict,
                      nested_dict_output, indexed_slices_input, dataset_input]
REFERENCE_MODELS = ["tf2_image_feature_vector", "tf2_text_embedding"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Build each model once, on first use."""
    root = tmp_path_factory.mktemp("tf2-inspection")
    built: dict[str, Path] = {name: REFERENCE_DIR / name for name in REFERENCE_MODELS}

    def get(name: str) -> Path:
        if name not in built:
            path = root / name
            globals()[name](path)
            built[name] = path
        return built[name]

    return get


def _reader_path(path):
    """What the TF-free reader makes of ``path`` (``Unsupported`` propagates)."""
    proto = read_saved_model(path, message_class=schema.SavedModel)
    for meta_graph in proto.meta_graphs:
        sigs.signature_defs(meta_graph)
    return sigs.read_call(proto)


def _inspect_without_tensorflow(monkeypatch):
    def refuse(self, path):
        raise AssertionError(f"{path} was inspected through TensorFlow")

    monkeypatch.setattr(TF2SavedModelAdapter, "_inspect_with_tensorflow", refuse)
    return TF2SavedModelAdapter().inspect


@pytest.mark.parametrize("name", REFERENCE_MODELS + [f.__name__ for f in READ_WITHOUT_TENSORFLOW])
def test_the_reader_records_what_restoring_the_object_recorded(models, name, monkeypatch):
    path = models(name)
    expected = outcome(oracle, path)
    assert not isinstance(expected, str), expected  # these models inspect without error
    assert outcome(_inspect_without_tensorflow(monkeypatch), path) == expected


@pytest.mark.parametrize("name", [f.__name__ for f in LEFT_TO_TENSORFLOW])
def test_what_the_reader_leaves_to_tensorflow_is_recorded_as_before(models, name):
    path = models(name)
    with pytest.raises(sigs.Unsupported):
        _reader_path(path)
    assert outcome(TF2SavedModelAdapter().inspect, path) == outcome(oracle, path)


def test_the_models_cover_what_the_reader_interprets(models):
    """A guard on the lists above: each shape of trace and object the reader handles is really exercised."""
    seen = collections.Counter()
    for build in READ_WITHOUT_TENSORFLOW:
        signature, takes_training, api = _reader_path(models(build.__name__))
        seen["call"] += signature is not None
        seen["training"] += takes_training
        seen["no call"] += signature is None
        if signature is not None:
            kinds = {info.kind for info in [*signature.inputs.values(), *signature.outputs.values()]}
            seen.update(kinds)
            seen["no outputs"] += not signature.outputs
            seen["absent lists"] += not all(api[f"has_{n}"] for n in sigs.REUSABLE_LISTS)
    assert all(seen[k] for k in ("call", "training", "no call", "dense", "sparse", "ragged", "no outputs",
                                 "absent lists")), seen


def _value(**kind):
    return schema.StructuredValue(**kind)


def _composite(type_spec_class, *state):
    return _value(type_spec_value={"type_spec_class": type_spec_class,
                                   "type_state": _value(tuple_value={"values": list(state)})})


SHAPE = _value(tensor_shape_value={"dim": [{"size": -1}, {"size": -1}]})
FLOAT, INT64 = _value(tensor_dtype_value=1), _value(tensor_dtype_value=9)


@pytest.mark.parametrize("value", [
    _composite(3, SHAPE, FLOAT, _value(int64_value=1), INT64, _value(tensor_spec_value={"dtype": 1})),
    _composite(3, SHAPE, FLOAT, _value(int64_value=2), INT64),  # ragged_rank >= rank
    _composite(3, SHAPE, FLOAT, _value(none_value={}), INT64),  # ragged_rank to infer
    _composite(1, SHAPE),  # a sparse state without its dtype
    _composite(12, SHAPE, FLOAT),  # a registered TypeSpec class
    _value(tensor_spec_value={"dtype": 0}),  # DT_INVALID
    _value(tensor_value={}),
    _value(),
], ids=["flat_values_spec", "ragged_rank", "inferred_ragged_rank", "sparse_arity", "registered", "dt_invalid",
        "tensor", "unset"])
def test_decoding_leaves_to_tensorflow_what_it_would_validate_or_convert(value):
    with pytest.raises(sigs.Unsupported):
        sigs.decode(value)


def test_decoding_composite_specs():
    assert sigs.decode(_composite(3, SHAPE, FLOAT, _value(int64_value=1), INT64)) == \
        sigs.Spec(kind="ragged", dtype="float32", shape=(None, None))
    assert sigs.decode(_composite(1, _value(tensor_shape_value={"unknown_rank": True}), INT64)) == \
        sigs.Spec(kind="sparse", dtype="int64", shape=None)


# --------------------------------------------------------------------------- the schema against TensorFlow's

def _check_against(mine, theirs, seen):
    if mine.full_name in seen:
        return
    seen.add(mine.full_name)
    assert mine.name == theirs.name or mine.name == "ObjectReference"
    assert mine.GetOptions().map_entry == theirs.GetOptions().map_entry
    for field in mine.fields:
        other = theirs.fields_by_name[field.name]
        where = f"{mine.full_name}.{field.name}"
        assert (field.number, field.type, field.is_repeated) == (other.number, other.type, other.is_repeated), where
        assert (field.containing_oneof and field.containing_oneof.name) == (
            other.containing_oneof and other.containing_oneof.name), where
        if field.message_type is not None:
            assert field.message_type.name == other.message_type.name or field.message_type.name == "ObjectReference"
            _check_against(field.message_type, other.message_type, seen)
        if field.enum_type is not None:
            values = {v.name: v.number for v in field.enum_type.values}
            assert values.items() <= {v.name: v.number for v in other.enum_type.values}.items(), where


def test_the_schema_has_tensorflows_field_numbers_and_types():
    from tensorflow.core.protobuf import saved_model_pb2

    seen: set[str] = set()
    _check_against(schema.SavedModel.DESCRIPTOR, saved_model_pb2.SavedModel.DESCRIPTOR, seen)
    assert {"registry_saved_model.StructuredValue", "registry_saved_model.TypeSpecProto",
            "registry_saved_model.SavedConcreteFunction", "registry_saved_model.SignatureDef"} <= seen


def test_the_schema_reads_what_tensorflow_reads(models):
    from tensorflow.core.protobuf import saved_model_pb2

    for name in ("ragged_and_sparse_kwargs", "training_flags_and_kwargs", "tf_keras_saved_model"):
        data = (models(name) / "saved_model.pb").read_bytes()
        mine = schema.SavedModel.FromString(data).meta_graphs[0]
        theirs = saved_model_pb2.SavedModel.FromString(data).meta_graphs[0]
        assert list(mine.meta_info_def.tags) == list(theirs.meta_info_def.tags)
        graph, their_graph = mine.object_graph_def, theirs.object_graph_def
        assert [(n.WhichOneof("kind"), [(c.node_id, c.local_name) for c in n.children]) for n in graph.nodes] == \
            [(n.WhichOneof("kind"), [(c.node_id, c.local_name) for c in n.children]) for n in their_graph.nodes]
        assert sorted(graph.concrete_functions) == sorted(their_graph.concrete_functions)
        for key, function in their_graph.concrete_functions.items():
            for field in ("canonicalized_input_signature", "output_signature"):
                # Every field of a StructuredValue is declared: re-encoding gives TensorFlow's own bytes.
                assert getattr(graph.concrete_functions[key], field).SerializeToString(deterministic=True) == \
                    getattr(function, field).SerializeToString(deterministic=True), (name, key, field)


def test_every_dtype_name_is_tensorflows():
    from tensorflow.core.framework import types_pb2

    for value in types_pb2.DataType.DESCRIPTOR.values:
        try:
            name = tf.dtypes.as_dtype(value.number).name
        except TypeError:
            assert value.number not in schema.DTYPE_NAMES, value.name
        else:
            assert schema.DTYPE_NAMES[value.number] == name, value.name
            assert sigs.dtype_name(value.number) == name
    with pytest.raises(sigs.Unsupported):
        sigs.dtype_name(max(types_pb2.DataType.values()) + 1)


def test_every_type_tensorflow_revives_specially_is_known():
    from tensorflow.python.saved_model import revived_types

    importlib.import_module("tf_keras.optimizers.legacy")  # tf_keras registers its optimizers' revived types

    assert set(revived_types.registered_identifiers()) <= sigs.REVIVED_IDENTIFIERS


def test_structured_values_decode_as_tensorflow_decodes_them(models):
    """Each concrete function's signatures, decoded by both, agree leaf by leaf (and in the order of dict keys)."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import nested_structure_coder

    def same(mine, theirs):
        if isinstance(mine, sigs.Spec):
            assert isinstance(theirs, tf.TypeSpec)
            assert TensorInfo(mine.dtype, mine.shape, mine.kind) == _oracle_spec_to_info(theirs)
            assert mine.name == getattr(theirs, "name", None)
        elif isinstance(mine, dict):
            assert type(theirs) is dict and list(mine) == list(theirs)
            for key in mine:
                same(mine[key], theirs[key])
        elif isinstance(mine, (list, tuple)):
            assert type(mine) is type(theirs) or mine._fields == theirs._fields  # namedtuples: a class per decode
            assert len(mine) == len(theirs)
            for a, b in zip(mine, theirs):
                same(a, b)
        elif isinstance(mine, sigs.Shape):
            assert isinstance(theirs, tf.TensorShape) and mine.dims == (None if theirs.rank is None else
                                                                        tuple(theirs.as_list()))
        elif isinstance(mine, sigs.DType):
            assert isinstance(theirs, tf.DType) and mine.name == theirs.name
        else:
            assert type(mine) is type(theirs) and mine == theirs

    for name in ("python_values_in_the_signature", "ragged_and_sparse_kwargs", "list_and_namedtuple_args",
                 "training_flags_and_kwargs", "bounded_spec", "keras3_functional_dict"):
        # Both parse the whole file: a map's iteration order depends on how it was filled (and on a
        # per-process hash seed), so only the same parse of the same bytes gives the same order.
        data = (models(name) / "saved_model.pb").read_bytes()
        graph = schema.SavedModel.FromString(data).meta_graphs[0].object_graph_def
        their_graph = saved_model_pb2.SavedModel.FromString(data).meta_graphs[0].object_graph_def
        for key, function in their_graph.concrete_functions.items():
            for field in ("canonicalized_input_signature", "output_signature"):
                same(sigs.decode(getattr(graph.concrete_functions[key], field)),
                     nested_structure_coder.decode_proto(getattr(function, field)))


# --------------------------------------------------------------------------- publishing imports no TensorFlow

def test_publishing_a_tf2_saved_model_never_imports_tensorflow(models, registry_env):
    model = models("training_flags_and_kwargs")
    code = textwrap.dedent("""
        import json, sys
        import registry
        records = [registry.publish(path, name=name) for path, name in zip(sys.argv[1:], ["pub/one", "pub/two"])]
        print(json.dumps({"tensorflow": sorted(m for m in sys.modules if m.split(".")[0] in
                                               ("tensorflow", "keras", "tf_keras")),
                          "details": [registry.get_version(r.handle).details for r in records]}))
    """)
    result = subprocess.run([sys.executable, "-c", code, str(model), str(REFERENCE_DIR / "tf2_text_embedding")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tensorflow"] == []
    for details, path in zip(report["details"], [model, REFERENCE_DIR / "tf2_text_embedding"]):
        expected = oracle(path).metadata
        assert details["reusable_api"] == expected["reusable_api"]
        assert details["call_accepts_training"] is expected["call_accepts_training"]
