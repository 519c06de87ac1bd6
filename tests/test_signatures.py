"""The common-signatures plugin: reference models classified on publish, false claims refused, the definitions hook.

Publishes go through a real registry (SQLite catalog, local storage) and real
TensorFlow models: the reference artifacts and small models made here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.adapter import ArtifactInfo, SignatureInfo, TensorInfo
from registry.errors import ModelNotFound, PluginError, SignatureError
from registry.hookspecs import hookimpl
from registry.plugin_manager import DEFAULT_PLUGINS, make_plugin_manager

from registry.tasks.conformance import DefinitionSet, check_version
from registry.tasks.definitions import (
    BATCH,
    BUILTIN_DEFINITIONS,
    N,
    TensorPattern,
    TensorSignatureDefinition,
)

#: What every reference model implements, in both formats (the issue's acceptance list).
EXPECTED_TASKS = {
    "tf1_image_feature_vector": {"image_feature_vector"},
    "tf2_image_feature_vector": {"image_feature_vector", "reusable_saved_model"},
    "tf1_text_embedding": {"text_embedding"},
    "tf2_text_embedding": {"text_embedding", "reusable_saved_model"},
    "tf1_dense_two_signatures": set(),
    "tf1_train_tags": set(),
}


@pytest.fixture
def reg(registry_env):
    from registry.api import Registry

    return Registry(database_url=registry_env.database_url, storage_url=registry_env.storage_url,
                    cache_dir=registry_env.cache_dir, plugin_manager=make_plugin_manager(load_entry_points=False))


def _stored_files(storage_dir: Path) -> list[Path]:
    return [p for p in storage_dir.rglob("*") if p.is_file()]


# --------------------------------------------------------------------------- reference models


@pytest.mark.parametrize("name", sorted(EXPECTED_TASKS))
def test_reference_models_are_classified_from_their_signatures(reg, reference_dir, name):
    record = reg.publish(reference_dir / name, name=f"ref/{name.replace('_', '-')}")
    stored = reg.get_version(record.handle)
    assert {task.task for task in stored.tasks} == EXPECTED_TASKS[name]
    assert stored.details["signature_check"]["definitions"] == [d.name for d in BUILTIN_DEFINITIONS]


def test_tf1_image_feature_vector_evidence_names_signature_size_and_attachment(reg, reference_dir):
    record = reg.publish(reference_dir / "tf1_image_feature_vector", name="ref/tf1-ifv")
    (task,) = reg.get_version(record.handle).tasks
    # The named common signature is preferred over the equivalent 'default' one.
    assert (task.signature, task.tags, task.output_dim, task.image_size) == ("image_feature_vector", [], 8, (32, 32))
    assert task.evidence["image_module_info"] == [32, 32]
    assert task.evidence["inputs"] == {"images": {"dtype": "float32", "shape": [None, 32, 32, 3]}}


def test_tf2_models_are_checked_through_their_call(reg, reference_dir):
    record = reg.publish(reference_dir / "tf2_text_embedding", name="ref/tf2-text")
    tasks = {t.task: t for t in reg.get_version(record.handle).tasks}
    assert tasks["text_embedding"].signature == "__call__"
    assert tasks["text_embedding"].output_dim == 12
    api = tasks["reusable_saved_model"].evidence
    assert api["call_inputs"] == {"sentences": {"dtype": "string", "shape": [None]}}
    assert api["variables"] >= 1 and "regularization_losses" not in api  # the attribute is absent: optional


def test_a_claim_the_signatures_support_is_recorded(reg, reference_dir):
    # A TF2 classifier and feature extractor look alike; the claim settles it.
    record = reg.publish(reference_dir / "tf2_image_feature_vector", name="ref/tf2-cls",
                         tasks=["image_classification"])
    assert {t.task for t in record.tasks} == {"image_feature_vector", "image_classification", "reusable_saved_model"}


# --------------------------------------------------------------------------- refused claims


def test_false_claim_is_refused_and_nothing_is_written(reg, registry_env, reference_dir):
    with pytest.raises(SignatureError) as error:
        reg.publish(reference_dir / "tf1_dense_two_signatures", name="ref/dense", tasks=["image_feature_vector"])
    message = str(error.value)
    assert "image_feature_vector" in message
    assert "missing input images" in message and "unexpected input default" in message
    with pytest.raises(ModelNotFound):
        reg.get_version("ref/dense")
    assert _stored_files(registry_env.storage_dir) == []


def test_wrong_output_dtype_is_named(reg, registry_env):
    import tensorflow as tf

    class IntFeatures(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
        def __call__(self, images):
            return tf.cast(tf.reduce_sum(images, axis=[1, 2]) * 10.0, tf.int32)

    with pytest.raises(SignatureError, match="output default has dtype int32, image_feature_vector needs float32"):
        reg.publish(IntFeatures(), name="made/int-features", tasks=["image_feature_vector"])
    with pytest.raises(ModelNotFound):
        reg.get_version("made/int-features")
    assert _stored_files(registry_env.storage_dir) == []


def test_reusable_api_claim_on_a_tf1_module_is_refused(reg, reference_dir):
    with pytest.raises(SignatureError, match="reusable_saved_model: the model has no __call__"):
        reg.publish(reference_dir / "tf1_text_embedding", name="ref/t1", tasks=["reusable_saved_model"])


def test_unknown_task_claim_is_refused(reg, reference_dir):
    with pytest.raises(SignatureError, match="unknown task 'image_feature_vectr'.*image_feature_vector"):
        reg.publish(reference_dir / "tf2_image_feature_vector", name="ref/typo", tasks=["image_feature_vectr"])


# --------------------------------------------------------------------------- the rules, on described models


def _sig(name, inputs, outputs, tags=()):
    return SignatureInfo(name=name, inputs={k: TensorInfo(*v) for k, v in inputs.items()},
                         outputs={k: TensorInfo(*v) for k, v in outputs.items()}, tags=frozenset(tags))


IMAGES_224 = {"images": ("float32", (None, 224, 224, 3))}
LOGITS = {"default": ("float32", (None, 1001))}


def _tasks(info, claimed=()):
    pm = make_plugin_manager(load_entry_points=False)
    return check_version(DefinitionSet(pm), info, claimed=claimed)["tasks"]


def test_tf1_default_signature_of_a_classifier_is_not_a_feature_vector():
    info = ArtifactInfo(format="tf1_hub", signatures=(
        _sig("default", IMAGES_224, LOGITS),
        _sig("image_classification", IMAGES_224, LOGITS),
        _sig("image_feature_vector", IMAGES_224, {"default": ("float32", (None, 1280))}),
    ))
    found = {(t["task"], t["signature"], t["output_dim"]) for t in _tasks(info)}
    assert found == {("image_classification", "image_classification", 1001),
                     ("image_feature_vector", "image_feature_vector", 1280)}


def test_every_graph_variant_is_examined():
    info = ArtifactInfo(format="tf1_hub", tag_sets=(frozenset(), frozenset({"train"})), signatures=(
        _sig("default", {"default": ("string", (None,))}, {"default": ("float32", (None, 20))}),
        _sig("default", {"default": ("string", (None,))}, {"default": ("float32", (None, 20))}, tags=["train"]),
    ))
    assert sorted(t["tags"] for t in _tasks(info)) == [[], ["train"]]


def test_flexible_input_size_comes_from_image_module_info():
    info = ArtifactInfo(format="tf1_hub", metadata={"image_module_info": {"default_image_size":
                                                                           {"height": 299, "width": 299}}},
                        signatures=(_sig("image_feature_vector", {"images": ("float32", (None, None, None, 3))},
                                         {"default": ("float32", (None, 2048))}),))
    (task,) = _tasks(info)
    assert (task["image_height"], task["image_width"]) == (299, 299)
    assert task["evidence"]["image_size_from"] == "image_module_info"
    assert task["evidence"]["flexible_image_size"] is True


@pytest.mark.parametrize("images, why", [
    (("float32", (None, 224, 224, 4)), "input images has size 4 in dimension 3, image_feature_vector needs 3"),
    (("float32", (None, 224, 224)), "input images has shape [?, 224, 224], image_feature_vector needs 4-D"),
    (("uint8", (None, 224, 224, 3)), "input images has dtype uint8, image_feature_vector needs float32"),
])
def test_claim_mismatches_name_the_tensor_and_the_rule(images, why):
    info = ArtifactInfo(format="tf1_hub", signatures=(
        _sig("image_feature_vector", {"images": images}, {"default": ("float32", (None, 64))}),))
    with pytest.raises(SignatureError) as error:
        _tasks(info, claimed=["image_feature_vector"])
    assert why in str(error.value)
    assert "signature 'image_feature_vector' of graph variant {}" in str(error.value)


def test_tf2_output_named_logits_is_a_classifier_without_a_claim():
    info = ArtifactInfo(format="tf2_saved_model", signatures=(
        _sig("__call__", {"x": ("float32", (None, 96, 96, 3))}, {"logits": ("float32", (None, 10))}),))
    assert [t["task"] for t in _tasks(info)] == ["image_classification"]


def test_every_definition_states_what_it_checks():
    for definition in BUILTIN_DEFINITIONS:
        lines = definition.checks()
        assert lines and all(isinstance(line, str) and len(line) > 20 for line in lines), definition.name
    assert any("float32 [batch, height, width, 3]" in line for line in BUILTIN_DEFINITIONS[0].checks())


# --------------------------------------------------------------------------- third-party definitions


class _DenseRegressionPlugin:
    """A third party's task: float32 [batch, 50] features in, float32 [batch, N] out, via 'default'."""

    definition = TensorSignatureDefinition(
        name="dense_regression", summary="50 features -> N values",
        inputs={"default": TensorPattern("float32", (BATCH, 50))},
        outputs={"default": TensorPattern("float32", (BATCH, N))},
        tf1_signatures=("default",))

    @hookimpl
    def register_signature_definitions(self, register):
        register(self.definition)


def test_third_party_definition_is_checked_on_publish(registry_env, reference_dir):
    from registry.api import Registry

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(_DenseRegressionPlugin(), name="dense-regression")
    reg = Registry(database_url=registry_env.database_url, storage_url=registry_env.storage_url,
                   cache_dir=registry_env.cache_dir, plugin_manager=pm)
    record = reg.publish(reference_dir / "tf1_dense_two_signatures", name="ref/dense",
                         tasks=["dense_regression"])
    (task,) = record.tasks
    assert (task.task, task.signature, task.output_dim) == ("dense_regression", "default", 100)
    assert DefinitionSet(pm).source("dense_regression") == "dense-regression"


def test_two_plugins_defining_one_task_is_an_error():
    pm = make_plugin_manager(load_entry_points=False)

    class Clash:
        @hookimpl
        def register_signature_definitions(self, register):
            register(BUILTIN_DEFINITIONS[0])

    pm.register(Clash(), name="clash")
    with pytest.raises(PluginError, match="'image_feature_vector' is defined by both"):
        DefinitionSet(pm)


def test_the_plugin_is_a_default_plugin():
    assert "registry.plugins.signatures" in DEFAULT_PLUGINS
