"""The TF2 SavedModel adapter passes the shipped adapter contract (registry.testing) on a reference model."""

import numpy as np
import pytest
import tensorflow as tf

from registry.adapters.tf2_saved_model.adapter import TF2SavedModelAdapter
from registry.testing.adapter_contract import AdapterContract, AdapterSample
from tests.conftest import REFERENCE_DIR
from tests.services import ReferenceArtifacts

REFERENCE = ReferenceArtifacts(REFERENCE_DIR)


class TF2Sample(AdapterSample):
    signature_names = ("serving_default", "__call__")

    def model_path(self, workdir):
        return REFERENCE_DIR / "tf2_image_feature_vector"

    def foreign_path(self, workdir):
        return REFERENCE_DIR / "tf1_image_feature_vector"

    def check_loaded(self, model, mode, model_path):
        inputs, outputs = REFERENCE.expected("tf2_image_feature_vector")
        images, want = inputs["__call__"]["images"], outputs["__call__"]["default"]
        if mode == "tf2":
            np.testing.assert_allclose(model(images).numpy(), want, atol=1e-5)
            return
        x = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
        y = model(x)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            np.testing.assert_allclose(session.run(y, {x: images}), want, atol=1e-5)

    def check_fine_tuned(self, model, mode, model_path):
        # tf2: the restored object itself; tf1: a tf_keras KerasLayer over it, for Model.fit in the graph.
        trainable = model.trainable_variables if mode == "tf2" else model.trainable_weights
        assert trainable, f"nothing to train after fine_tune in mode {mode}"

    def make_object(self, mode, model_path, registry):
        if mode == "tf1":
            import registry as public

            layer = public.tf_keras.KerasLayer(str(model_path), trainable=True, registry=registry)
            layer(tf.zeros([1, 32, 32, 3]))
            return layer

        class Scale(tf.Module):
            def __init__(self):
                super().__init__()
                self.w = tf.Variable(2.0)

            @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
            def __call__(self, x):
                return x * self.w

        return Scale()


@pytest.mark.parametrize("check", AdapterContract.CHECKS)
def test_tf2_saved_model_adapter_contract(check, tmp_path, registry_env):
    AdapterContract(TF2SavedModelAdapter, TF2Sample(), tmp_path).run(check)
