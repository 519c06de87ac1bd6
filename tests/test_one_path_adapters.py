"""One registry, one path: Module, load_module_spec and both Keras layers use the registry they are given.

Two registries over two SQLite catalogs (each with its own storage and cache)
publish *different* models under the same names, ``pub/m`` (TF1 Hub) and
``pub/k`` (TF2 SavedModel). Each entry point, given ``registry=``, must build
the model of that registry; the default registry (an empty third catalog here)
knows neither name. Each entry point passes the matrix gate exactly once, and a
refusal comes before anything is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import registry
from tests.gate_support import record_gate_calls
from registry.errors import FormatError, ModelNotFound, UnsupportedOperation
from tests.conftest import REFERENCE_DIR
from tests.services import ReferenceArtifacts

tf1 = tf.compat.v1
ATOL = 1e-5
REFERENCE = ReferenceArtifacts(REFERENCE_DIR)

#: What each registry publishes under the shared names.
MODELS = {
    "a": {"pub/m": "tf1_image_feature_vector", "pub/k": "tf2_image_feature_vector"},
    "b": {"pub/m": "tf1_dense_two_signatures", "pub/k": "tf2_text_embedding"},
}


def _new_registry(root: Path) -> registry.Registry:
    storage = root / "artifacts"
    storage.mkdir(parents=True)
    return registry.Registry(database_url=f"sqlite:///{root / 'catalog.db'}", storage_url=str(storage),
                             cache_dir=root / "cache")


@pytest.fixture(scope="module")
def registries(tmp_path_factory) -> dict[str, registry.Registry]:
    """Registries "a" and "b", each with its own ``pub/m`` and ``pub/k`` (version 1)."""
    result = {}
    for key, models in MODELS.items():
        reg = _new_registry(tmp_path_factory.mktemp(f"registry-{key}"))
        for name, model in models.items():
            record = reg.publish(REFERENCE.model_dir(model), name=name)
            assert record.handle == f"{name}/1"
        result[key] = reg
    return result


@pytest.fixture(autouse=True)
def _empty_default_registry(registry_env):
    """The default registry is a third, empty catalog: anything resolved through it is ModelNotFound."""
    return registry_env


@pytest.fixture
def graph():
    with tf.Graph().as_default() as g:
        yield g


def _run(*fetches):
    with tf1.Session() as session:
        session.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
        return session.run(list(fetches))


def _signature_names(name: str) -> set[str]:
    return set(REFERENCE.manifest[name]["signatures"])


def _tf2_input_and_output(name: str):
    inputs, outputs = REFERENCE.expected(name)
    (x,) = inputs["__call__"].values()
    return tf.constant(x), outputs["__call__"]["default"]


# --- each entry point uses the registry it is given ---------------------------------------------

def test_module_builds_the_module_of_the_registry_it_is_given(registries, graph):
    a = registry.Module("pub/m/1", registry=registries["a"], name="a")
    b = registry.Module("pub/m/1", registry=registries["b"], name="b")
    assert set(a.get_signature_names()) == _signature_names("tf1_image_feature_vector")
    assert set(b.get_signature_names()) == _signature_names("tf1_dense_two_signatures")

    in_a, out_a = REFERENCE.expected("tf1_image_feature_vector")
    in_b, out_b = REFERENCE.expected("tf1_dense_two_signatures")
    y_a = a(in_a["image_feature_vector"], signature="image_feature_vector")
    y_b = b(in_b["default"]["default"])
    value_a, value_b = _run(y_a, y_b)
    np.testing.assert_allclose(value_a, out_a["image_feature_vector"]["default"], atol=ATOL)
    np.testing.assert_allclose(value_b, out_b["default"]["default"], atol=ATOL)

    with pytest.raises(ModelNotFound):
        registry.Module("pub/m/1")  # the default registry does not know the name


def test_load_module_spec_reads_the_spec_of_the_registry_it_is_given(registries):
    spec_a = registry.load_module_spec("pub/m/1", registry=registries["a"])
    spec_b = registry.load_module_spec("pub/m/1", registry=registries["b"])
    assert set(spec_a.get_signature_names()) == _signature_names("tf1_image_feature_vector")
    assert set(spec_b.get_signature_names()) == _signature_names("tf1_dense_two_signatures")
    assert spec_a.get_input_info_dict("image_feature_vector")["images"].get_shape().as_list() == [None, 32, 32, 3]
    assert spec_b.get_input_info_dict("fruit_to_pet")["apples"].get_shape().as_list() == [None, 50]
    assert Path(spec_a.source).is_relative_to(registries["a"].settings.cache_dir)
    assert Path(spec_b.source).is_relative_to(registries["b"].settings.cache_dir)
    with pytest.raises(ModelNotFound):
        registry.load_module_spec("pub/m/1")


def test_keras3_layer_loads_the_model_of_the_registry_it_is_given(registries):
    for key in ("a", "b"):
        name = MODELS[key]["pub/k"]
        layer = registry.KerasLayer("pub/k/1", registry=registries[key])
        assert layer.model_path.is_relative_to(registries[key].settings.cache_dir)
        x, expected = _tf2_input_and_output(name)
        np.testing.assert_allclose(layer(x).numpy(), expected, atol=ATOL)


def test_keras3_layer_config_has_no_registry_and_re_creates_with_the_default_one(registries):
    layer = registry.KerasLayer("pub/k/1", registry=registries["a"])  # the image model
    config = layer.get_config()
    assert "registry" not in config and config["handle"] == "pub/k/1"
    registry.publish(REFERENCE.model_dir("tf2_text_embedding"), name="pub/k")  # into the default registry
    again = registry.KerasLayer.from_config(config)
    assert again.model_path.is_relative_to(registry.default_registry().settings.cache_dir)
    x, expected = _tf2_input_and_output("tf2_text_embedding")
    np.testing.assert_allclose(again(x).numpy(), expected, atol=ATOL)


def test_tf_keras_layer_loads_the_model_of_the_registry_it_is_given_eagerly(registries):
    for key in ("a", "b"):
        layer = registry.tf_keras.KerasLayer("pub/k/1", registry=registries[key])
        assert "registry" not in layer.get_config()
        x, expected = _tf2_input_and_output(MODELS[key]["pub/k"])
        np.testing.assert_allclose(layer(x).numpy(), expected, atol=ATOL)


def test_tf_keras_layer_loads_the_model_of_the_registry_it_is_given_in_a_graph(registries, graph):
    results, expected = [], []
    for key in ("a", "b"):
        layer = registry.tf_keras.KerasLayer("pub/k/1", registry=registries[key])
        x, y = _tf2_input_and_output(MODELS[key]["pub/k"])
        results.append(layer(x))
        expected.append(y)
    for value, y in zip(_run(*results), expected):
        np.testing.assert_allclose(value, y, atol=ATOL)
    with pytest.raises(ModelNotFound):
        registry.tf_keras.KerasLayer("pub/k/1")


# --- the gate runs exactly once --------------------------------------------------------------------

@pytest.fixture
def gate_calls(registries, monkeypatch):
    """Every ``check`` call of registry "a", as (format, operation, mode)."""
    return record_gate_calls(registries["a"], monkeypatch)


def test_module_of_a_handle_passes_the_gate_once(registries, gate_calls, graph):
    registry.Module("pub/m/1", registry=registries["a"])
    assert gate_calls == [("tf1_hub", "load", "tf1")]


def test_module_of_a_spec_passes_the_gate_once(registries, gate_calls, graph):
    spec = registry.load_module_spec("pub/m/1", registry=registries["a"])
    assert gate_calls == [("tf1_hub", "load", "tf1")]
    gate_calls.clear()
    registry.Module(spec, trainable=True, registry=registries["a"])
    assert gate_calls == [("tf1_hub", "fine_tune", "tf1")]


def test_keras3_layer_passes_the_gate_once(registries, gate_calls):
    registry.KerasLayer("pub/k/1", trainable=True, registry=registries["a"])
    assert gate_calls == [("tf2_saved_model", "fine_tune", "tf2")]


def test_tf_keras_layer_passes_the_gate_once_in_each_mode(registries, gate_calls):
    registry.tf_keras.KerasLayer("pub/k/1", registry=registries["a"])
    assert gate_calls == [("tf2_saved_model", "load", "tf2")]
    gate_calls.clear()
    with tf.Graph().as_default():
        registry.tf_keras.KerasLayer("pub/k/1", trainable=True, registry=registries["a"])
    assert gate_calls == [("tf2_saved_model", "fine_tune", "tf1")]


# --- refusals come before any download -------------------------------------------------------------

@pytest.fixture
def without_artifacts(tmp_path):
    """A registry whose catalog lists ``pub/hub`` (TF1 Hub) and ``pub/k`` (TF2) but whose storage lost both
    artifacts, read with an empty cache: whatever needs the bytes fails with ArtifactNotFound."""
    publisher = _new_registry(tmp_path / "publisher")
    for name, model in (("pub/hub", "tf1_image_feature_vector"), ("pub/k", "tf2_image_feature_vector")):
        Path(publisher.publish(REFERENCE.model_dir(model), name=name).artifact_uri).unlink()
    settings = publisher.settings
    reader = registry.Registry(database_url=settings.database_url, storage_url=settings.storage_url,
                               cache_dir=tmp_path / "fresh-cache")
    with pytest.raises(registry.ArtifactNotFound):
        reader.resolve("pub/hub/1")
    return reader


def test_keras3_layer_refuses_to_fine_tune_a_tf1_hub_module_before_downloading(without_artifacts):
    with pytest.raises(UnsupportedOperation) as caught:
        registry.KerasLayer("pub/hub/1", trainable=True, registry=without_artifacts)
    assert caught.value.format == "tf1_hub" and caught.value.operation == "fine_tune"
    assert caught.value.alternative


def test_tf_keras_layer_refuses_to_fine_tune_a_tf1_hub_module_before_downloading(without_artifacts, graph):
    # In a graph the matrix allows TF1 Hub fine-tuning (through registry.Module); the layer refuses it itself.
    with pytest.raises(UnsupportedOperation) as caught:
        registry.tf_keras.KerasLayer("pub/hub/1", trainable=True, registry=without_artifacts)
    assert caught.value.format == "tf1_hub" and caught.value.operation == "fine_tune"
    assert caught.value.mode == "tf1" and "registry.fine_tune" in caught.value.alternative


def test_module_refuses_a_tf2_saved_model_before_downloading(without_artifacts, graph):
    with pytest.raises(FormatError, match=r"tf2_saved_model.*registry\.load\('pub/k/1'\)"):
        registry.Module("pub/k/1", registry=without_artifacts)
    with pytest.raises(FormatError, match="tf2_saved_model"):
        registry.load_module_spec("pub/k/1", registry=without_artifacts)


def test_module_of_a_local_tf2_directory_names_the_alternative(graph):
    with pytest.raises(FormatError, match=r"registry\.load"):
        registry.Module(str(REFERENCE.model_dir("tf2_image_feature_vector")))


def test_keras_layers_still_load_a_local_directory():
    x, expected = _tf2_input_and_output("tf2_image_feature_vector")
    path = REFERENCE.model_dir("tf2_image_feature_vector")
    np.testing.assert_allclose(registry.KerasLayer(path)(x).numpy(), expected, atol=ATOL)
    np.testing.assert_allclose(registry.tf_keras.KerasLayer(str(path))(x).numpy(), expected, atol=ATOL)


# --- what inspect reports for conformance ---------------------------------------------------------

def test_inspect_reports_the_attached_image_size_per_graph_variant():
    from registry.adapters.tf1_hub.adapter import TF1HubAdapter
    from registry.adapters.tf1_hub.spec import read_module_spec

    path = REFERENCE.model_dir("tf1_image_feature_vector")
    info = TF1HubAdapter().inspect(path)
    height, width = registry.get_expected_image_size(read_module_spec(path))
    assert info.metadata["image_module_info"] == {"": {"height": height, "width": width}}
    assert read_module_spec(path).attached_message_keys() == ["image_module_info"]
    assert "image_module_info" not in TF1HubAdapter().inspect(REFERENCE.model_dir("tf1_dense_two_signatures")).metadata
