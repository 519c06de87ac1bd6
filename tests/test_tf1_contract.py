"""The TF1 Hub adapter passes the adapter contract on a reference module."""

import numpy as np
import pytest
import tensorflow as tf

from registry.adapters.tf1_hub.adapter import TF1HubAdapter
from tests.adapter_contract import AdapterContract


class TestTF1HubContract(AdapterContract):
    @pytest.fixture
    def adapter_cls(self):
        return TF1HubAdapter

    @pytest.fixture
    def model_dir(self, reference_dir):
        return reference_dir / "tf1_text_embedding"

    @pytest.fixture
    def foreign_dir(self, reference_dir):
        return reference_dir / "tf2_text_embedding"

    @pytest.fixture
    def signature_names(self):
        return ["default"]

    @pytest.fixture
    def check_loaded(self, reference):
        inputs, outputs = reference.expected("tf1_text_embedding")
        sentences, want = inputs["default"]["default"], outputs["default"]["default"]

        def check(model, mode, model_dir):
            if mode == "tf2":
                np.testing.assert_allclose(model(tf.constant(sentences)).numpy(), want, atol=1e-5)
                return
            x = tf.compat.v1.placeholder(tf.string, [None])
            y = model(x)
            with tf.compat.v1.Session() as session:
                session.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()])
                np.testing.assert_allclose(session.run(y, {x: sentences.astype(object)}), want, atol=1e-5)

        return check
