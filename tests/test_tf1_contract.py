"""The TF1 Hub adapter passes the shipped adapter contract (registry.testing) on a reference module."""

import numpy as np
import pytest
import tensorflow as tf

import registry
from registry.adapters.tf1_hub.adapter import TF1HubAdapter
from registry.testing.adapter_contract import AdapterContract, AdapterSample
from tests.conftest import REFERENCE_DIR
from tests.services import ReferenceArtifacts

REFERENCE = ReferenceArtifacts(REFERENCE_DIR)


def _doubling_module_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None, 2])
    w = tf.compat.v1.get_variable("w", initializer=tf.constant([[2.0, 0.0], [0.0, 2.0]]))
    registry.add_signature(inputs=x, outputs=tf.matmul(x, w))


class TF1Sample(AdapterSample):
    signature_names = ("default",)

    def model_path(self, workdir):
        return REFERENCE_DIR / "tf1_text_embedding"

    def foreign_path(self, workdir):
        return REFERENCE_DIR / "tf2_text_embedding"

    def check_loaded(self, model, mode, model_path):
        inputs, outputs = REFERENCE.expected("tf1_text_embedding")
        sentences, want = inputs["default"]["default"], outputs["default"]["default"]
        if mode == "tf2":
            np.testing.assert_allclose(model(tf.constant(sentences)).numpy(), want, atol=1e-5)
            return
        x = tf.compat.v1.placeholder(tf.string, [None])
        y = model(x)
        with tf.compat.v1.Session() as session:
            session.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()])
            np.testing.assert_allclose(session.run(y, {x: sentences.astype(object)}), want, atol=1e-5)

    def check_fine_tuned(self, model, mode, model_path):
        assert mode == "tf1" and model.variables, "a trainable Module has variables in the graph"
        assert tf.compat.v1.trainable_variables(), "fine_tune added no trainable variable to the graph"

    def make_object(self, mode, model_path, registry_):
        return registry.create_module_spec(_doubling_module_fn)


@pytest.mark.parametrize("check", AdapterContract.CHECKS)
def test_tf1_hub_adapter_contract(check, tmp_path, registry_env):
    AdapterContract(TF1HubAdapter, TF1Sample(), tmp_path).run(check)
