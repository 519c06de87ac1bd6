"""The TF2 SavedModel adapter passes the adapter contract on a reference model."""

import numpy as np
import pytest
import tensorflow as tf

from registry.adapters.tf2_saved_model.adapter import TF2SavedModelAdapter
from tests.adapter_contract import AdapterContract


class TestTF2SavedModelContract(AdapterContract):
    @pytest.fixture
    def adapter_cls(self):
        return TF2SavedModelAdapter

    @pytest.fixture
    def model_dir(self, reference_dir):
        return reference_dir / "tf2_image_feature_vector"

    @pytest.fixture
    def foreign_dir(self, reference_dir):
        return reference_dir / "tf1_image_feature_vector"

    @pytest.fixture
    def signature_names(self):
        return ["serving_default", "__call__"]

    @pytest.fixture
    def check_loaded(self, reference):
        inputs, outputs = reference.expected("tf2_image_feature_vector")
        images, want = inputs["__call__"]["images"], outputs["__call__"]["default"]

        def check(model, mode, model_dir):
            if mode == "tf2":
                np.testing.assert_allclose(model(images).numpy(), want, atol=1e-5)
                return
            x = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
            y = model(x)
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                np.testing.assert_allclose(session.run(y, {x: images}), want, atol=1e-5)

        return check
