"""Converting TF1 Hub modules into TF2 SavedModels: the Reusable SavedModel API, and what is refused.

The reference modules' recorded outputs were computed by the reference stack's
``hub.Module`` (default variant); every signature of the converted model must
reproduce them. Refusals must come before anything is written.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import registry as hub
from registry.adapters.tf1_hub.convert import convert_module
from registry.adapters.tf1_hub.errors import ConversionError
from registry.errors import FormatError, ModeError
from tests.conftest import REFERENCE_DIR
from tests.services import ReferenceArtifacts

tf1 = tf.compat.v1
TF1_MODELS = ReferenceArtifacts(REFERENCE_DIR).names_of_format("tf1_hub")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Each TF1 reference module converted once: name -> (report, directory)."""
    out = tmp_path_factory.mktemp("converted")
    return {name: (convert_module(REFERENCE_DIR / name, out / name), out / name) for name in TF1_MODELS}


@pytest.mark.parametrize("name", TF1_MODELS)
def test_every_signature_reproduces_the_reference_outputs(reference, converted, name):
    inputs, expected = reference.expected(name)
    report, path = converted[name]
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == set(reference.manifest[name]["signatures"]) | {"serving_default"}
    assert report.signatures == tuple(sorted(loaded.signatures))
    for signature, arrays in inputs.items():
        outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in arrays.items()})
        assert set(outputs) == set(expected[signature])
        for output, value in expected[signature].items():
            np.testing.assert_allclose(outputs[output].numpy(), value, atol=1e-5, err_msg=f"{signature}:{output}")


@pytest.mark.parametrize("name", TF1_MODELS)
def test_call_and_serving_default_are_the_default_signature(reference, converted, name):
    _, path = converted[name]
    loaded = tf.saved_model.load(str(path))
    if "default" not in reference.manifest[name]["signatures"]:
        pytest.skip("no default signature")
    inputs = reference.manifest[name]["signatures"]["default"]["inputs"]
    rng = np.random.RandomState(0)
    if name == "tf1_text_embedding":
        x = tf.constant(["the cat sat", "a model ran on the mat"])
    else:
        (dtype, shape), = inputs.values()
        x = tf.constant(rng.rand(3, *shape[1:]).astype(dtype))
    (input_name,) = inputs
    expected = loaded.signatures["default"](**{input_name: x})
    np.testing.assert_allclose(loaded(x).numpy(), expected["default"].numpy(), atol=1e-6)
    np.testing.assert_allclose(loaded({input_name: x}).numpy(), expected["default"].numpy(), atol=1e-6)
    np.testing.assert_allclose(loaded.signatures["serving_default"](**{input_name: x})["default"].numpy(),
                               expected["default"].numpy())
    if name != "tf1_train_tags":  # without a {"train"} variant, training=True runs the same graph
        np.testing.assert_allclose(loaded(x, training=True).numpy(), expected["default"].numpy(), atol=1e-6)


def test_variables_trainable_variables_and_regularization_losses(converted):
    report, path = converted["tf1_train_tags"]
    loaded = tf.saved_model.load(str(path))
    def names(variables):
        return sorted(v.name.split(":")[0] for v in variables)

    assert names(loaded.variables) == list(report.variables) == [
        "bn/beta", "bn/gamma", "bn/moving_mean", "bn/moving_variance", "hidden/bias", "hidden/kernel",
        "logits/bias", "logits/kernel"]
    # Exactly the module's TRAINABLE_VARIABLES: the moving averages are not trained.
    assert names(loaded.trainable_variables) == list(report.trainable_variables) == [
        "bn/beta", "bn/gamma", "hidden/bias", "hidden/kernel", "logits/bias", "logits/kernel"]
    # The module's L2 regularizer: 0.01 * sum(kernel ** 2) of the hidden layer.
    (loss,) = loaded.regularization_losses
    kernel = next(v for v in loaded.variables if v.name.startswith("hidden/kernel"))
    np.testing.assert_allclose(loss().numpy(), 0.01 * np.sum(kernel.numpy() ** 2), rtol=1e-6)
    assert (report.train_variant, report.update_ops, report.regularization_losses) == (True, 2, 1)


def test_training_runs_the_train_variant_and_its_update_ops_on_shared_variables(reference, converted):
    _, path = converted["tf1_train_tags"]
    loaded = tf.saved_model.load(str(path))
    inputs, expected = reference.expected("tf1_train_tags")
    x = tf.constant(inputs["default"]["default"])
    by_name = {v.name.split(":")[0]: v for v in loaded.variables}
    moving_mean = by_name["bn/moving_mean"].numpy()
    np.testing.assert_allclose(loaded(x).numpy(), expected["default"]["default"], atol=1e-5)
    np.testing.assert_array_equal(by_name["bn/moving_mean"].numpy(), moving_mean)  # inference updates nothing
    loaded(x, training=True)
    # Batch norm in training mode moved the averages (momentum 0.9) towards the batch mean of the hidden layer.
    hidden = tf.nn.relu(x @ by_name["hidden/kernel"] + by_name["hidden/bias"]).numpy()
    np.testing.assert_allclose(by_name["bn/moving_mean"].numpy(), 0.9 * moving_mean + 0.1 * hidden.mean(0),
                               rtol=1e-5, atol=1e-6)
    # The inference variant reads the same, now updated, variable.
    assert not np.allclose(loaded(x).numpy(), expected["default"]["default"], atol=1e-5)


