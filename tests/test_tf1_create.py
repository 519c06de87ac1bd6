"""Creating TF1 Hub modules here, and loading them in the reference stack (TF 2.15 + tensorflow_hub 0.15).

The round trip is the compatibility proof: modules this project writes must
load through ``hub.Module`` there and compute what this project computes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import wrappers_pb2

import registry
from registry.adapters.tf1_hub import protos
from tests import refstack
from tests.tf1_support import apply_to_inputs, initialize, load_arrays, save_arrays

tf1 = tf.compat.v1
VOCAB = ["<unk>", "red", "green", "blue", "cyan"]


def dense(x, units, name, activation=None):
    """A dense layer from get_variable, as much TF1 module code wrote it."""
    with tf1.variable_scope(name):
        kernel = tf1.get_variable("kernel", [x.shape[-1], units],
                                  initializer=tf1.glorot_uniform_initializer(seed=len(name)))
        bias = tf1.get_variable("bias", [units], initializer=tf1.random_normal_initializer(seed=3))
        y = tf.matmul(x, kernel) + bias
        return activation(y) if activation else y


def make_spec(vocab_path):
    def module_fn(training=False):
        x = tf1.placeholder(tf.float32, [None, 6], name="x")
        hidden = dense(x, 8, "hidden", tf.nn.relu)
        if training:
            hidden = hidden * 0.5  # stands in for dropout: deterministic, so outputs compare
        logits = dense(hidden, 3, "logits")
        registry.add_signature(inputs=x, outputs={"default": logits, "hidden": hidden})

        words = tf1.placeholder(tf.string, [None], name="words")
        table = tf1.lookup.StaticHashTable(tf1.lookup.TextFileInitializer(
            vocab_path, tf.string, tf1.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf1.lookup.TextFileIndex.LINE_NUMBER), default_value=0)
        ids = table.lookup(words)
        registry.add_signature("ids", inputs={"words": words}, outputs={"ids": ids, "default": ids * 10})

        registry.attach_message("greeting", wrappers_pb2.StringValue(value="train" if training else "serve"))
        info = registry.ImageModuleInfo()
        info.default_image_size.height, info.default_image_size.width = 24, 16
        registry.attach_image_module_info(info)

    with tf.Graph().as_default():
        return registry.create_module_spec(module_fn, tags_and_args=[(set(), {}), ({"train"}, {"training": True})])


INPUTS = {
    "default": {"default": np.random.RandomState(0).rand(4, 6).astype(np.float32)},
    "ids": {"words": np.array(["red", "cyan", "purple", "blue"])},
}


def outputs_here(module_source, tags):
    with tf.Graph().as_default():
        module = registry.Module(module_source, tags=tags)
        fetches, feed = apply_to_inputs(module, INPUTS)
        with tf1.Session() as session:
            initialize(session)
            return {f"{s}:{o}": v for (_, s, o), v in session.run(fetches, feed).items()}


@pytest.fixture
def exported(tmp_path):
    """A module made here: dense layers, a vocabulary asset, two graph variants, attached messages."""
    vocab = tmp_path / "colors.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    spec = make_spec(str(vocab))
    spec_outputs = {frozenset(tags): outputs_here(spec, tags) for tags in (set(), {"train"})}
    with tf.Graph().as_default():
        module = registry.Module(spec, name="made_here")
        with tf1.Session() as session:
            initialize(session)
            module.export(str(tmp_path / "module"), session)
    vocab.unlink()  # the module must carry its own copy
    return spec, tmp_path / "module", spec_outputs


def test_export_writes_the_module_layout(exported):
    _, path, _ = exported
    assert sorted(p.name for p in path.iterdir()) == ["assets", "saved_model.pb", "tfhub_module.pb", "variables"]
    assert (path / "tfhub_module.pb").read_bytes() == b"\x08\x03"  # ModuleDef{format: FORMAT_V3}
    assert (path / "assets" / "colors.txt").read_text().split() == VOCAB
    assert (path / "variables" / "variables.index").is_file()


def test_exported_module_computes_what_the_spec_computed(exported):
    _, path, spec_outputs = exported
    for tags in (set(), {"train"}):
        before, after = spec_outputs[frozenset(tags)], outputs_here(str(path), tags)
        assert before.keys() == after.keys()
        for key in before:
            np.testing.assert_allclose(after[key], before[key], atol=1e-6, err_msg=f"{tags} {key}")
    assert list(after["ids:ids"]) == [1, 4, 0, 3]


def test_attached_messages_are_per_variant(exported):
    _, path, _ = exported
    spec = registry.load_module_spec(str(path))
    assert spec.get_attached_message("greeting", wrappers_pb2.StringValue).value == "serve"
    assert spec.get_attached_message("greeting", wrappers_pb2.StringValue, tags={"train"}).value == "train"
    assert registry.get_expected_image_size(spec) == [24, 16]


REFSTACK_APPLY = """
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
from google.protobuf import wrappers_pb2
tf1 = tf.compat.v1

module_dir, inputs_path, out_dir = sys.argv[1:4]
with np.load(inputs_path) as data:
    arrays = {k: data[k] for k in data.files}
report = {}
for tags in hub.load_module_spec(module_dir).get_tags():
    with tf.Graph().as_default():
        m = hub.Module(module_dir, tags=set(tags))
        fetches, feed = {}, {}
        for key, value in arrays.items():
            signature, name = key.split(":")
            dtype = tf.string if value.dtype.kind in "US" else tf.as_dtype(value.dtype)
            ph = tf1.placeholder(dtype, [None] + list(value.shape[1:]))
            feed[ph] = value.astype(object) if value.dtype.kind in "US" else value
            for out, tensor in m({name: ph}, signature=signature, as_dict=True).items():
                fetches[signature + ":" + out] = tensor
        with tf1.Session() as s:
            s.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
            results = s.run(fetches, feed)
        label = ",".join(sorted(tags)) or "default-tags"
        np.savez(f"{out_dir}/{label}.npz", **results)
        report[label] = {
            "greeting": m.get_attached_message("greeting", wrappers_pb2.StringValue).value,
            "image_size": hub.get_expected_image_size(m),
            "signatures": sorted(m.get_signature_names()),
        }
print(json.dumps(report))
"""


def test_reference_stack_loads_the_module_and_computes_the_same_outputs(exported, tmp_path):
    _, path, _ = exported
    inputs_path = tmp_path / "inputs.npz"
    save_arrays(inputs_path, {f"{s}:{n}": v for s, arrays in INPUTS.items() for n, v in arrays.items()})
    result = refstack.run_script(REFSTACK_APPLY, path, inputs_path, tmp_path)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "default-tags": {"greeting": "serve", "image_size": [24, 16], "signatures": ["default", "ids"]},
        "train": {"greeting": "train", "image_size": [24, 16], "signatures": ["default", "ids"]},
    }
    for label, tags in (("default-tags", set()), ("train", {"train"})):
        ours = outputs_here(str(path), tags)
        theirs = load_arrays(tmp_path / f"{label}.npz")
        assert theirs.keys() == ours.keys()
        for key in ours:
            np.testing.assert_allclose(theirs[key], ours[key], atol=1e-5, err_msg=f"{label} {key}")


def test_spec_export_takes_weights_from_a_training_checkpoint(tmp_path):
    def module_fn():
        x = tf1.placeholder(tf.float32, [None, 2])
        w = tf1.get_variable("w", [2, 1], initializer=tf1.zeros_initializer())
        registry.add_signature(inputs=x, outputs=tf.matmul(x, w))

    with tf.Graph().as_default():
        spec = registry.create_module_spec(module_fn)
    # A TF1 training job that kept the weights under its own scope.
    with tf.Graph().as_default():
        w = tf1.get_variable("encoder/w", initializer=tf.constant([[2.0], [3.0]]))
        saver = tf1.train.Saver([w])
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            checkpoint = saver.save(session, str(tmp_path / "ckpt" / "model"))
    spec.export(str(tmp_path / "module"), checkpoint_path=checkpoint, name_transform_fn=lambda n: "encoder/" + n)
    with tf.Graph().as_default():
        y = registry.Module(str(tmp_path / "module"))(np.array([[1.0, 1.0]], np.float32))
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            assert session.run(y).tolist() == [[5.0]]


def test_adapter_creates_a_module_directory_from_a_spec(tmp_path):
    from registry.adapters.tf1_hub.adapter import TF1HubAdapter

    def module_fn():
        x = tf1.placeholder(tf.float32, [None])
        registry.add_signature(inputs=x, outputs=x + 1.0)

    with tf.Graph().as_default():
        spec = registry.create_module_spec(module_fn)
    adapter = TF1HubAdapter()
    assert adapter.accepts(spec) and not adapter.accepts(object())
    adapter.create(spec, tmp_path / "m", mode="tf1")
    assert TF1HubAdapter.detect(tmp_path / "m")
    info = adapter.inspect(tmp_path / "m")
    assert [s.name for s in info.signatures] == ["default"] and info.metadata["has_variables"] is False


def test_a_module_fn_without_signature_is_refused():
    with tf.Graph().as_default(), pytest.raises(registry.SignatureError, match="add_signature"):
        registry.create_module_spec(lambda: tf1.placeholder(tf.float32, [None]))


def test_unsupported_collections_are_refused_by_name_unless_dropped():
    def module_fn():
        x = tf1.placeholder(tf.float32, [None])
        tf1.add_to_collection("my_custom_things", x)
        registry.add_signature(inputs=x, outputs=x)

    with tf.Graph().as_default():
        with pytest.raises(registry.FormatError, match="my_custom_things"):
            registry.create_module_spec(module_fn)
        spec = registry.create_module_spec(module_fn, drop_collections=["my_custom_things"])
    assert spec.get_signature_names() == ["default"]


def test_signature_helpers_are_only_for_module_fn():
    with tf.Graph().as_default(), pytest.raises(RuntimeError, match="inside the module_fn"):
        registry.add_signature(inputs=tf1.placeholder(tf.float32), outputs=tf.constant(1.0))


def test_attachment_keys_must_be_identifiers():
    def module_fn():
        x = tf1.placeholder(tf.float32, [None])
        registry.add_signature(inputs=x, outputs=x)
        registry.attach_message("not a key", wrappers_pb2.StringValue())

    with tf.Graph().as_default(), pytest.raises(ValueError, match="not a key"):
        registry.create_module_spec(module_fn)


def test_exporting_refuses_a_non_empty_directory(tmp_path, exported):
    spec = registry.load_module_spec(str(exported[1]))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with tf.Graph().as_default():
        module = registry.Module(spec)
        with tf1.Session() as session, pytest.raises(FileExistsError):
            initialize(session)
            module.export(str(tmp_path / "busy"), session)


def test_module_def_bytes_match_tensorflow_hubs(reference):
    written = protos.ModuleDef(format=protos.FORMAT_V3).SerializeToString()
    for name in reference.names_of_format("tf1_hub"):
        assert (reference.model_dir(name) / "tfhub_module.pb").read_bytes() == written


def test_publishing_a_spec_from_eager_code_exports_it_in_a_graph_of_its_own(registry_env):
    """As create_module_spec does, publish(spec) builds the module in its own graph: mode tf1, whatever the caller's."""
    def module_fn():
        x = tf1.placeholder(tf.float32, [None])
        registry.add_signature(inputs=x, outputs=x * 2.0)

    assert tf.executing_eagerly()
    spec = registry.create_module_spec(module_fn)
    record = registry.publish(spec, name="tf1/doubler")
    assert (record.handle, record.format) == ("tf1/doubler/1", "tf1_hub")
    signatures = registry.load(record.handle, mode="tf2").signatures
    assert np.allclose(signatures["default"](default=tf.constant([1.0, 2.0]))["default"].numpy(), [2.0, 4.0])