def test_assets_travel_with_the_saved_model_and_tables_reinitialise_on_load(reference, converted, tmp_path):
    report, path = converted["tf1_text_embedding"]
    assert report.tables == ("hash_table",) and report.assets == ("_vocab.txt",)
    assert (path / "assets" / "_vocab.txt").read_text().split() [:3] == ["<unk>", "the", "cat"]
    moved = tmp_path / "moved"
    path.rename(moved)  # the converted model must not point at the module it came from, nor at its old place
    try:
        inputs, expected = reference.expected("tf1_text_embedding")
        loaded = tf.saved_model.load(str(moved))
        got = loaded.signatures["default"](default=tf.constant(inputs["default"]["default"]))["default"]
        np.testing.assert_allclose(got.numpy(), expected["default"]["default"], atol=1e-5)
    finally:
        moved.rename(path)


def test_the_result_is_a_tf2_saved_model_for_the_registry(converted):
    _, path = converted["tf1_dense_two_signatures"]
    assert not (path / "tfhub_module.pb").exists()
    from registry.adapters.tf1_hub.adapter import TF1HubAdapter

    assert not TF1HubAdapter.detect(path)
    assert tf.saved_model.contains_saved_model(str(path))


def test_attachments_are_listed_as_not_carried(converted):
    report, _ = converted["tf1_image_feature_vector"]
    assert report.dropped_attachments == ("image_module_info",)


def test_keras_3_fine_tunes_the_converted_model_through_registry_keras_layer(reference, converted):
    import keras

    _, path = converted["tf1_train_tags"]
    layer = hub.KerasLayer(str(path), trainable=True)
    model = keras.Sequential([keras.Input((16,)), layer, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=False)
    rng = np.random.RandomState(1)
    x, y = rng.rand(32, 16).astype(np.float32), rng.rand(32, 1).astype(np.float32)
    kernel = next(w for w in layer.trainable_weights if "hidden" in w.path and "kernel" in w.path)
    before = np.array(kernel.numpy())
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0, shuffle=False)
    assert len(layer.trainable_weights) == 6 and len(layer.non_trainable_weights) == 2
    assert len(model.losses) == 1  # the module's regularization loss, added by the layer
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.allclose(kernel.numpy(), before)


# -- refusals, before anything is written ---------------------------------------------------------------


def _export(spec, path):
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with tf1.Session() as session:
            session.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
            module.export(str(path), session)
    return path


def _variants_fn(wide):
    x = tf1.placeholder(tf.float32, [None, 3])
    w = tf1.get_variable("w", [3, 4 if wide else 2])
    hub.add_signature(inputs=x, outputs=tf.matmul(x, w))


def test_a_variant_whose_variables_differ_is_refused_before_anything_is_written(tmp_path):
    spec = hub.create_module_spec(_variants_fn, [(set(), {"wide": False}), ({"train"}, {"wide": True})])
    module = _export(spec, tmp_path / "module")
    target = tmp_path / "converted"
    with pytest.raises(ConversionError, match=r"graph variant \{'train'\} has variables that differ") as raised:
        convert_module(module, target)
    assert isinstance(raised.value, FormatError) and isinstance(raised.value, ValueError)
    assert not target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["module"]


def test_other_variants_with_the_same_variables_are_left_out_and_reported(tmp_path):
    spec = hub.create_module_spec(_variants_fn, [(set(), {"wide": False}), ({"serve"}, {"wide": False})])
    report = convert_module(_export(spec, tmp_path / "module"), tmp_path / "converted")
    assert report.dropped_variants == ("{'serve'}",) and not report.train_variant


def test_a_variant_other_than_train_with_different_variables_is_refused(tmp_path):
    spec = hub.create_module_spec(_variants_fn, [(set(), {"wide": False}), ({"tpu"}, {"wide": True})])
    with pytest.raises(ConversionError, match=r"graph variant \{'tpu'\}"):
        convert_module(_export(spec, tmp_path / "module"), tmp_path / "converted")


def _sparse_fn():
    ids = tf1.sparse_placeholder(tf.int64, [None, None])
    emb = tf1.get_variable("emb", [5, 2])
    hub.add_signature(inputs={"ids": ids}, outputs=tf.nn.embedding_lookup_sparse(emb, ids, None))


def test_a_sparse_signature_input_is_refused(tmp_path):
    with pytest.raises(ConversionError, match="input 'ids' of signature 'default' is a sparse tensor"):
        convert_module(_export(hub.create_module_spec(_sparse_fn), tmp_path / "module"), tmp_path / "converted")
    assert not (tmp_path / "converted").exists()


def test_a_module_without_a_default_signature_needs_a_call_signature(tmp_path, converted):
    with pytest.raises(ConversionError, match="has no signature 'fruit' for __call__"):
        convert_module(REFERENCE_DIR / "tf1_dense_two_signatures", tmp_path / "c", call_signature="fruit")
    report = convert_module(REFERENCE_DIR / "tf1_dense_two_signatures", tmp_path / "c",
                            call_signature="fruit_to_pet")
    loaded = tf.saved_model.load(str(tmp_path / "c"))
    x = {"apples": tf.ones([2, 50]), "oranges": tf.zeros([2, 50])}
    outputs = loaded(x)  # no "default" output: __call__ returns the dict
    assert set(outputs) == {"cats", "dogs"} and report.call_signature == "fruit_to_pet"


def test_converting_into_a_non_empty_directory_or_from_a_non_module_is_refused(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(FileExistsError):
        convert_module(REFERENCE_DIR / "tf1_dense_two_signatures", tmp_path / "busy")
    with pytest.raises(FormatError, match="not a TF1 Hub module"):
        convert_module(REFERENCE_DIR / "tf2_text_embedding", tmp_path / "c")


def test_conversion_needs_eager_execution(tmp_path):
    with tf.Graph().as_default(), pytest.raises(ModeError, match="eager execution"):
        convert_module(REFERENCE_DIR / "tf1_dense_two_signatures", tmp_path / "c")


def _stateless_fn():
    x = tf1.placeholder(tf.float32, [None])
    hub.add_signature(inputs=x, outputs=2 * x)


def _no_inputs_fn():
    v = tf1.get_variable("v", initializer=tf.constant([1.0, 2.0]))
    hub.add_signature(outputs=v * 3)
    x = tf1.placeholder(tf.int64, [None])
    hub.add_signature("ints", inputs={"x": x}, outputs={"y": x + 1, "text": tf.strings.as_string(x)})


def test_a_stateless_module_and_a_signature_without_inputs_convert(tmp_path):
    convert_module(_export(hub.create_module_spec(_stateless_fn), tmp_path / "stateless"), tmp_path / "s")
    stateless = tf.saved_model.load(str(tmp_path / "s"))
    assert stateless(tf.constant([1.0, 2.0])).numpy().tolist() == [2.0, 4.0]
    assert not stateless.variables and not stateless.regularization_losses

    report = convert_module(_export(hub.create_module_spec(_no_inputs_fn), tmp_path / "noin"), tmp_path / "n")
    loaded = tf.saved_model.load(str(tmp_path / "n"))
    assert report.signatures == ("default", "ints", "serving_default")
    assert loaded.signatures["default"]()["default"].numpy().tolist() == [3.0, 6.0]
    assert loaded({}).numpy().tolist() == [3.0, 6.0]  # __call__ of a signature without inputs takes {}
    ints = loaded.signatures["ints"](x=tf.constant([1, 2], tf.int64))
    assert ints["y"].numpy().tolist() == [2, 3] and ints["text"].numpy().tolist() == [b"1", b"2"]


def _scatter_fn():
    v = tf1.get_variable("v", initializer=tf.constant([1.0, 2.0]), use_resource=False)
    x = tf1.placeholder(tf.float32, [None])
    hub.add_signature(inputs=x, outputs=x * tf1.scatter_update(v, [0], [5.0])[0])


def test_an_update_of_a_ref_variable_other_than_assign_is_refused(tmp_path):
    with pytest.raises(ConversionError, match=r"updates the ref variable 'v'.*only reads, tf.cond/tf.while_loop"):
        convert_module(_export(hub.create_module_spec(_scatter_fn), tmp_path / "module"), tmp_path / "converted")
    assert not (tmp_path / "converted").exists()


def test_the_report_summary_says_what_was_kept_and_left_out(converted):
    lines = converted["tf1_train_tags"][0].summary()
    assert lines[1] == "__call__: signature 'default'; training=True runs the {'train'} variant with its 2 update ops"
    assert lines[3] == "variables: 8 (6 trainable); regularization losses: 1"
    assert converted["tf1_image_feature_vector"][0].summary()[-1] == "left out: attached message 'image_module_info'"
    assert "tables: hash_table (assets: _vocab.txt)" in converted["tf1_text_embedding"][0].summary()


def test_a_converted_model_publishes_as_a_tf2_version_whose_parent_is_the_tf1_version(reference, registry_env,
                                                                                       tmp_path):
    """What ``registry.convert`` will do: convert the TF1 version's directory, publish it with that version as parent."""
    import registry

    source = registry.publish(REFERENCE_DIR / "tf1_train_tags", name="hub/train-tags")
    convert_module(registry.default_registry().resolve_path(source.handle), tmp_path / "converted")
    record = registry.publish(tmp_path / "converted", name="hub/train-tags", parent=source.handle)
    assert (source.format, record.format) == ("tf1_hub", "tf2_saved_model")
    assert [v.handle for v in registry.lineage(record.handle)] == [record.handle, source.handle]
    inputs, expected = reference.expected("tf1_train_tags")
    loaded = registry.load(record.handle)
    np.testing.assert_allclose(loaded(tf.constant(inputs["default"]["default"])).numpy(),
                               expected["default"]["default"], atol=1e-5)
